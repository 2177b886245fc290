"""The evaluation context of one claim: request, clause, dates, history, and the trace being written."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from tests.calc_reference.history import AwardHistory
from calc.model import CalcRequest, Refusal, TraceStep
from calc.parameters import Citation, Clause, Document, value_on


class Refused(Exception):
    """Raised inside an evaluation to end it with a refusal (caught by the engine, never escapes)."""

    def __init__(self, refusal: Refusal):
        self.refusal = refusal


_CITES: dict[int, tuple[Citation, str]] = {}


def cite_text(c: Citation | None) -> str | None:
    """The citation as one line. Memoised by identity: citations live as long as the catalogue
    (the entry keeps its citation alive, so an id is never reused while cached)."""
    if c is None:
        return None
    hit = _CITES.get(id(c))
    if hit is None:
        text = f"{c.clause} {c.text}" + (f" [reading: {c.reading}]" if c.reading else "")
        if len(_CITES) > 100_000:
            _CITES.clear()
        hit = _CITES[id(c)] = (c, text)
    return hit[1]


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
    checks: dict[str, Any] = field(default_factory=dict)   # facts of the rules passed, one trace step
    cat: Any = None                                        # the Catalogue (for cap groups)

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

    def cap_group(self, cap) -> tuple[str, ...]:
        """The clauses whose awards count against `cap` (this clause alone unless it names a group)."""
        return self.cat.cap_group(self.cid, cap.group) if self.cat is not None else (self.cid,)

    def has_param(self, name: str) -> bool:
        return name in self.clause.params
