"""Caps that hold across applications (per year, per policy period, per item, cumulative, one-off),
and 不重复: an item (calc/items.py) already awarded by any clause in any year is not paid again.
The history holds every award committed or paid (the award book), not only what was paid."""
from __future__ import annotations

from decimal import Decimal

from calc import items as item_keys
from calc.catalogue import Catalogue
from tests.calc_reference.context import Ctx
from calc.money import ZERO, to_fen
from calc.parameters import value_on

_WORDS = {
    "per_item": "per item",
    "per_year": "per enterprise per year",
    "per_period": "per enterprise over the policy period",
    "cumulative": "cumulative per enterprise",
    "one_off": "one-off",
}


def apply_caps(ctx: Ctx, cat: Catalogue, amount: Decimal, items: dict[str, Decimal]) -> Decimal:
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
            groups = {item_keys.group(k) for k in items}
            used = sum((ctx.history.for_group(c, g) for c in group for g in groups), ZERO)
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


def not_twice(ctx: Ctx, cat: Catalogue, items: dict[str, Decimal]) -> dict[str, Decimal]:
    """不重复, item by item: what was already awarded for an item (by any clause, in any support
    year) counts against it. Where the document says 从优、就高 (its overlap rule), the item gets
    the top-up to the higher award; elsewhere an item already awarded gets nothing more.
    Returns the items with what is still payable for each; refuses when nothing is."""
    out: dict[str, Decimal] = {}
    blocked: list[tuple[str, dict[str, Decimal]]] = []
    overlap = ctx.doc.rules.overlap_rule
    cite = ctx.doc.rules.overlap_cite
    for key, value in items.items():
        paid = ctx.history.for_item(key)
        if not paid:
            out[key] = value
            continue
        already = sum(paid.values(), ZERO)
        inputs = {"item": key, "computed": value, **{f"awarded_under:{c}": a for c, a in paid.items()}}
        if overlap and value > already:
            out[key] = value - already
            ctx.step("overlap", formula="top-up = computed − already awarded for the same item (从优、就高、不重复)",
                     inputs=inputs, result=value - already, rule="overlap", cite=cite)
        else:
            out[key] = ZERO
            blocked.append((key, paid))
            ctx.step("not_twice", formula="an item already awarded is not paid again (不重复)", inputs=inputs,
                     result=ZERO, rule="overlap" if overlap else "not_twice", cite=cite)
    if items and blocked and all(v <= 0 for v in out.values()):
        key, paid = blocked[0]
        already = sum(paid.values(), ZERO)
        under = ", ".join(f"{c} ({a})" for c, a in paid.items())
        if ctx.cid in paid or not overlap:
            raise ctx.refuse("already_awarded", f"{key} was already awarded {already} under {under}: 不重复",
                             rule="not_twice", cite=cite)
        raise ctx.refuse("superseded",
                         f"{key} already received {already} under {under}, at least this clause's "
                         f"{items[key]}: 从优、就高、不重复", rule="overlap", cite=cite)
    return out


def distribute(amount: Decimal, items: dict[str, Decimal]) -> dict[str, Decimal]:
    """The final award (to the fen) split over its items in proportion to what each computed;
    the last item takes the rounding remainder, so the shares add up to the award exactly."""
    keys = [k for k, v in items.items() if v > 0] or list(items)
    if not keys:
        return {}
    base = sum((items[k] for k in keys), ZERO)
    out, given = {}, ZERO
    for i, k in enumerate(keys):
        if i == len(keys) - 1:
            share = amount - given
        else:
            share = to_fen(amount * items[k] / base) if base > 0 else ZERO
        out[k] = share
        given += share
    return out
