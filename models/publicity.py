"""公示 (public notice): after the last approval and the binding calculation, before the first
tranche, the application's enterprise, clause and amount are published for a notice period of
working days (per policy document: `publicity.working_days` in policies/*.yaml, with its citation
or reading). Within the period anyone may object in writing under their real name; the clause's
lead bureau upholds the objection (the application ends `rejected`) or dismisses it (it goes on).
While an objection is open nothing is paid, even after the period has ended.

The period: the list is published on the day the binding calculation completes (day 0, China
time); the notice days are the N working days after it on the official calendar (calc/workdays.py,
调休 included); the period ends at 00:00 China time after the last notice day.

Demos and tests on a real server cannot wait a week: the WORKER's environment variable
DISBURSE_PUBLICITY_DAY_SECONDS=N (for demos and tests only) makes a notice day last N seconds of
real time, every day counted, no calendar. It is read when an application opens and pinned into
its state (a running application's period never changes; replay stays deterministic), logged as
a warning, and shown in its status.

The objector is external: a staff member (operator, reviewer, finance or ops — anyone logged in
but the application's own operator, who acts for the enterprise) records a written objection on
their behalf with their own credential; the record names both.
"""
from __future__ import annotations

import os
import re
from datetime import date, datetime, timedelta, timezone
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from models.credentials import Credential

CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")     # as models.application.CHINA (imported by it)


def china_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=CHINA)

DAY_SECONDS_ENV = "DISBURSE_PUBLICITY_DAY_SECONDS"
PATCH = "provisional-and-publicity"      # workflow.patched id: applications opened before it skip both

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


class PublicitySettingError(ValueError):
    """DISBURSE_PUBLICITY_DAY_SECONDS is set but unusable (the worker stops before it polls)."""
    exit_code = 78      # EX_CONFIG, as worker.ConcurrencyError: no restart helps


def day_seconds_setting(environ=None) -> Optional[int]:
    """The worker's demo/test setting: seconds per notice day, or None (the real calendar)."""
    raw = ((os.environ if environ is None else environ).get(DAY_SECONDS_ENV) or "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 86_400:
        raise PublicitySettingError(f"{DAY_SECONDS_ENV}={raw!r}: expected a whole number of seconds from 1 to 86400 "
                                    "(demos and tests only; unset it for the real calendar)")
    return int(raw)


# --------------------------------------------------------------------------------- activity payloads

class PeriodRequest(BaseModel):
    application_id: str
    clause_id: str
    published: datetime                      # when the list is published (workflow time)
    day_seconds: Optional[int] = None        # pinned demo/test setting; None: the official calendar


class Period(BaseModel):
    """A notice period: its notice days, when it ends, and where its length comes from."""
    published_on: date                       # day 0 (China)
    first_day: date
    last_day: date
    ends_at: datetime                        # 00:00 China after the last notice day (demo: published + N x seconds)
    working_days: int
    cite: str = ""                           # the policy's citation (clause, text, reading)
    day_seconds: Optional[int] = None

    def describe(self) -> str:
        if self.day_seconds:
            return (f"{self.working_days} notice days of {self.day_seconds} s (DEMO/TEST setting "
                    f"{DAY_SECONDS_ENV}), until {self.ends_at.isoformat()}")
        return (f"{self.working_days} working days, {self.first_day.isoformat()} – {self.last_day.isoformat()}, "
                f"ends {self.ends_at.astimezone(CHINA).strftime('%Y-%m-%d %H:%M')} China time")


def period(clause_id: str, published: datetime, day_seconds: Optional[int] = None) -> Period:
    """The notice period of a clause's award published at `published`. Raises
    calc.workdays.CalendarError for a day the installed calendar does not cover."""
    from calc import catalogue
    from calc.parameters import value_on
    from calc.workdays import working_days_after
    doc = catalogue().document_of(clause_id)
    day0 = published.astimezone(CHINA).date()
    if doc.publicity is None:
        raise ValueError(f"{doc.id} has no 公示 period (policies/{doc.id}.yaml: publicity.working_days)")
    values = doc.publicity.working_days
    v = value_on(values, day0) or values[0]
    n = int(v.value)
    cite = f"{doc.id} {v.cite.clause}: {v.cite.text}" + (f" (reading: {v.cite.reading})" if v.cite.reading else "")
    if day_seconds:
        ends = published + timedelta(seconds=n * day_seconds)
        end_day = ends.astimezone(CHINA).date()
        return Period(published_on=day0, first_day=day0, last_day=end_day, ends_at=ends, working_days=n,
                      cite=cite, day_seconds=day_seconds)
    days = working_days_after(day0, n)
    return Period(published_on=day0, first_day=days[0], last_day=days[-1],
                  ends_at=china_midnight(days[-1] + timedelta(days=1)), working_days=n, cite=cite)


# --------------------------------------------------------------------------------- workflow state

def _text(v: str, field: str, limit: int) -> str:
    v = v.strip()
    if not v:
        raise ValueError(f"{field} must not be empty")
    if _CONTROL.search(v):
        raise ValueError(f"{field} must not contain control or bidi characters")
    if len(v) > limit:
        raise ValueError(f"{field} is longer than {limit} characters")
    return v


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Objection(_In):
    """A written, real-name objection received within the period, recorded by a staff member
    (`who`, whose credential it carries) on the objector's behalf."""
    who: str = Field(min_length=1, max_length=64)       # the staff member recording it
    objector_name: str = Field(max_length=100)          # the objector's real name
    objector_contact: str = Field(max_length=200)       # phone, address or e-mail
    reason: str = Field(max_length=2000)
    credential: Optional[Credential] = None

    @field_validator("objector_name", "objector_contact", "reason", mode="before")
    @classmethod
    def _filled(cls, v, info):
        if not isinstance(v, str):
            raise ValueError(f"{info.field_name} must be text")
        return _text(v, info.field_name, {"objector_name": 100, "objector_contact": 200}.get(info.field_name, 2000))


class ObjectionRuling(_In):
    """The lead bureau's decision on objection number `objection` (1-based): uphold or dismiss."""
    reviewer: str = Field(min_length=1, max_length=64)
    objection: int = Field(ge=1, le=1000)
    reason: str = Field(max_length=2000)
    credential: Optional[Credential] = None

    @field_validator("reason", mode="before")
    @classmethod
    def _filled(cls, v):
        if not isinstance(v, str):
            raise ValueError("reason must be text")
        return _text(v, "reason", 2000)


class ObjectionRecord(BaseModel):
    number: int
    objector_name: str
    objector_contact: str
    reason: str
    recorded_by: str
    filed_at: datetime
    state: Literal["open", "upheld", "dismissed"] = "open"
    decided_by: Optional[str] = None
    decided_at: Optional[datetime] = None
    decision_reason: Optional[str] = None


class PublicityState(BaseModel):
    """The application's 公示, carried in ApplicationState."""
    period: Period
    objections: list[ObjectionRecord] = []
    ended: bool = False                      # the period passed with no open objection, or one was upheld

    def open_objections(self) -> list[ObjectionRecord]:
        return [o for o in self.objections if o.state == "open"]

    def upheld(self) -> Optional[ObjectionRecord]:
        return next((o for o in self.objections if o.state == "upheld"), None)


class Provisional(BaseModel):
    """The calculation core on the claim as it stands (at submission, after information is
    provided), against the award book as it is then, committing nothing. Reviewers see it; the
    binding calculation after the credit check decides."""
    amount: Optional[str] = None             # yuan, to the fen (text: exact)
    refusal: Optional[str] = None            # code: reason, when the core refuses
    error: Optional[str] = None              # the claim could not be calculated (field: rule)
    trace: list[dict] = []
    facts: dict = {}
    computed_at: datetime
    as_of: str


class ProvisionalRequest(BaseModel):
    application_id: str
    clause_id: str
    year: int
    enterprise_code: str
    facts: dict
    as_of: str
    alternatives: list[str] = []
    computed_at: datetime
