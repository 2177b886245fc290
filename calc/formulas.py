"""The formula of each kind of clause. Each returns the raw (unrounded, uncapped) award and the
parts it is paid in; every step goes into the trace with its formula, inputs and citation."""
from __future__ import annotations

import calendar
from datetime import date
from decimal import Decimal
from operator import itemgetter
from typing import Any, Callable, Final

from calc import items, rates
from calc.context import TRACE_STEP, Ctx, tuple_new
from calc.model import Facts
from calc.money import ZERO, pct
from calc.parameters import Citation, value_on
from calc.raw import Part, Raw

# Why an item (a loan, an investment, a stage) counts nothing: the refusal it would be
# (code, rule, citation, reason). When no item is left, the first one is the claim's refusal:
# a zero award always names the rule that made it zero, never a bare "nothing payable".
Nothing = tuple[str, str, "Citation | str | None", str]


RAW: Final[Any] = Raw   # tuple_new(RAW, (amount, parts, items)): a Raw in one C call (Final: calc/context.py)


def _fact_items(f: Facts, amount: Decimal) -> dict[str, Decimal]:
    """The item a claim names in facts.item_id, if any (grants, ABS issues)."""
    item_id = f.item_id
    return {items.named(item_id): amount} if item_id else {}


def _policy_items(ctx: Ctx, f: Facts, amount: Decimal) -> dict[str, Decimal]:
    if ctx.plan.by_policy:
        policy_no = f.policy_no
        if policy_no:
            return {items.policy(policy_no, f.period_start): amount}
    return {}


def _refuse_first(ctx: Ctx, nothing: list[Nothing], what: str):
    """The refusal of a claim none of whose items counted: the first item's reason."""
    code, rule, cite, reason = nothing[0]
    others = len(nothing) - 1
    if others:
        reason += (f"; the other {what} counts nothing either" if others == 1 else
                   f"; the {others} other {what}s count nothing either") + " (see the trace)"
    return ctx.refuse(code, reason, rule=rule, cite=cite)


def _months_later(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    y, m = d.year + y, m + 1
    return date(y, m, min(d.day, calendar.monthrange(y, m)[1]))


# ---------------------------------------------------------------- loan interest (贴息)

def loan_interest(ctx: Ctx) -> Raw:
    """贴息: principal × subsidy rate × days outstanding in the support year / days in that year,
    per loan; under the preferential-rate rule the loan rate must be below the LPR of the same
    term on the contract date, and the subsidy rate may not push the enterprise's own rate below
    the deposit benchmark of the same term."""
    memo = ctx.plan.memo
    derived: Any = memo.get("loan_interest")
    if derived is None:                  # the parameters (each refused, in this order, if not in force)
        rate_pct, rate_cite = ctx.param("rate_pct")
        share = ctx.param("interest_paid_share_pct")[0] if ctx.has_param("interest_paid_share_pct") else None
        derived = memo["loan_interest"] = (Decimal(rate_pct), rate_cite, share,
                                           Decimal(366 if calendar.isleap(ctx.plan.year) else 365))
    rate_pct, rate_cite, share, days_in_year = derived
    plan = ctx.plan
    preferential, pref_cite = plan.preferential_rate, plan.preferential_rate_cite
    year, facts = ctx.year, ctx.facts
    nothing: list[Nothing] = []
    per_loan: dict[str, Decimal] = {}
    total = ZERO
    for loan in facts.loans or ():
        # each field read once (a pydantic attribute read is slow: calc/context.py, Plan)
        loan_id, loan_rate, start, end = loan.loan_id, loan.annual_rate_pct, loan.start, loan.end
        sub = rate_pct
        if preferential:
            contract_date, term_months = loan.contract_date, loan.term_months
            fixing = rates.lpr_on(contract_date, term_months)
            if fixing is None:
                nothing.append(("not_preferential_rate", "preferential_rate", pref_cite,
                    f"loan {loan_id} was signed on {contract_date}, before the first LPR fixing "
                    f"({rates.first_lpr_fixing()}): there is no LPR on that date for its rate to be below"))
                ctx.step("preferential_rate", formula="loan rate < LPR(contract date, term)",
                         inputs={"loan": loan_id, "loan_rate_pct": loan_rate,
                                 "contract_date": contract_date, "lpr": "none before the first fixing"},
                         result="no LPR on the contract date: loan excluded", rule="preferential_rate",
                         cite=pref_cite)
                continue
            lpr, lpr_label = fixing
            if loan_rate >= lpr:
                nothing.append(("not_preferential_rate", "preferential_rate", pref_cite,
                    f"loan rate {loan_rate}% is not below the LPR {lpr}% of the same term on the "
                    f"contract date {contract_date}"))
                ctx.step("preferential_rate", formula="loan rate < LPR(contract date, term)",
                         inputs={"loan": loan_id, "loan_rate_pct": loan_rate, "lpr": lpr_label},
                         result="not preferential: loan excluded", rule="preferential_rate", cite=pref_cite)
                continue
            dep, dep_label = rates.deposit_rate(term_months)
            headroom = loan_rate - dep
            if headroom < sub:
                sub = max(headroom, ZERO)
                ctx.step("deposit_floor", formula="subsidy rate ≤ loan rate − deposit rate (same term)",
                         inputs={"loan": loan_id, "loan_rate_pct": loan_rate, "deposit": dep_label,
                                 "clause_rate_pct": rate_pct},
                         result=f"{sub}%", rule="deposit_floor", cite=pref_cite)
                if sub <= ZERO:
                    nothing.append(("ineligible", "deposit_floor", pref_cite,
                        f"loan {loan_id}: its rate {loan_rate}% leaves no room above the deposit "
                        f"benchmark ({dep_label}); the enterprise's own rate may not fall below it"))
                    continue
            else:
                ctx.step("preferential_rate", "loan rate < LPR(contract date, term)",
                         {"loan": loan_id, "loan_rate_pct": loan_rate, "lpr": lpr_label},
                         "preferential", None, pref_cite)
        first, last = max(start, ctx.period_start), min(end, ctx.period_end)
        days = (last - first).days + 1 if last >= first else 0
        principal = loan.principal
        amount = principal * pct(sub) * days / days_in_year
        outside: Nothing | None = None
        if not days:   # intervals: no day in (window ∩ year) means none in the window or none in the year
            if end < plan.window_start or start > plan.window_end:
                outside = ("out_of_window", "validity", plan.window_cite,
                           f"loan {loan_id} ran {start}..{end}, outside {plan.doc_id}'s window "
                           f"{plan.window_start}..{plan.window_end}: no day of it counts")
            else:
                outside = ("ineligible", "support_year", None,
                           f"loan {loan_id} ran {start}..{end}: no day of it lies in the support "
                           f"year {year} (counted {ctx.period_start}..{ctx.period_end}); claim it for its own year")
            nothing.append(outside)
        ctx.step("interest", "principal × rate × days / days in year",
                 {"loan": loan_id, "principal": principal, "rate_pct": sub, "days": days,
                  "days_in_year": days_in_year, "counted": f"{first}..{last}" if days else "none"},
                 amount, outside and outside[1], outside[2] if outside else rate_cite)
        interest_paid = loan.interest_paid if share is not None else None
        if interest_paid is not None:
            limit = pct(Decimal(share)) * interest_paid
            if amount > limit:
                amount = limit
                share_cite = ctx.param("interest_paid_share_pct")[1]
                ctx.step("interest_paid_limit", formula=f"≤ {share}% × interest actually paid",
                         inputs={"loan": loan_id, "interest_paid": interest_paid}, result=amount,
                         rule="interest_paid_share", cite=share_cite)
                if amount <= ZERO:
                    nothing.append(("cap_exhausted", "interest_paid_share", share_cite,
                                    f"loan {loan_id}: the award is at most {share}% of the interest actually "
                                    f"paid, and {interest_paid} was paid"))
        total += amount
        key = items.loan(loan_id, year)
        per_loan[key] = per_loan.get(key, ZERO) + amount
    if total <= ZERO and nothing:
        raise _refuse_first(ctx, nothing, "loan")
    interest_paid = facts.interest_paid if share is not None else None
    if interest_paid is not None:
        limit = pct(Decimal(share)) * interest_paid
        if total > limit:
            total = limit
            share_cite = ctx.param("interest_paid_share_pct")[1]
            ctx.step("interest_paid_limit", formula=f"≤ {share}% × interest actually paid",
                     inputs={"interest_paid": interest_paid}, result=total,
                     rule="interest_paid_share", cite=share_cite)
            if total <= ZERO:
                raise ctx.refuse("cap_exhausted", f"the award is at most {share}% of the interest actually paid, "
                                 f"and {interest_paid} was paid", rule="interest_paid_share",
                                 cite=share_cite)
    return tuple_new(RAW, (total, [], per_loan))


# ---------------------------------------------------------------- rate × base

def rate_of_base(ctx: Ctx) -> Raw:
    """按不超过实际保险费X%的标准 / 按…余额X%的比例: rate × base fact, then any second limit."""
    plan = ctx.plan
    derived: Any = plan.memo.get("rate_of_base")
    if derived is None:
        rate_pct, cite = ctx.param("rate_pct")
        base_name = plan.base
        derived = plan.memo["rate_of_base"] = (pct(Decimal(rate_pct)), f"{rate_pct}% × {base_name}", rate_pct,
                                               cite, base_name, plan.by_policy)
    fraction, formula, rate_pct, cite, base_name, by_policy = derived
    facts = ctx.facts
    base = getattr(facts, base_name)
    amount = fraction * base
    ctx.trace.append(tuple_new(TRACE_STEP, (plan.cid, "rate_of_base", formula, {base_name: base, "rate_pct": rate_pct},
                                       amount, None, cite)))
    if amount <= ZERO:
        raise ctx.refuse("ineligible", f"{base_name} is {base}: {rate_pct}% of it is nothing",
                         rule=f"base:{base_name}", cite=cite)
    second = plan.second_limit
    if second:
        limit = getattr(facts, second)
        if amount > limit:
            amount = limit
            ctx.step("second_limit", formula=f"≤ {second}", inputs={second: limit}, result=amount, rule=second,
                     cite=cite)
            if amount <= ZERO:
                raise ctx.refuse("cap_exhausted", f"the award may not exceed {second}, which is {limit}",
                                 rule=second, cite=cite)
    # _policy_items, else _fact_items
    if by_policy:
        policy_no = facts.policy_no
        if policy_no:
            return tuple_new(RAW, (amount, [], {items.policy(policy_no, facts.period_start): amount}))
    return tuple_new(RAW, (amount, [], _fact_items(facts, amount)))


# ---------------------------------------------------------------- first set / first batch insurance

def first_set_premium(ctx: Ctx) -> Raw:
    """首年度不超过实际保险费90%且不超过实际投保费率2%, 从次年度起逐年递减10个百分点."""
    f = ctx.facts
    memo = ctx.plan.memo
    derived: Any = memo.get("first_set")
    if derived is None:                  # the parameters (each refused, in this order, if not in force)
        first_pct, cite = ctx.param("first_year_pct")
        step_pct, step_cite = ctx.param("yearly_step_pct")
        ceiling_pct = Decimal(ctx.param("premium_rate_ceiling_pct")[0])
        derived = memo["first_set"] = (
            first_pct, cite, Decimal(step_pct), step_cite, pct(ceiling_pct),
            f"counted premium = min(premium, {ceiling_pct}% × insured amount)")
    first_pct, cite, step_pct, step_cite, ceiling, ceiling_formula = derived
    year_no = programme_year(ctx)
    by_year: Any = memo.get(("first_set", year_no))
    if by_year is None:
        share = max(Decimal(first_pct) - step_pct * (year_no - 1), ZERO)
        by_year = memo[("first_set", year_no)] = (
            share, pct(share), f"{first_pct}% − {step_pct} points × (year − 1) = {share}% × counted premium")
    share, fraction, formula = by_year
    if share <= ZERO:
        raise ctx.refuse("ineligible", f"programme year {year_no}: {first_pct}% less {step_pct} points for each "
                         f"year after the first leaves nothing", rule="yearly_step_pct", cite=step_cite)
    premium, insured = f.premium, f.insured_amount
    counted = min(premium, ceiling * insured)
    if counted < premium:
        ctx.step("premium_rate_ceiling", ceiling_formula, {"premium": premium, "insured_amount": insured},
                 counted, "premium_rate_ceiling", cite)
    amount = fraction * counted
    ctx.step("first_set_premium", formula, {"programme_year": year_no, "counted_premium": counted}, amount, None,
             cite)
    return tuple_new(RAW, (amount, [], _policy_items(ctx, f, amount)))


def programme_year(ctx: Ctx) -> int:
    """The programme year is derived, never declared: 1 + the consecutive support years just
    before this one in which this clause already paid (or committed) for the same policy."""
    f = ctx.facts
    policy_no, declared = f.policy_no, f.programme_year
    years = ctx.history.group_years(ctx.cid, items.group(f"policy:{policy_no or ''}"))  # items.policy(no, None)
    n, y = 1, ctx.year - 1
    while y in years:
        n, y = n + 1, y - 1
    inputs: dict[str, Any] = {"policy_no": policy_no, "earlier_years": ",".join(map(str, sorted(years))) or "none"}
    if declared is not None and declared != n:
        inputs["declared"] = declared
    ctx.step("programme_year", "1 + consecutive earlier support years awarded for this policy",
             inputs, n, "derived" if "declared" in inputs else None)
    return n


# ---------------------------------------------------------------- VC early-stage reward

def vc_reward(ctx: Ctx) -> Raw:
    """投资种子期、初创期科创企业2年以上: rate × investment, per investee cap (less what it already got)."""
    rate_pct, cite = ctx.param("rate_pct")
    months, months_cite = ctx.param("holding_months")
    months = int(months)
    stages, stages_cite = ctx.param("eligible_stages")
    stages = tuple(stages)
    per_item = [c for c in ctx.clause.caps if c.scope == "per_item"]
    plan = ctx.plan
    total, paid_any = ZERO, False
    nothing: list[Nothing] = []
    given: dict[str, Decimal] = {}                     # per investee, within this claim
    per_investment: dict[str, Decimal] = {}
    for inv in ctx.facts.investments or ():
        # each field read once (a pydantic attribute read is slow: calc/context.py, Plan)
        investee_id, invested, stage, invested_on = inv.investee_id, inv.amount, inv.stage, inv.invested_on
        held_to = inv.held_until or ctx.as_of
        reached = _months_later(invested_on, months)
        inputs = {"investee": investee_id, "amount": invested, "stage": stage,
                  "invested_on": invested_on, "holding_reached": reached, "held_to": held_to}
        if stage not in stages:
            ctx.step("investment", inputs=inputs, result=f"excluded: stage not in {stages}", rule="eligible_stages",
                     cite=stages_cite)
            nothing.append(("ineligible", "eligible_stages", stages_cite,
                            f"investment in {investee_id}: stage {stage} is not one of {', '.join(stages)}"))
            continue
        if reached > held_to:
            ctx.step("investment", inputs=inputs, result=f"excluded: held less than {months} months",
                     rule="holding_months", cite=months_cite)
            nothing.append(("ineligible", "holding_months", months_cite,
                            f"investment in {investee_id} of {invested_on}: held until {held_to}, less than "
                            f"{months} months (reached {reached})"))
            continue
        if not (plan.window_start <= reached <= plan.window_end):
            ctx.step("investment", inputs=inputs, result="excluded: holding period reached outside the window",
                     rule="validity", cite=plan.window_cite)
            nothing.append(("out_of_window", "validity", plan.window_cite,
                            f"investment in {investee_id}: its {months}-month holding was reached on {reached}, "
                            f"outside {plan.doc_id}'s window {plan.window_start}..{plan.window_end}"))
            continue
        amount = pct(Decimal(rate_pct)) * invested
        ctx.step("investment", formula=f"{rate_pct}% × investment", inputs=inputs, result=amount, cite=cite)
        for cap in per_item:
            dated: Any = value_on(cap.amount, ctx.period_start)
            group = items.investee(investee_id)
            already = sum((ctx.history.for_group(c, group) for c in ctx.cap_group(cap)), ZERO) \
                + given.get(investee_id, ZERO)
            limit = Decimal(dated.value) - already
            if amount > limit:
                amount = max(limit, ZERO)
                ctx.step("cap:per_item", formula="≤ per-investee cap − already awarded for this investee",
                         inputs={"investee": investee_id, "cap": dated.value, "already": already},
                         result=amount, rule="cap:per_item", cite=dated.cite)
        given[investee_id] = given.get(investee_id, ZERO) + amount
        per_investment[items.investment(investee_id, invested_on)] = amount
        paid_any = True
        total += amount
    if not paid_any:
        if nothing:
            raise _refuse_first(ctx, nothing, "investment")
        raise ctx.refuse("ineligible", "no investment qualifies (stage, holding period or window)",
                         rule="vc_reward", cite=cite)
    return tuple_new(RAW, (total, [], per_investment))


# ---------------------------------------------------------------- grants

def _ceiling(ctx: Ctx) -> Decimal | None:
    """The clause's ceiling (its first one-off, yearly or period cap) in force on the first counted day."""
    memo = ctx.plan.memo
    if "ceiling" in memo:
        return memo["ceiling"]
    value = memo["ceiling"] = _find_ceiling(ctx)
    return value


def _find_ceiling(ctx: Ctx) -> Decimal | None:
    for cap in ctx.clause.caps:
        if cap.scope in ("one_off", "per_year", "per_period"):
            dated: Any = value_on(cap.amount, ctx.period_start)
            return Decimal(dated.value)
    return None


def reviewed_grant(ctx: Ctx) -> Raw:
    """按规定给予最高X万元奖励: the amount set by review (default the ceiling), or fixed by tier."""
    f = ctx.facts
    if ctx.has_param("tiers"):
        tiers, cite = ctx.param("tiers")
        kind = f.institution_type
        if kind not in tiers:
            raise ctx.refuse("ineligible", f"institution type {kind!r} is none of {', '.join(tiers)}",
                             rule="tiers", cite=cite)
        amount = Decimal(tiers[kind])
        ctx.step("tier", formula="fixed amount by institution type", inputs={"institution_type": kind},
                 result=amount, cite=cite)
        if amount <= ZERO:
            raise ctx.refuse("ineligible", f"institution type {kind!r} is awarded nothing", rule="tiers", cite=cite)
        return tuple_new(RAW, (amount, [], _fact_items(f, amount)))
    ceiling = _ceiling(ctx)
    review_amount = f.review_amount
    if review_amount is not None:
        amount = review_amount
        ctx.step("review_amount", formula="amount set by review (up to the ceiling)",
                 inputs={"review_amount": amount, "ceiling": ceiling}, result=amount)
    else:
        amount = ceiling if ceiling is not None else ZERO
        ctx.step("review_amount", formula="no amount set by review: the ceiling",
                 inputs={"ceiling": ceiling}, result=amount)
    if amount <= ZERO:
        raise ctx.refuse("ineligible", _nothing_reviewed(ctx, review_amount), rule="review_amount",
                         cite=_ceiling_cite(ctx))
    return tuple_new(RAW, (amount, [], _fact_items(f, amount)))


def _ceiling_cite(ctx: Ctx) -> Citation | None:
    """The sentence of the clause's ceiling (给予最高X万元…), which review sets the amount under."""
    for cap in ctx.clause.caps:
        if cap.scope in ("one_off", "per_year", "per_period"):
            dated = value_on(cap.amount, ctx.period_start)
            return dated.cite if dated else None
    return None


def _nothing_reviewed(ctx: Ctx, review_amount: Decimal | None) -> str:
    if review_amount is not None:
        return f"the amount set by review under {ctx.cid} is {review_amount}"
    return f"no amount was set by review and {ctx.cid} has no ceiling to default to"


def staged_grant(ctx: Ctx) -> Raw:
    """分阶段奖励: total × share of each stage reached; stages already paid are not paid again."""
    f = ctx.facts
    shares, cite = ctx.param("stage_shares")
    review_amount = f.review_amount
    total = review_amount if review_amount is not None else (_ceiling(ctx) or ZERO)
    plan = ctx.plan
    already = ctx.history.all_time((ctx.cid,))
    parts: list[Part] = []
    nothing: list[Nothing] = []
    fractions = ctx.plan.memo.get("stage_fractions")
    if fractions is None:
        fractions = ctx.plan.memo["stage_fractions"] = {k: pct(Decimal(v)) for k, v in shares.items()}
    for stage, day in sorted((f.stages or {}).items(), key=_day):
        if stage not in shares:
            raise ctx.refuse("ineligible", f"unknown stage {stage!r}; stages are {', '.join(shares)}",
                             rule="stage_shares", cite=cite)
        inputs = {"stage": stage, "date": day, "share_pct": shares[stage], "total": total}
        if not (plan.window_start <= day <= plan.window_end):
            ctx.step("stage", inputs=inputs, result="excluded: outside the window", rule="validity",
                     cite=plan.window_cite)
            nothing.append(("out_of_window", "validity", plan.window_cite,
                            f"stage {stage} on {day} lies outside {plan.doc_id}'s window "
                            f"{plan.window_start}..{plan.window_end}"))
            continue
        amount = fractions[stage] * total
        if already > ZERO:
            used = min(already, amount)
            already -= used
            amount -= used
            inputs["already_paid"] = used
        ctx.step("stage", "share × total", inputs, amount, None, cite)
        if amount > ZERO:
            parts.append((stage, max(day, ctx.as_of), amount))
        elif total > ZERO:
            nothing.append(("already_awarded", "stage_shares", cite,
                            f"stage {stage} was already paid under {ctx.cid} ({inputs.get('already_paid', ZERO)})"))
    if not parts:
        if total <= ZERO:
            raise ctx.refuse("ineligible", _nothing_reviewed(ctx, review_amount), rule="review_amount",
                             cite=cite)
        if nothing:
            raise _refuse_first(ctx, nothing, "stage")
    payable = sum((p[2] for p in parts), ZERO)
    return tuple_new(RAW, (payable, parts, _fact_items(f, payable)))


_day = itemgetter(1)     # a (stage, day) pair's day


FORMULAS: Final[dict[str, Callable[[Ctx], Raw]]] = {
    "loan_interest": loan_interest,
    "rate_of_base": rate_of_base,
    "first_set_premium": first_set_premium,
    "vc_reward": vc_reward,
    "reviewed_grant": reviewed_grant,
    "staged_grant": staged_grant,
}
