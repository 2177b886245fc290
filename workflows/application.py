"""The application workflow (workflow type "Application"): one subsidy application, from the
claim to its last tranche.

    year 1:  open (provisional calculation) -> review -> credit check -> binding calculation (commit to the
             award book) -> 公示 (notice period, objections) -> credit check -> payout
    year n:  (evidence) -> binding calculation -> finance confirms -> credit check -> payout
    between years: continue-as-new, the whole state carried

Thin and deterministic; every I/O is an activity. The input is the claim alone: the worker
resolves the clause's bureaus, programme and window, the enterprise and the reviewer registry
itself when the application opens (`open_application`, pinned for the application's life), and
every amount it pays comes from the award book, never from the workflow's input or state.

Update handlers decide at once and never wait on I/O: they change the state and the main flow and
the status mirror (a background task, local activities) follow. The main flow re-checks closure
after every await; a closure accepted at any point is honoured at the next step, carried across
continue-as-new, and releases whatever the award book still holds for the application.

The first version of this workflow (type "ApplicationWorkflow") is frozen in workflows/legacy.py.
Later changes to this class that alter the commands a running application produces go behind
`workflow.patched(...)`, with a recorded history in tests/histories/ that replays.
"""
from __future__ import annotations

import asyncio
import contextlib
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Callable, Optional

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from calc.model import CalcResult, Facts
    from models import credentials as creds
    from models import search_attributes as sa
    from models.application import (
        TERMINAL, Adjustment, ApplicationRun, ApplicationState, ApplicationStatus, Closure, CommitRequest,
        CreditCheck, CreditResult, Decision, DecisionRecord, Notification, OpenClaim, Opened, OpenRequest,
        OperatorAction, PayoutRecord, PayRequest, Pinned, ReleaseRequest, Resumption, Revocation, SettleRequest,
        Settled, StatusUpdate, TrancheState, YearConfirmation, china_midnight, china_today, opening_notice,
        paid_message,
    )
    from models.clawback import (
        AmendRequest, AmendResult, Amendment, AmendmentDecision, AmendmentProposal, Clawback, ClawbackOrder,
        RecoverRequest, RecoveryResult,
    )
    from models.publicity import PATCH as PUBLICITY_PATCH
    from models.publicity import (
        Objection, ObjectionRecord, ObjectionRuling, Period, PeriodRequest, Provisional, ProvisionalRequest,
        PublicityState,
    )

# Errors no retry can fix: they end the retries at once and the application waits in `attention`.
PROGRAMMING_ERRORS = ["TypeError", "AttributeError", "KeyError", "IndexError", "NameError", "ValueError",
                      "ZeroDivisionError", "AssertionError", "NotImplementedError", "LookupError",
                      "ValidationError", "InputError", "RecursionError", "ParameterError", "StatementError",
                      "RegistryError", "UnknownEnterprise", "NoCommitment", "InvalidClaim"]
# A database outage is retried for about ten minutes, then the application waits in `attention`
# (and tries again by itself every ATTENTION_RETRY, or at once when resumed).
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                    maximum_interval=timedelta(minutes=2), maximum_attempts=10,
                    non_retryable_error_types=PROGRAMMING_ERRORS)
ACTIVITY_TIMEOUT = timedelta(seconds=60)
LOCAL_TIMEOUT = timedelta(seconds=30)
ATTENTION_RETRY = timedelta(hours=6)
# Notifications are sent by a task of their own; a delivery that still fails after these attempts is
# logged by the activity, and the application goes on (nobody waits for an e-mail).
NOTIFY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), backoff_coefficient=2.0,
                           maximum_interval=timedelta(minutes=5), maximum_attempts=6,
                           non_retryable_error_types=PROGRAMMING_ERRORS)
BUDGET_PATCH = "budget-lines"       # commitments draw on budget lines; awaiting_budget (applications before: no check)
BUDGET_RECHECK = timedelta(days=1)  # awaiting_budget tries the line again at least this often
NOTIFY_PATCH = "notify-people"      # the notifier task and its notifications (applications opened before: none)
MIRROR_PAUSE = timedelta(minutes=5)
CLAWBACK_PATCH = "clawback-amend"  # recoveries, bars before tranches, amendments (applications opened before: none)
# Fewer history events and workflow tasks per application (issue 11; applications opened before: the
# old commands): one patch marker stands for every patch before it; search attributes are set once
# per workflow task; the status mirror writes when the main flow waits (for people, a timer, or the
# end), not while one of its steps runs, skips a write that changes nothing, and carries the notices
# that come with the change; the main flow's short steps run as local activities (LOCAL_STEPS).
LEAN_PATCH = "lean-history"
# Five events fewer again (issue 11; applications opened before: LEAN_PATCH's commands): the steps that
# follow one another in one workflow task run as one local activity. Opening: the claim's checks, the
# provisional calculation and the first status row with its notice (open_claim). Once every bureau
# approved: the credit check, the binding calculation and the 公示 period (settle_award). Every
# payment: its credit check, under the enterprise's lock in the payment's own activity (pay_tranche).
LEAN2_PATCH = "lean-history-2"
# Applications opened before LEAN_PATCH, in their 公示 when its timer fires: the period is over
# because the timer fired (asked then, so that those already waiting in their 公示 have it too).
PUBLICITY_TIMER_PATCH = "publicity-ends-by-its-timer"
# A notice queued without a change of state is first sent by a local activity, once, bounded; if that
# fails, by the notify activity with NOTIFY_RETRY. Both record and deliver it under the notice's own
# key, so it is recorded once and no delivery that succeeded is sent again.
NOTIFY_LOCAL_TIMEOUT = timedelta(seconds=10)
SAME = {"version", "decisions", "notices"}       # a mirror write differing from the last only in these is skipped
# The steps run as local activities, in the workflow task that reaches them (their writes are keyed,
# so a re-run after a crash writes nothing twice: activities/once.py, models/book.py). The payment
# stays an activity: a workflow task whose completion the server refuses (an update arrived while it
# ran the last steps and completed the workflow) is run again from its start, and a payment a local
# activity made in the refused attempt would stand under a workflow that, on the second attempt, took
# the update first (a revocation) and paid nothing. The credit check reads, the 公示 period is
# computed, and a commitment is keyed by application and year and released whenever the application
# ends unpaid.
LOCAL_STEPS = frozenset({"check_credit", "commit_award", "publicity_period", "settle_award"})
# LEAN_PATCH: one local activity at a time per application (the lane). A workflow task that runs
# long is kept alive by completing it and taking a new one, which brings what arrived meanwhile (an
# approval starting the credit check while the mirror's write runs). The SDK may hand the results
# of local activities that ran together back in another grouping on replay than when they ran
# (temporalio/sdk-python#1881). Whoever holds the lane decides from the state as it is once it has
# the lane, not as it was before it waited.


def _invalid(message: str) -> ApplicationError:
    """A refused request (update validator): fails the update, never the workflow."""
    return ApplicationError(message, type="InvalidRequest", non_retryable=True)


def _cause(err: BaseException) -> tuple[str, str]:
    cause = err.cause if isinstance(err, ActivityError) and err.cause is not None else err
    kind = getattr(cause, "type", None) or type(cause).__name__
    return kind, getattr(cause, "message", None) or str(cause)


class _Closed(Exception):
    """Raised inside the main flow when a withdrawal or revocation was accepted: unwinds to run()."""


@workflow.defn(name="Application")
class ApplicationWorkflow:
    @workflow.init
    def __init__(self, inp: ApplicationRun) -> None:
        self.claim = inp.claim
        self.app_id = inp.claim.application_id
        self.s: Optional[ApplicationState] = inp.carried     # None until the application is open
        self.review: dict[str, DecisionRecord] = {}           # bureau -> approve/reject (year 1)
        self.evidence: Optional[dict[str, Any]] = None
        self.confirmed = False
        self.resumed = False
        self.calc: Optional[CalcResult] = None
        self.version = 0                                      # of the state; the mirror follows it
        self.mirrored = 0
        self.decisions_mirrored = len(inp.carried.decisions) if inp.carried else 0
        self.failed: Optional[str] = None
        self.submitted_by = inp.credential
        self.notifying = False
        self.budget_retry = False                             # finance asked for the budget to be tried again
        self.budget_refusal: Optional[Revocation] = None      # finance rejected the application for budget

        self.clawing = False
        # provisional calculation and 公示 (patch "provisional-and-publicity"; models/publicity.py)
        self.publicity_on = False
        self.facts_version = 0                                # the claim's facts as they change in review
        self.provisional_seen = 0
        self.publicity_tick = 0                               # objections filed and decided
        self.lean = False                                     # LEAN_PATCH
        self.lean2 = False                                    # LEAN2_PATCH (implies LEAN_PATCH)
        self.stepping = 0                                     # local steps running (main flow, provisional; LEAN_PATCH)
        self.last_mirror: Optional[dict] = None               # what the mirror last wrote, less SAME (LEAN_PATCH)
        self.attributes: dict[str, Any] = {}                  # search attribute updates not yet set
        self.told = 0                                         # notifications queued by this run
        self.ending = False                                   # the main flow is done: complete or continue
        self.mirror_at = (0, 0)                               # (ms of the workflow task, writes in it)
        self.lane = asyncio.Lock()                            # one local activity at a time (LEAN_PATCH)

    # ------------------------------------------------------------------------------ run

    @workflow.run
    async def run(self, inp: ApplicationRun) -> dict:
        info = workflow.info()
        if info.workflow_id != self.app_id:
            raise ApplicationError(f"an application's id is {self.app_id}, derived from its enterprise, clause and "
                                   f"year; {info.workflow_id!r} is not", type="InvalidClaim", non_retryable=True)
        if inp.carried is not None and info.continued_run_id is None:
            raise ApplicationError("an application starts from its claim alone; state is carried only by the "
                                   "workflow's own continue-as-new", type="InvalidClaim", non_retryable=True)
        mirror = asyncio.create_task(self._mirror_loop())
        # One marker for every change before it (each patch records a marker and a search attribute
        # upsert): applications opened under LEAN_PATCH have them all; older ones ask for each.
        self.lean2 = workflow.patched(LEAN2_PATCH)           # (one marker: the newest stands for the others)
        self.lean = self.lean2 or workflow.patched(LEAN_PATCH)
        self.notifying = self.lean or workflow.patched(NOTIFY_PATCH)
        notifier = asyncio.create_task(self._notify_loop()) if self.notifying else None
        self.clawing = self.lean or workflow.patched(CLAWBACK_PATCH)
        amender = asyncio.create_task(self._amend_loop()) if self.clawing else None
        self.publicity_on = self.lean or workflow.patched(PUBLICITY_PATCH)
        provisional = asyncio.create_task(self._provisional_loop()) \
            if self.publicity_on and self.s is None else None
        setter = asyncio.create_task(self._attributes_loop()) if self.lean else None
        try:
            if self.s is None:
                await self._open_application()
                await self._year_one()
            else:
                self._upsert_attributes()
                self._changed()
                await self._later_year()
        except _Closed:
            self._set_status(self.s.closed.kind)
        self.ending = True
        result = await self._finish()
        mirror.cancel()
        if notifier is not None:
            notifier.cancel()
        if amender is not None:
            amender.cancel()
        if provisional is not None:
            provisional.cancel()
        if setter is not None:
            setter.cancel()
        return result

    def _lane(self) -> Any:
        """Held around every local activity (LEAN_PATCH; applications opened before it: no lane)."""
        return self.lane if self.lean else contextlib.nullcontext()

    async def _open_application(self) -> None:
        opened: Optional[Opened] = None
        try:
            async with self._lane():
                if self.lean2:
                    opened = await self._open_claim()
                    pinned = opened.pinned
                else:
                    pinned = await workflow.execute_local_activity(
                        "open_application", OpenRequest(claim=self.claim, credential=self.submitted_by),
                        result_type=Pinned, start_to_close_timeout=LOCAL_TIMEOUT, retry_policy=RETRY)
        except ActivityError as e:
            kind, message = _cause(e)
            self.failed = message
            if kind == "InvalidClaim":
                raise ApplicationError(message, type="InvalidClaim", non_retryable=True) from None
            raise ApplicationError(f"the application could not be opened: {message}", type=kind,
                                   non_retryable=True) from None
        self.s = ApplicationState(pinned=pinned, year=self.claim.year, facts=self.claim.facts)
        if self.publicity_on:
            self.facts_version = 1               # the provisional calculation follows (_provisional_loop)
        self._upsert_attributes()
        self._log("opened", lead_bureau=pinned.clause.lead_bureau)
        self._changed()
        if opened is None:
            self._tell("awaiting_review", opening_notice(self.app_id, pinned, self.claim.year, None).message,
                       pinned.clause.required_bureaus)
            return
        # LEAN2_PATCH: the provisional calculation came with the opening, and the status row and
        # its notice were written by it: the mirror has this version (a notice not delivered stays
        # for the notifier)
        self._provisional(opened.provisional, 1)
        self.mirrored, self.last_mirror = self.version, opened.mirrored.model_dump(exclude=SAME)
        self.s.outbox.extend(n for n in opened.mirrored.notices if n.key in opened.undelivered)

    async def _open_claim(self) -> Opened:
        """LEAN2_PATCH: the opening, the provisional calculation and the first status row, as one
        local activity (the caller holds the lane)."""
        now = workflow.now()
        return await workflow.execute_local_activity(
            "open_claim", OpenClaim(
                open=OpenRequest(claim=self.claim, credential=self.submitted_by),
                estimate=self._estimate_request(self.claim.facts.model_dump(mode="json", exclude_none=True), now),
                mirror_version=self._mirror_version(),
                notice_key=self._notice_key()),
            result_type=Opened, start_to_close_timeout=LOCAL_TIMEOUT, retry_policy=RETRY)

    async def _year_one(self) -> None:
        """Review -> credit check -> binding calculation -> payout (-> the next programme year)."""
        await self._wait_with_sla(lambda: self._rejected() or self._all_approved())
        if self._rejected():
            self._set_status("rejected")
            return
        if self.lean2:
            if not await self._settle():
                return
        else:
            if not await self._credit_ok():
                return
            if not await self._calculate():
                return
            if self.publicity_on and not await self._publicity():
                return
        await self._pay_and_go_on()

    async def _settle(self) -> bool:
        """LEAN2_PATCH: credit check -> binding calculation -> 公示 period, as one local activity;
        then each step's consequences as when they ran one by one. False if the application ended."""
        self._set_status("credit_check")
        done: Settled = await self._activity("settle_award", SettleRequest(
            credit=self._credit_request(),
            commit=self._commit_request(True),
            published=workflow.now(), day_seconds=self.s.pinned.publicity_day_seconds), result_type=Settled)
        self._check_closed()                     # a closure accepted during the step wins
        if not self._credit_passed(done.credit):
            return False
        if not await self._calculate(first=done.calc):
            return False
        return await self._publicity(period=done.period)

    async def _later_year(self) -> None:
        """Evidence arrived with the state: binding calculation -> finance confirms -> credit check -> payout."""
        if not await self._calculate():
            return
        self._set_status("confirming")
        self._tell("awaiting_confirmation", f"{self.s.year}: {self.calc.amount}", [self.s.pinned.clause.finance_bureau])
        await self._wait_with_sla(lambda: self.confirmed)
        if not self.lean2 and not await self._credit_ok():   # LEAN2_PATCH: the payment checks
            return
        await self._pay_and_go_on()

    async def _pay_and_go_on(self) -> None:
        self._set_status("payout")
        if not await self._payout():
            return
        if self._another_year():
            await self._await_evidence()        # continues as new unless closed / no evidence
        if not self._finished():
            self._set_status("completed")

    def _rejected(self) -> bool:
        return any(d.kind == "reject" for d in self.review.values())

    def _all_approved(self) -> bool:
        return self.s.status == "review" and all(b in self.review for b in self.s.pinned.clause.required_bureaus)

    def _finished(self) -> bool:
        return self.s is not None and self.s.status in TERMINAL

    def _check_closed(self) -> None:
        """State can change at every await: a closure accepted meanwhile ends the flow here."""
        if self.s.closed is not None:
            raise _Closed()

    async def _finish(self) -> dict:
        # Handlers may still be running (they do not await I/O, but let them complete first).
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self.clawing:                            # an approved amendment is applied (or refused) first
            await workflow.wait_condition(lambda: not any(a.state == "approved" for a in self.s.amendments))
        pending = [t for t in self.s.tranches if t.state == "pending"]
        for t in pending:
            t.state = "cancelled"                   # whatever ended the application, nothing more is paid
        if pending or self.s.status in ("withdrawn", "revoked", "blacklisted", "recovered", "barred"):
            await self._activity("release_award", ReleaseRequest(
                application_id=self.app_id, clause_id=self.claim.clause_id,
                reason=f"{self.s.status}: {self._closure_reason()}"), closable=False)
        if self.s.clawback is not None and self.s.clawback.result is None:
            await self._recover()
        self._changed()
        await workflow.wait_condition(lambda: self.mirrored >= self.version and not self._unsent())
        self._set_attributes()
        return self._status_model().model_dump(mode="json")

    def _closure_reason(self) -> str:
        c = self.s.closed
        return f"{c.kind} by {c.who}: {c.reason}" if c else (self.s.note or self.s.status)

    # ------------------------------------------------------------------------------ phases

    async def _wait_with_sla(self, done: Callable[[], bool]) -> None:
        """Wait for done() or a closure; every review_sla_days without either: Overdue, escalate,
        keep waiting."""
        while True:
            try:
                await workflow.wait_condition(lambda: self.s.closed is not None or done(),
                                              timeout=timedelta(days=self.claim.review_sla_days))
            except asyncio.TimeoutError:
                if self.s.status == "info_requested":
                    continue                      # waiting on the enterprise, not the bureaus
                self.s.overdue = True
                self._log("overdue", status=self.s.status, sla_days=self.claim.review_sla_days)
                self._count("disburse_sla_breaches", "review or confirmation SLAs passed", status=self.s.status)
                self._upsert(sa.OVERDUE.value_set(True))
                self._changed()
                clause = self.s.pinned.clause
                pending = [b for b in clause.required_bureaus if b not in self.review] \
                    if self.s.status == "review" else [clause.finance_bureau]
                message = (f"{self.s.status} overdue (> {self.claim.review_sla_days} days); waiting for "
                           + "、".join(pending))
                if self.notifying:
                    self._tell("escalation", message, pending)
                else:                         # applications opened before the notifier existed
                    await self._activity("notify", Notification(application_id=self.app_id, kind="escalation",
                                                                message=message, recipients=pending))
                # a decision or closure may have come while the notification was sent: loop re-checks
                continue
            self._check_closed()
            if self.s.overdue:
                self.s.overdue = False
                self._upsert(sa.OVERDUE.value_set(False))
                self._changed()
            return

    async def _credit_ok(self) -> bool:
        """The 严重失信 list on today's date (China): listed -> blacklisted, nothing (more) paid."""
        self._set_status("credit_check")
        res: CreditResult = await self._activity("check_credit", self._credit_request(), result_type=CreditResult)
        self._check_closed()                     # a closure accepted during the check wins
        return self._credit_passed(res)

    def _credit_request(self) -> CreditCheck:
        return CreditCheck(application_id=self.app_id, clause_id=self.claim.clause_id,
                           enterprise_code=self.claim.enterprise_code, day=china_today(workflow.now()).isoformat())

    def _credit_passed(self, res: CreditResult) -> bool:
        """Not listed: True. Listed (or barred after a recovery): the application ends so."""
        if res.listed:
            barred = self.clawing and res.bar is not None
            self.s.note = res.bar if barred else f"blacklisted: {res.reason}"
            self._set_status("barred" if barred else "blacklisted")
            return False
        return True

    async def _calculate(self, first: Optional[CalcResult] = None) -> bool:
        """The binding calculation, committed to the award book under the enterprise's lock, and
        (patch "budget-lines") drawing on the clause's budget line: when the line cannot cover the
        award nothing is committed and the application waits in `awaiting_budget` until finance
        adds budget (`retry_budget`, or the daily re-check) or rejects it for budget (refused).
        `first`: the first commitment's result, when settle_award made it (LEAN2_PATCH)."""
        self._set_status("calculating")
        budget = self.lean or workflow.patched(BUDGET_PATCH)
        while True:
            if first is not None:
                self.calc, first = first, None
            else:
                self.calc = await self._activity("commit_award", self._commit_request(budget), result_type=CalcResult)
            if not (budget and self.calc.refusal is not None and self.calc.refusal.code == "budget_exhausted"):
                break
            self._check_closed()
            self.s.note = f"awaiting budget: {self.calc.refusal.reason}"
            if self.s.status != "awaiting_budget":
                self._set_status("awaiting_budget")
                self._tell("awaiting_budget", self.s.note, [self.s.pinned.clause.finance_bureau])
            self.budget_retry = False
            try:                                 # finance tops the line up (retry_budget) or decides
                await workflow.wait_condition(lambda: self.budget_retry or self.budget_refusal is not None
                                              or self.s.closed is not None, timeout=BUDGET_RECHECK)
            except asyncio.TimeoutError:
                pass
            self._check_closed()
            if self.budget_refusal is not None:  # nothing was committed: the application is refused
                r = self.budget_refusal
                self.calc = self.calc.model_copy(update={"refusal": self.calc.refusal.model_copy(update={
                    "reason": f"rejected for budget by {r.reviewer}: {r.reason} ({self.calc.refusal.reason})"})})
                break
            self.s.note = None
            self._set_status("calculating")
        if self.calc.refusal is None:
            for t in self.calc.schedule:
                self.s.tranches.append(TrancheState(year=self.s.year, seq=t.seq, due=t.due.isoformat(),
                                                    amount=t.amount, label=t.label, clause_id=self.calc.clause_id,
                                                    item_id=self.calc.item_id))
            self._changed()
        self._check_closed()                     # committed lines are released by _finish
        if self.calc.refusal is not None:
            note = f"{self.calc.refusal.code}: {self.calc.refusal.reason}"
            if self.s.programme_year > 1:       # the years already paid stand; the programme ends
                self.s.note = f"programme ended: {self.s.year} not supported ({note})"
                self._set_status("completed")
            else:
                self.s.note = note
                self._set_status("refused")
            return False
        return True

    def _commit_request(self, budget: bool) -> CommitRequest:
        adj = self.s.adjustment
        return CommitRequest(
            application_id=self.app_id, clause_id=self.claim.clause_id, year=self.s.year,
            enterprise_code=self.claim.enterprise_code, facts=self.s.facts,
            as_of=china_today(workflow.now()).isoformat(), alternatives=self.claim.alternatives,
            adjustment=adj.model_dump(mode="json") if adj else None, budget=budget)

    async def _payout(self) -> bool:
        """Pay this year's tranches in order, each on its due date (00:00 in China; a durable
        timer). A tranche that waited, or any after the first, re-checks the blacklist first. The
        amount paid is the award book's. False if the application ended."""
        for t in [t for t in self.s.tranches if t.year == self.s.year and t.state == "pending"]:
            waited = await self._sleep_until(date.fromisoformat(t.due))
            self._check_closed()
            if (waited or t.seq > 1) and not self.lean2:   # LEAN2_PATCH: every payment checks, below
                if not await self._credit_ok():
                    return False
                self._set_status("payout")
            t.state = "paying"                   # from here a withdrawal can no longer stop this tranche
            self._changed()
            rec: PayoutRecord = await self._activity("pay_tranche", PayRequest(
                application_id=self.app_id, clause_id=t.clause_id or self.claim.clause_id, year=t.year, seq=t.seq,
                notify=[self.claim.operator] if self.lean else [],
                credit_day=china_today(workflow.now()).isoformat() if self.lean2 else None), result_type=PayoutRecord)
            if rec.credit is not None:           # listed on the day: released, not paid (LEAN2_PATCH)
                t.state = "cancelled"
                self._credit_passed(rec.credit)  # (its status change is the state's change)
                return False
            if rec.state == "released":
                t.state = "cancelled"
            else:
                t.state = "paid"
                self.s.awarded += rec.amount
                self._log("tranche_paid", year=t.year, seq=t.seq, amount=str(rec.amount), first_write=rec.created)
                if not self.lean:                        # LEAN_PATCH: the payment's activity told them
                    self._tell("tranche_paid", paid_message(t.year, t.seq, rec.amount), [self.claim.operator])
                elif rec.notice is not None:             # ... but a delivery failed: sent again, same key
                    self.s.outbox.append(rec.notice)
                self._upsert(sa.AWARDED_FEN.value_set(int(self.s.awarded * 100)))
            self._changed()
            self._check_closed()                 # a closure accepted while paying: honoured now
        return True

    async def _sleep_until(self, day: date) -> bool:
        """Wait until 00:00 in China on `day`, or a closure; True if it waited."""
        due = china_midnight(day)
        if due <= workflow.now():
            return False
        try:
            await workflow.wait_condition(lambda: self.s.closed is not None, timeout=due - workflow.now())
        except asyncio.TimeoutError:
            pass
        return True

    def _another_year(self) -> bool:
        """Does the programme go on? Up to its length, never past the policy window."""
        clause = self.s.pinned.clause
        return (self.s.programme_year < clause.programme_years
                and (clause.last_year is None or self.s.year + 1 <= clause.last_year))

    def _programme_length(self) -> int:
        clause, first_year = self.s.pinned.clause, self.s.year - self.s.programme_year + 1
        if clause.last_year is None:
            return clause.programme_years
        return max(1, min(clause.programme_years, clause.last_year - first_year + 1))

    def _evidence_deadline(self) -> timedelta:
        """Evidence for year Y+1 is due evidence_deadline_days after Y+1 ends (in China)."""
        end = china_midnight(date(self.s.year + 2, 1, 1)) + timedelta(days=self.claim.evidence_deadline_days)
        return max(end - workflow.now(), timedelta(seconds=1))

    async def _await_evidence(self) -> None:
        self._set_status("awaiting_evidence")
        self._tell("evidence_due", f"{self.s.year + 1}", [self.claim.operator])
        try:
            await workflow.wait_condition(lambda: self.s.closed is not None or self.evidence is not None,
                                          timeout=self._evidence_deadline())
        except asyncio.TimeoutError:
            self.s.note = f"programme ended: no evidence for {self.s.year + 1} by the deadline"
            if self.notifying:
                self._tell("programme_ended", self.s.note, [self.claim.operator])
            else:
                await self._activity("notify", Notification(
                    application_id=self.app_id, kind="programme_ended", message=self.s.note,
                    recipients=[self.claim.operator]))
            return
        self._check_closed()
        self.ending = True
        # Continue-as-new only once every handler has finished and the mirror has caught up; a
        # closure accepted meanwhile is re-checked after these awaits.
        await workflow.wait_condition(workflow.all_handlers_finished)
        await workflow.wait_condition(lambda: self.mirrored >= self.version and not self._unsent())
        self._check_closed()
        self._set_attributes()
        facts = Facts.model_validate({**self.s.facts.model_dump(mode="json", exclude_none=True), **self.evidence})
        nxt = self.s.model_copy(update={
            "year": self.s.year + 1, "facts": facts, "programme_year": self.s.programme_year + 1,
            "status": "calculating", "note": None, "overdue": False})
        workflow.continue_as_new(ApplicationRun(claim=self.claim, carried=nxt))

    # ------------------------------------------------------------------------------ helpers

    async def _activity(self, name: str, arg: Any, result_type: Any = None, *, closable: bool = True) -> Any:
        """An activity that must succeed. When it cannot (retries spent, or an error no retry can
        fix), the application waits in `attention` with the cause in its note, until it is resumed
        (`disburse resume`), retries by itself every ATTENTION_RETRY, or (if `closable`) is closed."""
        while True:
            try:
                self.stepping += self.lean
                if self.lean and name in LOCAL_STEPS:
                    async with self.lane:        # the step's argument was built before: it is the flow's own
                        return await workflow.execute_local_activity(name, arg, result_type=result_type,
                                                                     start_to_close_timeout=ACTIVITY_TIMEOUT,
                                                                     retry_policy=RETRY)
                return await workflow.execute_activity(name, arg, result_type=result_type,
                                                       start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=RETRY)
            except (ActivityError, ApplicationError) as e:     # a local activity's failure may come unwrapped
                kind, message = _cause(e)
            finally:
                self.stepping -= self.lean
            before, note = self.s.status, self.s.note
            self.s.note = f"{name} failed: {kind}: {message[:500]} — fix the cause, then `disburse resume` " \
                          "(or withdraw / revoke the application)"
            self._log("attention", activity=name, error=kind)
            self._count("disburse_activity_failures", "steps that failed past their retries", activity=name,
                        error=kind)
            self._set_status("attention")
            self.resumed = False
            try:
                await workflow.wait_condition(lambda: self.resumed or (closable and self.s.closed is not None),
                                              timeout=ATTENTION_RETRY)
            except asyncio.TimeoutError:
                pass
            if closable:
                self._check_closed()
            self.s.note = note
            self._set_status(before)

    def _upsert(self, *updates) -> None:
        if not self.lean:
            workflow.upsert_search_attributes(list(updates))
            return
        for u in updates:                        # the last value of each attribute, set by _attributes_loop
            self.attributes[u.key.name] = u

    def _set_attributes(self) -> None:
        if self.attributes:
            workflow.upsert_search_attributes(list(self.attributes.values()))
            self.attributes.clear()

    async def _attributes_loop(self) -> None:
        """Sets the search attributes changed in this workflow task once, when the main flow waits."""
        while True:
            await workflow.wait_condition(lambda: bool(self.attributes) and not self.stepping)
            if not await self._main_flow_steps():
                self._set_attributes()

    async def _main_flow_steps(self) -> bool:
        """Whether the main flow, woken in the same pass as the caller, went on to a local step."""
        await asyncio.sleep(0)
        return self.stepping > 0

    def _upsert_attributes(self) -> None:
        """The search attributes, from what the worker resolved (a caller may have set others at start)."""
        clause = self.s.pinned.clause
        self._upsert(sa.STATUS.value_set(self.s.status), sa.CLAUSE_ID.value_set(self.claim.clause_id),
                     sa.LEAD_BUREAU.value_set(clause.lead_bureau), sa.BUREAU.value_set(list(clause.bureaus)),
                     sa.ENTERPRISE_CODE.value_set(self.claim.enterprise_code), sa.OVERDUE.value_set(self.s.overdue),
                     sa.AWARDED_FEN.value_set(int(self.s.awarded * 100)))

    def _log(self, event: str, **fields: Any) -> None:
        """A structured log line (activities/logs.py renders it as JSON); not repeated on replay."""
        workflow.logger.info(event, extra={"application_id": self.app_id, "clause_id": self.claim.clause_id,
                                           **fields})

    def _changed(self) -> None:
        """The state changed: the mirror task writes it to the database."""
        self.version += 1

    def _tell(self, kind: str, message: str, recipients: list[str]) -> None:
        """Queue a notification for the notifier task (a no-op for applications opened before it)."""
        if self.notifying:
            key = None
            if self.lean:
                key = self._notice_key()
            self.s.outbox.append(Notification(application_id=self.app_id, kind=kind, message=message,
                                              recipients=list(recipients), key=key))

    def _notice_key(self) -> str:
        """A new notice's key (LEAN_PATCH): by the workflow task's time, so that a task run again
        after a refused completion sends anew what it decides."""
        self.told += 1
        return f"{workflow.info().run_id}/{workflow.now().isoformat()}/{self.told}"

    def _unsent(self) -> bool:
        return self.notifying and bool(self.s.outbox)

    async def _notify_loop(self) -> None:
        """Hands queued notifications to the notify activity, one at a time, in order. A delivery
        that keeps failing is given up (and logged); the application never waits on it."""
        while True:
            await workflow.wait_condition(self._notice_due)
            n = self.s.outbox[0]
            # LEAN_PATCH: a local activity first, except in the task that completes the workflow or
            # continues it as new (the server may refuse that completion; see LOCAL_STEPS)
            if n.key is not None and not self.ending:
                async with self.lane:
                    # (the mirror may have sent it, or the flow reached its end, while this waited)
                    if not self._notice_due() or self.s.outbox[0] is not n or self.ending:
                        continue
                    try:
                        await workflow.execute_local_activity("notify", n, start_to_close_timeout=NOTIFY_LOCAL_TIMEOUT,
                                                              retry_policy=RetryPolicy(maximum_attempts=1))
                        self._sent(n)
                        continue
                    except (ActivityError, ApplicationError) as e:
                        self._log("notification_deferred", kind=n.kind, error=_cause(e)[0])
            try:
                await workflow.execute_activity("notify", n, start_to_close_timeout=timedelta(minutes=2),
                                                retry_policy=NOTIFY_RETRY)
            except ActivityError as e:
                self._log("notification_given_up", kind=n.kind, error=_cause(e)[0])
            if self.lean:
                self._sent(n)
            else:
                self.s.outbox.pop(0)

    def _notice_due(self) -> bool:
        """A notice waits in the outbox (LEAN_PATCH: one that comes with a change of state goes with
        the mirror's write, so only once the mirror has caught up and no step runs)."""
        return self.s is not None and bool(self.s.outbox) and (
            not self.lean or self.ending or (self.version <= self.mirrored and not self.stepping))

    def _sent(self, n: Notification) -> None:
        """This notice is done with (the mirror may have sent others meanwhile, or this one too)."""
        self.s.outbox = [m for m in self.s.outbox if m is not n]

    def _count(self, name: str, description: str, **labels: str) -> None:
        """A business counter on the worker's metrics endpoint (not counted again on replay)."""
        workflow.metric_meter().create_counter(name, description).add(1, labels)

    def _set_status(self, status: str) -> None:
        self._log("status", status=status, year=self.s.year, note=self.s.note)
        self._count("disburse_status_changes", "applications entering a status", status=status)
        self.s.status = status
        self._upsert(sa.STATUS.value_set(status))
        self._changed()
        self._show_details()

    async def _mirror_loop(self) -> None:
        """Writes the state to the database after every change (the CLI's lists and the audit
        record): a local activity, off the path of every update's reply. A failing database
        delays the mirror, never the application."""
        while True:
            await workflow.wait_condition(self._mirror_due)
            if self.lean and await self._main_flow_steps():
                continue
            async with self._lane():
                # (LEAN_PATCH: the state as it is now that this holds the lane)
                if self.lean and not self._mirror_due():
                    continue
                version, upto = self.version, len(self.s.decisions)
                update = self._mirror_update(upto)
                kept = update.model_dump(exclude=SAME) if self.lean else None
                if self.lean and upto == self.decisions_mirrored and kept == self.last_mirror:
                    self.mirrored = version                   # nothing the database keeps has changed
                    continue
                if self.lean and not self.ending:
                    update.notices = [n for n in self.s.outbox if n.key is not None]
                try:
                    undelivered = await workflow.execute_local_activity(
                        "mirror_status", update, start_to_close_timeout=LOCAL_TIMEOUT, retry_policy=RETRY)
                    failed = None
                except ActivityError as e:
                    failed = e
            if failed is not None:
                self._log("mirror_failed", error=_cause(failed)[0])
                await workflow.sleep(MIRROR_PAUSE)
                continue
            sent = {n.key for n in update.notices} - set(undelivered or [])
            if sent:                             # those with a failed delivery stay for the notifier
                self.s.outbox = [n for n in self.s.outbox if n.key not in sent]
            self.mirrored, self.decisions_mirrored = version, upto
            self.last_mirror = kept
            # (a handler may have changed the state while the write ran: the loop looks again)

    def _mirror_due(self) -> bool:
        """The state changed since the mirror last wrote it, and no local step of the main flow runs."""
        return self.version > self.mirrored and self.s is not None and not self.stepping

    def _mirror_version(self) -> int:
        """Newest wins in the database. LEAN_PATCH: the workflow task's time in ms and the writes in
        it, so the writes of a task run again after a refused completion (which may decide other
        things, e.g. take a revocation first) outrank those of the refused attempt; before it: the
        programme year and the count of changes."""
        if not self.lean:
            return self.s.programme_year * 1_000_000 + self.version
        ms = int(workflow.now().timestamp() * 1000)
        n = self.mirror_at[1] + 1 if self.mirror_at[0] == ms else 1
        self.mirror_at = (ms, n)
        return ms * 1000 + n

    def _mirror_update(self, upto: int) -> StatusUpdate:
        return StatusUpdate(
            version=self._mirror_version(), application_id=self.app_id,
            clause_id=self.claim.clause_id, enterprise_code=self.claim.enterprise_code,
            enterprise_name=self.s.pinned.enterprise_name, year=self.s.year, status=self.s.status,
            awarded=self.s.awarded, bureaus=self.s.pinned.clause.bureaus, overdue=self.s.overdue,
            decisions=[(i, self.s.decisions[i]) for i in range(self.decisions_mirrored, upto)],
            **self._publicity_mirror())

    def _record(self, kind: str, who: str, bureau: Optional[str], comment: str = "",
                amount: Optional[Decimal] = None) -> DecisionRecord:
        rec = DecisionRecord(kind=kind, who=who, bureau=bureau, when=workflow.now(), comment=comment,
                             year=self.s.year, amount=amount)
        self._log("decision", kind=kind, who=who, bureau=bureau, year=self.s.year)
        self.s.decisions.append(rec)
        self._changed()
        return rec

    # ------------------------------------------------------------------------------ validation

    def _check_open(self) -> None:
        if self.s is None:
            raise _invalid(f"application {self.app_id} is still opening; try again in a moment")
        if self._finished() or self.s.closed:
            raise _invalid(f"application {self.app_id} is closed ({self.s.closed.kind if self.s.closed else self.s.status})")

    def _verified(self, payload, action: str) -> "creds.Credential":
        """The request's credential, verified: signed by a key the workers hold, for this
        application and this action, fresh, and for the person the request names."""
        try:
            cred = creds.verifier().verify(payload.credential, application_id=self.app_id, actions=(action,),
                                           now=workflow.now())
        except creds.CredentialError as e:
            raise _invalid(f"credential: {e}") from None
        named = getattr(payload, "reviewer", None) or getattr(payload, "operator", None) or getattr(payload, "who", None)
        if named and named != cred.user:
            raise _invalid(f"credential: signed for {cred.user}, but the request names {named}")
        return cred

    def _bureau_of(self, payload) -> Optional[str]:
        """The acting reviewer's bureau: the one their credential vouches for (the pinned registry
        only for requests recorded before credentials existed, when a history replays)."""
        if payload.credential is not None:
            return payload.credential.bureau
        return self.s.pinned.reviewers.get(getattr(payload, "reviewer", ""))

    def _check_decision(self, d: Decision, action: str) -> str:
        self._check_open()
        cred = self._verified(d, action)
        if cred.user == self.claim.operator:
            raise _invalid(f"{cred.user} submitted this application and cannot decide on it")
        if cred.role not in ("reviewer", "finance") or not cred.bureau:
            raise _invalid(f"{cred.user} is {cred.role}, not a reviewer of a bureau")
        required = self.s.pinned.clause.required_bureaus
        if cred.bureau not in required:
            raise _invalid(f"{cred.bureau} is not responsible for {self.claim.clause_id} (reviewers: {'、'.join(required)})")
        if self.s.status not in ("review", "info_requested") or self.s.programme_year > 1:
            raise _invalid(f"application is not in review (status {self.s.status})")
        if cred.bureau in self.review:
            r = self.review[cred.bureau]
            raise _invalid(f"{cred.bureau} has already decided ({r.kind} by {r.who})")
        return cred.bureau

    def _check_operator(self, a, action: str) -> None:
        if not a.operator or not a.operator.strip():
            raise _invalid("the operator must say who they are (operator)")
        if a.operator != self.claim.operator:
            raise _invalid(f"only the submitting operator ({self.claim.operator}) may do this, not {a.operator}")
        cred = self._verified(a, action)
        if cred.role != "operator":
            raise _invalid(f"credential: {cred.user} is {cred.role}, not an operator")

    def _merged(self, facts: dict[str, Any]) -> Facts:
        try:
            return Facts.model_validate({**self.s.facts.model_dump(mode="json", exclude_none=True), **facts})
        except ValueError as e:
            raise _invalid(f"facts: {e}") from None

    def _check_evidence(self, facts: dict[str, Any]) -> None:
        """A programme year's evidence gives only what that year needs; everything else (the
        item, the project, the programme year) stays as submitted."""
        allowed = self.s.pinned.clause.evidence_facts
        merged = self._merged(facts)
        for name in facts:
            if name not in allowed and getattr(merged, name, None) != getattr(self.s.facts, name, None):
                raise _invalid(f"facts.{name}: evidence for a programme year may not change it "
                               f"(it may give {', '.join(allowed)})")

    def _check_finance(self, payload, action: str, what: str) -> None:
        cred = self._verified(payload, action)
        finance = self.s.pinned.clause.finance_bureau
        if cred.role not in ("finance", "reviewer") or cred.bureau != finance:
            raise _invalid(f"only {finance} may {what}; {cred.user} is {cred.bureau or cred.role}")

    def _closable(self) -> None:
        """Withdraw / revoke: refused once everything is paid or being paid and no programme year
        can follow (a closure then would change nothing; say so instead of accepting it)."""
        self._check_open()
        if (self.s.status == "payout" and not any(t.state == "pending" for t in self.s.tranches)
                and not self._another_year()):
            raise _invalid(f"application {self.app_id}: every tranche is paid or being paid "
                           f"({self.s.awarded} paid so far); there is nothing left to close")

    # ------------------------------------------------------------------------------ updates

    @workflow.update(unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON)
    async def opened(self) -> dict:
        """Wait until the worker has opened the application (or refused its claim)."""
        await workflow.wait_condition(lambda: self.s is not None)
        return self._status_model().model_dump(mode="json")

    # Handlers run right after their validator, in the same workflow task: the state they see is
    # the state the validator checked. They record the decision with the bureau the credential
    # vouched for (the signature itself is checked by the validator, never again on replay).

    @workflow.update
    def approve(self, d: Decision) -> DecisionRecord:
        bureau = self._bureau_of(d)
        if d.amount is not None:
            if self.s.adjustment is None or self.s.adjustment.max_amount > d.amount:
                self.s.adjustment = Adjustment(max_amount=d.amount, reason=d.reason or "", reviewer=d.reviewer)
        rec = self._record("approve", d.reviewer, bureau, d.comment, d.amount)
        self.review[bureau] = rec
        return rec

    @approve.validator
    def _v_approve(self, d: Decision) -> None:
        self._check_decision(d, "approve")
        if self.s.status == "info_requested":
            raise _invalid("information was requested; wait for the enterprise to provide it")
        if d.amount is not None and not (d.reason and d.reason.strip()):
            raise _invalid("lowering an award needs a reason")

    @workflow.update
    def reject(self, d: Decision) -> DecisionRecord:
        bureau = self._bureau_of(d)
        rec = self._record("reject", d.reviewer, bureau, d.comment)
        self.review[bureau] = rec
        return rec

    @reject.validator
    def _v_reject(self, d: Decision) -> None:
        self._check_decision(d, "reject")
        if not d.comment.strip():
            raise _invalid("a rejection needs a comment")

    @workflow.update
    def request_info(self, d: Decision) -> DecisionRecord:
        rec = self._record("request_info", d.reviewer, self._bureau_of(d), d.comment)
        self._set_status("info_requested")
        self._tell("info_requested", d.comment, [self.claim.operator])
        return rec

    @request_info.validator
    def _v_request_info(self, d: Decision) -> None:
        self._check_decision(d, "request_info")
        if self.s.status != "review":
            raise _invalid(f"information can only be requested in review (status {self.s.status})")

    @workflow.update
    def provide_info(self, a: OperatorAction) -> DecisionRecord:
        self.s.facts = self._merged(a.facts)
        if self.publicity_on:
            self.facts_version += 1              # the provisional calculation runs again
        rec = self._record("provide_info", a.operator, None, a.comment)
        self._set_status("review")
        return rec

    @provide_info.validator
    def _v_provide_info(self, a: OperatorAction) -> None:
        self._check_open()
        if self.s.status != "info_requested":
            raise _invalid(f"no information was requested (status {self.s.status})")
        self._check_operator(a, "provide_info")
        self._merged(a.facts)

    @workflow.update
    def submit_evidence(self, a: OperatorAction) -> DecisionRecord:
        self.evidence = dict(a.facts)
        return self._record("submit_evidence", a.operator, None, a.comment)

    @submit_evidence.validator
    def _v_submit_evidence(self, a: OperatorAction) -> None:
        self._check_open()
        if self.s.status != "awaiting_evidence" or self.evidence is not None:
            raise _invalid(f"evidence is only accepted while awaiting evidence (status {self.s.status})")
        self._check_operator(a, "submit_evidence")
        self._check_evidence(a.facts)

    @workflow.update
    def confirm_year(self, c: YearConfirmation) -> DecisionRecord:
        self.confirmed = True
        return self._record("confirm_year", c.reviewer, self._bureau_of(c), c.comment)

    @confirm_year.validator
    def _v_confirm_year(self, c: YearConfirmation) -> None:
        self._check_open()
        if self.s.status != "confirming" or self.confirmed:
            raise _invalid(f"nothing to confirm (status {self.s.status})")
        self._check_finance(c, "confirm_year", "confirm a programme year")

    @workflow.update
    def withdraw(self, a: OperatorAction) -> DecisionRecord:
        self.s.closed = Closure(kind="withdrawn", who=a.operator, reason=a.comment)
        self._changed()
        return self._record("withdraw", a.operator, None, a.comment)

    @withdraw.validator
    def _v_withdraw(self, a: OperatorAction) -> None:
        self._closable()
        self._check_operator(a, "withdraw")

    @workflow.update
    def revoke(self, r: Revocation) -> DecisionRecord:
        self.s.closed = Closure(kind="revoked", who=r.reviewer, reason=r.reason)
        self._changed()
        return self._record("revoke", r.reviewer, self._bureau_of(r), r.reason)

    @revoke.validator
    def _v_revoke(self, r: Revocation) -> None:
        self._closable()
        self._check_finance(r, "revoke", "revoke an application")

    @workflow.update
    def resume(self, r: Resumption) -> DecisionRecord:
        self.resumed = True
        return self._record("resume", r.who, None, r.comment)

    @resume.validator
    def _v_resume(self, r: Resumption) -> None:
        if self.s is None or self.s.status != "attention":
            raise _invalid(f"nothing to resume (status {self.s.status if self.s else 'opening'})")
        cred = self._verified(r, "resume")
        finance = self.s.pinned.clause.finance_bureau
        if not (cred.role == "ops" or cred.bureau == finance
                or (cred.role == "operator" and cred.user == self.claim.operator)):
            raise _invalid(f"only ops, {finance} or the submitting operator may resume; {cred.user} is {cred.role}")

    @workflow.update
    def retry_budget(self, r: Resumption) -> DecisionRecord:
        self.budget_retry = True
        return self._record("retry_budget", r.who, self._bureau_of(r), r.comment)

    @retry_budget.validator
    def _v_retry_budget(self, r: Resumption) -> None:
        self._check_open()
        if self.s.status != "awaiting_budget":
            raise _invalid(f"not awaiting budget (status {self.s.status})")
        self._check_finance(r, "retry_budget", "try the budget again")

    @workflow.update
    def reject_for_budget(self, r: Revocation) -> DecisionRecord:
        self.budget_refusal = r
        return self._record("reject_for_budget", r.reviewer, self._bureau_of(r), r.reason)

    @reject_for_budget.validator
    def _v_reject_for_budget(self, r: Revocation) -> None:
        self._check_open()
        if self.s.status != "awaiting_budget" or self.budget_refusal is not None:
            raise _invalid(f"not awaiting budget (status {self.s.status})")
        self._check_finance(r, "reject_for_budget", "reject an application for budget")

    # ------------------------------------------------------------------- clawback and amendments (patch
    # clawback-amend; the database side is models/recovery.py and models/amendments.py)

    async def _recover(self) -> None:
        """The recovery ordered while the application ran, once its unpaid tranches are cancelled:
        the worker reads what was paid from its ledger and writes the recovery entries and the bar."""
        c = self.s.clawback
        info = workflow.info()
        c.result = await self._activity("recover_award", RecoverRequest(
            application_id=self.app_id, order=c.order, who=c.who, bureau=c.bureau,
            day=china_today(workflow.now()).isoformat(),
            source=f"{self.app_id}/clawback/{info.first_execution_run_id}"),
            result_type=RecoveryResult, closable=False)
        r = c.result
        self.s.note = (f"recovered {r.amount} ({c.order.basis}: {c.order.reason})" + (f"; {r.bar}" if r.bar else "")
                       if r.refused is None else f"recovery refused: {r.refused}")
        if r.refused is None:
            self.s.awarded -= r.amount
            self._upsert(sa.AWARDED_FEN.value_set(int(self.s.awarded * 100)))
        self._log("recovered", amount=str(r.amount), refused=r.refused, order=r.order_id)
        self._changed()

    def _award_now(self) -> Decimal:
        return sum((t.amount for t in self.s.tranches if t.year == self.s.year and t.state != "cancelled"), Decimal(0))

    def _open_amendment(self) -> Optional[Amendment]:
        return next((a for a in self.s.amendments if a.state in ("proposed", "approved")), None)

    async def _amend_loop(self) -> None:
        """Applies each amendment finance approved to the award book (models/amendments.py), one
        at a time; the book may refuse it (a cap), which the amendment's note says."""
        while True:
            await workflow.wait_condition(lambda: self.s is not None and any(a.state == "approved"
                                                                             for a in self.s.amendments))
            a = next(a for a in self.s.amendments if a.state == "approved")
            try:
                res: AmendResult = await workflow.execute_activity("amend_award", AmendRequest(
                    application_id=self.app_id, enterprise_code=self.claim.enterprise_code, year=a.year,
                    number=a.number, after=a.after, reason=a.reason, proposed_by=a.proposed_by,
                    approved_by=a.decided_by or "", as_of=china_today(workflow.now()).isoformat()),
                    result_type=AmendResult, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=RETRY)
            except ActivityError as e:
                res = AmendResult(applied=False, refusal=f"the award book could not apply it: {_cause(e)[1][:300]}")
            if not res.applied:
                a.state, a.note = "rejected", f"refused by the award book: {res.refusal}"
            else:
                a.state, a.settled = "applied", res.settled
                new = {t["seq"]: t for t in res.tranches}
                for t in self.s.tranches:
                    if t.year == a.year and t.seq in new:
                        t.amount = Decimal(new[t.seq]["amount"])
                        if new[t.seq]["state"] == "released" and t.state == "pending":
                            t.state = "cancelled"
                self.s.awarded += res.settled
                a.note = (f"applied: {res.before} → {res.after}" +
                          (f"; settled in the ledger: {res.settled:+}" if res.settled else "; on unpaid tranches"))
                self._upsert(sa.AWARDED_FEN.value_set(int(self.s.awarded * 100)))
            self._log("amendment", number=a.number, state=a.state, note=a.note)
            self._changed()

    def _check_clawing(self, what: str) -> None:
        self._check_open()
        if not self.clawing:
            raise _invalid(f"application {self.app_id} was opened before {what} existed; "
                           + ("order the recovery once it has ended" if what == "recoveries"
                              else "it cannot be amended"))

    @workflow.update
    def clawback(self, o: ClawbackOrder) -> DecisionRecord:
        bureau = self._bureau_of(o) or ""
        self.s.clawback = Clawback(order=o.model_copy(update={"credential": None}), who=o.reviewer, bureau=bureau,
                                   when=workflow.now())
        self.s.closed = Closure(kind="recovered", who=o.reviewer, reason=f"{o.basis}: {o.reason}")
        self._changed()
        return self._record("clawback", o.reviewer, bureau, f"{o.basis}: {o.reason}", o.amount)

    @clawback.validator
    def _v_clawback(self, o: ClawbackOrder) -> None:
        self._check_clawing("recoveries")
        self._check_finance(o, "clawback", "order a recovery")
        if self.s.awarded <= 0:
            raise _invalid(f"nothing has been paid to {self.app_id}, nothing to recover "
                           "(withdraw or revoke it instead)")
        if o.amount is not None and o.amount > self.s.awarded:
            raise _invalid(f"amount: {o.amount} is more than was paid ({self.s.awarded})")

    @workflow.update
    def propose_amendment(self, p: AmendmentProposal) -> Amendment:
        a = Amendment(number=len(self.s.amendments) + 1, year=self.s.year, before=self._award_now(), after=p.amount,
                      reason=p.reason, proposed_by=p.reviewer, proposed_at=workflow.now())
        self.s.amendments.append(a)
        self._record("propose_amendment", p.reviewer, self._bureau_of(p), f"#{a.number} {a.before} → {a.after}: "
                     f"{p.reason}", p.amount)
        self._tell("amendment_proposed", f"#{a.number} {a.before} → {a.after}: {p.reason}",
                   [self.s.pinned.clause.finance_bureau])
        return a

    @propose_amendment.validator
    def _v_propose_amendment(self, p: AmendmentProposal) -> None:
        self._check_clawing("amendments")
        cred = self._verified(p, "propose_amendment")
        lead = self.s.pinned.clause.lead_bureau
        if cred.role not in ("reviewer", "finance") or cred.bureau != lead:
            raise _invalid(f"only a reviewer of {lead} (the lead bureau) may propose an amendment; "
                           f"{cred.user} is {cred.bureau or cred.role}")
        if self.s.status not in ("payout", "awaiting_evidence") or self._award_now() <= 0:
            raise _invalid(f"no approved award to amend (status {self.s.status})")
        open_ = self._open_amendment()
        if open_ is not None:
            raise _invalid(f"amendment #{open_.number} is still {open_.state}; one at a time")
        if p.amount == self._award_now():
            raise _invalid(f"amount: the award for {self.s.year} is already {p.amount}")

    def _decided(self, d: AmendmentDecision, state: str) -> Amendment:
        a = self._open_amendment()
        a.state, a.decided_by, a.comment = state, d.reviewer, d.comment
        self._record("approve_amendment" if state == "approved" else "refuse_amendment", d.reviewer,
                     self._bureau_of(d), f"#{a.number}: {d.comment}")
        self._changed()
        return a

    def _check_amendment_decision(self, d: AmendmentDecision, action: str) -> None:
        self._check_clawing("amendments")
        cred = self._verified(d, action)
        a = self._open_amendment()
        if a is None or a.state != "proposed" or (d.number is not None and d.number != a.number):
            raise _invalid("no amendment " + (f"#{d.number} " if d.number else "") + "is waiting for a decision")
        if cred.user == a.proposed_by:
            raise _invalid(f"{cred.user} proposed amendment #{a.number} and cannot decide on it")
        self._check_finance(d, action, "decide on an amendment")

    @workflow.update
    def approve_amendment(self, d: AmendmentDecision) -> Amendment:
        return self._decided(d, "approved")

    @approve_amendment.validator
    def _v_approve_amendment(self, d: AmendmentDecision) -> None:
        self._check_amendment_decision(d, "approve_amendment")

    @workflow.update
    def refuse_amendment(self, d: AmendmentDecision) -> Amendment:
        return self._decided(d, "refused")

    @refuse_amendment.validator
    def _v_refuse_amendment(self, d: AmendmentDecision) -> None:
        self._check_amendment_decision(d, "refuse_amendment")
        if not d.comment.strip():
            raise _invalid("refusing an amendment needs a comment")

    # ------------------------------------------------------------------------------ provisional calculation and 公示
    # (patch "provisional-and-publicity", models/publicity.py; applications opened before it skip both)

    async def _provisional_loop(self) -> None:
        """The calculation core on the claim when the application opens and after every
        provide_info (a local activity that commits nothing): reviewers see the amount and its
        trace. A refusal, or a claim the core cannot calculate, is shown, never fails anything."""
        while True:
            await workflow.wait_condition(lambda: self.s is not None and self.facts_version > self.provisional_seen)
            version, now = self.facts_version, workflow.now()
            req = self._estimate_request(self.s.facts.model_dump(mode="json", exclude_none=True), now)
            self.stepping += self.lean                 # the mirror writes once it is known
            try:
                async with self._lane():               # (the facts of `req` are the claim's at `version`)
                    res: Provisional = await workflow.execute_local_activity(
                        "provisional_calculation", req, result_type=Provisional,
                        start_to_close_timeout=LOCAL_TIMEOUT, retry_policy=RETRY)
            except ActivityError as e:
                kind, message = _cause(e)
                res = Provisional(error=f"the provisional calculation failed: {kind}: {message[:300]}",
                                  facts=req.facts, computed_at=now, as_of=req.as_of)
            finally:
                self.stepping -= self.lean
            self._provisional(res, version)

    def _estimate_request(self, facts: dict, now) -> ProvisionalRequest:
        return ProvisionalRequest(
            application_id=self.app_id, clause_id=self.claim.clause_id, year=self.claim.year if self.s is None
            else self.s.year, enterprise_code=self.claim.enterprise_code, facts=facts,
            as_of=china_today(now).isoformat(), alternatives=self.claim.alternatives, computed_at=now)

    def _provisional(self, res: Provisional, version: int) -> None:
        self.provisional_seen = version
        self.s.provisional = res
        self._log("provisional", amount=res.amount, refusal=res.refusal, error=res.error)
        self._changed()
        self._show_details()

    async def _publicity(self, period: Optional[Period] = None) -> bool:
        """公示: the award is published for its notice period (working days, policy data, counted by
        an activity on the official calendar); payout waits until 00:00 China after the last notice
        day and until every objection is decided. An upheld objection rejects the application (the
        award book releases its commitment in _finish). Then the credit check again (LEAN2_PATCH: the
        payment's). `period`: computed by settle_award (LEAN2_PATCH). False if it ended."""
        p = period
        if p is None:
            p = await self._activity("publicity_period", PeriodRequest(
                application_id=self.app_id, clause_id=self.calc.clause_id or self.claim.clause_id,
                published=workflow.now(), day_seconds=self.s.pinned.publicity_day_seconds), result_type=Period)
            self._check_closed()
        self.s.publicity = PublicityState(period=p)
        self._upsert(sa.PUBLICITY_END.value_set(p.ends_at))
        self._set_status("publicity")
        self._log("publicity", ends_at=p.ends_at.isoformat(), day_seconds=p.day_seconds)
        self._tell("publicity", f"{self.calc.amount} · {p.describe()}",
                   [self.s.pinned.clause.lead_bureau, self.claim.operator])
        # Whether the period is over is known from its timer having fired, not by comparing the
        # clock with its end: a worker answering a status query replays the history and handles a
        # timer that fired (its task not yet started, e.g. its worker was killed) with the time of
        # the last recorded step, before the period's end, and that worker then carries on from
        # this state (tests/test_scale.py saw it start a second 公示 timer). LEAN_PATCH from the
        # start; applications opened before it once the timer fires (PUBLICITY_TIMER_PATCH).
        over = workflow.now() >= p.ends_at       # (the time the period's step completed)
        by_timer = self.lean
        while True:
            pub = self.s.publicity
            upheld = pub.upheld()
            if upheld is not None:
                pub.ended = True
                self.s.note = (f"objection #{upheld.number} upheld by {upheld.decided_by} "
                               f"({self.s.pinned.clause.lead_bureau}): {upheld.decision_reason}")
                self._set_status("rejected")
                return False
            now = workflow.now()
            if (over if by_timer else now >= p.ends_at) and not pub.open_objections():
                break
            tick = self.publicity_tick
            if by_timer:                         # a timer until the end unless it fired
                left = None if over else max(p.ends_at - now, timedelta(milliseconds=1))
            else:
                left = p.ends_at - now if now < p.ends_at else None
            try:
                await workflow.wait_condition(lambda: self.s.closed is not None or self.publicity_tick != tick,
                                              timeout=left)
            except asyncio.TimeoutError:
                over = True
                by_timer = by_timer or workflow.patched(PUBLICITY_TIMER_PATCH)
            self._check_closed()
        self.s.publicity.ended = True
        self._changed()
        return self.lean2 or await self._credit_ok()

    def _show_details(self) -> None:
        """The Web UI's current details (markdown): status, provisional amount, award, 公示."""
        if not self.publicity_on or self.s is None:
            return
        lines = [f"**status** {self.s.status}"]
        prov = self.s.provisional
        if prov is not None:
            shown = prov.error or (f"refused — {prov.refusal}" if prov.refusal else f"{prov.amount} 元")
            lines.append(f"**provisional amount** {shown}")
        if self.calc is not None and self.calc.refusal is None:
            lines.append(f"**award** {self.calc.amount} 元")
        pub = self.s.publicity
        if pub is not None and self.s.status == "publicity":
            lines.append(f"**公示** {pub.period.describe()}")
            if pub.open_objections():
                lines.append(f"**objections open** {len(pub.open_objections())} (payout waits for the lead bureau)")
        if self.s.note:
            lines.append(f"**note** {self.s.note}")
        workflow.set_current_details("\n\n".join(lines))

    def _publicity_mirror(self) -> dict:
        """The status mirror's columns for the publishable list and the provisional amount."""
        if not self.publicity_on:
            return {}
        out: dict[str, Any] = {}
        if self.s.provisional is not None and self.s.provisional.amount is not None:
            out["provisional"] = Decimal(self.s.provisional.amount)
        if self.calc is not None and self.calc.refusal is None and self.s.programme_year == 1:
            out["amount"] = self.calc.amount
        if self.s.publicity is not None:
            out["publicity_from"] = self.s.publicity.period.first_day
            out["publicity_until"] = self.s.publicity.period.last_day
        return out

    def _check_publicity(self) -> PublicityState:
        self._check_open()
        if self.s.status != "publicity" or self.s.publicity is None:
            raise _invalid(f"application is not in its 公示 period (status {self.s.status})")
        return self.s.publicity

    @workflow.update
    def object(self, o: Objection) -> ObjectionRecord:
        pub = self.s.publicity
        rec = ObjectionRecord(number=len(pub.objections) + 1, objector_name=o.objector_name,
                              objector_contact=o.objector_contact, reason=o.reason, recorded_by=o.who,
                              filed_at=workflow.now())
        pub.objections.append(rec)
        self.publicity_tick += 1
        self._record("object", o.who, o.credential.bureau if o.credential else None,
                     f"objection #{rec.number}: {o.reason}")
        self._tell("objection", f"#{rec.number}: {o.reason}", [self.s.pinned.clause.lead_bureau])
        self._show_details()
        return rec

    @object.validator
    def _v_object(self, o: Objection) -> None:
        pub = self._check_publicity()
        if workflow.now() >= pub.period.ends_at:
            raise _invalid(f"the 公示 period ended at {pub.period.ends_at.isoformat()}; objections are accepted "
                           "only within it")
        cred = self._verified(o, "object")
        if cred.user == self.claim.operator:
            raise _invalid(f"{cred.user} submitted this application (for the enterprise) and cannot record an "
                           "objection to it")
        if cred.role not in ("operator", "reviewer", "finance", "ops"):
            raise _invalid(f"credential: {cred.user} is {cred.role}; objections are recorded by staff")

    def _rule(self, r: ObjectionRuling, state: str) -> ObjectionRecord:
        rec = self.s.publicity.objections[r.objection - 1]
        rec.state, rec.decided_by, rec.decided_at, rec.decision_reason = state, r.reviewer, workflow.now(), r.reason
        self.publicity_tick += 1
        self._record(f"{'uphold' if state == 'upheld' else 'dismiss'}_objection", r.reviewer, self._bureau_of(r),
                     f"objection #{r.objection}: {r.reason}")
        self._show_details()
        return rec

    def _check_ruling(self, r: ObjectionRuling, action: str) -> None:
        pub = self._check_publicity()
        if r.objection > len(pub.objections):
            raise _invalid(f"objection: there is no objection #{r.objection} ({len(pub.objections)} filed)")
        if pub.objections[r.objection - 1].state != "open":
            raise _invalid(f"objection #{r.objection} is already {pub.objections[r.objection - 1].state}")
        cred = self._verified(r, action)
        lead = self.s.pinned.clause.lead_bureau
        if cred.role not in ("reviewer", "finance") or cred.bureau != lead:
            raise _invalid(f"only the lead bureau {lead} decides objections; {cred.user} is {cred.bureau or cred.role}")

    @workflow.update
    def uphold_objection(self, r: ObjectionRuling) -> ObjectionRecord:
        return self._rule(r, "upheld")

    @uphold_objection.validator
    def _v_uphold_objection(self, r: ObjectionRuling) -> None:
        self._check_ruling(r, "uphold_objection")

    @workflow.update
    def dismiss_objection(self, r: ObjectionRuling) -> ObjectionRecord:
        return self._rule(r, "dismissed")

    @dismiss_objection.validator
    def _v_dismiss_objection(self, r: ObjectionRuling) -> None:
        self._check_ruling(r, "dismiss_objection")

    # ------------------------------------------------------------------------------ queries

    def _status_model(self) -> ApplicationStatus:
        if self.s is None:
            return ApplicationStatus(application_id=self.app_id, status="opening", clause_id=self.claim.clause_id,
                                     enterprise_code=self.claim.enterprise_code, year=self.claim.year,
                                     note=self.failed)
        calc = None
        if self.calc is not None:
            calc = {"amount": str(self.calc.amount),
                    "refusal": self.calc.refusal.model_dump(mode="json") if self.calc.refusal else None,
                    "tranches": len(self.calc.schedule), "items": {k: str(v) for k, v in self.calc.items.items()}}
        return ApplicationStatus(
            application_id=self.app_id, status=self.s.status, clause_id=self.claim.clause_id,
            enterprise_code=self.claim.enterprise_code, enterprise_name=self.s.pinned.enterprise_name,
            year=self.s.year, programme_year=self.s.programme_year, programme_years=self._programme_length(),
            required_bureaus=self.s.pinned.clause.required_bureaus, decisions=self.s.decisions,
            overdue=self.s.overdue, awarded=self.s.awarded, tranches=self.s.tranches, calculation=calc,
            note=self.s.note, closed=self.s.closed, recovery=self.s.clawback, amendments=self.s.amendments,
            provisional=self.s.provisional, publicity=self.s.publicity)

    @workflow.query(name="status")
    def get_status(self) -> dict:
        return self._status_model().model_dump(mode="json")

    @workflow.query(name="decisions")
    def decisions_so_far(self) -> list[DecisionRecord]:
        return self.s.decisions if self.s else []

    @workflow.query
    def calculation(self) -> Optional[CalcResult]:
        return self.calc

    @workflow.query(name="tranches")
    def tranche_states(self) -> list[TrancheState]:
        return self.s.tranches if self.s else []
