"""`disburse budget`: budget lines (预算指标) — the report (committed / paid / available and the
forecast per line and year, `--xlsx`, `--chart`), `import FILE`, `add LINE` (a top-up), and the
finance decisions on applications waiting in `awaiting_budget` (`retry`, `reject`).

Changing a budget is for finance users only (the logged-in user's role, cli/identity.py); every
change is recorded with who and when (models/budget.py, `budget_change`)."""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Optional

import typer

from cli.errors import BAD_INPUT, CliError, fail, friendly

budget_app = typer.Typer(help="Budget lines (预算指标): what each clause may commit per year, and what it has.")


def register(app: typer.Typer) -> None:
    app.add_typer(budget_app, name="budget")


def _console():
    import sys

    from rich.console import Console
    return Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)


def _finance(user: Optional[str] = None):
    """The logged-in user, who must be finance (a user of a 财政局 with the finance role)."""
    from cli.identity import acting
    me = acting(user)
    if me.role != "finance":
        raise CliError(f"only finance may change budgets; {me.user} is {me.role}"
                       f"{' of ' + me.bureau if me.bureau else ''}", BAD_INPUT)
    return me


def _yuan(text: str, field: str) -> Decimal:
    from models.budget import amount_of
    from models.registry import RegistryError
    try:
        return amount_of(text, field)
    except RegistryError as e:
        raise CliError(f"{field}: {e.rule}", BAD_INPUT) from None


@budget_app.callback(invoke_without_command=True)
@friendly
def report(
    ctx: typer.Context,
    year: Optional[int] = typer.Option(None, "--year", help="only the lines of this support year"),
    xlsx: Optional[Path] = typer.Option(None, "--xlsx", help="also write the report to this .xlsx file"),
    chart: Optional[Path] = typer.Option(None, "--chart", help="also draw committed, paid and forecast per year "
                                                                "against the budget: FILE.svg or FILE.png"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Per budget line: budget, committed, paid, available, and the forecast of the tranches still
    to come by the year they fall due."""
    if ctx.invoked_subcommand is not None:
        return
    from cli.safe_text import inert
    from cli.show import money, rows_table
    from models import budget
    if chart is not None and chart.suffix.lower() not in (".svg", ".png"):
        fail("--chart: the file must end in .svg or .png", BAD_INPUT)
    rows = budget.report(year)
    if as_json:
        import json

        from cli.safe_text import json_text
        typer.echo(json_text(json.dumps(rows, ensure_ascii=False, indent=2, default=str)))
    else:
        con = _console()
        shown = [{"line": r["line_id"], "name": r["name"], "year": r["year"], "clauses": " ".join(r["clause_ids"]),
                  "budget": r["budget"], "committed": r["committed"], "paid": r["paid"], "available": r["available"],
                  "forecast": "; ".join(f"{y}: {money(a)}" for y, a in r["forecast"].items()),
                  "document": r["document"]} for r in rows]
        rows_table(con, "budget lines (预算指标)", shown, money_cols=("budget", "committed", "paid", "available"))
        short = [r["line_id"] for r in rows if r["available"] < 0]
        if short:
            con.print(inert(f"overdrawn (commitments of applications started before budgets): {', '.join(short)}"))
    if xlsx is not None:
        budget.export_xlsx(xlsx, year)
        typer.echo(f"report written to {xlsx}", err=as_json)
    if chart is not None:
        if not rows:
            fail("--chart: no budget lines to draw (`disburse budget import FILE`)", 1)
        from cli.budget_chart import draw
        draw(rows, chart)
        typer.echo(f"chart written to {chart}", err=as_json)


@budget_app.command("import")
@friendly
def import_(
    file: Path = typer.Argument(..., help="CSV or .xlsx: line_id,name,year,clause_ids,amount,document"),
    who: Optional[str] = typer.Option(None, "--who", help="the finance user who imports (default: the logged-in one)"),
) -> None:
    """Import budget lines: a line per clause (or group of clauses, separated by ;) and support year,
    its amount in yuan and the budget document. All or nothing: every bad row is listed
    (`FILE: line N: FIELD: RULE`) and nothing is imported. Re-importing a line sets its amount
    (never below what it has drawn); its year and clauses are fixed."""
    from cli.safe_text import inert
    from models import budget
    from models.sheets import SheetRefused
    me = _finance(who)
    try:
        n = budget.import_file(file, who=me.user)
    except SheetRefused as e:
        for line in e.lines():
            typer.echo(f"error: {line}", err=True)
        raise CliError(e.headline, BAD_INPUT) from None
    _console().print(inert(f"budget: {n} line{'s' if n != 1 else ''} imported from {file} by {me.user}"))


@budget_app.command("add")
@friendly
def add(
    line_id: str = typer.Argument(..., help="the budget line (`disburse budget` lists them)"),
    amount: str = typer.Option(..., "--amount", help="yuan to add, e.g. 500000 or 500000.50"),
    document: str = typer.Option("", "--document", help="the budget document (文号) that grants it"),
    reason: str = typer.Option("", "--reason"),
    who: Optional[str] = typer.Option(None, "--who", help="the finance user (default: the logged-in one)"),
    no_retry: bool = typer.Option(False, "--no-retry", help="do not ask waiting applications to try again"),
) -> None:
    """Top up a budget line. Then every application of the line's clauses and year waiting in
    awaiting_budget is asked to try again (they also try by themselves once a day)."""
    from cli.safe_text import inert
    from cli.show import money
    from models import budget
    me = _finance(who)
    value = _yuan(amount, "--amount")
    for name, text in (("--document", document), ("--reason", reason)):
        from cli.safe_text import first_unsafe
        if first_unsafe(text) is not None or len(text) > 1000:
            fail(f"{name}: plain text of at most 1,000 characters, no control characters", BAD_INPUT)
    try:
        row = budget.top_up(line_id, value, who=me.user, document=document.strip(), reason=reason.strip())
    except budget.BudgetError as e:
        raise CliError(str(e), BAD_INPUT) from None
    con = _console()
    con.print(inert(f"{line_id}: +{money(value)} by {me.user}; budget {money(row['budget'])}, "
                    f"available {money(row['available'])}"))
    if no_retry:
        return
    waiting = _waiting(row)
    if not waiting:
        return
    from cli.main import run
    from workflows import client as wc
    key = f"top-up-{row['updated_at'].isoformat()}"

    async def _retry(client):
        out = []
        for app_id in waiting:
            try:
                await wc.retry_budget(client, app_id, who=me.user, comment=f"{line_id} +{value}", request_key=key,
                                      actor=me)
                out.append((app_id, "asked to try again"))
            except wc.RequestRefused as e:
                out.append((app_id, f"not asked: {e}"))
        return out
    try:
        for app_id, what in run(_retry):
            con.print(inert(f"  {app_id}: {what}"))
    except Exception as e:  # noqa: BLE001 - the top-up stands; the applications re-check daily
        from cli.errors import describe
        con.print(inert(f"the top-up is recorded, but the waiting applications could not be told "
                        f"({describe(e)[0]}); they try again by themselves within a day, or: "
                        f"`disburse budget retry APP_ID`"))


def _waiting(row: dict) -> list[str]:
    """Applications of the line's clauses and year in awaiting_budget, from the status mirror."""
    from sqlmodel import select

    from models.db import session
    from models.tables import ApplicationRow
    with session() as s:
        return list(s.exec(select(ApplicationRow.application_id).where(
            ApplicationRow.status == "awaiting_budget", ApplicationRow.year == row["year"],
            ApplicationRow.clause_id.in_(row["clause_ids"])).order_by(ApplicationRow.application_id)))


@budget_app.command("retry")
@friendly
def retry(
    app_id: str = typer.Argument(...),
    who: Optional[str] = typer.Option(None, "--who", help="the finance user (default: the logged-in one)"),
    comment: str = typer.Option("", "--comment"),
) -> None:
    """Ask an application waiting in awaiting_budget to try its budget line again now."""
    from cli.main import console, run
    from cli.safe_text import inert
    from workflows import client as wc
    me = _finance(who)
    run(lambda client: wc.retry_budget(client, app_id, who=me.user, comment=comment, actor=me))
    console.print(inert(f"{app_id}: asked to try the budget again"))


@budget_app.command("reject")
@friendly
def reject(
    app_id: str = typer.Argument(...),
    reason: str = typer.Option(..., "--reason", help="why (it goes into the application's record)"),
    who: Optional[str] = typer.Option(None, "--who", help="the finance user (default: the logged-in one)"),
) -> None:
    """Refuse an application waiting in awaiting_budget: it ends `refused`, nothing committed."""
    from cli.main import console, run
    from cli.safe_text import inert
    from workflows import client as wc
    if not reason.strip():
        fail("--reason: a rejection for budget needs a reason", BAD_INPUT)
    me = _finance(who)
    run(lambda client: wc.reject_for_budget(client, app_id, reviewer=me.user, reason=reason, actor=me))
    console.print(inert(f"{app_id}: rejected for budget"))


@budget_app.command("history")
@friendly
def history(
    line_id: Optional[str] = typer.Argument(None, help="one line (default: all)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Every change of the budget lines: import, re-import, top-up; who, when, the document."""
    from cli.show import rows_table
    from models.audit import budget_record
    rec = budget_record(line_id)
    if as_json:
        import json

        from cli.safe_text import json_text
        typer.echo(json_text(json.dumps(rec, ensure_ascii=False, indent=2, default=str)))
        return
    rows_table(_console(), "budget changes", [
        {"line": c["line_id"], "what": c["kind"], "before": c["amount_before"], "after": c["amount_after"],
         "document": c["document"], "reason": c["reason"], "from": c["source"], "who": c["who"],
         "when (UTC)": str(c["changed_at"])[:19]} for c in rec["changes"]], money_cols=("before", "after"))
