"""Caps that hold across applications (per year, per policy period, cumulative, one-off), and
不重复 against awards already made for the same item under another clause."""
from __future__ import annotations

from decimal import Decimal

from calc.catalogue import Catalogue
from calc.context import Ctx
from calc.money import ZERO
from calc.parameters import value_on

_WORDS = {
    "per_item": "per item",
    "per_year": "per enterprise per year",
    "per_period": "per enterprise over the policy period",
    "cumulative": "cumulative per enterprise",
    "one_off": "one-off",
}


def apply_caps(ctx: Ctx, cat: Catalogue, amount: Decimal) -> Decimal:
    year = ctx.req.year
    for cap in ctx.clause.caps:
        if cap.scope == "per_item" and ctx.clause.formula == "vc_reward":
            continue                     # applied per investee inside the formula
        dated = value_on(cap.amount, ctx.period_start)
        if dated is None:
            continue
        limit = dated.value
        group = cat.cap_group(ctx.cid, cap.group)
        if cap.scope == "per_year":
            used = ctx.history.in_year(group, year)
        elif cap.scope == "per_item":
            item = item_key(ctx)
            used = sum((ctx.history.for_item(c, item) for c in group), ZERO) if item else ZERO
        elif cap.scope == "per_period":
            w = ctx.doc.window
            used = ctx.history.in_years(group, w.start.year, w.end.year)
        else:
            used = ctx.history.all_time(group)
        if (cap.scope == "one_off" or cap.once) and used > 0:
            raise ctx.refuse("already_awarded",
                             f"{ctx.cid} is a one-off award ({_WORDS[cap.scope]}) and was already awarded ({used})",
                             rule=f"cap:{cap.scope}", cite=dated.cite)
        remaining = max(limit - used, ZERO)
        inputs = {"cap": limit, "already_awarded": used, "remaining": remaining, "computed": amount}
        if len(group) > 1:
            inputs["shared_with"] = ",".join(c for c in group if c != ctx.cid)
        if remaining <= 0 and amount > 0:
            raise ctx.refuse("cap_exhausted",
                             f"the {_WORDS[cap.scope]} cap of {limit} under {ctx.cid} is used up ({used} awarded)",
                             rule=f"cap:{cap.scope}", cite=dated.cite)
        if amount > remaining:
            amount = remaining
            ctx.step(f"cap:{cap.scope}", formula="min(computed, cap − already awarded)", inputs=inputs,
                     result=amount, rule=f"cap:{cap.scope}", cite=dated.cite)
        else:
            ctx.step(f"cap:{cap.scope}", formula="computed ≤ cap − already awarded", inputs=inputs,
                     result=amount, cite=dated.cite)
    return amount


def item_key(ctx: Ctx) -> str | None:
    """The item the award pays for (the overlap key of 从优、就高、不重复)."""
    f = ctx.req.facts
    if f.item_id:
        return f.item_id
    kind = ctx.clause.overlap_item
    if kind == "loan" and f.loans:
        return "loan:" + "+".join(sorted(loan.loan_id for loan in f.loans))
    if kind == "insurance_policy" and f.policy_no:
        return "policy:" + f.policy_no
    if kind == "investment" and f.investments:
        return "investment:" + "+".join(sorted(i.investee_id for i in f.investments))
    return None


def not_twice(ctx: Ctx, cat: Catalogue, amount: Decimal) -> Decimal:
    """不重复: awards already made for this item this year under another clause of the same kind
    count against this one; the enterprise ends up with the single highest award, once."""
    if not ctx.doc.rules.overlap_rule:
        return amount
    item = item_key(ctx)
    if item is None:
        return amount
    paid = {c: a for c, a in ctx.history.item_in_year(item, ctx.req.year).items()
            if c != ctx.cid and c in cat.clauses and cat.clauses[c][1].overlap_item == ctx.clause.overlap_item}
    if not paid:
        return amount
    already = sum(paid.values(), ZERO)
    cite = ctx.doc.rules.overlap_cite
    inputs = {"item": item, "computed": amount, **{f"paid_under:{c}": a for c, a in paid.items()}}
    if amount <= already:
        raise ctx.refuse("superseded",
                         f"{item} already received {already} for {ctx.req.year} under {', '.join(paid)}, "
                         f"at least this clause's {amount}: 从优、就高、不重复", rule="overlap", cite=cite)
    ctx.step("overlap", formula="top-up = computed − already paid for the same item (从优、就高、不重复)",
             inputs=inputs, result=amount - already, rule="overlap", cite=cite)
    return amount - already
