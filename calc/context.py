"""The evaluation context of one claim: request, clause, dates, history, and the trace being written."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from datetime import date
from typing import Any

from calc.history import AwardHistory
from calc.model import CalcRequest, Refusal, TraceStep
from calc.parameters import Citation, Clause, Document, value_on


class Refused(Exception):
    """Raised inside an evaluation to end it with a refusal (caught by the engine, never escapes)."""

    def __init__(self, refusal: Refusal):
        self.refusal = refusal


@lru_cache(maxsize=4096)
def cite_text(c: Citation | None) -> str | None:
    if c is None:
        return None
    return f"{c.clause} {c.text}" + (f" [reading: {c.reading}]" if c.reading else "")


@dataclass(slots=True)
class Ctx:
    req: CalcRequest
    doc: Document
    clause: Clause
    history: AwardHistory
    as_of: date
    period_start: date          # first day of the support year counted (clipped to the window)
    period_end: date            # last day counted
    trace: list[TraceStep] = field(default_factory=list)

    @property
    def cid(self) -> str:
        return self.clause.id

    def step(self, step: str, formula: str = "", inputs: dict[str, Any] | None = None,
             result: Any = "", rule: str | None = None, cite: Citation | str | None = None) -> None:
        self.trace.append(TraceStep(
            self.clause.id, step, formula, inputs or {}, result, rule,
            cite if cite is None or isinstance(cite, str) else cite_text(cite)))

    def refuse(self, code: str, reason: str, rule: str | None = None,
               cite: Citation | str | None = None) -> Refused:
        self.step("refusal", inputs={"code": code}, result=reason, rule=rule, cite=cite)
        return Refused(Refusal(code=code, reason=reason, rule=rule))

    def param(self, name: str, day: date | None = None) -> tuple[Any, Citation]:
        """The clause parameter in force on `day` (default: the first counted day)."""
        dated = value_on(self.clause.params[name], day or self.period_start)
        if dated is None:
            raise self.refuse("out_of_window", f"{name} of {self.cid} not yet in force on {day or self.period_start}",
                              rule=f"param:{name}")
        return dated.value, dated.cite

    def has_param(self, name: str) -> bool:
        return name in self.clause.params
