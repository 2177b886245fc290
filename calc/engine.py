"""Evaluation of a claim: the policy-wide rules, the clause's formula, caps, 不重复, the
reviewer's lowering, rounding to the fen, and the payout schedule. Pure: no I/O, no clock."""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

from pydantic import ValidationError

from calc import rules
from calc.caps import apply_caps, distribute, not_twice
from calc.catalogue import Catalogue, catalogue
from calc.context import TRACE_STEP, TRANCHE, Ctx, Plan, Refused, cite_text, needs, result, tuple_new
from calc.errors import InputError
from calc.formulas import FORMULAS
from calc.history import AwardHistory
from calc.model import CalcRequest, CalcResult, Refusal, TraceStep, Tranche
from calc.money import FEN, ZERO, fmt, to_fen

CEILINGS_RULE: Final = "本文件中涉及的资金补助(奖励)比例和标准为最高限额"


def parse_request(data: Any) -> CalcRequest:
    """Validate raw input (a dict from JSON) into a request, or raise InputError naming the field."""
    try:
        req = CalcRequest.model_validate(data)
    except ValidationError as e:
        raise InputError.from_validation(e) from None
    check_request(req)
    return req


_NEEDS: dict[str, tuple] = {}


def check_request(req: CalcRequest, cat: Catalogue | None = None) -> None:
    """Refuse unknown clauses and missing facts before any arithmetic."""
    check_claim(req.clause_id, req.facts, req.alternatives, cat)


def check_claim(clause_id: str, facts, alternatives=(), cat: Catalogue | None = None) -> None:
    """Unknown clause ids and facts a claimed clause needs but lacks: InputError(field, rule)."""
    cat = cat or catalogue()
    for i, cid in enumerate((clause_id, *alternatives)):
        entry = cat.clauses.get(cid)
        if entry is None:
            field = "clause_id" if i == 0 else f"alternatives.{i - 1}"
            raise InputError(field, f"unknown clause {cid!r}; `disburse policies` lists the clause ids")
        found = _NEEDS.get(cid)
        if found is None or len(_NEEDS) > 10_000:
            found = _NEEDS[cid] = needs(entry[1])
        _check_facts(cid, found, facts)


def _check_facts(cid: str, needs: tuple, facts) -> None:
    needed, paid_share, getter = needs
    if getter is not None:
        for value in getter(facts):
            if value is None:          # `is`, not `in`: Decimal == None goes through an ABC check
                for name, rule in needed:
                    if getattr(facts, name) is None:
                        raise InputError(f"facts.{name}", rule)
    if paid_share and facts.loans is not None:
        if facts.interest_paid is None and any(loan.interest_paid is None for loan in facts.loans):
            raise InputError("facts.loans.interest_paid",
                             f"{cid} limits the award to a share of the interest actually paid; give it")


def _schedule(ctx: Ctx, amount: Decimal, parts: list) -> tuple[Tranche, ...]:
    if amount <= ZERO:
        return ()
    if not parts:
        return (tuple_new(TRANCHE, (1, ctx.as_of, amount, ctx.plan.tranche_label)),)
    raw_total = sum((p[2] for p in parts), ZERO)
    tranches, paid = [], ZERO
    for i, (label, due, raw) in enumerate(parts, start=1):
        share = amount - paid if i == len(parts) else to_fen(amount * raw / raw_total)
        paid += share
        tranches.append(tuple_new(TRANCHE, (i, due, share, label)))
    return tuple(tranches)


_ROUND: Final = "quantize to 0.01, ROUND_HALF_UP"
_FEN_ZERO: Final = Decimal("0.00")


def _evaluate(req: CalcRequest, cat: Catalogue, history: AwardHistory, plan: Plan | None = None) -> CalcResult:
    if plan is None:
        plan = cat.plans.get((req.clause_id, req.year)) or cat.plan(req.clause_id, req.year)
    cid = plan.cid
    ctx = Ctx(req, plan, history, None)
    trace, year = ctx.trace, ctx.year
    shares: dict[str, Decimal] = {}
    try:
        rules.eligibility(ctx)
        if plan.thresholds:
            rules.thresholds(ctx)
        raw = FORMULAS[plan.formula](ctx)
        amount, parts, values = raw
        if values:
            if len(values) == 1:
                (key, value), = values.items()
                # the formula's one item is the whole amount: _item_values, without the sum
                values = {key: value} if value is amount else _item_values(raw)
            else:
                values = _item_values(raw)
            shares = values              # (as labelled if not_twice refuses)
            # not_twice, when the history holds awards for some item (else: all payable)
            shares = not_twice(ctx, cat, values) if history.has_item_awards else dict(values)
            amount = sum(shares.values(), ZERO)
        else:
            shares = values = {}
        if plan.caps:
            amount = apply_caps(ctx, cat, amount, shares)
        adj = ctx.fields["adjustment"]
        if adj is not None and adj.max_amount < amount:
            amount = adj.max_amount
            ctx.step("reviewer_lowering", formula="min(award, amount set by the reviewer)",
                     inputs={"max_amount": adj.max_amount, "reviewer": adj.reviewer or "-"},
                     result=amount, rule="reviewer", cite=f"{CEILINGS_RULE} — {adj.reason}")
        final = amount.quantize(FEN, ROUND_HALF_UP)     # to_fen (rounding given by position: half the cost)
        trace.append(tuple_new(TRACE_STEP, (cid, "round", _ROUND, {"amount": amount}, final, None, None)))
        if final <= ZERO:
            raise _nothing_payable(ctx, amount)
        label: str | None
        if len(shares) == 1:             # the usual claim: one item takes the whole award (distribute)
            label, = shares
            shares = {label: final - ZERO}
        else:
            shares = distribute(final, shares)
            label = _item_label(shares)
        schedule = _schedule(ctx, final, parts) if parts else \
            (tuple_new(TRANCHE, (1, ctx.as_of, final, plan.tranche_label)),)
        # built without re-validation: every value here was produced by this module
        return result(cid, year, final, schedule, tuple(trace), None, cid, label, shares, values)
    except Refused as r:
        return result(cid, year, _FEN_ZERO, (), tuple(trace), r.refusal, None, _item_label(shares), {}, {})


def _item_values(raw) -> dict[str, Decimal]:
    """What the formula computed for each item, scaled to its total where a limit on the whole
    claim (e.g. a share of the interest actually paid) cut it."""
    values = raw.items
    if len(values) == 1:
        for value in values.values():
            if value is raw.amount:        # the formula's one item is the whole amount
                return dict(values)
    total = sum(values.values(), ZERO)
    if not values or total == raw.amount or total <= 0:
        return dict(values)
    return {k: v * raw.amount / total for k, v in values.items()}


def _item_label(shares: dict[str, Decimal]) -> str | None:
    """The items an award pays for, as one ledger label."""
    if len(shares) == 1:
        for key in shares:
            return key
    return "+".join(sorted(shares)) if shares else None


def _nothing_payable(ctx: Ctx, amount: Decimal) -> Refused:
    """An award that is 0.00 after every step (the formulas refuse their own zeros): named after
    what made it zero — a reviewer's ceiling of 0, a cap the formula applied, or the rounding."""
    if amount > ZERO:
        return ctx.refuse("below_threshold", f"the award {fmt(amount)} is less than half a fen: rounded once to "
                          "the fen (ROUND_HALF_UP) it is 0.00", rule="round")
    bit: Any = next((s for s in reversed(ctx.trace) if s.rule), None)
    if bit is not None and bit.rule == "reviewer":
        return ctx.refuse("ineligible", f"the reviewer lowered the award under {ctx.cid} to 0: "
                          f"{ctx.req.adjustment.reason}", rule="reviewer", cite=bit.cite)  # type: ignore[union-attr]
    if bit is not None and bit.rule.startswith("cap:"):
        return ctx.refuse("cap_exhausted", f"the {bit.rule[4:]} cap under {ctx.cid} leaves nothing for {ctx.year}",
                          rule=bit.rule, cite=bit.cite)
    return ctx.refuse("cap_exhausted", f"nothing payable under {ctx.cid} for {ctx.year}", rule="zero")


def calculate(req: CalcRequest, history: AwardHistory | None = None,
              cat: Catalogue | None = None) -> CalcResult:
    """Evaluate the request. With `alternatives`, evaluates every clause claimed for the same item
    and returns the most favourable (从优、就高、不重复). `history` (optional) is the enterprise's
    pre-indexed award history; by default it is built from `req.prior_awards`."""
    cat = cat or catalogue()
    fields = req.__dict__                # the request's fields, read once (see calc/context.py, Ctx)
    if not fields["alternatives"]:
        plan = cat.plans.get((fields["clause_id"], fields["year"]))
        if plan is not None:             # the clause is known (its plan is made): check its facts alone
            needs = plan.needs           # _check_facts, inline where every needed fact is given
            facts = fields["facts"]
            if needs[2] is not None:
                for value in needs[2](facts):
                    if value is None:    # `is`, not `in`: Decimal == None goes through an ABC check
                        _check_facts(plan.cid, needs, facts)
            if needs[1]:
                _check_facts(plan.cid, needs, facts)
            if history is None:
                history = AwardHistory.of(fields["prior_awards"])
            return _evaluate(req, cat, history, plan)
    check_request(req, cat)
    history = history if history is not None else AwardHistory.of(req.prior_awards)
    if req.alternatives:
        claims = [req] + [req.model_copy(update={"clause_id": c, "alternatives": ()}) for c in req.alternatives]
        return calculate_claims(claims, history, cat)[0]
    return _evaluate(req, cat, history)


def calculate_claims(requests: list[CalcRequest], history: AwardHistory | None = None,
                     cat: Catalogue | None = None) -> list[CalcResult]:
    """从优、就高、不重复: clauses that fund the same item for the same enterprise and year form an
    overlap group; the single highest award is paid, once. Returns the chosen result first, then
    each alternative (amount 0, refusal `superseded` or its own refusal)."""
    cat = cat or catalogue()
    if not requests:
        return []
    history = history if history is not None else AwardHistory.of(requests[0].prior_awards)
    for r in requests:
        check_request(r.model_copy(update={"alternatives": ()}), cat)
        if (r.year, r.enterprise.credit_code) != (requests[0].year, requests[0].enterprise.credit_code):
            raise InputError("year", "claims in one overlap group must be the same enterprise and year")
    results = [_evaluate(r.model_copy(update={"alternatives": ()}), cat, history) for r in requests]
    if len(results) == 1:
        return results
    # highest award wins; on a tie, the clause claimed first
    best = max(range(len(results)), key=lambda i: (results[i].amount, -i))
    chosen = results[best]
    alternatives = {r.clause_id: fmt(r.amount) for r in results}
    doc = cat.clauses[chosen.clause_id][0]
    why = "; ".join(
        f"{r.clause_id}: {fmt(r.amount)}" + (f" ({r.refusal.code})" if r.refusal else "") for r in results)
    overlap = TraceStep(
        clause_id=chosen.clause_id, step="overlap", formula="max(award of each clause claimed for the item)",
        inputs={r.clause_id: fmt(r.amount) for r in results},
        result=f"{chosen.clause_id} pays {fmt(chosen.amount)}; alternatives: {why}",
        rule="从优、就高、不重复", cite=cite_text(doc.rules.overlap_cite))
    out = [chosen.model_copy(update={"trace": chosen.trace + (overlap,), "alternatives": alternatives,
                                     "chosen_clause": chosen.clause_id})]
    for i, res in enumerate(results):
        if i == best:
            continue
        refusal = res.refusal or Refusal(
            code="superseded", rule="从优、就高、不重复",
            reason=f"{chosen.clause_id} pays more ({fmt(chosen.amount)} > {fmt(res.amount)}) for the same item")
        out.append(res.model_copy(update={"amount": Decimal("0.00"), "schedule": (), "refusal": refusal, "items": {},
                                          "chosen_clause": chosen.clause_id, "alternatives": alternatives}))
    return out
