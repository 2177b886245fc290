"""The light payloads of the client's requests: the update payloads a reviewer or operator sends
(Decision, OperatorAction, YearConfirmation, Revocation, Resumption) and the DecisionRecord an
update returns, with the input rules they share.

Only pydantic and models/credentials.py: the command line and the console import this module
without the calculation core, the database or the workflow (`disburse status` / `approve` start
fast). models/application.py re-exports every name, so `from models.application import Decision`
keeps working and the classes are the same objects.
"""
from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Optional

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from models.credentials import Credential

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def _text(v: str, field: str, limit: int) -> str:
    if _CONTROL.search(v):
        raise ValueError(f"{field} must not contain control characters")
    if len(v) > limit:
        raise ValueError(f"{field} is longer than {limit} characters")
    return v


class _In(BaseModel):
    """An input from outside: unknown fields are refused, not ignored."""
    model_config = ConfigDict(extra="forbid")


ActorId = Annotated[str, Field(min_length=1, max_length=64, description="operator or reviewer id")]


def _actor(v: str, field: str) -> str:
    v = v.strip()
    if not v:
        raise ValueError(f"{field} must say who acts (not blank)")
    if not _ID.match(v):
        raise ValueError(f"{field} {v[:64]!r}: letters, digits and . _ @ - only, at most 64 characters")
    return v


def plain_yuan(v: Any) -> Any:
    """An amount in yuan: a plain decimal (no sign, no exponent, at most two places); None stays None."""
    if v is None:
        return v
    text = str(v).strip()
    if not re.fullmatch(r"[0-9]{1,13}(\.[0-9]{1,2})?", text):
        raise ValueError("amount must be a plain number of yuan with at most two decimals, e.g. 350000 "
                         "or 350000.50 (no sign, no exponent)")
    return Decimal(text)


def Reason(what: str, limit: int) -> Any:
    """The type of a reason an update must give: text of 1 to `limit` characters, no control
    characters, not blank ("{what} needs a reason"), kept as given:

        reason: RevocationReason
    """
    def check(v: str) -> str:
        if not v.strip():
            raise ValueError(f"{what} needs a reason")
        return _text(v, "reason", limit)
    return Annotated[str, Field(min_length=1, max_length=limit), AfterValidator(check)]


RevocationReason = Reason("a revocation", 2000)

# --------------------------------------------------------------------------------- updates

Fen = Annotated[Decimal, Field(gt=0, le=Decimal("1000000000000"), allow_inf_nan=False, max_digits=15,
                               decimal_places=2)]


class Decision(_In):
    reviewer: ActorId
    comment: str = Field(default="", max_length=2000)
    amount: Optional[Fen] = None             # approve: lower the award to this (yuan, to the fen)
    reason: Optional[str] = Field(default=None, max_length=2000)   # approve: reason for lowering
    credential: Optional[Credential] = None      # signed by the console / CLI service (models/credentials.py)

    @field_validator("reviewer")
    @classmethod
    def _reviewer(cls, v: str) -> str:
        return _actor(v, "reviewer")

    @field_validator("amount", mode="before")
    @classmethod
    def _amount(cls, v: Any) -> Any:
        return plain_yuan(v)

    @field_validator("comment", "reason")
    @classmethod
    def _plain_text(cls, v: Optional[str], info) -> Optional[str]:
        return None if v is None else _text(v, info.field_name, 2000)


class OperatorAction(_In):
    operator: str = Field(default="", max_length=64)
    comment: str = Field(default="", max_length=2000)
    facts: dict[str, Any] = {}
    credential: Optional[Credential] = None      # signed by the console / CLI service (models/credentials.py)

    @field_validator("comment")
    @classmethod
    def _plain_text(cls, v: str) -> str:
        return _text(v, "comment", 2000)


class YearConfirmation(_In):
    reviewer: ActorId
    comment: str = Field(default="", max_length=2000)
    credential: Optional[Credential] = None      # signed by the console / CLI service (models/credentials.py)


class Revocation(_In):
    reviewer: ActorId
    reason: RevocationReason
    credential: Optional[Credential] = None      # signed by the console / CLI service (models/credentials.py)


class Resumption(_In):
    """Ops (or finance) resume an application that stopped in `attention` after the cause was fixed."""
    who: ActorId
    comment: str = Field(default="", max_length=2000)
    credential: Optional[Credential] = None      # signed by the console / CLI service (models/credentials.py)


class DecisionRecord(BaseModel):
    kind: str                                # approve, reject, request_info, provide_info, ...
    who: str
    bureau: Optional[str] = None
    when: datetime
    comment: str = ""
    year: int = 0
    amount: Optional[Decimal] = None


__all__ = [
    "ActorId", "Decision", "DecisionRecord", "Fen", "OperatorAction", "Resumption", "Revocation",
    "YearConfirmation",
]
