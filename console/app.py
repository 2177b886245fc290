"""The web console: FastAPI + Jinja2 templates, server-rendered, in Chinese.

    reviewer  收件箱 (applications waiting for their bureau, overdue first), the application page
              (facts, provisional amount and trace with the cited sentences, decisions, documents),
              approve (optionally lowering, with a reason) / reject / request information
    operator  my applications, submit one (a JSON claim) or a batch (CSV / xlsx, /batch), 免申即享 (/apply-free:
              preview, confirm), answer information requests, programme-
              year evidence, withdraw
    finance   confirm programme years, revoke; the award book and the ledger
    ops       every application; resume one waiting in `attention`

Sessions: a signed cookie (itsdangerous via Starlette's SessionMiddleware, SameSite=strict,
HttpOnly) holding the user id, the login time and a CSRF token that every form posts back.
Passwords are checked by models/users.py (argon2, lock-out). Every action is sent to Temporal with
a credential the console's signing service makes for the logged-in user (models/credentials.py);
the workflow verifies it. Each application page links to its workflow in the Temporal Web UI.

Documents: the submit form, the answer to an information request and a programme year's evidence
take files (`documents`, several at once); each is stored under its SHA-256 by documents/ (type from
the bytes, size limit) BEFORE the claim or the update goes to the workflow, and recorded against the
application (documents.attach) once the workflow has accepted it. The application page lists them;
/applications/{id}/documents/{sha256} serves one of them to whoever may see the application.

Codec endpoint for the Temporal Web UI and CLI (POST /codec/decode, /codec/encode; workflows/codec.py):
ops and finance only, by session cookie (the Web UI with "include cross-origin credentials", on the
same site as the console: the cookie is SameSite=strict) or by a CLI token (`Authorization: Bearer`);
CORS for DISBURSE_WEB_UI_ORIGIN (default http://localhost:8233; several separated by commas).
"""
from __future__ import annotations

import hmac
import json
import os
import secrets
import time
import unicodedata
from decimal import Decimal
from pathlib import Path
from typing import Any, Optional
from urllib.parse import quote

from fastapi import FastAPI, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from console import queries
from models.credentials import Actor

HERE = Path(__file__).resolve().parent
SESSION_MAX_AGE = 8 * 3600
STATUS_ZH = {
    "opening": "受理中", "review": "审核中", "info_requested": "待补充材料", "credit_check": "信用核查",
    "calculating": "核算中", "awaiting_budget": "待预算", "publicity": "公示中", "payout": "拨付中",
    "awaiting_evidence": "待提交年度材料", "confirming": "待财政确认",
    "attention": "需人工处理", "completed": "已完成", "rejected": "未通过", "refused": "不予支持",
    "blacklisted": "严重失信", "withdrawn": "已撤回", "revoked": "已撤销",
}
ROLE_ZH = {"operator": "经办人", "reviewer": "审核人", "finance": "财政", "ops": "运维"}
PURPOSE_ZH = {"submission": "申报材料", "information": "补充材料", "evidence": "年度材料"}
MAX_FILES = 20                          # per form
CODEC_ROLES = ("ops", "finance")
CODEC_ALLOW_HEADERS = "Authorization, Content-Type, X-Namespace"


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


def web_ui_origins() -> set[str]:
    """The origins allowed to call the codec endpoint from a browser (DISBURSE_WEB_UI_ORIGIN)."""
    raw = os.environ.get("DISBURSE_WEB_UI_ORIGIN", "http://localhost:8233")
    return {o.strip().rstrip("/") for o in raw.split(",") if o.strip()}


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name and the UTF-8 name (RFC 6266 / 5987); the name is
    already sanitised (documents.sanitize_filename): no path, no control characters."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;%' else "_"
                       for c in unicodedata.normalize("NFC", filename)) or "document"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def document_limit() -> str:
    from documents import SettingsError, max_bytes
    try:
        n = max_bytes()
    except SettingsError:
        return ""
    return f"{n / 1024 / 1024:.0f} MB" if n >= 1024 * 1024 else f"{n} 字节"


class LoginRequired(Exception):
    pass


class DocumentRefused(ValueError):
    """An uploaded file the store refused (type, size, name), or too many: one line for the page."""


def create_app(*, temporal_client=None) -> FastAPI:
    app = FastAPI(title="disburse console", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(SessionMiddleware, secret_key=_secret(), session_cookie="disburse_session",
                       max_age=SESSION_MAX_AGE, same_site="strict",
                       https_only=os.environ.get("DISBURSE_CONSOLE_HTTPS_ONLY", "") == "1")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.globals.update(status_zh=STATUS_ZH, role_zh=ROLE_ZH, temporal_ui=temporal_ui,
                                 purpose_zh=PURPOSE_ZH, document_limit=document_limit)
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
        may_see(me, rec)
        live = None
        try:
            from workflows.client import status
            live = await status(await client(), app_id)
        except Exception:  # noqa: BLE001 - Temporal unreachable or history deleted: the database's record
            live = None
        # the provisional calculation the workflow made (at submission, after provide-info); applications
        # opened before it did: computed here from the claim as submitted
        prov = _provisional_of(live) or queries.provisional(app_id)
        facts = ((live or {}).get("provisional") or {}).get("facts") or claim.get("facts") or {}
        pinned = rec.get("pinned") or {}
        required = (pinned.get("clause") or {}).get("required_bureaus", [])
        lead = (pinned.get("clause") or {}).get("lead_bureau")
        return page(request, "application.html", rec=rec, live=live, claim=claim, provisional=prov, facts=facts,
                    required=required, app_id=app_id, actions=_actions(me, live, claim, required, lead), message=None)

    def _provisional_of(live: Optional[dict]) -> Optional[dict]:
        """The workflow's provisional calculation in the page's shape (refusal as code and reason)."""
        p = (live or {}).get("provisional")
        if not p:
            return None
        out = {"amount": p.get("amount"), "trace": p.get("trace") or [], "error": p.get("error")}
        if p.get("refusal"):
            code, _, reason = str(p["refusal"]).partition(": ")
            out["refusal"] = {"code": code, "reason": reason}
        return out

    def may_see(me: Actor, rec: dict) -> None:
        """Who may see an application (its page and its documents): its own operator, reviewers and
        finance of a bureau that reviews it, ops. HTTPException 403 otherwise."""
        claim = rec.get("claim") or {}
        required = ((rec.get("pinned") or {}).get("clause") or {}).get("required_bureaus", [])
        if me.role == "operator" and claim.get("operator") != me.user:
            raise HTTPException(403, "只能查看本人提交的申请")
        if me.role in ("reviewer", "finance") and me.bureau not in required:
            raise HTTPException(403, "本单位不审核这个申请")

    # ------------------------------------------------------------------ documents

    def uploads(form) -> list:
        """The files posted as `documents` (a browser sends one empty part when none is chosen)."""
        files = [f for f in form.getlist("documents") if hasattr(f, "read") and (f.filename or f.size)]
        if len(files) > MAX_FILES:
            raise DocumentRefused(f"一次最多上传 {MAX_FILES} 个文件")
        return files

    def stage(files: list) -> list:
        """Store each file (documents.put: size limit, type from the bytes, name sanitised) before
        anything is sent to the workflow; the first refusal is the answer, naming the file. Bytes
        stored for a request that is then refused stay in the store attached to nothing: they are
        never served (only attached files are) and take no second copy if sent again."""
        import documents
        for f in files:
            name = documents.sanitize_filename(f.filename)
            try:
                f.file.seek(0)
                documents.put(f.file, filename=name, declared_type=f.content_type or "")
            except documents.DocumentError as e:
                raise DocumentRefused(f"材料“{name}”未被接受：{e}") from None
        return files

    def record(app_id: str, files: list, *, purpose: str, year: int, who: str) -> Optional[str]:
        """Attach the staged files to the application, after the workflow accepted the request.
        The bytes are already stored, so only the database can fail here: then the files are named
        in the answer (the request itself stands) and may be attached again."""
        import documents
        failed = []
        for f in files:
            try:
                f.file.seek(0)
                documents.attach(app_id, f.file, filename=f.filename or "", purpose=purpose, year=year,
                                 uploaded_by=who, declared_type=f.content_type or "")
            except Exception:  # noqa: BLE001 - reported on the page, the request already accepted
                failed.append(documents.sanitize_filename(f.filename))
        return f"但以下材料未能登记，请重新上传：{'、'.join(failed)}" if failed else None

    @app.get("/applications/{app_id}/documents/{sha256}")
    async def document(request: Request, app_id: str, sha256: str):
        me = need(request)
        from models.audit import audit_record
        rec = audit_record(app_id)
        if rec is None:
            raise HTTPException(404, "没有这个申请")
        may_see(me, rec)
        doc = next((d for d in rec.get("documents") or [] if d.get("sha256") == sha256), None)
        if doc is None:                      # never a file just because it is in the store
            raise HTTPException(404, "这个申请没有该材料")
        import documents
        try:
            data = documents.get(sha256)     # its SHA-256 checked
        except documents.DocumentNotFound:
            raise HTTPException(404, "材料已登记，但存储中找不到该文件") from None
        except documents.DocumentCorrupt:
            raise HTTPException(500, "存储中的文件已损坏或被改动，拒绝提供") from None
        return Response(data, media_type=doc["media_type"], headers={
            "Content-Disposition": content_disposition(doc["filename"]), "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store", "Content-Security-Policy": "default-src 'none'; sandbox"})

    def _actions(me: Actor, live: Optional[dict], claim: dict, required: list[str],
                 lead: Optional[str] = None) -> set[str]:
        """What the page offers this user; the workflow's validators decide again."""
        if not live:
            return set()
        st, out = live.get("status"), set()
        if st == "publicity" and live.get("publicity"):
            # 公示: staff record a written objection for the objector; the lead bureau decides it
            if claim.get("operator") != me.user:
                out.add("object")
            if me.role in ("reviewer", "finance") and lead and me.bureau == lead \
                    and any(o.get("state") == "open" for o in live["publicity"].get("objections") or []):
                out.add("rule_objection")
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
                from models.audit import audit_record
                rec = audit_record(app_id) or {}
                if (rec.get("claim") or {}).get("operator") != me.user:
                    raise HTTPException(403, "只有本申请的经办人可以提交材料")
                facts = _json_field(form.get("facts"))
                files = uploads(form)
                year = 0
                if files:
                    live = await wc.status(c, app_id)
                    # information: the year under review; evidence: the programme year it is for
                    year = int(live.get("year") or 0) + (1 if action == "evidence" else 0)
                    stage(files)             # refused files: nothing is sent to the workflow
                fn = wc.provide_info if action == "provide_info" else wc.submit_evidence
                await fn(c, app_id, {"facts": facts, "comment": comment}, operator=me.user, actor=me)
                if files:
                    warning = record(app_id, files, purpose="information" if action == "provide_info" else "evidence",
                                     year=year, who=me.user)
                    if warning:
                        return await _flash(request, app_id, f"已提交，{warning}", 200, redirect=True)
            elif action == "withdraw":
                need(request, "operator")
                await wc.withdraw(c, app_id, operator=me.user, comment=comment, actor=me)
            elif action == "confirm_year":
                await wc.confirm_year(c, app_id, reviewer=me.user, comment=comment, actor=me)
            elif action == "revoke":
                await wc.revoke(c, app_id, reviewer=me.user, reason=str(form.get("reason", "")), actor=me)
            elif action == "resume":
                await wc.resume(c, app_id, who=me.user, comment=comment, actor=me)
            elif action == "object":
                await wc.object_to(c, app_id, who=me.user, objector_name=str(form.get("objector_name", "")),
                                   objector_contact=str(form.get("objector_contact", "")),
                                   reason=str(form.get("reason", "")), actor=me)
            elif action in ("uphold_objection", "dismiss_objection"):
                number = str(form.get("objection", "")).strip()
                if not (number.isascii() and number.isdigit()):
                    raise ValueError("异议编号须为数字")
                await wc.rule_objection(c, app_id, reviewer=me.user, objection=int(number),
                                        reason=str(form.get("reason", "")), uphold=action == "uphold_objection",
                                        actor=me)
            else:
                raise HTTPException(404, "unknown action")
        except HTTPException:
            raise
        except DocumentRefused as e:
            return await _flash(request, app_id, f"未能完成：{e}", 400)
        except Exception as e:  # noqa: BLE001 - the workflow's refusal, shown on the page
            from cli.errors import describe
            return await _flash(request, app_id, f"未能完成：{describe(e)[0]}", 409)
        return await _flash(request, app_id, "已提交", 200, redirect=True)

    async def _flash(request: Request, app_id: str, message: str, code: int, redirect: bool = False):
        """After an action: back to the application page, with the outcome shown on it."""
        request.session["flash"] = message
        if redirect:
            return RedirectResponse(f"/applications/{app_id}", status_code=303)
        try:
            resp = await application(request, app_id)
        except HTTPException:                # e.g. a reviewer of another bureau: the outcome, no page
            request.session.pop("flash", None)
            return page(request, "error.html", status_code=code, message=message, code=code)
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
            files = stage(uploads(await request.form()))      # before the workflow is started
            app_id = await wc.submit(await client(), inp, actor=me)
        except DocumentRefused as e:
            return page(request, "submit.html", status_code=400, error=str(e))
        except Exception as e:  # noqa: BLE001
            return page(request, "submit.html", status_code=400, error=describe(e)[0])
        # recorded only once the workflow has opened the application (a duplicate or refused claim
        # attaches nothing to an id that is not this operator's)
        warning = record(app_id, files, purpose="submission", year=inp.year, who=me.user)
        request.session["flash"] = f"已提交 {app_id}" + (f"，{warning}" if warning else "")
        return RedirectResponse(f"/applications/{app_id}", status_code=303)

    # ------------------------------------------------------------------ batches (cli/batch.py)

    @app.get("/batch", response_class=HTMLResponse)
    async def batch_form(request: Request):
        need(request, "operator")
        return page(request, "batch.html", problems=None, headline=None, outcomes=None)

    @app.post("/batch")
    async def batch_upload(request: Request, batch: UploadFile, csrf: str = Form("")):
        """Validate the whole file, then submit row by row and show each row's outcome and the
        application's status from the status mirror (stateless: the results are this answer;
        the operator's home page lists their applications as they progress)."""
        check_csrf(request, csrf)
        me = need(request, "operator")
        from cli import batch as batches
        from models.sheets import SheetRefused
        name = batch.filename or "batch"
        data = await batch.read(batches.MAX_FILE_BYTES + 1)
        try:
            rows = batches.read_batch(data, name, operator=me.user)
        except SheetRefused as e:
            return page(request, "batch.html", status_code=400, problems=e.lines(), headline=e.headline,
                        outcomes=None)
        outcomes = await batches.submit_rows(await client(), rows, actor=me)
        status = queries.statuses([o.application_id for o in outcomes])
        return page(request, "batch.html", problems=None, headline=batches.summary(outcomes), outcomes=outcomes,
                    status=status, file_name=name)

    # ------------------------------------------------------------------ 免申即享 (models/apply_free.py)

    def _clauses() -> list[tuple[str, str]]:
        from calc import catalogue
        return [(cid, c.name_zh) for cid, (_, c) in sorted(catalogue().clauses.items())]

    @app.get("/apply-free", response_class=HTMLResponse)
    async def apply_free_preview(request: Request, clause: str = "", year: str = ""):
        """The preview (read only): every enterprise of the registry with its provisional amount or
        why not; a confirmation form when some are eligible."""
        need(request, "operator")
        from models import apply_free as af
        ctx = {"clauses": _clauses(), "clause": clause, "year": year, "preview": None, "outcomes": None,
               "error": None}
        if clause or year:
            try:
                ctx["preview"] = af.preview(clause, year)
            except af.ApplyFreeError as e:
                return page(request, "apply_free.html", status_code=400, **{**ctx, "error": str(e)})
        return page(request, "apply_free.html", **ctx)

    @app.post("/apply-free")
    async def apply_free_start(request: Request, clause: str = Form(""), year: str = Form(""),
                               csrf: str = Form("")):
        """Confirmation: the preview is made again (the registry may have changed since it was
        shown) and one application per eligible enterprise started, signed as the operator."""
        check_csrf(request, csrf)
        me = need(request, "operator")
        from cli import batch as batches
        from models import apply_free as af
        try:
            p = af.preview(clause, year)
        except af.ApplyFreeError as e:
            return page(request, "apply_free.html", status_code=400, clauses=_clauses(), clause=clause, year=year,
                        preview=None, outcomes=None, error=str(e))
        rows = [batches.BatchRow(i, inp) for i, inp in enumerate(af.applications(p, me.user), start=1)]
        outcomes = await batches.submit_rows(await client(), rows, actor=me)
        n = {k: sum(1 for o in outcomes if o.outcome == k) for k in (batches.SUBMITTED, batches.ALREADY)}
        headline = (f"{p.clause_id} {p.year}：发起 {n[batches.SUBMITTED]} 个，此前已发起 {n[batches.ALREADY]} 个，"
                    f"其余 {len(outcomes) - sum(n.values())} 个")
        return page(request, "apply_free.html", clauses=_clauses(), clause=p.clause_id, year=str(p.year),
                    preview=af.preview(p.clause_id, p.year), outcomes=outcomes, headline=headline, error=None)

    # ------------------------------------------------------------------ codec endpoint

    def cors(request: Request, resp: Response) -> Response:
        origin = (request.headers.get("origin") or "").rstrip("/")
        if origin and origin in web_ui_origins():
            resp.headers["Access-Control-Allow-Origin"] = origin
            resp.headers["Access-Control-Allow-Credentials"] = "true"
        resp.headers["Vary"] = "Origin"
        return resp

    @app.options("/codec/{op}")
    async def codec_preflight(request: Request, op: str):
        if op not in ("decode", "encode"):
            return Response(status_code=404)
        resp = Response(status_code=204, headers={"Access-Control-Allow-Methods": "POST, OPTIONS",
                                                  "Access-Control-Allow-Headers": CODEC_ALLOW_HEADERS,
                                                  "Access-Control-Max-Age": "600"})
        return cors(request, resp)

    @app.post("/codec/{op}")
    async def codec(request: Request, op: str):
        """Temporal's codec server protocol (workflows/codec.py). JSON answers, never the HTML
        error page: the Web UI and `temporal --codec-endpoint` read them."""
        from workflows.codec import MAX_CODEC_BODY, CodecRequestError, PayloadKeyError, decode_json, encode_json

        def answer(code: int, message: str) -> Response:
            return cors(request, JSONResponse({"error": message}, status_code=code))
        if op not in ("decode", "encode"):
            return answer(404, "unknown codec operation")
        auth = request.headers.get("authorization") or ""
        if auth:
            from models.users import UserError, actor_for_token
            scheme, _, token = auth.partition(" ")
            try:
                if scheme.lower() != "bearer" or not token.strip():
                    raise UserError("expected Authorization: Bearer <CLI token>")
                me = actor_for_token(token)
            except UserError as e:
                return answer(401, str(e))
        else:
            me = current(request)
            if me is None:
                return answer(401, "log in to the console, or send a CLI token (Authorization: Bearer ...)")
        if me.role not in CODEC_ROLES:
            return answer(403, f"the codec endpoint is for {' and '.join(CODEC_ROLES)} users")
        if int(request.headers.get("content-length") or 0) > MAX_CODEC_BODY:
            return answer(413, f"request body too large (over {MAX_CODEC_BODY} bytes)")
        body = await request.body()
        try:
            out = (decode_json if op == "decode" else encode_json)(body)
        except CodecRequestError as e:
            return answer(400, str(e))
        except PayloadKeyError as e:
            return answer(503, str(e))
        return cors(request, Response(out, media_type="application/json"))

    # ------------------------------------------------------------------ finance

    @app.get("/book", response_class=HTMLResponse)
    async def award_book(request: Request):
        need(request, "finance", "ops")
        from models import book
        from models.registry import ledger_rows
        return page(request, "book.html", lines=book.lines(), ledger=ledger_rows())

    @app.get("/notifications", response_class=HTMLResponse)
    async def notifications(request: Request):
        """The notifications addressed to me (my id) or to my bureau, newest first."""
        me = need(request)
        from sqlmodel import select

        from models.db import session as db
        from models.tables import NotificationRow
        from notifications.dispatch import KINDS
        mine = []
        with db() as s:
            for n in s.exec(select(NotificationRow).order_by(NotificationRow.created_at.desc()).limit(2000)):
                to = set(n.recipients.split(";"))
                if me.user in to or (me.bureau and me.bureau in to):
                    mine.append({"when": n.created_at, "kind": KINDS.get(n.kind, (n.kind,))[0],
                                 "application_id": n.application_id, "message": n.message})
        return page(request, "notifications.html", rows=mine[:200])

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

