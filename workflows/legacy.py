"""The first version of the application workflow (workflow type "ApplicationWorkflow"), frozen.

It trusted its input (bureaus, reviewers, tranches) and paid from a ledger that only counted paid
tranches; the current workflow is workflows/application.py (type "Application"). This class stays
registered only so that applications started under it can finish and their histories replay
(tests/test_replay.py). New starts of this type are refused (the `LEGACY_CLOSED` patch): anyone
who can reach Temporal could otherwise start it with a forged input. Nothing else here may change.
"""
from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, Optional

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from calc.model import CalcResult, Facts
    from models.legacy import (
        BlacklistCheck, BlacklistResult, TERMINAL, ApplicationStatus, AwardSoFar, CalcInput, Decision, DecisionRecord, Notification, OperatorAction,
        PayoutInput, PayoutRecord, ReviewerRegistry, Revocation, StatusUpdate, TrancheState, WorkflowInput,
        YearConfirmation,
    )
    from models import search_attributes as sa

# Retry until it works (a database outage must not fail an application that runs for years);
# business refusals are raised non-retryable by the activities and end the retries at once.
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                    maximum_interval=timedelta(minutes=5), maximum_attempts=0)
ACTIVITY_TIMEOUT = timedelta(seconds=60)


def _invalid(message: str) -> ApplicationError:
    """A refused request (update validator/handler): fails the update, never the workflow."""
    return ApplicationError(message, type="InvalidRequest", non_retryable=True)


def _cause_message(err: BaseException) -> str:
    cause = err.cause if isinstance(err, ActivityError) and err.cause is not None else err
    return getattr(cause, "message", None) or str(cause)


LEGACY_CLOSED = "legacy-workflow-closed-to-new-starts"


@workflow.defn(name="ApplicationWorkflow")
class LegacyApplicationWorkflow:
    @workflow.init
    def __init__(self, inp: WorkflowInput) -> None:
        self.inp = inp
        self.app = inp.application
        self.status = "review" if inp.programme_year == 1 else "credit_check"
        self.decisions: list[DecisionRecord] = list(inp.decisions)
        self.tranches: list[TrancheState] = list(inp.tranches)
        self.awarded: Decimal = inp.awarded_total
        self.review: dict[str, DecisionRecord] = {}      # bureau -> approve/reject this review
        self.closed: Optional[str] = None                # withdrawn / revoked (set by handlers)
        self.overdue = False
        self.evidence: Optional[dict[str, Any]] = None
        self.confirmed = False
        self.adjustment: Optional[dict[str, Any]] = None
        self.calc: Optional[CalcResult] = None
        self.note: Optional[str] = None
        self.mirrors = 0                                 # versions the status rows in the database

    # ------------------------------------------------------------------------------ run

    @workflow.run
    async def run(self, inp: WorkflowInput) -> dict:
        """Year 1: review -> credit check -> calculation -> payout.
        Year n > 1 (a new run, the year's evidence in its facts): calculation -> finance bureau
        confirms -> credit check -> payout. Then, while the programme lasts, wait for the next
        year's evidence and continue as new."""
        if workflow.info().continued_run_id is None and workflow.patched(LEGACY_CLOSED):
            # a new start of the first version (not the next programme year of one already
            # running): it would trust a forged input
            raise ApplicationError("the first version of the application workflow takes no new applications; "
                                   "submit through `disburse submit` (workflow type Application)",
                                   type="LegacyWorkflowClosed", non_retryable=True)
        await self._mirror()
        if inp.programme_year == 1:
            await self._review()
            if self._finished():
                return await self._finish()
            await self._set_status("credit_check")
            if await self._blacklisted():
                return await self._finish()
            await self._set_status("calculating")
            if not await self._calculate():
                return await self._finish()
        else:
            await self._set_status("calculating")
            if not await self._calculate():
                return await self._finish()
            await self._set_status("confirming")
            await self._wait_with_sla(lambda: self.closed is not None or self.confirmed)
            if self.closed:
                await self._set_status(self.closed)
                return await self._finish()
            await self._set_status("credit_check")
            if await self._blacklisted():
                self._cancel_pending()
                return await self._finish()
        await self._set_status("payout")
        await self._payout()
        if self._finished():
            return await self._finish()
        if self._another_year():
            await self._await_evidence()     # continues as new unless closed / no evidence
        if not self._finished():
            await self._set_status("completed")
        return await self._finish()

    def _rejected(self) -> bool:
        return any(d.kind == "reject" for d in self.review.values())

    def _finished(self) -> bool:
        return self.status in TERMINAL

    async def _finish(self) -> dict:
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._cancel_pending()             # whatever ended the application, nothing more is paid
        await self._mirror()
        return self._status_model().model_dump(mode="json")

    # ------------------------------------------------------------------------------ phases

    async def _wait_with_sla(self, done) -> None:
        """Wait for done(); every review_sla_days without it: Overdue, escalate, keep waiting."""
        while True:
            try:
                await workflow.wait_condition(done, timeout=timedelta(days=self.app.review_sla_days))
                if self.overdue:
                    self.overdue = False
                    self._upsert(sa.OVERDUE.value_set(False))
                return
            except asyncio.TimeoutError:
                if self.status == "info_requested":
                    continue                      # waiting on the enterprise, not the bureaus
                self.overdue = True
                self._log("overdue", status=self.status, sla_days=self.app.review_sla_days)
                self._upsert(sa.OVERDUE.value_set(True))
                pending = [b for b in self.inp.clause.required_bureaus if b not in self.review] \
                    if self.status == "review" else [self.inp.clause.finance_bureau]
                await self._activity("notify", Notification(
                    application_id=self.app.application_id, kind="escalation",
                    message=f"{self.status} overdue (> {self.app.review_sla_days} days); waiting for "
                            + "、".join(pending), recipients=pending))
                await self._mirror()

    async def _review(self) -> None:
        required = self.inp.clause.required_bureaus
        await self._wait_with_sla(lambda: self.closed is not None or self._rejected()
                                  or (self.status == "review" and all(b in self.review for b in required)))
        if self.closed:
            await self._set_status(self.closed)
        elif self._rejected():
            await self._set_status("rejected")

    async def _blacklisted(self) -> bool:
        res: BlacklistResult = await self._activity("check_blacklist", BlacklistCheck(
            application_id=self.app.application_id, clause_id=self.app.clause_id,
            enterprise_code=self.app.enterprise_code), result_type=BlacklistResult)
        if res.listed:
            self.note = f"blacklisted: {res.reason}"
            await self._set_status("blacklisted")
        return res.listed

    async def _calculate(self) -> bool:
        try:
            self.calc = await self._activity("calculate_award", CalcInput(
                application_id=self.app.application_id, clause_id=self.app.clause_id, year=self.app.year,
                enterprise_code=self.app.enterprise_code, facts=self.app.facts,
                as_of=workflow.now().date().isoformat(), alternatives=self.app.alternatives,
                adjustment=self.adjustment), result_type=CalcResult)
        except ActivityError as e:
            self.note = _cause_message(e)
            await self._set_status("refused")
            return False
        if self.calc.refusal is not None:
            self.note = f"{self.calc.refusal.code}: {self.calc.refusal.reason}"
            if self.inp.programme_year > 1:      # the years already paid stand; the programme ends
                self.note = f"programme ended: {self.app.year} not supported ({self.note})"
                await self._set_status("completed")
            else:
                await self._set_status("refused")
            return False
        for t in self.calc.schedule:
            self.tranches.append(TrancheState(year=self.app.year, seq=t.seq, due=t.due.isoformat(),
                                              amount=t.amount, label=t.label, clause_id=self.calc.clause_id,
                                              item_id=self.calc.item_id))
        return True

    async def _payout(self) -> None:
        """Pay this year's tranches in order, each on its due date (durable timer). A tranche that
        waited, or any after the first, re-checks the blacklist first; withdraw/revoke/blacklist
        cancel whatever is still pending."""
        for t in [t for t in self.tranches if t.year == self.app.year and t.state == "pending"]:
            waited = await self._sleep_until(t.due)
            if not self.closed and (waited or t.seq > 1):
                await self._blacklisted()
            if self.closed or self._finished():
                self._cancel_pending()
                if not self._finished():
                    await self._set_status(self.closed)
                return
            rec: PayoutRecord = await self._activity("record_payout", PayoutInput(
                application_id=self.app.application_id, clause_id=t.clause_id or self.app.clause_id,
                enterprise_code=self.app.enterprise_code, year=t.year, seq=t.seq, amount=t.amount,
                due=t.due, label=t.label, item_id=t.item_id), result_type=PayoutRecord)
            t.state = "paid"
            self._log("tranche_paid", year=t.year, seq=t.seq, amount=str(rec.amount), first_write=rec.created)
            self.awarded += rec.amount
            self._upsert(sa.AWARDED_AMOUNT.value_set(float(self.awarded)))
            await self._mirror()

    async def _sleep_until(self, day: str) -> bool:
        """Wait until 00:00 UTC of `day` or until the application is closed; True if it waited."""
        due = datetime.combine(date.fromisoformat(day), time(0, 0), tzinfo=timezone.utc)
        if due <= workflow.now():
            return False
        try:
            await workflow.wait_condition(lambda: self.closed is not None, timeout=due - workflow.now())
        except asyncio.TimeoutError:
            pass
        return True

    def _another_year(self) -> bool:
        """Does the programme go on? Up to programme_years, never past the policy window."""
        clause = self.inp.clause
        return (self.inp.programme_year < clause.programme_years
                and (clause.last_year is None or self.app.year + 1 <= clause.last_year))

    def _programme_length(self) -> int:
        clause, first_year = self.inp.clause, self.app.year - self.inp.programme_year + 1
        if clause.last_year is None:
            return clause.programme_years
        return max(1, min(clause.programme_years, clause.last_year - first_year + 1))

    def _evidence_deadline(self) -> timedelta:
        """Evidence for year Y+1 is due evidence_deadline_days after Y+1 ends."""
        end = datetime(self.app.year + 1, 12, 31, tzinfo=timezone.utc) + timedelta(days=self.app.evidence_deadline_days)
        return max(end - workflow.now(), timedelta(seconds=1))

    async def _await_evidence(self) -> None:
        await self._set_status("awaiting_evidence")
        try:
            await workflow.wait_condition(lambda: self.closed is not None or self.evidence is not None,
                                          timeout=self._evidence_deadline())
        except asyncio.TimeoutError:
            self.note = f"programme ended: no evidence for {self.app.year + 1} by the deadline"
            await self._activity("notify", Notification(
                application_id=self.app.application_id, kind="programme_ended", message=self.note,
                recipients=[self.app.operator]))
            return
        if self.closed:
            await self._set_status(self.closed)
            return
        await workflow.wait_condition(workflow.all_handlers_finished)
        year_amount = sum((t.amount for t in self.tranches if t.year == self.app.year and t.state == "paid"),
                          Decimal("0"))
        facts = {**self.app.facts.model_dump(mode="json", exclude_none=True), **(self.evidence or {})}
        if self.app.facts.programme_year is not None and "programme_year" not in (self.evidence or {}):
            facts["programme_year"] = self.app.facts.programme_year + 1
        nxt = self.inp.model_copy(update={
            "application": self.app.model_copy(update={"year": self.app.year + 1,
                                                       "facts": Facts.model_validate(facts)}),
            "programme_year": self.inp.programme_year + 1,
            "awards": [*self.inp.awards, AwardSoFar(year=self.app.year, amount=year_amount)],
            "awarded_total": self.awarded, "decisions": self.decisions, "tranches": self.tranches,
        })
        workflow.continue_as_new(nxt)

    def _cancel_pending(self) -> None:
        for t in self.tranches:
            if t.state == "pending":
                t.state = "cancelled"

    # ------------------------------------------------------------------------------ helpers

    async def _activity(self, name: str, arg: Any, result_type: Any = None) -> Any:
        return await workflow.execute_activity(name, arg, result_type=result_type,
                                               start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=RETRY)

    def _upsert(self, *updates) -> None:
        if self.inp.search_attributes:
            workflow.upsert_search_attributes(list(updates))

    def _log(self, event: str, **fields: Any) -> None:
        """A structured log line (activities/logs.py renders it as JSON); not repeated on replay."""
        workflow.logger.info(event, extra={"application_id": self.app.application_id,
                                           "clause_id": self.app.clause_id, **fields})

    async def _set_status(self, status: str) -> None:
        self._log("status", status=status, year=self.app.year, note=self.note)
        self.status = status
        self._upsert(sa.STATUS.value_set(status))
        await self._mirror()

    async def _mirror(self, decision: Optional[DecisionRecord] = None) -> None:
        self.mirrors += 1
        await self._activity("record_status", StatusUpdate(
            version=self.inp.programme_year * 1_000_000 + self.mirrors,
            application_id=self.app.application_id, clause_id=self.app.clause_id,
            enterprise_code=self.app.enterprise_code, enterprise_name=self.app.enterprise_name,
            year=self.app.year, status=self.status, awarded=self.awarded, bureaus=self.inp.clause.bureaus,
            overdue=self.overdue, decision=decision))

    def _record(self, kind: str, who: str, bureau: Optional[str], comment: str = "",
                amount: Optional[Decimal] = None) -> DecisionRecord:
        rec = DecisionRecord(kind=kind, who=who, bureau=bureau, when=workflow.now(), comment=comment,
                             year=self.app.year, amount=amount)
        self._log("decision", kind=kind, who=who, bureau=bureau, year=self.app.year)
        self.decisions.append(rec)
        return rec

    # ------------------------------------------------------------------------------ validation

    def _open(self) -> None:
        if self._finished() or self.closed:
            raise _invalid(f"application {self.app.application_id} is closed ({self.closed or self.status})")

    def _bureau_of(self, reviewer: str) -> str:
        if reviewer == self.app.operator:
            raise _invalid(f"{reviewer} submitted this application and cannot decide on it")
        bureau = self.inp.reviewers.get(reviewer)
        if bureau is None:
            raise _invalid(f"reviewer {reviewer!r} is not registered")
        return bureau

    def _check_decision(self, d: Decision) -> str:
        self._open()
        bureau = self._bureau_of(d.reviewer)
        if bureau not in self.inp.clause.required_bureaus:
            raise _invalid(f"{bureau} is not responsible for {self.app.clause_id} "
                             f"(reviewers: {'、'.join(self.inp.clause.required_bureaus)})")
        if self.status not in ("review", "info_requested"):
            raise _invalid(f"application is not in review (status {self.status})")
        if bureau in self.review:
            raise _invalid(f"{bureau} has already decided ({self.review[bureau].kind} by {self.review[bureau].who})")
        return bureau

    def _check_operator(self, operator: str) -> None:
        if not operator:
            raise _invalid("the operator must say who they are (operator)")
        if operator != self.app.operator:
            raise _invalid(f"only the submitting operator ({self.app.operator}) may do this, not {operator}")

    def _check_facts(self, facts: dict[str, Any]) -> None:
        merged = {**self.app.facts.model_dump(mode="json", exclude_none=True), **facts}
        try:
            Facts.model_validate(merged)
        except ValueError as e:
            raise _invalid(f"facts: {e}") from None

    def _finance(self, reviewer: str, what: str) -> str:
        bureau = self._bureau_of(reviewer)
        if bureau != self.inp.clause.finance_bureau:
            raise _invalid(f"only {self.inp.clause.finance_bureau} may {what}; {reviewer} is {bureau}")
        return bureau

    # ------------------------------------------------------------------------------ updates

    @workflow.update
    async def approve(self, d: Decision) -> DecisionRecord:
        bureau = self._check_decision(d)
        if d.amount is not None:
            adj = {"max_amount": str(d.amount), "reason": d.reason, "reviewer": d.reviewer}
            if self.adjustment is None or Decimal(self.adjustment["max_amount"]) > d.amount:
                self.adjustment = adj
        rec = self._record("approve", d.reviewer, bureau, d.comment, d.amount)
        self.review[bureau] = rec
        await self._mirror(rec)
        return rec

    @approve.validator
    def _v_approve(self, d: Decision) -> None:
        self._check_decision(d)
        if self.status == "info_requested":
            raise _invalid("information was requested; wait for the enterprise to provide it")
        if d.amount is not None:
            if d.amount < 0:
                raise _invalid("amount must not be negative")
            if not (d.reason and d.reason.strip()):
                raise _invalid("lowering an award needs a reason")

    @workflow.update
    async def reject(self, d: Decision) -> DecisionRecord:
        bureau = self._check_decision(d)
        rec = self._record("reject", d.reviewer, bureau, d.comment)
        self.review[bureau] = rec
        await self._mirror(rec)
        return rec

    @reject.validator
    def _v_reject(self, d: Decision) -> None:
        self._check_decision(d)
        if not d.comment.strip():
            raise _invalid("a rejection needs a comment")

    @workflow.update
    async def request_info(self, d: Decision) -> DecisionRecord:
        bureau = self._check_decision(d)
        rec = self._record("request_info", d.reviewer, bureau, d.comment)
        self.status = "info_requested"
        self._upsert(sa.STATUS.value_set(self.status))
        await self._mirror(rec)
        return rec

    @request_info.validator
    def _v_request_info(self, d: Decision) -> None:
        self._check_decision(d)
        if self.status != "review":
            raise _invalid(f"information can only be requested in review (status {self.status})")

    @workflow.update
    async def provide_info(self, a: OperatorAction) -> DecisionRecord:
        self._check_facts(a.facts)
        self.app = self.app.model_copy(update={"facts": Facts.model_validate(
            {**self.app.facts.model_dump(mode="json", exclude_none=True), **a.facts})})
        rec = self._record("provide_info", a.operator or self.app.operator, None, a.comment)
        self.status = "review"
        self._upsert(sa.STATUS.value_set(self.status))
        await self._mirror(rec)
        return rec

    @provide_info.validator
    def _v_provide_info(self, a: OperatorAction) -> None:
        self._open()
        if self.status != "info_requested":
            raise _invalid(f"no information was requested (status {self.status})")
        self._check_operator(a.operator)
        self._check_facts(a.facts)

    @workflow.update
    async def submit_evidence(self, a: OperatorAction) -> DecisionRecord:
        self.evidence = dict(a.facts)
        rec = self._record("submit_evidence", a.operator or self.app.operator, None, a.comment)
        await self._mirror(rec)
        return rec

    @submit_evidence.validator
    def _v_submit_evidence(self, a: OperatorAction) -> None:
        self._open()
        if self.status != "awaiting_evidence" or self.evidence is not None:
            raise _invalid(f"evidence is only accepted while awaiting evidence (status {self.status})")
        self._check_operator(a.operator)
        self._check_facts(a.facts)

    @workflow.update
    async def confirm_year(self, c: YearConfirmation) -> DecisionRecord:
        bureau = self._finance(c.reviewer, "confirm a programme year")
        self.confirmed = True
        rec = self._record("confirm_year", c.reviewer, bureau, c.comment)
        await self._mirror(rec)
        return rec

    @confirm_year.validator
    def _v_confirm_year(self, c: YearConfirmation) -> None:
        self._open()
        if self.status != "confirming" or self.confirmed:
            raise _invalid(f"nothing to confirm (status {self.status})")
        self._finance(c.reviewer, "confirm a programme year")

    @workflow.update
    async def withdraw(self, a: OperatorAction) -> DecisionRecord:
        self.closed = "withdrawn"
        rec = self._record("withdraw", a.operator, None, a.comment)
        await self._mirror(rec)
        return rec

    @withdraw.validator
    def _v_withdraw(self, a: OperatorAction) -> None:
        self._open()
        self._check_operator(a.operator)

    @workflow.update
    async def revoke(self, r: Revocation) -> DecisionRecord:
        bureau = self._finance(r.reviewer, "revoke an application")
        self.closed = "revoked"
        rec = self._record("revoke", r.reviewer, bureau, r.reason)
        await self._mirror(rec)
        return rec

    @revoke.validator
    def _v_revoke(self, r: Revocation) -> None:
        self._open()
        self._finance(r.reviewer, "revoke an application")

    @workflow.update
    def refresh_reviewers(self, r: ReviewerRegistry) -> int:
        """The client sends the registry when a reviewer registered after submission acts: the
        decision's validator then checks against it (a validator cannot read the database)."""
        self.inp.reviewers = dict(r.reviewers)
        return len(r.reviewers)

    @refresh_reviewers.validator
    def _v_refresh_reviewers(self, r: ReviewerRegistry) -> None:
        self._open()

    # ------------------------------------------------------------------------------ queries

    def _status_model(self) -> ApplicationStatus:
        calc = None
        if self.calc is not None:
            calc = {"amount": str(self.calc.amount),
                    "refusal": self.calc.refusal.model_dump(mode="json") if self.calc.refusal else None,
                    "tranches": len(self.calc.schedule)}
        return ApplicationStatus(
            application_id=self.app.application_id, status=self.status, clause_id=self.app.clause_id,
            enterprise_code=self.app.enterprise_code, enterprise_name=self.app.enterprise_name,
            year=self.app.year, programme_year=self.inp.programme_year,
            programme_years=self._programme_length(), required_bureaus=self.inp.clause.required_bureaus,
            decisions=self.decisions, overdue=self.overdue, awarded=self.awarded, tranches=self.tranches,
            calculation=calc, note=self.note)

    @workflow.query(name="status")
    def get_status(self) -> dict:
        return self._status_model().model_dump(mode="json")

    @workflow.query(name="decisions")
    def decisions_so_far(self) -> list[DecisionRecord]:
        return self.decisions

    @workflow.query
    def calculation(self) -> Optional[CalcResult]:
        return self.calc

    @workflow.query(name="tranches")
    def tranche_states(self) -> list[TrancheState]:
        return self.tranches
