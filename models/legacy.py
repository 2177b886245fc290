"""The payloads of the first version of the application workflow (workflows/legacy.py), frozen:
applications started under it may still be running, and replaying their histories decodes these
exact shapes. Do not change them; the current payloads are in models/application.py."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Optional

from pydantic import BaseModel, Field, field_validator, model_validator

from calc.credit_code import validate as validate_credit_code
from calc.model import CalcResult, Facts, Tranche

FINANCE_BUREAU = "市财政局"

Status = Literal[
    "review", "info_requested", "credit_check", "calculating", "payout", "awaiting_evidence",
    "confirming", "completed", "rejected", "refused", "blacklisted", "withdrawn", "revoked",
]
TERMINAL: frozenset[str] = frozenset({"completed", "rejected", "refused", "blacklisted", "withdrawn", "revoked"})


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
    return f"app-{enterprise_code}-{clause_id}-{year}"


class ApplicationInput(BaseModel):
    clause_id: str = Field(min_length=1)
    year: int = Field(ge=1990, le=2100)
    enterprise_code: str = Field(min_length=1)
    enterprise_name: str = ""
    operator: str = Field(min_length=1)
    facts: Facts = Facts()
    note: Optional[str] = None
    alternatives: list[str] = []
    review_sla_days: int = Field(default=15, gt=0)
    evidence_deadline_days: int = Field(default=90, gt=0)
    application_id: Optional[str] = None

    @field_validator("enterprise_code")
    @classmethod
    def _credit_code(cls, v: str) -> str:
        """统一社会信用代码 (GB 32100-2015), check digit included."""
        return validate_credit_code(v)

    @model_validator(mode="after")
    def _derive_id(self) -> "ApplicationInput":
        if not self.application_id:
            self.application_id = workflow_id_for(self.enterprise_code, self.clause_id, self.year)
        return self


class AwardSoFar(BaseModel):
    year: int
    amount: Decimal


class ClauseInfo(BaseModel):
    """What the workflow needs to know of its clause (resolved by the submitting client)."""
    issuer: str
    lead_bureau: str                         # qualified
    finance_bureau: str                      # qualified
    required_bureaus: list[str]              # qualified: lead (+ finance when the clause lists it)
    bureaus: list[str] = []                  # every responsible bureau, qualified
    programme_years: int = 1
    last_year: Optional[int] = None          # last support year inside the policy window


class WorkflowInput(BaseModel):
    """ApplicationInput + registry snapshot + state carried across continue-as-new."""
    application: ApplicationInput
    clause: ClauseInfo
    reviewers: dict[str, str] = {}          # reviewer id -> qualified bureau
    programme_year: int = 1                  # 1-based year within a yearly programme
    awards: list[AwardSoFar] = []            # amounts of earlier programme years
    awarded_total: Decimal = Decimal("0")
    decisions: list["DecisionRecord"] = []
    tranches: list["TrancheState"] = []
    search_attributes: bool = True


class Decision(BaseModel):
    reviewer: str
    comment: str = ""
    amount: Optional[Decimal] = None         # approve: lower the award to this
    reason: Optional[str] = None             # approve: reason for lowering


class OperatorAction(BaseModel):
    operator: str = ""
    comment: str = ""
    facts: dict[str, Any] = {}


class ReviewerRegistry(BaseModel):
    """The reviewer registry (reviewer id -> qualified bureau) as the database holds it now."""
    reviewers: dict[str, str]


class YearConfirmation(BaseModel):
    reviewer: str
    comment: str = ""


class Revocation(BaseModel):
    reviewer: str
    reason: str = Field(min_length=1)


class DecisionRecord(BaseModel):
    kind: str                                # approve, reject, request_info, provide_info, ...
    who: str
    bureau: Optional[str] = None
    when: datetime
    comment: str = ""
    year: int = 0
    amount: Optional[Decimal] = None


class TrancheState(BaseModel):
    year: int
    seq: int
    due: str
    amount: Decimal
    label: str = ""
    state: Literal["pending", "paid", "cancelled"] = "pending"
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


# activity payloads ----------------------------------------------------------------------------

class CalcInput(BaseModel):
    application_id: str
    clause_id: str
    year: int
    enterprise_code: str
    facts: Facts
    as_of: str                               # ISO date (workflow time)
    alternatives: list[str] = []
    adjustment: Optional[dict[str, Any]] = None


class PayoutInput(BaseModel):
    application_id: str
    clause_id: str
    enterprise_code: str
    year: int
    seq: int
    amount: Decimal
    due: str
    label: str = ""
    item_id: Optional[str] = None


class PayoutRecord(BaseModel):
    application_id: str
    year: int
    seq: int
    amount: Decimal
    created: bool                            # False: the row already existed


class BlacklistCheck(BaseModel):
    application_id: str
    clause_id: str
    enterprise_code: str


class BlacklistResult(BaseModel):
    listed: bool
    reason: Optional[str] = None


class Notification(BaseModel):
    application_id: str
    kind: str
    message: str
    recipients: list[str] = []


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
    decision: Optional[DecisionRecord] = None
    version: int = 0                         # increases with every mirror of one application


WorkflowInput.model_rebuild()

__all__ = [
    "ClauseInfo", "ApplicationInput", "ReviewerRegistry", "ApplicationStatus", "AwardSoFar", "CalcInput", "CalcResult", "Decision",
    "DecisionRecord", "Notification", "OperatorAction", "PayoutInput", "PayoutRecord", "Revocation",
    "StatusUpdate", "TERMINAL", "TrancheState", "Tranche", "WorkflowInput", "YearConfirmation",
    "qualify", "workflow_id_for", "FINANCE_BUREAU",
]
