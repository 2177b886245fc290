"""The web console: FastAPI + Jinja2 templates, server-rendered, in Chinese.

    reviewer  收件箱 (applications waiting for their bureau, overdue first), the application page
              (facts, provisional amount and trace with the cited sentences, decisions, documents),
              approve (optionally lowering, with a reason) / reject / request information
    operator  my applications, submit one (a JSON claim), answer information requests, programme-
              year evidence, withdraw
    finance   confirm programme years, revoke; the award book and the ledger
    ops       every application; resume one waiting in `attention`

Sessions: a signed cookie (itsdangerous via Starlette's SessionMiddleware, SameSite=strict,
HttpOnly) holding the user id, the login time and a CSRF token that every form posts back.
Passwords are checked by models/users.py (argon2, lock-out). Every action is sent to Temporal with
a credential the console's signing service makes for the logged-in user (models/credentials.py);
the workflow verifies it. Each application page links to its workflow in the Temporal Web UI.
"""
from __future__ import annotations

import hmac
import json
import os
import secrets
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Optional

from fastapi import FastAPI, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from console import queries
from models.credentials import Actor

HERE = Path(__file__).resolve().parent
SESSION_MAX_AGE = 8 * 3600
STATUS_ZH = {
    "opening": "受理中", "review": "审核中", "info_requested": "待补充材料", "credit_check": "信用核查",
    "calculating": "核算中", "payout": "拨付中", "awaiting_evidence": "待提交年度材料", "confirming": "待财政确认",
    "attention": "需人工处理", "completed": "已完成", "rejected": "未通过", "refused": "不予支持",
    "blacklisted": "严重失信", "withdrawn": "已撤回", "revoked": "已撤销",
}
ROLE_ZH = {"operator": "经办人", "reviewer": "审核人", "finance": "财政", "ops": "运维"}


def _secret() -> str:
    """DISBURSE_CONSOLE_SECRET, else a random one kept in var/console-secret (0600)."""
    if os.environ.get("DISBURSE_CONSOLE_SECRET"):
        return os.environ["DISBURSE_CONSOLE_SECRET"]
    path = HERE.parent / "var" / "console-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def temporal_ui() -> str:
    return os.environ.get("DISBURSE_TEMPORAL_UI", "http://localhost:8233").rstrip("/")


class LoginRequired(Exception):
    pass


def create_app(*, temporal_client=None) -> FastAPI:
    app = FastAPI(title="disburse console", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(SessionMiddleware, secret_key=_secret(), session_cookie="disburse_session",
                       max_age=SESSION_MAX_AGE, same_site="strict",
                       https_only=os.environ.get("DISBURSE_CONSOLE_HTTPS_ONLY", "") == "1")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.globals.update(status_zh=STATUS_ZH, role_zh=ROLE_ZH, temporal_ui=temporal_ui)
    templates.env.filters["money"] = lambda v: "" if v in (None, "") else f"{Decimal(str(v)):,.2f}"
    app.state.client = temporal_client

    async def client():
        if app.state.client is None:
            from workflows.client import connect
            app.state.client = await connect()
        return app.state.client

    # ------------------------------------------------------------------ sessions

    def current(request: Request) -> Optional[Actor]:
        uid = request.session.get("user")
        if not uid or time.time() - request.session.get("at", 0) > SESSION_MAX_AGE:
            return None
        from models.db import session as db
        from models.tables import UserRow
        with db() as s:
            row = s.get(UserRow, uid)
        if row is None or row.disabled:
            return None
        return Actor(user=row.user_id, role=row.role, bureau=row.bureau)

    def need(request: Request, *roles: str) -> Actor:
        actor = current(request)
        if actor is None:
            raise LoginRequired()
        if roles and actor.role not in roles:
            raise HTTPException(403, f"{ROLE_ZH.get(actor.role, actor.role)}无权进行此操作")
        return actor

    def check_csrf(request: Request, token: str) -> None:
        expected = request.session.get("csrf", "")
        if not expected or not hmac.compare_digest(expected, token or ""):
            raise HTTPException(403, "CSRF token missing or wrong: reload the page and try again")

    def page(request: Request, name: str, status_code: int = 200, **ctx) -> HTMLResponse:
        return templates.TemplateResponse(request, name, {"me": current(request), "flash": request.session.pop(
            "flash", None), "csrf": request.session.get("csrf", ""), **ctx}, status_code=status_code)

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired):
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException):
        return page(request, "error.html", status_code=exc.status_code, message=exc.detail, code=exc.status_code)

    @app.get("/login", response_class=HTMLResponse)
    async def login_form(request: Request, next: str = "/"):
        return page(request, "login.html", next=next if next.startswith("/") else "/", error=None)

    @app.post("/login")
    async def login(request: Request, user: str = Form(...), password: str = Form(...), next: str = Form("/")):
        from models.users import UserError, authenticate
        try:
            actor = authenticate(user, password)
        except UserError as e:
            return page(request, "login.html", status_code=401, next=next, error=str(e))
        request.session.clear()
        request.session.update(user=actor.user, at=time.time(), csrf=secrets.token_urlsafe(32))
        return RedirectResponse(next if next.startswith("/") and not next.startswith("//") else "/", status_code=303)

    @app.post("/logout")
    async def logout(request: Request, csrf: str = Form("")):
        check_csrf(request, csrf)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    # ------------------------------------------------------------------ lists

    def _filters(request: Request) -> dict[str, Any]:
        q = request.query_params
        return {k: q.get(k) for k in ("clause", "enterprise", "year") if q.get(k)}

    @app.get("/", response_class=HTMLResponse)
    async def home(request: Request):
        me = need(request)
        f = _filters(request)
        if me.role in ("reviewer", "finance"):
            return page(request, "inbox.html", rows=queries.inbox(me.bureau, f), title="待我审核", filters=f)
        if me.role == "operator":
            return page(request, "inbox.html", rows=queries.of_operator(me.user, f), title="我的申请", filters=f)
        return page(request, "inbox.html", rows=queries.everything(f), title="全部申请", filters=f)

    # ------------------------------------------------------------------ one application

    @app.get("/applications/{app_id}", response_class=HTMLResponse)
    async def application(request: Request, app_id: str):
        me = need(request)
        from models.audit import audit_record
        rec = audit_record(app_id)
        if rec is None:
            raise HTTPException(404, "没有这个申请")
        claim = rec.get("claim") or {}
        if me.role == "operator" and claim.get("operator") != me.user:
            raise HTTPException(403, "只能查看本人提交的申请")
        live = None
        try:
            from workflows.client import status
            live = await status(await client(), app_id)
        except Exception:  # noqa: BLE001 - Temporal unreachable or history deleted: the database's record
            live = None
        prov = queries.provisional(app_id)
        required = ((rec.get("pinned") or {}).get("clause") or {}).get("required_bureaus", [])
        return page(request, "application.html", rec=rec, live=live, claim=claim, provisional=prov,
                    required=required, app_id=app_id, actions=_actions(me, live, claim, required), message=None)

    def _actions(me: Actor, live: Optional[dict], claim: dict, required: list[str]) -> set[str]:
        """What the page offers this user; the workflow's validators decide again."""
        if not live:
            return set()
        st, out = live.get("status"), set()
        decided = {d.get("bureau") for d in live.get("decisions", []) if d.get("kind") in ("approve", "reject")}
        if me.role in ("reviewer", "finance") and me.bureau in required and st in ("review", "info_requested") \
                and me.bureau not in decided and live.get("programme_year", 1) == 1:
            out |= {"approve", "reject"} | ({"request_info"} if st == "review" else set())
        if me.role == "operator" and claim.get("operator") == me.user:
            if st == "info_requested":
                out.add("provide_info")
            if st == "awaiting_evidence":
                out.add("evidence")
            if st not in ("completed", "rejected", "refused", "blacklisted", "withdrawn", "revoked"):
                out.add("withdraw")
        if me.role in ("finance", "reviewer") and me.bureau and me.bureau.endswith("财政局") and me.bureau in required:
            if st == "confirming":
                out.add("confirm_year")
            if st not in ("completed", "rejected", "refused", "blacklisted", "withdrawn", "revoked"):
                out.add("revoke")
        if st == "attention" and (me.role == "ops" or (me.bureau or "").endswith("财政局")
                                  or claim.get("operator") == me.user):
            out.add("resume")
        return out

    @app.post("/applications/{app_id}/{action}")
    async def act(request: Request, app_id: str, action: str):
        form = await request.form()
        check_csrf(request, str(form.get("csrf", "")))
        me = need(request)
        from workflows import client as wc
        c = await client()
        comment = str(form.get("comment", ""))
        try:
            if action in ("approve", "reject", "request_info"):
                if me.role not in ("reviewer", "finance"):
                    raise HTTPException(403, "只有审核人可以作出审核决定")
                kw = {}
                if action == "approve" and str(form.get("amount", "")).strip():
                    kw = {"amount": str(form.get("amount")).strip(), "reason": str(form.get("reason", ""))}
                fn = {"approve": wc.approve, "reject": wc.reject, "request_info": wc.request_info}[action]
                await fn(c, app_id, reviewer=me.user, comment=comment, actor=me, **kw)
            elif action in ("provide_info", "evidence"):
                need(request, "operator")
                facts = _json_field(form.get("facts"))
                fn = wc.provide_info if action == "provide_info" else wc.submit_evidence
                await fn(c, app_id, {"facts": facts, "comment": comment}, operator=me.user, actor=me)
            elif action == "withdraw":
                need(request, "operator")
                await wc.withdraw(c, app_id, operator=me.user, comment=comment, actor=me)
            elif action == "confirm_year":
                await wc.confirm_year(c, app_id, reviewer=me.user, comment=comment, actor=me)
            elif action == "revoke":
                await wc.revoke(c, app_id, reviewer=me.user, reason=str(form.get("reason", "")), actor=me)
            elif action == "resume":
                await wc.resume(c, app_id, who=me.user, comment=comment, actor=me)
            else:
                raise HTTPException(404, "unknown action")
        except HTTPException:
            raise
        except Exception as e:  # noqa: BLE001 - the workflow's refusal, shown on the page
            from cli.errors import describe
            return await _flash(request, app_id, f"未能完成：{describe(e)[0]}", 409)
        return await _flash(request, app_id, "已提交", 200, redirect=True)

    async def _flash(request: Request, app_id: str, message: str, code: int, redirect: bool = False):
        """After an action: back to the application page, with the outcome shown on it."""
        request.session["flash"] = message
        if redirect:
            return RedirectResponse(f"/applications/{app_id}", status_code=303)
        resp = await application(request, app_id)
        resp.status_code = code
        return resp

    # ------------------------------------------------------------------ submit

    @app.get("/submit", response_class=HTMLResponse)
    async def submit_form(request: Request):
        need(request, "operator")
        return page(request, "submit.html", error=None)

    @app.post("/submit")
    async def submit(request: Request, claim: UploadFile, csrf: str = Form("")):
        check_csrf(request, csrf)
        me = need(request, "operator")
        from cli.errors import describe
        from workflows import client as wc
        data = await claim.read(5 * 1024 * 1024 + 1)
        try:
            if len(data) > 5 * 1024 * 1024:
                raise ValueError("文件超过 5 MB")
            from cli.backend import application_input
            parsed = json.loads(data.decode("utf-8"))
            inp = application_input(parsed, source=claim.filename or "claim", operator=me.user)
            app_id = await wc.submit(await client(), inp, actor=me)
        except Exception as e:  # noqa: BLE001
            return page(request, "submit.html", status_code=400, error=describe(e)[0])
        request.session["flash"] = f"已提交 {app_id}"
        return RedirectResponse(f"/applications/{app_id}", status_code=303)

    # ------------------------------------------------------------------ finance

    @app.get("/book", response_class=HTMLResponse)
    async def award_book(request: Request):
        need(request, "finance", "ops")
        from models import book
        from models.registry import ledger_rows
        return page(request, "book.html", lines=book.lines(), ledger=ledger_rows())

    @app.get("/healthz")
    async def healthz():
        return Response("ok", media_type="text/plain")

    return app


def _json_field(value) -> dict:
    text = str(value or "").strip()
    if not text:
        return {}
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("facts must be a JSON object")
    return data

