"""The evaluation context of one claim: request, clause, dates, history, and the trace being written;
and the clause's plan for a support year: what every evaluation of that clause in that year reads
from the policy data, resolved once (dated parameters, caps and thresholds in force, citations as
text, the labels of the trace), so an evaluation costs dictionary hits, not re-reading the data."""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from operator import attrgetter
from typing import Any, Callable, Final

from calc import model
from calc.history import AwardHistory
from calc.model import CalcRequest, CalcResult, Refusal, TraceStep, Tranche
from calc.parameters import Citation, Clause, Document, value_on


class Refused(Exception):
    """Raised inside an evaluation to end it with a refusal (caught by the engine, never escapes)."""

    def __init__(self, refusal: Refusal):
        self.refusal = refusal


# What an evaluation builds without re-validation (every value produced by the core), bound once.
# Final, as the core's other module constants: compiled (make compile), each is a C static, where a
# name imported from an interpreted module (calc.model) is looked up in the module's dict at every use.
# A record from its fields in order, in one C call: tuple_new(TRACE_STEP, fields) is
# calc.model.trace_step(*fields), tuple_new(TRANCHE, fields) calc.model.tranche(*fields).
tuple_new: Final[Any] = tuple.__new__
TRACE_STEP: Final[Any] = TraceStep
TRANCHE: Final[Any] = Tranche
_new: Final[Any] = object.__new__
_CALC_RESULT: Final[Any] = CalcResult
_REFUSAL: Final[Any] = Refusal
_ALL_SET: Final[Any] = model._ALL_SET
_REFUSAL_SET: Final[Any] = model._REFUSAL_SET
_CODES: Final[Any] = model._CODES


def result(clause_id: str, year: int, amount: Decimal, schedule: tuple, trace: tuple, refusal: Refusal | None,
           chosen_clause: str | None, item_id: str | None, items: dict, item_values: dict) -> CalcResult:
    """calc.model.result_of: the same object, here so that it is compiled with the engine when the
    core is (calc/model.py stays interpreted; once per evaluation, its call cost more than its work)."""
    obj = _new(_CALC_RESULT)
    # object.__setattr__ spelled out: mypyc makes it one C call (PyObject_GenericSetAttr)
    object.__setattr__(obj, "__dict__", {
        "clause_id": clause_id, "year": year, "amount": amount, "schedule": schedule, "trace": trace,
        "refusal": refusal, "chosen_clause": chosen_clause, "alternatives": {}, "item_id": item_id,
        "items": items, "item_values": item_values})
    object.__setattr__(obj, "__pydantic_fields_set__", _ALL_SET)     # frozen model: never mutated
    object.__setattr__(obj, "__pydantic_extra__", None)
    object.__setattr__(obj, "__pydantic_private__", None)
    return obj


def refusal(code: str, reason: str, rule: str | None) -> Refusal:
    """Refusal.built (calc/model.py): the same object, compiled with the engine as `result`. The
    engine's codes are literals of its own; checked against the model's list all the same."""
    if code not in _CODES:
        raise ValueError(f"unknown refusal code {code!r}")
    obj = _new(_REFUSAL)
    object.__setattr__(obj, "__dict__", {"code": code, "reason": reason, "rule": rule})   # as in `result`
    object.__setattr__(obj, "__pydantic_fields_set__", _REFUSAL_SET)   # frozen model: never mutated
    object.__setattr__(obj, "__pydantic_extra__", None)
    object.__setattr__(obj, "__pydantic_private__", None)
    return obj


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


def needs(clause: Clause) -> tuple[tuple[tuple[str, str], ...], bool, Any]:
    """The facts a clause cannot be evaluated without, each with the rule that needs it; and
    whether it limits the award to a share of the interest actually paid (which must then be given)."""
    needed = [(name, f"{clause.id} ({clause.formula}) requires {name}") for name in clause.required_facts]
    if clause.formula == "rate_of_base":
        needed += [(name, f"{clause.id} computes on {name}; it is missing")
                   for name in (clause.base, clause.second_limit) if name]
    names = [name for name, _ in needed]
    # every needed fact in one C call, always as a tuple (a single name given twice)
    getter = attrgetter(*(names * 2 if len(names) == 1 else names)) if names else None
    return tuple(needed), "interest_paid_share_pct" in clause.params, getter


_WORDS = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<", "eq": "=", "in": "in"}


class Plan:
    """One clause of one catalogue for one support year, resolved once (Catalogue.plan).

    Everything here is derived from the policy data alone, never from a request: the days of the
    support year inside the document's window, each parameter in force on the first counted day
    (value and citation text, None when not yet in force), the caps and thresholds in force then,
    and the fixed texts of the trace. `memo` holds what a formula derives from its parameters."""
    __slots__ = ("cat", "doc", "clause", "cid", "year", "start", "end", "year_end", "params", "caps",
                 "thresholds", "regions", "fact_kind", "max_years", "max_years_cite", "window_cite",
                 "tranche_label", "needs", "memo", "counted", "formula", "doc_id", "issuer", "window_start",
                 "window_end", "blacklist_cite", "qualifications", "base", "second_limit", "by_policy",
                 "preferential_rate", "preferential_rate_cite", "overlap_rule", "overlap_cite")

    def __init__(self, cat: Any, doc: Document, clause: Clause, year: int):
        self.cat, self.doc, self.clause, self.cid, self.year = cat, doc, clause, clause.id, year
        w = doc.window
        self.start, self.end, self.year_end = max(date(year, 1, 1), w.start), min(date(year, 12, 31), w.end), \
            date(year, 12, 31)
        self.params: dict[str, tuple[Any, str | None] | None] = {}
        for name, values in clause.params.items():
            dated = value_on(values, self.start)
            self.params[name] = None if dated is None else (dated.value, cite_text(dated.cite))
        caps = []
        for cap in clause.caps:
            if cap.scope == "per_item" and clause.formula == "vc_reward":
                continue                     # applied per investee inside the formula
            dated = value_on(cap.amount, self.start)
            if dated is None:
                continue
            group = cat.cap_group(clause.id, cap.group) if cat is not None else (clause.id,)
            shared = ",".join(c for c in group if c != clause.id) if len(group) > 1 else None
            caps.append((cap.scope, dated.value, cap.scope == "one_off" or cap.once, group, shared,
                         cite_text(dated.cite), f"cap:{cap.scope}"))
        self.caps = tuple(caps)
        thresholds = []
        for t in clause.thresholds:
            dated = value_on(t.value, self.start)
            if dated is None:
                continue
            # an int limit against a Decimal fact compares and prints the same as Decimal(limit)
            text = f"{_WORDS[t.op]} {dated.value}"
            thresholds.append((t.fact, t.op, dated.value, text, f"{t.fact} {text}", t.code, t.rule,
                               f"threshold:{t.fact}", cite_text(dated.cite)))
        self.thresholds = tuple(thresholds)
        self.regions = tuple(doc.regions)
        self.fact_kind = clause.fact_date if clause.fact_date in ("period_start", "event_date") else None
        self.max_years = doc.rules.max_consecutive_years
        self.max_years_cite = cite_text(doc.rules.max_consecutive_years_cite)
        self.window_cite = cite_text(w.cite)
        self.tranche_label = f"{clause.id} {year}"
        self.needs = needs(clause)
        self.counted = (self.start, self.end)   # the days counted, as the eligibility step shows them
        self.memo: dict[Any, Any] = {}
        # what evaluations read of the clause and its document, copied here: a Plan's attribute is a
        # slot, where a pydantic model's attribute read takes CPython's slow path (BaseModel defines
        # __getattr__), and an evaluation made dozens of them
        self.formula: str = clause.formula
        self.doc_id: str = doc.id
        self.issuer: str = doc.issuer
        self.window_start: date = w.start
        self.window_end: date = w.end
        self.blacklist_cite = cite_text(doc.rules.blacklist_cite)
        self.qualifications: tuple[str, ...] = clause.requires_qualification
        self.base = clause.base
        self.second_limit = clause.second_limit
        self.by_policy = clause.overlap_item == "insurance_policy"
        self.preferential_rate = doc.rules.preferential_rate
        self.preferential_rate_cite = cite_text(doc.rules.preferential_rate_cite)
        self.overlap_rule = doc.rules.overlap_rule
        self.overlap_cite = cite_text(doc.rules.overlap_cite)

    def derived(self, key: str, make: Callable[[], Any]) -> Any:
        """What a formula derives from its parameters (a rate as a fraction, a formula's text), made once."""
        try:
            return self.memo[key]
        except KeyError:
            value = self.memo[key] = make()
            return value


class Ctx:
    __slots__ = ("req", "plan", "doc", "clause", "cid", "history", "as_of", "period_start", "period_end",
                 "trace", "checks", "cat", "fields", "year", "facts")

    def __init__(self, req: CalcRequest, plan: Plan, history: AwardHistory, as_of: date | None):
        """`as_of`: the calculation date; None: the request's (by default 31 Dec of the support year)."""
        # the request's fields, read once from its __dict__, where pydantic keeps them: one attribute
        # read, where each `req.x` takes CPython's slow path (BaseModel defines __getattr__) and an
        # evaluation made dozens. (models/amendments.py passes a namespace with the year alone.)
        fields = self.fields = req.__dict__
        self.req, self.plan, self.history = req, plan, history
        self.year: int = fields["year"]
        self.facts: Any = fields.get("facts")    # Facts (none in the namespace of models/amendments.py)
        self.as_of: date = as_of or fields["as_of"] or plan.year_end
        self.doc, self.clause, self.cid, self.cat = plan.doc, plan.clause, plan.cid, plan.cat
        self.period_start = plan.start   # first day of the support year counted (clipped to the window)
        self.period_end = plan.end       # last day counted
        self.trace: list[TraceStep] = []
        self.checks: dict[str, Any] = {}  # facts of the rules passed, one trace step

    def step(self, step: str, formula: str = "", inputs: dict[str, Any] | None = None,
             result: Any = "", rule: str | None = None, cite: Citation | str | None = None) -> None:
        self.trace.append(tuple_new(TRACE_STEP, (
            self.cid, step, formula, inputs or {}, result, rule,
            cite if cite is None or isinstance(cite, str) else cite_text(cite))))

    def refuse(self, code: str, reason: str, rule: str | None = None,
               cite: Citation | str | None = None) -> Refused:
        self.step("refusal", "", {"code": code}, reason, rule, cite)
        return Refused(refusal(code, reason, rule))

    def param(self, name: str) -> tuple[Any, str | None]:
        """The clause parameter in force on the first counted day: its value and its citation's text."""
        dated = self.plan.params[name]
        if dated is None:
            raise self.refuse("out_of_window", f"{name} of {self.cid} not yet in force on {self.period_start}",
                              rule=f"param:{name}")
        return dated

    def cap_group(self, cap) -> tuple[str, ...]:
        """The clauses whose awards count against `cap` (this clause alone unless it names a group)."""
        return self.cat.cap_group(self.cid, cap.group) if self.cat is not None else (self.cid,)

    def has_param(self, name: str) -> bool:
        return name in self.plan.params  # the clause's parameters, each resolved (None: not yet in force)
