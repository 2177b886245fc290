"""Client API the CLI (cli/backend.py) and tests use: connect, submit, updates, queries, listing."""
from __future__ import annotations

from decimal import Decimal
from typing import Any, Optional

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.common import SearchAttributePair as P, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import WorkflowAlreadyStartedError

from models import search_attributes as sa
from models.application import (
    ApplicationInput, Decision, DecisionRecord, OperatorAction, ReviewerRegistry, Revocation, WorkflowInput,
    YearConfirmation,
    workflow_id_for,
)
from models.clauses import check_application, clause_info
from workflows.application import ApplicationWorkflow

TASK_QUEUE = "disburse"


class DuplicateApplication(WorkflowAlreadyStartedError):
    """An application with this id (enterprise, clause, year) was already submitted."""

    def __init__(self, workflow_id: str, run_id: Optional[str] = None) -> None:
        super().__init__(workflow_id, "ApplicationWorkflow", run_id=run_id)
        self.workflow_id = workflow_id


class RequestRefused(ValueError):
    """The workflow refused an update (validator): the message says why."""


async def connect(address: str = "localhost:7233", namespace: str = "default") -> Client:
    return await Client.connect(address, namespace=namespace, data_converter=pydantic_data_converter)


def workflow_input(inp: ApplicationInput, *, reviewers: Optional[dict[str, str]] = None,
                   search_attributes: bool = True) -> WorkflowInput:
    if reviewers is None:
        from models.registry import reviewer_snapshot
        reviewers = reviewer_snapshot()
    return WorkflowInput(application=inp, clause=clause_info(inp.clause_id), reviewers=reviewers,
                         search_attributes=search_attributes)


async def submit(client: Client, inp: ApplicationInput, *, reviewers: Optional[dict[str, str]] = None,
                 search_attributes: bool = True, task_queue: str = TASK_QUEUE) -> str:
    """Start the application's workflow; its id is app-{enterprise}-{clause}-{year}."""
    check_application(inp)
    winp = workflow_input(inp, reviewers=reviewers, search_attributes=search_attributes)
    wid = inp.application_id or workflow_id_for(inp.enterprise_code, inp.clause_id, inp.year)
    attrs = None
    if search_attributes:
        attrs = TypedSearchAttributes([
            P(sa.STATUS, "review"), P(sa.CLAUSE_ID, inp.clause_id),
            P(sa.LEAD_BUREAU, winp.clause.lead_bureau), P(sa.ENTERPRISE_CODE, inp.enterprise_code),
            P(sa.AWARDED_AMOUNT, 0.0), P(sa.OVERDUE, False), P(sa.BUREAU, list(winp.clause.bureaus)),
        ])
    try:
        await client.start_workflow(
            ApplicationWorkflow.run, winp, id=wid, task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE, search_attributes=attrs,
            memo={"year": inp.year, "enterprise_name": inp.enterprise_name},
            static_summary=_summary(inp, winp), static_details=_details(inp, winp))
    except WorkflowAlreadyStartedError as e:
        raise DuplicateApplication(wid, getattr(e, "run_id", None)) from None
    return wid


def _summary(inp: ApplicationInput, winp: WorkflowInput) -> str:
    """One line for the Web UI's workflow list (company names are not personal data)."""
    from calc import catalogue
    name_zh = catalogue().clause(inp.clause_id)[1].name_zh
    return f"{inp.enterprise_name or inp.enterprise_code} · {name_zh} · {inp.year}"


def _details(inp: ApplicationInput, winp: WorkflowInput) -> str:
    lines = [f"**clause** {inp.clause_id}", f"**enterprise** {inp.enterprise_code}",
             f"**reviewed by** {'、'.join(winp.clause.required_bureaus)}", f"**operator** {inp.operator}"]
    if winp.clause.programme_years > 1:
        lines.append(f"**programme** up to {winp.clause.programme_years} years (evidence each year)")
    return "\n\n".join(lines)


def handle(client: Client, app_id: str):
    return client.get_workflow_handle_for(ApplicationWorkflow.run, app_id)


async def _update(client: Client, app_id: str, method, arg) -> DecisionRecord:
    try:
        return await _execute(client, app_id, method, arg)
    except RequestRefused as e:
        # a reviewer registered after the application was submitted: send the registry, retry once
        who = getattr(arg, "reviewer", None)
        if not (who and "is not registered" in str(e)):
            raise
        from models.registry import reviewer_snapshot
        registry = reviewer_snapshot()
        if who not in registry:
            raise
        await _execute(client, app_id, ApplicationWorkflow.refresh_reviewers, ReviewerRegistry(reviewers=registry))
        return await _execute(client, app_id, method, arg)


async def _execute(client: Client, app_id: str, method, arg):
    try:
        return await handle(client, app_id).execute_update(method, arg)
    except WorkflowUpdateFailedError as e:
        cause = e.cause
        msg = getattr(cause, "message", None) or str(cause or e)
        raise RequestRefused(msg) from None
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
    return await handle(client, app_id).query(ApplicationWorkflow.get_status)


async def calculation(client: Client, app_id: str):
    return await handle(client, app_id).query(ApplicationWorkflow.calculation)


async def decisions(client: Client, app_id: str) -> list[DecisionRecord]:
    return await handle(client, app_id).query(ApplicationWorkflow.decisions_so_far)


async def tranches(client: Client, app_id: str):
    return await handle(client, app_id).query(ApplicationWorkflow.tranche_states)


async def approve(client: Client, app_id: str, *, reviewer: str, comment: str = "",
                  amount: Optional[Decimal] = None, reason: Optional[str] = None) -> DecisionRecord:
    return await _update(client, app_id, ApplicationWorkflow.approve,
                         Decision(reviewer=reviewer, comment=comment or "",
                                  amount=Decimal(str(amount)) if amount is not None else None, reason=reason))


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
    q = 'WorkflowType = "ApplicationWorkflow"' + (f" AND ({query})" if query else "")
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
        amount = attrs.get(sa.AWARDED_AMOUNT)
        out.append({
            "id": wf.id, "clause": attrs.get(sa.CLAUSE_ID), "enterprise": attrs.get(sa.ENTERPRISE_CODE),
            "year": year, "status": attrs.get(sa.STATUS) or (wf.status.name.lower() if wf.status else None),
            "amount": f"{Decimal(str(amount)):.2f}" if amount is not None else None,
            "bureaus": list(attrs.get(sa.BUREAU) or ([attrs.get(sa.LEAD_BUREAU)] if attrs.get(sa.LEAD_BUREAU) else [])),
        })
        if len(out) >= limit:
            break
    return out
