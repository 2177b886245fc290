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


async def submit(client: Client, inp: ApplicationInput, *, task_queue: str = TASK_QUEUE) -> str:
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
            ApplicationWorkflow.run, ApplicationRun(claim=inp), id=wid, task_queue=task_queue,
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


async def _update(client: Client, app_id: str, method, arg, *, request_key: Optional[str] = None) -> DecisionRecord:
    try:
        return await _execute(client, app_id, method, arg, request_key=request_key)
    except RequestRefused as e:
        # a reviewer registered after the application opened: the worker reloads its registry
        # from its own database (the caller sends nothing), then the decision is tried once more
        if not (getattr(arg, "reviewer", None) and "is not registered" in str(e)):
            raise
        await _execute(client, app_id, ApplicationWorkflow.refresh_reviewers, None)
        return await _execute(client, app_id, method, arg, request_key=request_key)


async def _execute(client: Client, app_id: str, method, arg, *, request_key: Optional[str] = None):
    h = handle(client, app_id)
    name = getattr(method, "__name__", str(method))
    try:
        if arg is None:          # (a reload: every call is a new request)
            import uuid
            return await h.execute_update(method, id=f"{name}:{uuid.uuid4()}")
        return await h.execute_update(method, arg, id=update_id(app_id, name, arg, request_key))
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
                  request_key: Optional[str] = None) -> DecisionRecord:
    return await _update(client, app_id, ApplicationWorkflow.approve,
                         Decision(reviewer=reviewer, comment=comment or "",
                                  amount=str(amount) if amount is not None else None, reason=reason),
                         request_key=request_key)


async def reject(client: Client, app_id: str, *, reviewer: str, comment: str) -> DecisionRecord:
    return await _update(client, app_id, ApplicationWorkflow.reject, Decision(reviewer=reviewer, comment=comment))


async def request_info(client: Client, app_id: str, *, reviewer: str, comment: str) -> DecisionRecord:
    return await _update(client, app_id, ApplicationWorkflow.request_info,
                         Decision(reviewer=reviewer, comment=comment))


async def provide_info(client: Client, app_id: str, data: dict, *, operator: str) -> DecisionRecord:
    facts, comment = _facts_of(data)
    return await _update(client, app_id, ApplicationWorkflow.provide_info,
                         OperatorAction(operator=operator, facts=facts, comment=comment))


async def submit_evidence(client: Client, app_id: str, data: dict, *, operator: str = "") -> DecisionRecord:
    facts, comment = _facts_of(data)
    return await _update(client, app_id, ApplicationWorkflow.submit_evidence,
                         OperatorAction(operator=operator or "", facts=facts, comment=comment))


async def confirm_year(client: Client, app_id: str, *, reviewer: str, comment: str = "") -> DecisionRecord:
    return await _update(client, app_id, ApplicationWorkflow.confirm_year,
                         YearConfirmation(reviewer=reviewer, comment=comment))


async def withdraw(client: Client, app_id: str, *, operator: str, comment: str = "") -> DecisionRecord:
    return await _update(client, app_id, ApplicationWorkflow.withdraw,
                         OperatorAction(operator=operator, comment=comment))


async def revoke(client: Client, app_id: str, *, reviewer: str, reason: str) -> DecisionRecord:
    return await _update(client, app_id, ApplicationWorkflow.revoke, Revocation(reviewer=reviewer, reason=reason))


async def resume(client: Client, app_id: str, *, who: str, comment: str = "") -> DecisionRecord:
    """Resume an application waiting in `attention` once its cause is fixed."""
    return await _update(client, app_id, ApplicationWorkflow.resume, Resumption(who=who, comment=comment))


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
