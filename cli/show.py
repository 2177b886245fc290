"""How `disburse status` shows an application: a summary, the decisions, the tranches and, with
--trace, the calculation step by step (clause, formula, result, the rule or cap that bit)."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table


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
    rows = [
        ("application", st.get("application_id")),
        ("status", st.get("status") + ("  [red]OVERDUE[/red]" if st.get("overdue") else "")),
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
    if st.get("note"):
        rows.append(("note", st.get("note")))
    for k, v in rows:
        summary.add_row(k, str(v if v is not None else ""))
    console.print(summary)

    decisions = st.get("decisions") or []
    if decisions:
        t = Table(title="decisions", title_justify="left")
        for col in ("when (UTC)", "decision", "who", "bureau", "comment", "amount"):
            t.add_column(col, justify="right" if col == "amount" else "left")
        for d in decisions:
            t.add_row(_when(d.get("when")), d.get("kind", ""), d.get("who", ""), d.get("bureau") or "",
                      d.get("comment") or "", money(d.get("amount")))
        console.print(t)

    tranches = st.get("tranches") or []
    if tranches:
        t = Table(title="tranches", title_justify="left")
        for col in ("year", "#", "due", "amount", "state", "paid by clause"):
            t.add_column(col, justify="right" if col == "amount" else "left")
        for x in tranches:
            t.add_row(str(x.get("year")), str(x.get("seq")), str(x.get("due")), money(x.get("amount")),
                      x.get("state", ""), x.get("clause_id") or "")
        console.print(t)

    if calculation:
        t = Table(title=f"calculation trace ({calculation.get('clause_id')} {calculation.get('year')})",
                  title_justify="left")
        for col in ("step", "formula", "result", "rule / cap", "cited"):
            t.add_column(col, overflow="fold")
        for s in calculation.get("trace") or []:
            t.add_row(s.get("step", ""), s.get("formula") or "", str(s.get("result", "")), s.get("rule") or "",
                      (s.get("cite") or "")[:60])
        console.print(t)
        if calculation.get("refusal"):
            r = calculation["refusal"]
            console.print(f"refused: {r.get('code')}: {r.get('reason')}")
