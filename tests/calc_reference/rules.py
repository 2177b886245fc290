"""The policy-wide rules, checked before any formula, in the order a bureau would check them.

Each returns nothing or raises `Refused` (a result with a reason code, not an error)."""
from __future__ import annotations

import operator
from datetime import date
from decimal import Decimal

from tests.calc_reference.context import Ctx
from calc.parameters import value_on

BLACKLIST_RULE = "严重失信名单: 依法依规限制被列入严重失信名单的主体享受财政资金补助等政策扶持"


def blacklist(ctx: Ctx) -> None:
    """hz2025 (十九), and every document (catalogue): no subsidy to a listed entity."""
    if ctx.req.blacklisted:
        raise ctx.refuse("blacklisted", "the enterprise is on the serious-dishonesty list (严重失信名单)",
                         rule="blacklist", cite=ctx.doc.rules.blacklist_cite or BLACKLIST_RULE)
    ctx.checks["blacklisted"] = False


def jurisdiction(ctx: Ctx) -> None:
    """A policy pays enterprises of its own city or county (registered region)."""
    region = ctx.req.enterprise.region_code
    if not any(region.startswith(p) for p in ctx.doc.regions):
        raise ctx.refuse(
            "out_of_jurisdiction",
            f"registered region {region} is outside {ctx.doc.issuer} ({', '.join(ctx.doc.regions)}*)",
            rule="jurisdiction")
    ctx.checks["region"] = region


def _in_window(ctx: Ctx, day: date) -> bool:
    w = ctx.doc.window
    return w.start <= day <= w.end


def window(ctx: Ctx) -> None:
    """The period a fact belongs to must fall inside the document's window; an insurance year's
    start or an event date must also fall in the support year claimed (else `support_year`)."""
    w = ctx.doc.window
    inputs = ctx.checks
    if ctx.period_start > ctx.period_end:
        raise ctx.refuse("out_of_window",
                         f"support year {ctx.req.year} lies outside {ctx.doc.id}'s window {w.start}..{w.end}",
                         rule="validity", cite=w.cite)
    kind = ctx.clause.fact_date
    day = getattr(ctx.req.facts, kind) if kind in ("period_start", "event_date") else None
    if day is not None:
        inputs[kind] = day
        if not _in_window(ctx, day):
            raise ctx.refuse("out_of_window", f"{kind} {day} lies outside {ctx.doc.id}'s window {w.start}..{w.end}",
                             rule="validity", cite=w.cite)
        if day.year != ctx.req.year:
            raise ctx.refuse("ineligible",
                             f"{kind} {day} lies outside the support year {ctx.req.year}: the facts of a claim belong "
                             f"to its support year; claim it for {day.year}", rule="support_year")
    inputs["counted"] = (ctx.period_start, ctx.period_end)


def consecutive_years(ctx: Ctx) -> None:
    """hz2025 附则: 政策期内最多可连续支持3年."""
    limit = ctx.doc.rules.max_consecutive_years
    if not limit:
        return
    years = ctx.history.supported_years(ctx.cid)
    run, y = 0, ctx.req.year - 1
    while y in years:
        run, y = run + 1, y - 1
    if run >= limit:
        raise ctx.refuse(
            "consecutive_years",
            f"already supported under {ctx.cid} for {run} consecutive years up to {ctx.req.year - 1} (limit {limit})",
            rule="consecutive_years", cite=ctx.doc.rules.max_consecutive_years_cite)
    ctx.checks["consecutive_years_before"] = run


def qualification(ctx: Ctx) -> None:
    """Clauses that require a qualification check it on the fact's dates (any day of the period counted)."""
    kinds = ctx.clause.requires_qualification
    if not kinds:
        return
    lo, hi = ctx.period_start, ctx.period_end
    held = [q for q in ctx.req.enterprise.qualifications
            if q.kind in kinds and q.valid_from <= hi and (q.valid_to is None or q.valid_to >= lo)]
    if not held:
        raise ctx.refuse("ineligible",
                         f"{ctx.cid} requires one of {', '.join(kinds)} valid during {lo}..{hi}; none held",
                         rule="qualification")
    ctx.checks["qualification"] = held[0].kind


OPS = {"ge": operator.ge, "gt": operator.gt, "le": operator.le, "lt": operator.lt, "eq": operator.eq,
        "in": lambda a, b: a in b}
_WORDS = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<", "eq": "=", "in": "in"}


def thresholds(ctx: Ctx) -> None:
    """Eligibility thresholds on facts (e.g. 实际投资总额达到2000万元)."""
    for t in ctx.clause.thresholds:
        dated = value_on(t.value, ctx.period_start)
        if dated is None:
            continue
        actual = getattr(ctx.req.facts, t.fact)
        limit = dated.value
        if isinstance(actual, Decimal) and not isinstance(limit, (Decimal, bool)) and isinstance(limit, int):
            limit = Decimal(limit)
        ok = actual is not None and OPS[t.op](actual, limit)
        inputs = {t.fact: actual, "threshold": f"{_WORDS[t.op]} {limit}"}
        if not ok:
            raise ctx.refuse(t.code, f"{t.rule} ({t.fact} = {actual})", rule=f"threshold:{t.fact}", cite=dated.cite)
        ctx.step("threshold", formula=f"{t.fact} {_WORDS[t.op]} {limit}", inputs=inputs, result="met", cite=dated.cite)
