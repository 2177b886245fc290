"""Client API the CLI (cli/backend.py) and tests use: connect, submit, updates, queries, listing.

Light to import: the SDK's high-level client (temporalio.client, ~0.15 s of imports on its own) is
imported by the calls that use it, so `quick_status` — what `disburse status` runs — needs only
the service layer (temporalio.service)."""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable, Optional

from temporalio.service import RPCError, RPCStatusCode
from temporalio.common import SearchAttributePair as P, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from models import search_attributes as sa

if TYPE_CHECKING:
    from temporalio.client import Client

    from models import credentials as creds
    from models.application import ApplicationInput
    from models.payloads import DecisionRecord

# The client side never imports the workflow (workflows/application.py, and with it the activities,
# the database, the calculation core): it names the workflow type, its updates and queries by their
# registered names and sends the pydantic payloads. The worker registers them under these names
# (tests/test_cli_imports.py checks the names against the workflow class). The payload models
# (models/payloads.py), the credentials and the claim model are imported by the calls that send
# them: `disburse status` builds no pydantic model class at all.
WORKFLOW_TYPE = "Application"               # @workflow.defn(name="Application")
UPDATES = ("opened", "approve", "reject", "request_info", "provide_info", "submit_evidence", "confirm_year",
           "withdraw", "revoke", "resume", "retry_budget", "reject_for_budget", "clawback", "propose_amendment",
           "approve_amendment", "refuse_amendment", "object", "uphold_objection", "dismiss_objection")
QUERIES = ("status", "calculation", "decisions", "tranches")

TASK_QUEUE = "disburse"
WORKFLOW_TYPES = (WORKFLOW_TYPE, "ApplicationWorkflow")     # the current type, and the first version's


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
    from temporalio.client import Client

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
    from models import credentials as creds
    if actor is None:
        from models.users import actor as registered
        actor = registered(user)
    return creds.signer().sign(actor, application_id=application_id, action=action)


async def submit(client: Client, inp: ApplicationInput, *, task_queue: str = TASK_QUEUE,
                 actor: Optional[creds.Actor] = None) -> str:
    """Start the application's workflow (id app-{enterprise}-{clause}-{year}) and wait until the
    worker has opened it: a claim the worker refuses raises RequestRefused, and its id stays free
    (a failed start may be submitted again; an application that was opened may not)."""
    from temporalio.client import (
        WithStartWorkflowOperation, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError,
    )
    from temporalio.common import WorkflowIDConflictPolicy

    from models.application import ApplicationRun
    from models.clauses import check_application, clause_info
    check_application(inp)
    info = clause_info(inp.clause_id)
    wid = inp.application_id
    attrs = TypedSearchAttributes([
        P(sa.STATUS, "opening"), P(sa.CLAUSE_ID, inp.clause_id), P(sa.LEAD_BUREAU, info.lead_bureau),
        P(sa.ENTERPRISE_CODE, inp.enterprise_code), P(sa.AWARDED_FEN, 0), P(sa.OVERDUE, False),
        P(sa.BUREAU, list(info.bureaus)),
    ])
    # The start and the `opened` update in one request (update-with-start): the worker's first
    # workflow task has both. Sent one after the other, the update got a workflow task of its own
    # whenever a worker took the first before it arrived (bench/lifecycle.py: 5 in 100 under load).
    start = WithStartWorkflowOperation(
        WORKFLOW_TYPE, ApplicationRun(claim=inp, credential=sign(inp.operator, wid, "submit", actor=actor)), id=wid,
        task_queue=task_queue, id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY, search_attributes=attrs,
        memo={"year": inp.year}, static_summary=_summary(inp), static_details=_details(inp, info))
    # this submission's own update id: the server answers an update-with-start whose update id the
    # running workflow already took with that update's outcome, so a fixed id would let a second
    # submission of the same claim pass for the first (it must meet DuplicateApplication)
    opened = f"opened-{uuid.uuid4().hex}"
    try:
        await client.execute_update_with_start_workflow("opened", id=opened, start_workflow_operation=start,
                                                        result_type=dict)
        return wid
    except WorkflowAlreadyStartedError as e:
        await _refused_start(start)
        raise DuplicateApplication(wid, getattr(e, "run_id", None)) from None
    except WorkflowUpdateFailedError as e:
        raise RequestRefused(await _start_failure(await start.workflow_handle()) or _message(e)) from None
    except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError) as e:
        if isinstance(e, RPCError) and e.status == RPCStatusCode.ALREADY_EXISTS:   # as the test server says it
            await _refused_start(start)
            raise DuplicateApplication(wid, None) from None
        try:
            handle = await start.workflow_handle()
        except Exception:  # noqa: BLE001 - no start was answered: the error as it came (e.g. server unreachable)
            raise e from None
        await _opened(handle, opened, e)
        return wid


async def _refused_start(start) -> None:
    """Retrieve the error of a start the server refused: temporalio sets it on the operation's
    handle future too, and a future whose error nobody retrieved makes asyncio log "Future exception
    was never retrieved" when it goes (at interpreter exit, in a CI log). The future is already set
    by then; the timeout only makes sure this cannot hang, and whatever it raises is dropped."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(start.workflow_handle(), 1)


async def _opened(handle, update_id: str, error: BaseException) -> None:
    """The application was started but its `opened` update was not answered (`error`): ask again."""
    from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
    attempt = 1
    while True:
        # The server could not take the update then (its workflow task timed out or failed and
        # runs again, or the call timed out) while the application is still opening: ask again
        # under the same update id, which answers once. Refused only once it has ended.
        if attempt >= OPEN_ATTEMPTS or not await _running(handle):
            raise RequestRefused(await _start_failure(handle) or _message(error)) from None
        await _pause(attempt)
        try:
            await handle.execute_update("opened", id=update_id, result_type=dict)
            return
        except WorkflowUpdateFailedError as e:
            raise RequestRefused(await _start_failure(handle) or _message(e)) from None
        except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError) as e:
            error, attempt = e, attempt + 1


OPEN_ATTEMPTS = 8       # about 20 s of asking while the worker opens the application


async def _pause(attempt: int) -> None:
    """Before asking again: 0.25 s, doubling, at most 4 s."""
    await asyncio.sleep(min(0.25 * 2 ** (attempt - 1), 4.0))


async def _running(handle) -> bool:
    from temporalio.client import WorkflowExecutionStatus
    try:
        return (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    except RPCError:
        return False


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


async def _update(client: Client, app_id: str, name: str, arg, *, request_key: Optional[str] = None,
                  actor: Optional[creds.Actor] = None, result_type: Optional[type] = None) -> DecisionRecord:
    """Send a signed request (update `name`): the credential is made for the person the request names."""
    who = getattr(arg, "reviewer", None) or getattr(arg, "operator", None) or getattr(arg, "who", None) or ""
    signed = arg.model_copy(update={"credential": sign(who, app_id, name, actor=actor)})
    return await _execute(client, app_id, name, signed, request_key=request_key, unsigned=arg,
                          result_type=result_type)


async def _execute(client: Client, app_id: str, name: str, arg, *, request_key: Optional[str] = None,
                   unsigned=None, result_type: Optional[type] = None) -> DecisionRecord:
    """The update `name` (a DecisionRecord back, unless `result_type` says otherwise)."""
    from temporalio.client import WorkflowUpdateFailedError

    from models.payloads import DecisionRecord
    h = handle(client, app_id)
    # the update id is made from the request without its credential (which is new each time)
    uid = update_id(app_id, name, unsigned or arg, request_key)
    attempt = 1
    while True:
        try:
            return await h.execute_update(name, arg, id=uid, result_type=result_type or DecisionRecord)
        except WorkflowUpdateFailedError as e:
            raise RequestRefused(_message(e)) from None
        except RPCError as e:
            if _task_runs_again(e) and attempt < OPEN_ATTEMPTS:
                # the application's workflow task timed out (under load) or failed and runs
                # again: ask again under the same update id, which answers once
                await _pause(attempt)
                attempt += 1
                continue
            closed = await _closed_status(client, app_id)
            if closed is None:
                raise
            raise RequestRefused(f"application {app_id} is closed ({closed})") from e


def _task_runs_again(e: RPCError) -> bool:
    """The server cannot take an update now: the workflow's task is to run again."""
    return e.status == RPCStatusCode.FAILED_PRECONDITION and "Workflow Task in failed state" in str(e)


async def _closed_status(client: Client, app_id: str) -> Optional[str]:
    """The final status of a closed application, or None if it is still running / unknown."""
    from temporalio.client import WorkflowExecutionStatus
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


async def quick_status(app_id: str, address: Optional[str] = None, namespace: Optional[str] = None, *,
                       meanwhile: Optional[Callable[[], None]] = None) -> Optional[dict]:
    """`status()` for `disburse status`, on the SDK's service layer alone (temporalio.service: no
    high-level client, no data converter, no pydantic): one connection with the settings `connect`
    uses (workflows/connection.py), the same QueryWorkflow request the high-level client sends, the
    same errors (server unreachable, unknown id, a failed query), and the answer read as the JSON
    it is. None when that is not enough and the caller must ask through `connect()` and `status()`:
    an answer that is not plain JSON (encrypted payloads, DISBURSE_PAYLOAD_KEYS), a rejected
    query, connection settings a plain service connection does not take. `meanwhile` runs while the
    query is on its way (the SDK's core sends it on threads of its own): the CLI loads its tables then."""
    import dataclasses

    from temporalio.api.common.v1 import WorkflowExecution
    from temporalio.api.query.v1 import WorkflowQuery
    from temporalio.api.workflowservice.v1 import QueryWorkflowRequest
    from temporalio.service import ConnectConfig, RPCStatusCode, ServiceClient

    from workflows.connection import connect_config
    config = connect_config(address, namespace)
    ns = config.pop("namespace")
    if not set(config) <= {f.name for f in dataclasses.fields(ConnectConfig)}:
        return None
    service = await ServiceClient.connect(ConnectConfig(**config))       # Client.connect's own first step
    request = QueryWorkflowRequest(namespace=ns, execution=WorkflowExecution(workflow_id=app_id),
                                   query=WorkflowQuery(query_type="status"))
    query = asyncio.ensure_future(service.workflow_service.query_workflow(request, retry=True))
    try:
        if meanwhile is not None:
            await asyncio.sleep(0)            # the query's task runs up to the RPC: it is sent
            meanwhile()
        response = await query
    except RPCError as e:
        if e.status == RPCStatusCode.INVALID_ARGUMENT:     # what the high-level client makes of it
            from temporalio.client import WorkflowQueryFailedError
            raise WorkflowQueryFailedError(e.message) from None
        raise
    payloads = response.query_result.payloads
    if response.HasField("query_rejected") or len(payloads) != 1 \
            or payloads[0].metadata.get("encoding") != b"json/plain":
        return None
    answer = json.loads(payloads[0].data)
    return answer if isinstance(answer, dict) else None


async def calculation(client: Client, app_id: str):
    from calc.model import CalcResult
    return await handle(client, app_id).query("calculation", result_type=CalcResult)


async def decisions(client: Client, app_id: str) -> list[DecisionRecord]:
    from models.payloads import DecisionRecord
    return await handle(client, app_id).query("decisions", result_type=list[DecisionRecord])


async def tranches(client: Client, app_id: str):
    return await handle(client, app_id).query("tranches", result_type=list)


async def approve(client: Client, app_id: str, *, reviewer: str, comment: str = "",
                  amount: Optional[Decimal] = None, reason: Optional[str] = None,
                  request_key: Optional[str] = None, actor: Optional[creds.Actor] = None) -> DecisionRecord:
    from models.payloads import Decision
    return await _update(client, app_id, "approve",
                         Decision(reviewer=reviewer, comment=comment or "",
                                  amount=str(amount) if amount is not None else None, reason=reason),
                         request_key=request_key, actor=actor)


async def reject(client: Client, app_id: str, *, reviewer: str, comment: str,
                 actor: Optional[creds.Actor] = None) -> DecisionRecord:
    from models.payloads import Decision
    return await _update(client, app_id, "reject", Decision(reviewer=reviewer, comment=comment),
                         actor=actor)


async def request_info(client: Client, app_id: str, *, reviewer: str, comment: str,
                       actor: Optional[creds.Actor] = None) -> DecisionRecord:
    from models.payloads import Decision
    return await _update(client, app_id, "request_info",
                         Decision(reviewer=reviewer, comment=comment), actor=actor)


async def provide_info(client: Client, app_id: str, data: dict, *, operator: str,
                       actor: Optional[creds.Actor] = None) -> DecisionRecord:
    from models.payloads import OperatorAction
    facts, comment = _facts_of(data)
    return await _update(client, app_id, "provide_info",
                         OperatorAction(operator=operator, facts=facts, comment=comment), actor=actor)


async def submit_evidence(client: Client, app_id: str, data: dict, *, operator: str = "",
                          actor: Optional[creds.Actor] = None) -> DecisionRecord:
    from models.payloads import OperatorAction
    facts, comment = _facts_of(data)
    return await _update(client, app_id, "submit_evidence",
                         OperatorAction(operator=operator or "", facts=facts, comment=comment), actor=actor)


async def confirm_year(client: Client, app_id: str, *, reviewer: str, comment: str = "",
                       actor: Optional[creds.Actor] = None) -> DecisionRecord:
    from models.payloads import YearConfirmation
    return await _update(client, app_id, "confirm_year",
                         YearConfirmation(reviewer=reviewer, comment=comment), actor=actor)


async def withdraw(client: Client, app_id: str, *, operator: str, comment: str = "",
                   actor: Optional[creds.Actor] = None) -> DecisionRecord:
    from models.payloads import OperatorAction
    return await _update(client, app_id, "withdraw",
                         OperatorAction(operator=operator, comment=comment), actor=actor)


async def revoke(client: Client, app_id: str, *, reviewer: str, reason: str,
                 actor: Optional[creds.Actor] = None) -> DecisionRecord:
    from models.payloads import Revocation
    return await _update(client, app_id, "revoke", Revocation(reviewer=reviewer, reason=reason),
                         actor=actor)


async def resume(client: Client, app_id: str, *, who: str, comment: str = "",
                 actor: Optional[creds.Actor] = None) -> DecisionRecord:
    """Resume an application waiting in `attention` once its cause is fixed."""
    from models.payloads import Resumption
    return await _update(client, app_id, "resume", Resumption(who=who, comment=comment),
                         actor=actor)


async def retry_budget(client: Client, app_id: str, *, who: str, comment: str = "", request_key: Optional[str] = None,
                       actor: Optional[creds.Actor] = None) -> DecisionRecord:
    """Finance: try an application waiting in `awaiting_budget` against its budget line again (after
    a top-up; `request_key` names the top-up, so each top-up is a new request)."""
    from models.payloads import Resumption
    return await _update(client, app_id, "retry_budget", Resumption(who=who, comment=comment),
                         request_key=request_key, actor=actor)


async def reject_for_budget(client: Client, app_id: str, *, reviewer: str, reason: str,
                            actor: Optional[creds.Actor] = None) -> DecisionRecord:
    """Finance: refuse an application waiting in `awaiting_budget` (nothing was committed)."""
    from models.payloads import Revocation
    return await _update(client, app_id, "reject_for_budget", Revocation(reviewer=reviewer, reason=reason),
                         actor=actor)

# ------------------------------------------------------------------ recoveries (追回) and amendments

async def clawback(client: Client, app_id: str, *, reviewer: str, basis: str, reason: str,
                   amount: Optional[Decimal] = None, everything: bool = False,
                   actor: Optional[creds.Actor] = None, wait: float = 60) -> dict:
    """Finance orders the recovery of what the application was paid. A running application takes
    the order as its `clawback` update (its unpaid tranches are cancelled, it ends `recovered`);
    one that has ended gets a Recovery workflow (workflows/recovery.py). Returns the result
    (RecoveryResult as a dict, with `application`: running / ended); a refusal raises RequestRefused."""
    from temporalio.client import WorkflowExecutionStatus

    from models.clawback import ClawbackOrder, recovery_id
    order = ClawbackOrder(reviewer=reviewer, amount=str(amount) if amount is not None else None, all=everything,
                          basis=basis, reason=reason)
    if await _closed_status(client, app_id) is None:
        try:
            await _update(client, app_id, "clawback", order, actor=actor)
        except RequestRefused:
            if await _closed_status(client, app_id) is None:
                raise
            # it ended meanwhile: the Recovery workflow takes the order
        else:
            st = await _wait_for(client, app_id, lambda s: (s.get("recovery") or {}).get("result"), wait)
            res = dict(st["recovery"]["result"])
            if res.get("refused"):
                raise RequestRefused(res["refused"])
            return {**res, "application": "running"}
    signed = order.model_copy(update={"credential": sign(reviewer, app_id, "clawback", actor=actor)})
    from models.clawback import RecoveryRun
    try:
        h = await client.start_workflow("Recovery", RecoveryRun(application_id=app_id, order=signed),
                                        id=recovery_id(app_id), task_queue=TASK_QUEUE, result_type=dict)
    except WorkflowAlreadyStartedError:
        raise RequestRefused(f"a recovery of {app_id} is under way; try again in a moment") from None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while (await h.describe()).status == WorkflowExecutionStatus.RUNNING:   # never wait on result() here: the
        if loop.time() > deadline:                                          # time-skipping test server would
            raise RequestRefused(f"the recovery of {app_id} is still running (workflow {h.id})")   # skip years
        await asyncio.sleep(0.1)
    res = await h.result()
    if res.get("refused"):
        raise RequestRefused(res["refused"])
    return {**res, "application": "ended"}


async def _wait_for(client: Client, app_id: str, done, wait: float) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        st = await status(client, app_id)
        if done(st):
            return st
        if loop.time() > deadline:
            raise RequestRefused(f"{app_id}: accepted, still being carried out (disburse status {app_id})")
        await asyncio.sleep(0.1)


async def propose_amendment(client: Client, app_id: str, *, reviewer: str, amount: Decimal, reason: str,
                            actor: Optional[creds.Actor] = None):
    from models.clawback import Amendment, AmendmentProposal
    p = AmendmentProposal(reviewer=reviewer, amount=str(amount), reason=reason)
    # the update id names the amendment's number: the same correction proposed again after a refusal
    # is a new request, a retry of this one is not
    n = len((await status(client, app_id)).get("amendments") or []) + 1
    return await _update(client, app_id, "propose_amendment", p, result_type=Amendment,
                         request_key=f"{n}-" + update_id(app_id, "p", p).rsplit(":", 1)[-1], actor=actor)


async def _open_amendment(client: Client, app_id: str, number: Optional[int]) -> Optional[int]:
    """The number of the amendment waiting for finance (so that each decision has its own update id)."""
    if number is not None:
        return number
    waiting = [a for a in (await status(client, app_id)).get("amendments") or [] if a["state"] == "proposed"]
    return waiting[0]["number"] if waiting else None


async def approve_amendment(client: Client, app_id: str, *, reviewer: str, comment: str = "",
                            number: Optional[int] = None, actor: Optional[creds.Actor] = None,
                            wait: float = 30) -> dict:
    """Finance approves the open amendment; waits until the award book applied it (or refused it:
    RequestRefused naming the cap) and returns the amendment."""
    from models.clawback import Amendment, AmendmentDecision
    number = await _open_amendment(client, app_id, number)
    a = await _update(client, app_id, "approve_amendment",
                      AmendmentDecision(reviewer=reviewer, comment=comment, number=number), actor=actor,
                      result_type=Amendment)
    n = a.number if hasattr(a, "number") else a["number"]
    st = await _wait_for(client, app_id, lambda s: any(x["number"] == n and x["state"] in ("applied", "rejected")
                                                       for x in s.get("amendments") or []), wait)
    done = next(x for x in st["amendments"] if x["number"] == n)
    if done["state"] == "rejected":
        raise RequestRefused(f"amendment #{n}: {done['note']}")
    return done


async def refuse_amendment(client: Client, app_id: str, *, reviewer: str, comment: str,
                           number: Optional[int] = None, actor: Optional[creds.Actor] = None):
    from models.clawback import Amendment, AmendmentDecision
    number = await _open_amendment(client, app_id, number)
    return await _update(client, app_id, "refuse_amendment",
                         AmendmentDecision(reviewer=reviewer, comment=comment, number=number), actor=actor,
                         result_type=Amendment)


async def object_to(client: Client, app_id: str, *, who: str, objector_name: str, objector_contact: str,
                    reason: str, actor: Optional[creds.Actor] = None):
    """Record a written, real-name objection within the 公示 period, on the objector's behalf
    (`who` is the staff member recording it: models/publicity.py)."""
    from models.publicity import Objection, ObjectionRecord
    return await _update(client, app_id, "object",
                         Objection(who=who, objector_name=objector_name, objector_contact=objector_contact,
                                   reason=reason), actor=actor, result_type=ObjectionRecord)


async def rule_objection(client: Client, app_id: str, *, reviewer: str, objection: int, reason: str, uphold: bool,
                         actor: Optional[creds.Actor] = None):
    """The lead bureau's decision on an objection: uphold (the application ends rejected) or dismiss."""
    from models.publicity import ObjectionRecord, ObjectionRuling
    name = "uphold_objection" if uphold else "dismiss_objection"
    return await _update(client, app_id, name, ObjectionRuling(reviewer=reviewer, objection=objection, reason=reason),
                         actor=actor, result_type=ObjectionRecord)


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
