"""Pydantic models crossing the client / workflow / activity boundary (the current workflow,
workflows/application.py; the first version's frozen payloads are in models/legacy.py).

Everything that arrives from outside the worker is a claim, not a fact: the workflow's input is
the claim alone (`ApplicationInput`); what the worker decides with (the clause's bureaus and
programme length, the reviewer registry, prior awards, tranches) it resolves itself.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Literal, Optional

from pydantic import BaseModel, Field, field_validator

from calc.credit_code import validate as validate_credit_code
from calc.model import CalcResult, Facts, Tranche
from models.credentials import Credential
# the update payloads and DecisionRecord live in models/payloads.py (light: the client imports them
# without the calculation core); re-exported here, the same classes
from models.payloads import (  # noqa: F401
    ActorId, Decision, DecisionRecord, Fen, OperatorAction, Resumption, Revocation, YearConfirmation,
    _actor, _In, _text,
)

FINANCE_BUREAU = "市财政局"
CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")   # the policies' days; no DST since 1991

Status = Literal[
    "review", "info_requested", "credit_check", "calculating", "awaiting_budget", "publicity", "payout",
    "awaiting_evidence",
    "confirming", "attention", "completed", "rejected", "refused", "blacklisted", "withdrawn", "revoked",
    "recovered", "barred",
]
TERMINAL: frozenset[str] = frozenset({"completed", "rejected", "refused", "blacklisted", "withdrawn", "revoked",
                                      "recovered", "barred"})


def china_today(now: datetime) -> date:
    """The calendar day in China at `now` (policy dates are days in Asia/Shanghai)."""
    return now.astimezone(CHINA).date()


def china_midnight(day: date) -> datetime:
    """00:00 in China on `day`, as an aware datetime."""
    return datetime(day.year, day.month, day.day, tzinfo=CHINA)


def qualify(issuer: str, bureau: str) -> str:
    """'杭州市' + '市科技局' -> '杭州市科技局'; '平阳县' + '县科技局' -> '平阳县科技局'.
    A bureau not starting with the issuer's level character (市/县/区) is already a full name."""
    if not issuer or not bureau:
        return bureau
    level = issuer[-1]
    if bureau.startswith(issuer):
        return bureau
    if bureau[0] == level:
        return issuer + bureau[1:]
    return bureau


def workflow_id_for(enterprise_code: str, clause_id: str, year: int) -> str:
    """The one id an application can have: one application per enterprise, clause and year."""
    return f"app-{enterprise_code}-{clause_id}-{year}"


class ApplicationInput(_In):
    """The claim: who applies, under which clause, for which year, with which facts, and who
    submits it. The application's id is derived from it (workflow_id_for), never chosen.

    Normalisation (explicit): the credit code is upper-cased and stripped; ids are stripped. A year
    may be a JSON number or a string of ASCII digits; anything else is refused."""
    clause_id: str = Field(min_length=1, max_length=80, pattern=r"^[a-z]{2}\d{4}-[0-9.]+-[a-z0-9-]+$")
    year: int = Field(ge=1990, le=2100)
    enterprise_code: str = Field(min_length=1, max_length=40)
    enterprise_name: str = Field(default="", max_length=200)
    operator: ActorId
    facts: Facts = Facts()
    note: Optional[str] = Field(default=None, max_length=2000)
    alternatives: list[str] = Field(default=[], max_length=8)
    review_sla_days: int = Field(default=15, ge=1, le=365)
    evidence_deadline_days: int = Field(default=90, ge=1, le=365)

    @field_validator("year", mode="before")
    @classmethod
    def _year(cls, v: Any) -> Any:
        if isinstance(v, bool) or (isinstance(v, str) and not (v.isascii() and v.strip().isdigit())):
            raise ValueError("year must be a number such as 2026")
        if isinstance(v, float):
            raise ValueError("year must be a whole number")
        return v

    @field_validator("enterprise_code")
    @classmethod
    def _credit_code(cls, v: str) -> str:
        """统一社会信用代码 (GB 32100-2015), check digit included."""
        return validate_credit_code(v)

    @field_validator("operator")
    @classmethod
    def _operator(cls, v: str) -> str:
        return _actor(v, "operator")

    @field_validator("enterprise_name", "note")
    @classmethod
    def _plain_text(cls, v: Optional[str], info) -> Optional[str]:
        return None if v is None else _text(v, info.field_name, 2000)

    @property
    def application_id(self) -> str:
        return workflow_id_for(self.enterprise_code, self.clause_id, self.year)


# --------------------------------------------------------------------------------- worker-resolved

class ClauseInfo(BaseModel):
    """What the workflow needs to know of its clause, resolved by the worker from its own policy
    data when the application opens (pinned for the application's life, so replay is stable)."""
    issuer: str
    lead_bureau: str                         # qualified
    finance_bureau: str                      # qualified
    required_bureaus: list[str]              # qualified: lead (+ finance when the clause lists it)
    bureaus: list[str] = []                  # every responsible bureau, qualified
    programme_years: int = 1
    last_year: Optional[int] = None          # last support year inside the policy window
    first_year: Optional[int] = None         # first support year inside the policy window
    evidence_facts: list[str] = []           # what a later programme year's evidence may give
    name_zh: str = ""


class Pinned(BaseModel):
    """What the worker resolved when the application opened: the clause, the enterprise's
    registered name, and the reviewer registry at that moment."""
    clause: ClauseInfo
    enterprise_name: str = ""
    reviewers: dict[str, str] = {}           # reviewer id -> qualified bureau
    publicity_day_seconds: Optional[int] = None   # DEMO/TEST: a 公示 notice day lasts this many seconds


class ApplicationRun(BaseModel):
    """The workflow's input: the claim; `carried` only on a continue-as-new of the workflow
    itself (a start that brings it is refused)."""
    claim: ApplicationInput
    carried: Optional["ApplicationState"] = None
    credential: Optional[Credential] = None      # the operator's, for action "submit" (checked when it opens)


class Closure(BaseModel):
    kind: Literal["withdrawn", "revoked", "recovered"]
    who: str
    reason: str = ""


class Adjustment(BaseModel):
    """A reviewer's lowering: a ceiling on the award of every programme year."""
    max_amount: Decimal
    reason: str
    reviewer: str


class ApplicationState(BaseModel):
    """Everything the workflow knows of its application, carried whole across continue-as-new."""
    pinned: Pinned
    year: int                                 # support year of this run
    facts: Facts                              # the facts of this year (evidence merged in)
    programme_year: int = 1
    status: str = "review"
    decisions: list["DecisionRecord"] = []
    tranches: list["TrancheState"] = []
    awarded: Decimal = Decimal("0")
    closed: Optional[Closure] = None
    adjustment: Optional[Adjustment] = None
    note: Optional[str] = None
    overdue: bool = False
    outbox: list["Notification"] = []         # notifications not yet handed to the notify activity
    clawback: Optional["Clawback"] = None     # a recovery (追回) ordered while it ran (models/clawback.py)
    amendments: list["Amendment"] = []        # corrections of the award, proposed / approved / applied
    provisional: Optional["Provisional"] = None      # the core on the claim during review (models/publicity.py)
    publicity: Optional["PublicityState"] = None     # 公示 (models/publicity.py)


# --------------------------------------------------------------------------------- status
# (the update payloads, Decision ... Resumption, and DecisionRecord: models/payloads.py)

class TrancheState(BaseModel):
    year: int
    seq: int
    due: str
    amount: Decimal
    label: str = ""
    state: Literal["pending", "paying", "paid", "cancelled"] = "pending"
    clause_id: Optional[str] = None          # the clause that pays (the chosen one under 从优就高)
    item_id: Optional[str] = None


class ApplicationStatus(BaseModel):
    application_id: str
    status: str
    clause_id: str
    enterprise_code: str
    enterprise_name: str = ""
    year: int
    programme_year: int = 1
    programme_years: int = 1
    required_bureaus: list[str] = []
    decisions: list[DecisionRecord] = []
    overdue: bool = False
    awarded: Decimal = Decimal("0")
    tranches: list[TrancheState] = []
    calculation: Optional[dict[str, Any]] = None   # summary: amount, refusal
    note: Optional[str] = None
    closed: Optional[Closure] = None
    recovery: Optional["Clawback"] = None
    amendments: list["Amendment"] = []
    provisional: Optional["Provisional"] = None
    publicity: Optional["PublicityState"] = None


# --------------------------------------------------------------------------------- activity payloads

class OpenRequest(BaseModel):
    """What open_application checks: the claim and the operator's credential for it."""
    claim: ApplicationInput
    credential: Optional[Credential] = None


class CommitRequest(BaseModel):
    application_id: str
    clause_id: str
    year: int
    enterprise_code: str
    facts: Facts
    as_of: str                               # ISO date in China (workflow time)
    alternatives: list[str] = []
    adjustment: Optional[dict[str, Any]] = None
    budget: bool = False                     # draw on the clause's budget line (workflow patch "budget-lines")


class PayRequest(BaseModel):
    """Pay one committed tranche: the amount is the award book's, not the workflow's."""
    application_id: str
    clause_id: str
    year: int
    seq: int
    notify: list[str] = []                   # lean-history: these people are told of the payment by the
    #                                          payment's activity, under the payment's own key
    credit_day: Optional[str] = None         # lean-history-2: the credit check on this day (ISO, China),
    #                                          under the enterprise's lock, right before the payment


class PayoutRecord(BaseModel):
    application_id: str
    year: int
    seq: int
    amount: Decimal
    created: bool                            # False: the row already existed
    state: Literal["paid", "released"] = "paid"
    notice: Optional["Notification"] = None  # the payment's notice when a delivery failed (sent again)
    credit: Optional["CreditResult"] = None  # lean-history-2: listed (or barred) on the day: not paid, released


class ReleaseRequest(BaseModel):
    application_id: str
    clause_id: str
    reason: str


class CreditCheck(BaseModel):
    application_id: str
    clause_id: str
    enterprise_code: str
    day: str                                 # ISO date in China: entries listed after it do not count yet


class CreditResult(BaseModel):
    listed: bool
    reason: Optional[str] = None
    bar: Optional[str] = None                # barred after a recovery (models/recovery.py): the bar's line


def paid_message(year: int, seq: int, amount: Decimal) -> str:
    """The text of a `tranche_paid` notice (the workflow's, or the payment activity's under lean-history)."""
    return f"{year} #{seq}: {amount}"


class Notification(BaseModel):
    application_id: str
    kind: str
    message: str
    recipients: list[str] = []
    key: Optional[str] = None         # recorded and delivered under this key (else the activity's own)


class StatusUpdate(BaseModel):
    application_id: str
    clause_id: str
    enterprise_code: str
    enterprise_name: str = ""
    year: int
    status: str
    awarded: Decimal = Decimal("0")
    bureaus: list[str] = []
    overdue: bool = False
    amount: Optional[Decimal] = None         # the binding calculation's award (None before it)
    provisional: Optional[Decimal] = None    # the provisional amount during review
    publicity_from: Optional[date] = None    # 公示: first and last notice day
    publicity_until: Optional[date] = None
    decision: Optional[DecisionRecord] = None     # (first version only)
    decisions: list[tuple[int, DecisionRecord]] = []   # (index, decision) not yet mirrored
    version: int = 0                         # increases with every mirror of one application
    notices: list[Notification] = []         # lean-history: recorded and sent with the status (keyed)


from models.clawback import Amendment, Clawback  # noqa: E402 - they build on this module's types
from models.publicity import Period, PeriodRequest, Provisional, ProvisionalRequest, PublicityState  # noqa: E402


# ------------------------------------------------------------------- lean-history-2 (issue 11)
# Steps that follow one another in one workflow task run as one local activity (one history event).

class OpenClaim(BaseModel):
    """open_claim: open the application (open_application's checks), its provisional calculation,
    and its first status row with the `awaiting_review` notice, under the version and the
    notice key the workflow chose."""
    open: OpenRequest
    estimate: ProvisionalRequest
    mirror_version: int
    notice_key: str


class Opened(BaseModel):
    pinned: Pinned
    provisional: Provisional
    mirrored: StatusUpdate                   # the status row written (its notices included)
    undelivered: list[str] = []              # keys of notices with a delivery that failed


class SettleRequest(BaseModel):
    """settle_award, once every bureau approved: the credit check, then (not listed) the binding
    calculation, then (an award) its 公示 period."""
    credit: CreditCheck
    commit: CommitRequest
    published: datetime                      # the 公示's publication (workflow time)
    day_seconds: Optional[int] = None


class Settled(BaseModel):
    credit: CreditResult
    calc: Optional[CalcResult] = None        # None: listed, nothing committed
    period: Optional[Period] = None          # None: no award (a refusal, budget exhausted) or listed


def opening_notice(application_id: str, pinned: Pinned, year: int, key: Optional[str]) -> Notification:
    """The `awaiting_review` notice of an application just opened, to its bureaus."""
    return Notification(application_id=application_id, kind="awaiting_review",
                        message=f"{pinned.enterprise_name} · {pinned.clause.name_zh} · {year}",
                        recipients=list(pinned.clause.required_bureaus), key=key)


ApplicationRun.model_rebuild()
PayoutRecord.model_rebuild()
ApplicationState.model_rebuild()
ApplicationStatus.model_rebuild()

__all__ = [
    "Adjustment", "ApplicationInput", "OpenClaim", "Opened", "OpenRequest", "SettleRequest", "Settled", "ApplicationRun",
    "ApplicationState", "ApplicationStatus", "CHINA",
    "CalcResult", "ClauseInfo", "Closure", "CommitRequest", "CreditCheck", "CreditResult", "Decision",
    "DecisionRecord", "FINANCE_BUREAU", "Notification", "OperatorAction", "PayRequest", "PayoutRecord", "Pinned",
    "ReleaseRequest", "Resumption", "Revocation", "StatusUpdate", "TERMINAL", "Tranche", "TrancheState",
    "YearConfirmation", "china_midnight", "china_today", "qualify", "workflow_id_for",
]
