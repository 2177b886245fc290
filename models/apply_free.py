"""免申即享 (apply-free) batches: from the data the city already holds — the enterprise registry
with its qualifications and their dates, the blacklist, the award book and the held facts
(models/held_facts.py) — find every enterprise that qualifies under a clause for a support year,
with the provisional amount the calculation core gives, and the reason (and rule) for every one
that does not. Nothing here starts anything: `preview` only reads; the CLI (`disburse apply-free`)
shows the preview and, on confirmation, starts one application per eligible enterprise through
the same path as `disburse submit-batch` (cli/batch.submit_rows), so the ids are derived from
enterprise + clause + year and a rerun starts none twice.

Each enterprise is judged in the order a bureau would: the policy-wide rules of the calculation
core (blacklist on the day in China, jurisdiction by the credit code's region, the policy window,
consecutive years, the clause's qualification valid during the support year), then the facts the
clause needs (held for this enterprise, clause and year?), then the calculation itself
(thresholds, formula, caps against the award book, 不重复) — its amount is provisional: the
binding calculation runs after review, credit check, against the award book of that day.

Evaluation is sequential (`calc.calculate`, one enterprise after the other); a multi-core
`calc.batch.evaluate_many` would replace the loop in `_judge_all` (requests in, results out).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Optional

from sqlmodel import select

from models import held_facts
from models.sheets import RegistryError

ZERO = Decimal("0.00")
ELIGIBLE, INELIGIBLE, STARTED = "eligible", "not eligible", "already started"


class ApplyFreeError(ValueError):
    """A request the batch cannot be made for (unknown clause, year outside the window): one line
    naming the field and the rule."""

    def __init__(self, field: str, rule: str):
        self.field, self.rule = field, rule
        super().__init__(f"{field}: {rule}")


@dataclass(frozen=True)
class Candidate:
    credit_code: str
    name: str
    application_id: str
    outcome: str                          # ELIGIBLE, INELIGIBLE, STARTED
    amount: Optional[Decimal] = None      # provisional (eligible only)
    reason: str = ""                      # why not eligible (or the started application's status)
    rule: str = ""                        # the rule that refused: blacklist, jurisdiction, qualification, facts...
    facts: dict = field(default_factory=dict)

    @property
    def to_start(self) -> bool:
        return self.outcome == ELIGIBLE


@dataclass(frozen=True)
class Preview:
    clause_id: str
    clause_name: str
    year: int
    day: date                             # the day in China the blacklist was read for
    candidates: tuple[Candidate, ...]

    @property
    def eligible(self) -> list[Candidate]:
        return [c for c in self.candidates if c.outcome == ELIGIBLE]

    @property
    def started(self) -> list[Candidate]:
        return [c for c in self.candidates if c.outcome == STARTED]

    @property
    def ineligible(self) -> list[Candidate]:
        return [c for c in self.candidates if c.outcome == INELIGIBLE]

    @property
    def total(self) -> Decimal:
        return sum((c.amount for c in self.eligible), ZERO)

    def summary(self) -> str:
        return (f"{self.clause_id} {self.year}: {len(self.candidates)} enterprises in the registry; "
                f"{len(self.eligible)} eligible, provisional total {self.total:,.2f} yuan; "
                f"{len(self.started)} already started; {len(self.ineligible)} not eligible")

    HEADER = ("enterprise", "credit_code", "outcome", "provisional_amount", "reason", "rule", "application_id")

    def rows(self) -> list[list[Any]]:
        """The preview as a table (for the terminal and the .xlsx / CSV export)."""
        return [[c.name, c.credit_code, c.outcome, c.amount, c.reason, c.rule, c.application_id]
                for c in self.candidates]


def check(clause_id: str, year: Any) -> tuple[Any, Any, int]:
    """(document, clause, year) of a request, or ApplyFreeError naming the field."""
    try:
        doc, clause = held_facts.clause_window(clause_id, field="clause")
        y = held_facts.support_year(doc, str(year), field="--year")
    except RegistryError as e:
        raise ApplyFreeError(e.field or "clause", e.rule) from None
    return doc, clause, y


def preview(clause_id: str, year: Any, *, on: Optional[date] = None) -> Preview:
    """Every enterprise of the registry judged under the clause for the support year (read only)."""
    from models import registry
    doc, clause, year = check(clause_id, year)
    day = registry.today_cn() if on is None else registry.china_day(on)
    return Preview(clause.id, clause.name_zh, year, day, tuple(_judge_all(clause.id, year, day)))


def _judge_all(clause_id: str, year: int, day: date) -> list[Candidate]:
    from models import registry
    from models.application import workflow_id_for
    from models.db import session
    from models.recovery import bar_line
    from models.tables import ApplicationRow, Bar, BlacklistEntry, EnterpriseRow
    held = held_facts.facts_for(clause_id, year)
    out: list[Candidate] = []
    with session() as s:
        listed = {e.credit_code for e in s.exec(select(BlacklistEntry))
                  if e.listed_on is None or e.listed_on <= day}
        started = {r.application_id: r.status for r in s.exec(
            select(ApplicationRow).where(ApplicationRow.clause_id == clause_id, ApplicationRow.year == year))}
        awards = _prior_awards(s)
        barred = {}                       # the longest bar in force today per enterprise (after a 追回)
        for b in s.exec(select(Bar).where(Bar.until_day > day).order_by(Bar.until_day)):
            barred[b.enterprise_code] = b
        for e in s.exec(select(EnterpriseRow).order_by(EnterpriseRow.credit_code)).all():
            app_id = workflow_id_for(e.credit_code, clause_id, year)
            base = {"credit_code": e.credit_code, "name": e.name, "application_id": app_id}
            bar = barred.get(e.credit_code)
            if bar is not None and started.get(app_id) is None:
                out.append(Candidate(**base, outcome=INELIGIBLE, rule="bar",
                                     reason=bar_line({"enterprise_code": bar.enterprise_code, "until_day": bar.until_day,
                                                      "from_day": bar.from_day, "reason": bar.reason,
                                                      "rule": bar.rule})))
                continue
            try:
                ent = registry.enterprise_of(e)
            except (ValueError, RegistryError) as bad:
                out.append(Candidate(**base, outcome=INELIGIBLE, rule="registry",
                                     reason=f"the registry row is not usable: {bad}"))
                continue
            prior = awards.get(e.credit_code, [])
            out.append(judge(clause_id, year, ent, held.get(e.credit_code), prior=prior,
                             blacklisted=e.credit_code in listed, started=started.get(app_id), base=base))
    return out


def _prior_awards(s) -> dict[str, list[dict]]:
    """Every enterprise's committed and paid awards per (clause, year, item), as calc.PriorAward
    dicts, in one query (models/book.prior_awards reads one enterprise's, under its lock, for the
    binding calculation; the preview only reads)."""
    from sqlalchemy import func

    from models.book import COUNTING
    from models.tables import AwardLine
    q = (select(AwardLine.enterprise_code, AwardLine.clause_id, AwardLine.year, AwardLine.item_id,
                func.sum(AwardLine.amount))
         .where(AwardLine.state.in_(COUNTING))
         .group_by(AwardLine.enterprise_code, AwardLine.clause_id, AwardLine.year, AwardLine.item_id))
    out: dict[str, list[dict]] = {}
    for code, clause_id, year, item_id, amount in s.exec(q):
        out.setdefault(code, []).append({"clause_id": clause_id, "year": year, "item_id": item_id or None,
                                         "amount": Decimal(amount).quantize(Decimal("0.01"))})
    return out


def judge(clause_id: str, year: int, ent, facts: Optional[dict], *, prior: list[dict], blacklisted: bool,
          started: Optional[str] = None, base: Optional[dict] = None) -> Candidate:
    """One enterprise: the policy-wide rules, the facts held, then the provisional calculation."""
    from calc import CalcRequest, InputError, calculate
    from calc.engine import check_claim
    base = base or {"credit_code": ent.credit_code, "name": ent.name, "application_id": ""}
    if started is not None:               # its application is under way: it counts its own award now
        return Candidate(**base, outcome=STARTED, reason=f"its application is {started}", facts=facts or {})
    req = CalcRequest.model_validate({"clause_id": clause_id, "year": year, "enterprise": ent,
                                      "facts": facts or {}, "prior_awards": prior, "blacklisted": blacklisted})
    refusal = _rules(req)
    if refusal is not None:
        return Candidate(**base, outcome=INELIGIBLE, reason=refusal.reason, rule=refusal.rule or refusal.code)
    try:
        check_claim(clause_id, req.facts)
    except InputError as e:
        why = "no facts held" if facts is None else "the facts held lack what the clause needs"
        return Candidate(**base, outcome=INELIGIBLE, rule="facts",
                         reason=f"{why} for {clause_id} {year} ({e.field}: {e.rule}); "
                                "import them with `disburse facts import`")
    result = calculate(req)
    if result.refusal is not None:
        return Candidate(**base, outcome=INELIGIBLE, reason=result.refusal.reason,
                         rule=result.refusal.rule or result.refusal.code, facts=facts or {})
    return Candidate(**base, outcome=ELIGIBLE, amount=result.amount, facts=facts or {})


def _rules(req):
    """The calculation core's policy-wide rules alone (blacklist, jurisdiction, window, consecutive
    years, qualification), before the facts are looked at: the reason a bureau gives first."""
    from calc import catalogue, rules
    from calc.context import Ctx, Refused
    from calc.history import AwardHistory
    plan = catalogue().plan(req.clause_id, req.year)
    ctx = Ctx(req, plan, AwardHistory.of(req.prior_awards), plan.year_end)
    try:
        rules.eligibility(ctx)
    except Refused as r:
        return r.refusal
    return None


def applications(p: Preview, operator: str) -> list:
    """The claims to start: one ApplicationInput per eligible enterprise, as `operator`."""
    from models import ApplicationInput
    out = []
    for c in p.eligible:
        out.append(ApplicationInput.model_validate({
            "clause_id": p.clause_id, "year": p.year, "enterprise_code": c.credit_code,
            "enterprise_name": c.name, "operator": operator, "facts": c.facts,
            "note": f"免申即享: started by {operator} from the registry and the facts held "
                    f"(provisional {c.amount:,.2f} yuan on {p.day})"}))
    return out


def facts_text(facts: dict) -> str:
    return json.dumps(facts, ensure_ascii=False, sort_keys=True)
