"""The policy-wide rules, checked before any formula, in the order a bureau would check them.

Each returns nothing or raises `Refused` (a result with a reason code, not an error)."""
from __future__ import annotations

import operator
from typing import Any, Final

from calc.context import TRACE_STEP, Ctx, tuple_new

ELIGIBILITY: Final = "blacklist, jurisdiction, validity window, consecutive years, qualification"
BLACKLIST_RULE: Final = "严重失信名单: 依法依规限制被列入严重失信名单的主体享受财政资金补助等政策扶持"


def eligibility(ctx: Ctx) -> None:
    """blacklist, jurisdiction, validity window, consecutive years, qualification: in that order,
    each refusing with its rule; their facts gathered in ctx.checks, for the one trace step written
    when all have passed."""
    plan, fields, year = ctx.plan, ctx.fields, ctx.year
    # hz2025 (十九), and every document (catalogue): no subsidy to a listed entity
    if fields["blacklisted"]:
        raise ctx.refuse("blacklisted", "the enterprise is on the serious-dishonesty list (严重失信名单)",
                         rule="blacklist", cite=plan.blacklist_cite or BLACKLIST_RULE)
    # a policy pays enterprises of its own city or county (registered region)
    enterprise: dict[str, Any] = fields["enterprise"].__dict__   # its fields, in one read (calc/context.py, Ctx)
    code: str = enterprise["credit_code"]
    region = code[2:8]                                # credit_code.region_of
    if not region.startswith(plan.regions):
        ctx.checks["blacklisted"] = False
        raise ctx.refuse(
            "out_of_jurisdiction",
            f"registered region {region} is outside {plan.issuer} ({', '.join(plan.regions)}*)",
            rule="jurisdiction")
    # the period a fact belongs to must fall inside the document's window; an insurance year's
    # start or an event date must also fall in the support year claimed (else `support_year`)
    checks = ctx.checks = {"blacklisted": False, "region": region}
    if plan.start > plan.end:
        raise ctx.refuse("out_of_window",
                         f"support year {year} lies outside {plan.doc_id}'s window "
                         f"{plan.window_start}..{plan.window_end}", rule="validity", cite=plan.window_cite)
    kind = plan.fact_kind
    if kind is not None:
        day = getattr(ctx.facts, kind)
        if day is not None:
            checks[kind] = day
            if not plan.window_start <= day <= plan.window_end:
                raise ctx.refuse("out_of_window", f"{kind} {day} lies outside {plan.doc_id}'s window "
                                 f"{plan.window_start}..{plan.window_end}", rule="validity", cite=plan.window_cite)
            if day.year != year:
                raise ctx.refuse("ineligible",
                                 f"{kind} {day} lies outside the support year {year}: the facts of a claim "
                                 f"belong to its support year; claim it for {day.year}", rule="support_year")
    checks["counted"] = plan.counted
    limit = plan.max_years
    if limit:                                         # consecutive_years, inline
        years = ctx.history.supported_years(plan.cid)
        run = 0
        if years:
            y = year - 1
            while y in years:
                run, y = run + 1, y - 1
            if run >= limit:
                raise ctx.refuse(
                    "consecutive_years",
                    f"already supported under {plan.cid} for {run} consecutive years up to {year - 1} "
                    f"(limit {limit})", rule="consecutive_years", cite=plan.max_years_cite)
        checks["consecutive_years_before"] = run
    kinds = plan.qualifications
    if kinds:                                         # qualification, inline
        lo, hi = plan.start, plan.end
        for q in enterprise["qualifications"]:
            held: dict[str, Any] = q.__dict__         # (one attribute read, as the enterprise's)
            kind_held = held["kind"]
            if kind_held in kinds and held["valid_from"] <= hi:
                valid_to = held["valid_to"]
                if valid_to is None or valid_to >= lo:
                    checks["qualification"] = kind_held    # the first one held
                    break
        else:
            raise ctx.refuse("ineligible",
                             f"{plan.cid} requires one of {', '.join(kinds)} valid during {lo}..{hi}; none held",
                             rule="qualification")
    ctx.trace.append(tuple_new(TRACE_STEP, (plan.cid, "eligibility", ELIGIBILITY, checks, "passed", None,
                                       plan.window_cite)))


def consecutive_years(ctx: Ctx) -> None:
    """hz2025 附则: 政策期内最多可连续支持3年."""
    limit = ctx.plan.max_years
    if not limit:
        return
    years = ctx.history.supported_years(ctx.cid)
    run, y = 0, ctx.year - 1
    while y in years:
        run, y = run + 1, y - 1
    if run >= limit:
        raise ctx.refuse(
            "consecutive_years",
            f"already supported under {ctx.cid} for {run} consecutive years up to {ctx.year - 1} (limit {limit})",
            rule="consecutive_years", cite=ctx.plan.max_years_cite)
    ctx.checks["consecutive_years_before"] = run


def qualification(ctx: Ctx) -> None:
    """Clauses that require a qualification check it on the fact's dates (any day of the period counted)."""
    kinds = ctx.clause.requires_qualification
    if not kinds:
        return
    lo, hi = ctx.period_start, ctx.period_end
    for q in ctx.req.enterprise.qualifications:
        if q.kind in kinds and q.valid_from <= hi and (q.valid_to is None or q.valid_to >= lo):
            ctx.checks["qualification"] = q.kind      # the first one held
            return
    raise ctx.refuse("ineligible",
                     f"{ctx.cid} requires one of {', '.join(kinds)} valid during {lo}..{hi}; none held",
                     rule="qualification")


OPS: Final = {"ge": operator.ge, "gt": operator.gt, "le": operator.le, "lt": operator.lt, "eq": operator.eq,
        "in": lambda a, b: a in b}
_WORDS = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<", "eq": "=", "in": "in"}


def thresholds(ctx: Ctx) -> None:
    """Eligibility thresholds on facts (e.g. 实际投资总额达到2000万元), as in force on the first counted day."""
    facts = ctx.facts
    trace, cid = ctx.trace, ctx.cid
    for fact, op, limit, text, formula, code, rule, refused_rule, cite in ctx.plan.thresholds:
        actual = getattr(facts, fact)
        if actual is None or not OPS[op](actual, limit):
            raise ctx.refuse(code, f"{rule} ({fact} = {actual})", rule=refused_rule, cite=cite)
        trace.append(tuple_new(TRACE_STEP, (cid, "threshold", formula, {fact: actual, "threshold": text}, "met", None,
                                       cite)))
