"""Payloads of recoveries (追回) and amendments, crossing the client / workflow / activity boundary
(models/recovery.py and models/amendments.py do the work in the database; workflows/recovery.py and
the clawback / amendment updates of workflows/application.py drive it)."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Optional

from pydantic import BaseModel, Field, field_validator, model_validator

from models.payloads import (   # not models.application: it imports this module
    ActorId, Fen, Reason, _actor, _In, _text, plain_yuan,
)
from models.credentials import Credential

Basis = Literal["false_statement", "serious_dishonesty", "other"]
RecoveryReason = Reason("a recovery", 1000)
AmendmentReason = Reason("an amendment", 1000)


class ClawbackOrder(_In):
    """Finance orders the recovery of what was paid: an amount, or everything (`all`)."""
    reviewer: ActorId
    amount: Optional[Fen] = None
    all: bool = False
    basis: Basis
    reason: RecoveryReason
    credential: Optional[Credential] = None

    _reviewer = field_validator("reviewer")(classmethod(lambda cls, v: _actor(v, "reviewer")))
    _amount = field_validator("amount", mode="before")(classmethod(lambda cls, v: plain_yuan(v)))

    @model_validator(mode="after")
    def _one(self) -> "ClawbackOrder":
        if (self.amount is None) == (not self.all):
            raise ValueError("give either an amount or all (everything paid), not both, not neither")
        return self


class RecoverRequest(BaseModel):
    """What the worker recovers: the order, who gave it (verified), the day in China, and who
    carries it out (`source`: a retry of the same step finds its own order)."""
    application_id: str
    order: ClawbackOrder
    who: str
    bureau: str = ""
    day: str
    source: str


class RecoveryResult(BaseModel):
    refused: Optional[str] = None            # why nothing was recovered (nothing paid, more than paid...)
    duplicate: bool = False                  # the same order was already carried out (by another request)
    order_id: Optional[int] = None
    amount: Decimal = Decimal("0")           # recovered by this order
    entries: list[dict[str, Any]] = []       # the ledger's recovery entries: year, seq, amount, payment
    releases_room: bool = False
    room_rule: str = ""
    bar: Optional[str] = None                # the bar's line
    bar_until: Optional[str] = None


class RecoveryCheck(BaseModel):
    """A Recovery workflow's order, checked by the worker before anything is recovered."""
    application_id: str
    order: ClawbackOrder


class RecoveryClearance(BaseModel):
    refused: Optional[str] = None
    who: str = ""
    bureau: str = ""


class RecoveryRun(BaseModel):
    """The Recovery workflow's input: the application and finance's signed order."""
    application_id: str
    order: ClawbackOrder


class Clawback(BaseModel):
    """A recovery ordered on a running application (workflow state)."""
    order: ClawbackOrder
    who: str
    bureau: str
    when: datetime
    result: Optional[RecoveryResult] = None


# ------------------------------------------------------------------------------ amendments

class AmendmentProposal(_In):
    """The lead bureau's correction of an approved award: its new amount for the year, and why."""
    reviewer: ActorId
    amount: Fen
    reason: AmendmentReason
    credential: Optional[Credential] = None

    _reviewer = field_validator("reviewer")(classmethod(lambda cls, v: _actor(v, "reviewer")))
    _amount = field_validator("amount", mode="before")(classmethod(lambda cls, v: plain_yuan(v)))


class AmendmentDecision(_In):
    """Finance approves or refuses the amendment proposed (`number`, default the open one)."""
    reviewer: ActorId
    number: Optional[int] = Field(default=None, ge=1, le=1000)
    comment: str = Field(default="", max_length=1000)
    credential: Optional[Credential] = None

    _reviewer = field_validator("reviewer")(classmethod(lambda cls, v: _actor(v, "reviewer")))

    @field_validator("comment")
    @classmethod
    def _comment(cls, v: str) -> str:
        return _text(v, "comment", 1000)


class Amendment(BaseModel):
    """One amendment in the workflow's state (and its status)."""
    number: int
    year: int
    before: Decimal
    after: Decimal
    reason: str
    proposed_by: str
    proposed_at: datetime
    state: Literal["proposed", "approved", "applied", "refused", "rejected"] = "proposed"
    decided_by: Optional[str] = None
    comment: str = ""
    note: Optional[str] = None               # what the book did, or why it refused
    settled: Decimal = Decimal("0")          # ledger: top-ups (+), corrections (-)


class AmendRequest(BaseModel):
    application_id: str
    enterprise_code: str
    year: int
    number: int
    after: Decimal
    reason: str
    proposed_by: str
    approved_by: str
    as_of: str


class AmendResult(BaseModel):
    applied: bool
    refusal: Optional[str] = None
    before: Decimal = Decimal("0")
    after: Decimal = Decimal("0")
    tranches: list[dict[str, Any]] = []      # seq -> the tranche's new amount, state (committed / paid)
    settled: Decimal = Decimal("0")
    entries: list[dict[str, Any]] = []


def recovery_id(application_id: str) -> str:
    """The Recovery workflow's id for an application that has ended (workflows/recovery.py)."""
    return f"recovery-{application_id}"
