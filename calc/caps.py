"""Caps that hold across applications (per year, per policy period, per item, cumulative, one-off),
and 不重复: an item (calc/items.py) already awarded by any clause in any year is not paid again.
The history holds every award committed or paid (the award book), not only what was paid."""
from __future__ import annotations

from decimal import Decimal
from typing import Final

from calc import items as item_keys
from calc.catalogue import Catalogue
from calc.context import TRACE_STEP, Ctx, tuple_new
from calc.money import ZERO, to_fen

_WORDS: Final = {
    "per_item": "per item",
    "per_year": "per enterprise per year",
    "per_period": "per enterprise over the policy period",
    "cumulative": "cumulative per enterprise",
    "one_off": "one-off",
}


def apply_caps(ctx: Ctx, cat: Catalogue, amount: Decimal, items: dict[str, Decimal]) -> Decimal:
    """Each cap of the clause in force on the first counted day (the clause's plan), in order:
    what is left of it after the awards already made in its scope bounds the award."""
    year = ctx.year
    history = ctx.history
    trace, cid = ctx.trace, ctx.cid
    for scope, limit, once, group, shared, cite, rule in ctx.plan.caps:
        if scope == "per_year":
            used = history.in_year(group, year)
        elif scope == "per_item":
            groups = {item_keys.group(k) for k in items}
            used = sum((history.for_group(c, g) for c in group for g in groups), ZERO)
        elif scope == "per_period":
            plan = ctx.plan
            used = history.in_years(group, plan.window_start.year, plan.window_end.year)
        else:
            used = history.all_time(group)
        if once and used > ZERO:
            raise ctx.refuse("already_awarded",
                             f"{cid} is a one-off award ({_WORDS[scope]}) and was already awarded ({used})",
                             rule=rule, cite=cite)
        remaining = limit - used
        if remaining < ZERO:                                    # max(limit - used, ZERO)
            remaining = ZERO
        inputs = {"cap": limit, "already_awarded": used, "remaining": remaining, "computed": amount}
        if shared is not None:
            inputs["shared_with"] = shared
        if remaining <= ZERO and amount > ZERO:
            raise ctx.refuse("cap_exhausted",
                             f"the {_WORDS[scope]} cap of {limit} under {cid} is used up ({used} awarded)",
                             rule=rule, cite=cite)
        if amount > remaining:
            amount = remaining
            trace.append(tuple_new(TRACE_STEP, (cid, rule, _CUT, inputs, amount, rule, cite)))
        else:
            trace.append(tuple_new(TRACE_STEP, (cid, rule, _UNDER, inputs, amount, None, cite)))
    return amount


_CUT: Final = "min(computed, cap − already awarded)"
_UNDER: Final = "computed ≤ cap − already awarded"


def not_twice(ctx: Ctx, cat: Catalogue, items: dict[str, Decimal]) -> dict[str, Decimal]:
    """不重复, item by item: what was already awarded for an item (by any clause, in any support
    year) counts against it. Where the document says 从优、就高 (its overlap rule), the item gets
    the top-up to the higher award; elsewhere an item already awarded gets nothing more.
    Returns the items with what is still payable for each; refuses when nothing is."""
    if not ctx.history.has_any_item(items):     # nothing awarded yet for any of them: all payable
        return dict(items)
    out: dict[str, Decimal] = {}
    blocked: list[tuple[str, dict[str, Decimal]]] = []
    overlap = ctx.plan.overlap_rule
    cite = ctx.plan.overlap_cite
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
    if len(items) == 1:                 # the usual claim: one item takes the whole award
        return {k: amount - ZERO for k in items}
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
