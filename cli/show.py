"""How `disburse status` shows an application: a summary, the decisions, the tranches and, with
--trace, the calculation step by step (clause, formula, result, the rule or cap that bit); and how
`disburse list` shows applications. Every value shown comes from outside (names, comments, ids,
policy text) and goes through `inert` (cli/safe_text.py): never read as markup, control
characters visible."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from cli.safe_text import inert


def money(v: Any) -> str:
    if v is None or v == "":
        return ""
    try:
        return f"{Decimal(str(v)):,.2f}"
    except Exception:  # noqa: BLE001
        return str(v)


def _when(v: Any) -> str:
    return str(v or "").replace("T", " ")[:19]


def application(console: Console, st: dict, calculation: dict | None = None) -> None:
    summary = Table(show_header=False, box=None, pad_edge=False)
    summary.add_column(style="bold")
    summary.add_column()
    year = str(st.get("year", ""))
    if (st.get("programme_years") or 1) > 1:
        year += f"  (programme year {st.get('programme_year')} of up to {st.get('programme_years')})"
    status = inert(st.get("status"))
    if st.get("overdue"):
        status.append("  OVERDUE", style="red")
    rows = [
        ("application", st.get("application_id")),
        ("status", status),
        ("clause", st.get("clause_id")),
        ("enterprise", f"{st.get('enterprise_name') or ''} {st.get('enterprise_code')}".strip()),
        ("support year", year),
        ("reviewed by", "、".join(st.get("required_bureaus") or [])),
        ("awarded so far", money(st.get("awarded"))),
    ]
    calc = st.get("calculation") or {}
    if calc:
        rows.append(("calculated", money(calc.get("amount"))
                     + (f"  refused: {calc['refusal'].get('code')}" if calc.get("refusal") else "")))
    prov = st.get("provisional") or {}
    if prov:
        rows.append(("provisional", prov.get("error") or (f"refused: {prov['refusal']}" if prov.get("refusal")
                                                          else f"{money(prov.get('amount'))} (not binding)")))
    pub = st.get("publicity") or {}
    if pub:
        rows.append(("公示", _period(pub.get("period") or {})))
    if st.get("note"):
        rows.append(("note", inert(st.get("note"), multiline=True)))
    for k, v in rows:
        summary.add_row(k, v if isinstance(v, Text) else inert(v))
    console.print(summary)
    if prov:
        _provisional(console, prov)
    if pub.get("objections"):
        t = Table(title="objections (公示)", title_justify="left")
        for col in ("#", "filed (UTC)", "objector", "contact", "reason", "recorded by", "state", "decided by", "why"):
            t.add_column(col, overflow="fold")
        for o in pub["objections"]:
            t.add_row(inert(o.get("number")), inert(_when(o.get("filed_at"))), inert(o.get("objector_name")),
                      inert(o.get("objector_contact")), inert(o.get("reason"), multiline=True),
                      inert(o.get("recorded_by")), inert(o.get("state")), inert(o.get("decided_by")),
                      inert(o.get("decision_reason"), multiline=True))
        console.print(t)

    decisions = st.get("decisions") or []
    if decisions:
        t = Table(title="decisions", title_justify="left")
        for col in ("when (UTC)", "decision", "who", "bureau", "comment", "amount"):
            t.add_column(col, justify="right" if col == "amount" else "left")
        for d in decisions:
            t.add_row(inert(_when(d.get("when"))), inert(d.get("kind", "")), inert(d.get("who", "")),
                      inert(d.get("bureau")), inert(d.get("comment"), multiline=True), inert(money(d.get("amount"))))
        console.print(t)

    tranches = st.get("tranches") or []
    if tranches:
        t = Table(title="tranches", title_justify="left")
        for col in ("year", "#", "due", "amount", "state", "paid by clause"):
            t.add_column(col, justify="right" if col == "amount" else "left")
        for x in tranches:
            t.add_row(inert(x.get("year")), inert(x.get("seq")), inert(x.get("due")), inert(money(x.get("amount"))),
                      inert(x.get("state", "")), inert(x.get("clause_id")))
        console.print(t)

    amendments = st.get("amendments") or []
    if amendments:
        t = Table(title="amendments", title_justify="left")
        for col in ("#", "year", "before", "after", "state", "proposed by", "decided by", "reason", "note"):
            t.add_column(col, justify="right" if col in ("before", "after") else "left")
        for a in amendments:
            t.add_row(inert(a.get("number")), inert(a.get("year")), inert(money(a.get("before"))),
                      inert(money(a.get("after"))), inert(a.get("state")), inert(a.get("proposed_by")),
                      inert(a.get("decided_by")), inert(a.get("reason"), multiline=True),
                      inert(a.get("note"), multiline=True))
        console.print(t)
    recovery = st.get("recovery")
    if recovery:
        o, r = recovery.get("order") or {}, recovery.get("result") or {}
        asked = "everything paid" if o.get("all") else money(o.get("amount"))
        done = ("(being carried out)" if not r else f"refused: {r['refused']}" if r.get("refused")
                else f"recovered {money(r.get('amount'))} (order #{r.get('order_id')})")
        console.print(inert(f"recovery (追回) ordered by {recovery.get('who')} ({recovery.get('bureau')}): {asked}, "
                            f"{o.get('basis')}: {o.get('reason')} — {done}", multiline=True))
        if r.get("bar"):
            console.print(inert(r["bar"], multiline=True))

    if calculation:
        t = Table(title=inert(f"calculation trace ({calculation.get('clause_id')} {calculation.get('year')})"),
                  title_justify="left")
        for col in ("step", "formula", "result", "rule / cap", "cited"):
            t.add_column(col, overflow="fold")
        for s in calculation.get("trace") or []:
            t.add_row(inert(s.get("step", "")), inert(s.get("formula")), inert(s.get("result", "")),
                      inert(s.get("rule")), inert((s.get("cite") or "")[:60]))
        console.print(t)
        if calculation.get("refusal"):
            r = calculation["refusal"]
            console.print(Text.assemble("refused: ", inert(r.get("code")), ": ", inert(r.get("reason"))))


def _period(p: dict) -> str:
    if p.get("day_seconds"):
        return (f"{p.get('working_days')} notice days of {p.get('day_seconds')} s — DEMO/TEST setting "
                f"DISBURSE_PUBLICITY_DAY_SECONDS — until {_when(p.get('ends_at'))}")
    return (f"{p.get('working_days')} working days, {p.get('first_day')} – {p.get('last_day')}; payout from "
            f"{str(p.get('ends_at') or '').replace('T', ' ')[:16]} China time")


def _provisional(console: Console, prov: dict) -> None:
    """The claim's facts and the provisional calculation's trace (what reviewers decide on)."""
    facts = Table(title="claim facts (as reviewed)", title_justify="left")
    facts.add_column("fact")
    facts.add_column("value", overflow="fold")
    for k, v in (prov.get("facts") or {}).items():
        if v is not None:
            facts.add_row(inert(k), inert(v if isinstance(v, str) else _compact(v)))
    console.print(facts)
    if prov.get("trace"):
        t = Table(title=inert(f"provisional calculation (as of {prov.get('as_of')}; the binding one follows "
                              "the credit check)"), title_justify="left")
        for col in ("step", "formula", "result", "rule / cap", "cited"):
            t.add_column(col, overflow="fold")
        for x in prov["trace"]:
            t.add_row(inert(x.get("step", "")), inert(x.get("formula")), inert(x.get("result", "")),
                      inert(x.get("rule")), inert((x.get("cite") or "")[:60]))
        console.print(t)


def applications(console: Console, rows: list[dict], query: str) -> None:
    """`disburse list`: one row per application (the id already names enterprise, clause and year:
    app-{credit code}-{clause}-{year})."""
    table = Table(title=inert(f"applications{' where ' + query if query else ''}"), title_justify="left")
    for col in ("id", "status", "amount", "lead bureau"):
        table.add_column(col, justify="right" if col == "amount" else "left", no_wrap=True)
    for r in rows:
        table.add_row(inert(r.get("id", "")), inert(r.get("status")), inert(money(r.get("amount"))),
                      inert((r.get("bureaus") or [""])[0]))
    console.print(table)
    if not rows:
        console.print("no applications match", style="dim")


def rows_table(console: Console, title: str, rows: list[dict], money_cols: tuple[str, ...] = ()) -> None:
    """A registry or the ledger as a table, one column per key of the first row."""
    if not rows:
        console.print(inert(f"{title}: empty"))
        return
    table = Table(title=inert(title), title_justify="left")
    cols = list(rows[0].keys())
    for c in cols:
        table.add_column(inert(c), justify="right" if c in money_cols else "left")
    for r in rows:
        table.add_row(*[inert(money(r.get(c)) if c in money_cols else r.get(c)) for c in cols])
    console.print(table)


def audit(console: Console, rec: dict) -> None:
    """`disburse audit`: the application's whole record from the database (no Temporal needed)."""
    claim, pinned, st = rec.get("claim") or {}, rec.get("pinned") or {}, rec.get("status") or {}
    clause = pinned.get("clause") or {}
    summary = Table(show_header=False, box=None, pad_edge=False)
    summary.add_column(style="bold")
    summary.add_column()
    for k, v in (("application", rec.get("application_id")), ("status (last mirrored)", st.get("status")),
                 ("clause", claim.get("clause_id") or st.get("clause_id")),
                 ("enterprise", f"{pinned.get('enterprise_name') or ''} {claim.get('enterprise_code') or ''}".strip()),
                 ("support year", claim.get("year")), ("submitted by", claim.get("operator")),
                 ("opened", _when(rec.get("opened_at"))), ("reviewed by", "、".join(clause.get("required_bureaus") or [])),
                 ("awarded", money(st.get("awarded")))):
        summary.add_row(k, inert(v))
    console.print(summary)
    if claim.get("facts"):
        facts = Table(title="claim facts", title_justify="left")
        facts.add_column("fact")
        facts.add_column("value", overflow="fold")
        for k, v in claim["facts"].items():
            if v is not None:
                facts.add_row(inert(k), inert(v if isinstance(v, str) else _compact(v)))
        console.print(facts)
    application(console, {"decisions": [{**d, "when": d.get("decided_at")} for d in rec.get("decisions") or []]})
    for c in rec.get("calculations") or []:
        result = c.get("result") or {}
        head = f"calculation of {c.get('year')} at {_when(c.get('created_at'))}: {money(c.get('amount'))}"
        if c.get("refusal_code"):
            head += f" (refused: {c['refusal_code']})"
        console.print(inert(head), style="bold")
        application(console, {}, result)
    rows_table(console, "award book", [{"year": ln["year"], "#": ln["seq"], "item": ln["item_id"],
                                        "amount": ln["amount"], "state": ln["state"],
                                        "why released": ln["release_reason"]} for ln in rec.get("award_lines") or []],
               money_cols=("amount",))
    rows_table(console, "ledger (paid)", [{"year": p["year"], "#": p["seq"], "paid by clause": p["clause_id"],
                                           "amount": p["amount"], "paid (UTC)": _when(p["paid_at"])}
                                          for p in rec.get("ledger") or []], money_cols=("amount",))
    notes = rec.get("notifications") or []
    if notes:
        rows_table(console, "notifications", [{"when (UTC)": _when(n["created_at"]), "kind": n["kind"],
                                               "to": n["recipients"], "message": n["message"]} for n in notes])


def _compact(v: Any) -> str:
    import json
    return json.dumps(v, ensure_ascii=False, default=str)


def apply_free(console: Console, p) -> None:
    """`disburse apply-free`: the preview (models/apply_free.Preview), one row per enterprise of the
    registry: eligible with its provisional amount, already started, or not eligible with the
    reason and the rule."""
    table = Table(title=inert(f"免申即享 {p.clause_id} {p.clause_name} {p.year} (blacklist as of {p.day})"),
                  title_justify="left")
    for col in ("enterprise", "credit code", "outcome", "provisional amount", "why not / rule"):
        table.add_column(col, justify="right" if col == "provisional amount" else "left",
                         overflow="fold")
    for c in p.candidates:
        why = f"{c.reason} [{c.rule}]" if c.rule else c.reason
        style = "" if c.outcome == "eligible" else "dim"
        table.add_row(inert(c.name), inert(c.credit_code), inert(c.outcome, style=style), inert(money(c.amount)),
                      inert(why))
    console.print(table)
    console.print(inert(p.summary()))
