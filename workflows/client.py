"""Client API the CLI (cli/backend.py) and tests use: connect, submit, updates, queries, listing."""
from __future__ import annotations

import asyncio
import hashlib
import json
from decimal import Decimal
from typing import Any, Optional

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.common import SearchAttributePair as P, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from models import search_attributes as sa
from models.application import (
    ApplicationInput, ApplicationRun, Decision, DecisionRecord, OperatorAction, Resumption, Revocation,
    YearConfirmation,
)
from models import credentials as creds
from models.clauses import check_application, clause_info
from workflows.application import ApplicationWorkflow

TASK_QUEUE = "disburse"
WORKFLOW_TYPES = ("Application", "ApplicationWorkflow")     # the current type, and the first version's


class DuplicateApplication(WorkflowAlreadyStartedError):
    """An application with this id (enterprise, clause, year) was already submitted."""

    def __init__(self, workflow_id: str, run_id: Optional[str] = None) -> None:
        super().__init__(workflow_id, "Application", run_id=run_id)
        self.workflow_id = workflow_id


class RequestRefused(ValueError):
    """The workflow refused an update (validator) or the worker refused a claim: the message says why."""


async def connect(address: Optional[str] = None, namespace: Optional[str] = None, *, runtime=None) -> Client:
    """A client with the project's data converter (workflows/codec.py: payloads encrypted when
    DISBURSE_PAYLOAD_KEYS is set); address, namespace, TLS, API key from the environment or profile
    (workflows/connection.py) unless given here."""
    from workflows.codec import data_converter
    from workflows.connection import connect_config
    config = connect_config(address, namespace)
    if runtime is not None:
        config["runtime"] = runtime
    return await Client.connect(**config, data_converter=data_converter())


def sign(user: str, application_id: str, action: str, *, actor: Optional[creds.Actor] = None) -> creds.Credential:
    """The service's credential for `user` doing `action` on the application. The console and the
    CLI authenticate the person first (session, token) and pass their actor; without one, the
    registry says who `user` is (models/users.py)."""
    if actor is None:
        from models.users import actor as registered
        actor = registered(user)
    return creds.signer().sign(actor, application_id=application_id, action=action)


async def submit(client: Client, inp: ApplicationInput, *, task_queue: str = TASK_QUEUE,
                 actor: Optional[creds.Actor] = None) -> str:
    """Start the application's workflow (id app-{enterprise}-{clause}-{year}) and wait until the
    worker has opened it: a claim the worker refuses raises RequestRefused, and its id stays free
    (a failed start may be submitted again; an application that was opened may not)."""
    check_application(inp)
    info = clause_info(inp.clause_id)
    wid = inp.application_id
    attrs = TypedSearchAttributes([
        P(sa.STATUS, "opening"), P(sa.CLAUSE_ID, inp.clause_id), P(sa.LEAD_BUREAU, info.lead_bureau),
        P(sa.ENTERPRISE_CODE, inp.enterprise_code), P(sa.AWARDED_FEN, 0), P(sa.OVERDUE, False),
        P(sa.BUREAU, list(info.bureaus)),
    ])
    try:
        handle = await client.start_workflow(
            ApplicationWorkflow.run,
            ApplicationRun(claim=inp, credential=sign(inp.operator, wid, "submit", actor=actor)), id=wid,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY, search_attributes=attrs,
            memo={"year": inp.year}, static_summary=_summary(inp), static_details=_details(inp, info))
    except WorkflowAlreadyStartedError as e:
        raise DuplicateApplication(wid, getattr(e, "run_id", None)) from None
    try:
        await handle.execute_update(ApplicationWorkflow.opened, id="opened")
    except (WorkflowUpdateFailedError, RPCError) as e:
        raise RequestRefused(await _start_failure(handle) or _message(e)) from None
    return wid


async def _start_failure(handle) -> Optional[str]:
    """Why the worker refused to open an application (the workflow failed), if it did."""
    from temporalio.client import WorkflowFailureError
    try:
        await asyncio.wait_for(handle.result(), 10)
    except WorkflowFailureError as e:
        cause = e.cause
        return getattr(cause, "message", None) or str(cause)
    except Exception:  # noqa: BLE001
        return None
    return None


def _summary(inp: ApplicationInput) -> str:
    """One line for the Web UI's workflow list (company names are not personal data)."""
    from calc import catalogue
    name_zh = catalogue().clause(inp.clause_id)[1].name_zh
    return f"{inp.enterprise_name or inp.enterprise_code} · {name_zh} · {inp.year}"


def _details(inp: ApplicationInput, info) -> str:
    lines = [f"**clause** {inp.clause_id}", f"**enterprise** {inp.enterprise_code}",
             f"**reviewed by** {'、'.join(info.required_bureaus)}", f"**operator** {inp.operator}"]
    if info.programme_years > 1:
        lines.append(f"**programme** up to {info.programme_years} years (evidence each year)")
    return "\n\n".join(lines)


def handle(client: Client, app_id: str):
    return client.get_workflow_handle(app_id)


def update_id(app_id: str, action: str, arg: Any, request_key: Optional[str] = None) -> str:
    """A stable id for one request: the same action by the same actor with the same content (or
    the same explicit request key) is the same update, so a retry after a lost reply returns the
    first result instead of being refused as a second decision."""
    payload = arg.model_dump(mode="json") if hasattr(arg, "model_dump") else arg
    actor = (payload or {}).get("reviewer") or (payload or {}).get("operator") or (payload or {}).get("who") or "-"
    key = request_key or hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False,
                                                   default=str).encode()).hexdigest()[:16]
    return f"{action}:{actor}:{key}"


def _message(e: BaseException) -> str:
    cause = getattr(e, "cause", None)
    return getattr(cause, "message", None) or str(cause or e)


async def _update(client: Client, app_id: str, method, arg, *, request_key: Optional[str] = None,
                  actor: Optional[creds.Actor] = None) -> DecisionRecord:
    """Send a signed request: the credential is made for the person the request names."""
    name = method.__name__
    who = getattr(arg, "reviewer", None) or getattr(arg, "operator", None) or getattr(arg, "who", None) or ""
    signed = arg.model_copy(update={"credential": sign(who, app_id, name, actor=actor)})
    return await _execute(client, app_id, method, signed, request_key=request_key, unsigned=arg)


async def _execute(client: Client, app_id: str, method, arg, *, request_key: Optional[str] = None, unsigned=None):
    h = handle(client, app_id)
    name = getattr(method, "__name__", str(method))
    try:
        # the update id is made from the request without its credential (which is new each time)
        return await h.execute_update(method, arg, id=update_id(app_id, name, unsigned or arg, request_key))
    except WorkflowUpdateFailedError as e:
        raise RequestRefused(_message(e)) from None
    except RPCError as e:
        closed = await _closed_status(client, app_id)
        if closed is None:
            raise
        raise RequestRefused(f"application {app_id} is closed ({closed})") from e


async def _closed_status(client: Client, app_id: str) -> Optional[str]:
    """The final status of a closed application, or None if it is still running / unknown."""
    try:
        desc = await client.get_workflow_handle(app_id).describe()
    except RPCError:
        return None
    if desc.status is None or desc.status == WorkflowExecutionStatus.RUNNING:
        return None
    try:
        return (await status(client, app_id))["status"]
    except Exception:  # noqa: BLE001
        return desc.status.name.lower()


async def status(client: Client, app_id: str) -> dict:
    return await handle(client, app_id).query("status", result_type=dict)


async def calculation(client: Client, app_id: str):
    from calc.model import CalcResult
    return await handle(client, app_id).query("calculation", result_type=CalcResult)


async def decisions(client: Client, app_id: str) -> list[DecisionRecord]:
    return await handle(client, app_id).query("decisions", result_type=list[DecisionRecord])


async def tranches(client: Client, app_id: str):
    return await handle(client, app_id).query("tranches", result_type=list)


async def approve(client: Client, app_id: str, *, reviewer: str, comment: str = "",
                  amount: Optional[Decimal] = None, reason: Optional[str] = None,
                  request_key: Optional[str] = None, actor: Optional[creds.Actor] = None) -> DecisionRecord:
    return await _update(client, app_id, ApplicationWorkflow.approve,
                         Decision(reviewer=reviewer, comment=comment or "",
                                  amount=str(amount) if amount is not None else None, reason=reason),
                         request_key=request_key, actor=actor)


async def reject(client: Client, app_id: str, *, reviewer: str, comment: str,
                 actor: Optional[creds.Actor] = None) -> DecisionRecord:
    return await _update(client, app_id, ApplicationWorkflow.reject, Decision(reviewer=reviewer, comment=comment),
                         actor=actor)


async def request_info(client: Client, app_id: str, *, reviewer: str, comment: str,
                       actor: Optional[creds.Actor] = None) -> DecisionRecord:
    return await _update(client, app_id, ApplicationWorkflow.request_info,
                         Decision(reviewer=reviewer, comment=comment), actor=actor)


async def provide_info(client: Client, app_id: str, data: dict, *, operator: str,
                       actor: Optional[creds.Actor] = None) -> DecisionRecord:
    facts, comment = _facts_of(data)
    return await _update(client, app_id, ApplicationWorkflow.provide_info,
                         OperatorAction(operator=operator, facts=facts, comment=comment), actor=actor)


async def submit_evidence(client: Client, app_id: str, data: dict, *, operator: str = "",
                          actor: Optional[creds.Actor] = None) -> DecisionRecord:
    facts, comment = _facts_of(data)
    return await _update(client, app_id, ApplicationWorkflow.submit_evidence,
                         OperatorAction(operator=operator or "", facts=facts, comment=comment), actor=actor)


async def confirm_year(client: Client, app_id: str, *, reviewer: str, comment: str = "",
                       actor: Optional[creds.Actor] = None) -> DecisionRecord:
    return await _update(client, app_id, ApplicationWorkflow.confirm_year,
                         YearConfirmation(reviewer=reviewer, comment=comment), actor=actor)


async def withdraw(client: Client, app_id: str, *, operator: str, comment: str = "",
                   actor: Optional[creds.Actor] = None) -> DecisionRecord:
    return await _update(client, app_id, ApplicationWorkflow.withdraw,
                         OperatorAction(operator=operator, comment=comment), actor=actor)


async def revoke(client: Client, app_id: str, *, reviewer: str, reason: str,
                 actor: Optional[creds.Actor] = None) -> DecisionRecord:
    return await _update(client, app_id, ApplicationWorkflow.revoke, Revocation(reviewer=reviewer, reason=reason),
                         actor=actor)


async def resume(client: Client, app_id: str, *, who: str, comment: str = "",
                 actor: Optional[creds.Actor] = None) -> DecisionRecord:
    """Resume an application waiting in `attention` once its cause is fixed."""
    return await _update(client, app_id, ApplicationWorkflow.resume, Resumption(who=who, comment=comment),
                         actor=actor)


async def object_to(client: Client, app_id: str, *, who: str, objector_name: str, objector_contact: str,
                    reason: str, actor: Optional[creds.Actor] = None):
    """Record a written, real-name objection within the 公示 period, on the objector's behalf
    (`who` is the staff member recording it: models/publicity.py)."""
    from models.publicity import Objection
    return await _update(client, app_id, ApplicationWorkflow.object,
                         Objection(who=who, objector_name=objector_name, objector_contact=objector_contact,
                                   reason=reason), actor=actor)


async def rule_objection(client: Client, app_id: str, *, reviewer: str, objection: int, reason: str, uphold: bool,
                         actor: Optional[creds.Actor] = None):
    """The lead bureau's decision on an objection: uphold (the application ends rejected) or dismiss."""
    from models.publicity import ObjectionRuling
    method = ApplicationWorkflow.uphold_objection if uphold else ApplicationWorkflow.dismiss_objection
    return await _update(client, app_id, method, ObjectionRuling(reviewer=reviewer, objection=objection, reason=reason),
                         actor=actor)


def _facts_of(data: dict) -> tuple[dict, str]:
    """A JSON file may hold the facts themselves or {"facts": {...}, "comment": "..."}."""
    data = dict(data or {})
    if isinstance(data.get("facts"), dict):
        return _jsonable(data["facts"]), str(data.get("comment") or data.get("note") or "")
    return _jsonable(data), ""


def _jsonable(v: Any) -> Any:
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


async def list_applications(client: Client, query: str = "", limit: int = 100) -> list[dict]:
    """Applications from the visibility API: {id, clause, enterprise, year, status, amount, bureaus}."""
    types = ", ".join(f'"{t}"' for t in WORKFLOW_TYPES)
    q = f"WorkflowType IN ({types})" + (f" AND ({query})" if query else "")
    out: list[dict] = []
    async for wf in client.list_workflows(q, limit=limit):
        attrs = wf.typed_search_attributes
        year: Any = None
        try:
            memo = await wf.memo()
            year = memo.get("year")
        except Exception:  # noqa: BLE001
            pass
        if year is None:
            tail = wf.id.rsplit("-", 1)[-1]
            year = int(tail) if tail.isdigit() else None
        fen = attrs.get(sa.AWARDED_FEN)
        amount = Decimal(fen) / 100 if fen is not None else attrs.get(sa.AWARDED_AMOUNT)
        out.append({
            "id": wf.id, "clause": attrs.get(sa.CLAUSE_ID), "enterprise": attrs.get(sa.ENTERPRISE_CODE),
            "year": year, "status": attrs.get(sa.STATUS) or (wf.status.name.lower() if wf.status else None),
            "amount": f"{Decimal(str(amount)):.2f}" if amount is not None else None,
            "bureaus": list(attrs.get(sa.BUREAU) or ([attrs.get(sa.LEAD_BUREAU)] if attrs.get(sa.LEAD_BUREAU) else [])),
        })
        if len(out) >= limit:
            break
    return out
