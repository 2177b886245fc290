"""`disburse`: the command line for operators and reviewers.

    disburse up [--demo]          dev server + SQLite + worker in one process (what `make run` runs)
    disburse worker               just the worker, against TEMPORAL_ADDRESS
    disburse register-attributes  the custom search attributes, on a cluster that is not the dev server
    disburse submit FILE.json     start an application
    disburse submit-batch FILE    start one application per row of a CSV / .xlsx file
    disburse apply-free CLAUSE --year Y   免申即享: preview the registry's eligible enterprises, start them
    disburse facts import FILE    facts the city holds per enterprise, clause, year (for apply-free)
    disburse status APP_ID        where an application stands
    disburse list [--status ...]  applications, from the Temporal visibility API
    disburse approve|reject|request-info|provide-info|evidence|confirm-year|withdraw|revoke
    disburse object|uphold-objection|dismiss-objection   objections during 公示
    disburse publicity list [--out FILE.xlsx|FILE.csv]    the publishable 公示 list
    disburse blacklist|enterprises|reviewers ...   the local registries (SQLite)
    disburse ledger               paid tranches, and what settled them (recoveries, amendments)
    disburse clawback|bars        recover a paid award (追回); enterprises barred after one
    disburse propose-amendment|approve-amendment|refuse-amendment   corrections of an approved award
    disburse calc|policies|check  the calculation core, without Temporal (cli/calc_cmds.py)
    disburse budget [import|add|retry|reject|history]  budget lines (cli/budget_cmds.py)

Every error is one line on stderr and a non-zero exit (cli/errors.py).
Environment: TEMPORAL_ADDRESS (default localhost:7233), TEMPORAL_NAMESPACE (default),
TEMPORAL_HTTP_ADDRESS (the server's HTTP API, for a faster `status`; default: port 7243 of a
TEMPORAL_ADDRESS on 7233; `off`: none),
DISBURSE_DB_URL (default sqlite:///var/disburse.db).
"""
from __future__ import annotations

import os
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any, Optional

import typer
from typer.core import TyperGroup

from cli import backend
from cli.errors import BAD_INPUT, CliError, fail, friendly
from cli.safe_text import inert, one_line, shown as clip, visible
from cli.terminal import console, print_json
from workflows.http_status import DEFAULT_HTTP_PORT   # standard library only: light for --help too

# Start-up time: `disburse --help` answers in a fraction of a second because this module imports
# only typer and the CLI's own light modules. Everything else — rich for output, the Temporal
# client, the calculation core, the database — is imported inside the command that needs it
# (tests/test_cli_imports.py; bench/cli.py measures it). `disburse status APP_ID` does not even come
# here: the console script (cli/entry.py) runs it without typer.


class _Help(TyperGroup):
    """Plain help (click's layout, no rich): typer's rich help formatter alone costs ~0.15 s of
    imports (rich, markdown-it, rich.traceback), more than the rest of `--help`. The command list
    shows each command's first sentence whole, wrapped, instead of clipped to the column."""

    def format_commands(self, ctx, formatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _typer(**kwargs) -> typer.Typer:
    return typer.Typer(cls=_Help, rich_markup_mode=None, no_args_is_help=True, **kwargs)


app = _typer(
    name="disburse", add_completion=False, pretty_exceptions_enable=False,
    help="Pays out municipal tech-finance subsidies: submit applications, review them as bureaus, "
         "watch them in the Temporal Web UI, read the ledger.",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
)
blacklist_app = _typer(help="The serious-dishonesty list (严重失信名单).")
enterprises_app = _typer(help="The enterprise registry (credit codes, qualifications).")
reviewers_app = _typer(help="Reviewers and the bureau each one reviews for.")
app.add_typer(blacklist_app, name="blacklist")
app.add_typer(enterprises_app, name="enterprises")
app.add_typer(reviewers_app, name="reviewers")
facts_app = _typer(help="Facts the city already holds per enterprise, clause and year (for 免申即享 apply-free).")
app.add_typer(facts_app, name="facts")
users_app = _typer(help="People: operators, reviewers, finance, ops (passwords, CLI tokens).")
keys_app = _typer(help="The signing keys of the console / CLI service.")
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
publicity_app = typer.Typer(no_args_is_help=True, help="公示: the publishable list of awards in their notice period.")
app.add_typer(publicity_app, name="publicity")

XLSX_HELP = "also write the rows to this .xlsx file (or .csv); text that looks like a formula stays text"




def money(v: Any) -> str:
    from cli.show import money as shown_money
    return shown_money(v)


# ------------------------------------------------------------------------------------ helpers

def read_json(path: Path) -> Any:
    """The CLI's one JSON loader (cli/backend.load_json): refusals are one-line CliErrors."""
    return backend.load_json(path)


_ACTS_AS = ("reviewer", "operator", "who")


def run(coro_fn, *args, **kwargs):
    """Connect to Temporal and run `coro_fn(client, *args, **kwargs)`. A command that acts as
    someone (--reviewer / --operator / --who) must have their login first: checked before
    connecting, so 'log in first' is the answer even when the server is down."""
    for key in _ACTS_AS:
        if key in kwargs:
            from cli.identity import acting
            acting(kwargs[key] or None)
            break

    import asyncio

    async def _go():
        client = await backend.connect()
        return await coro_fn(client, *args, **kwargs)
    return asyncio.run(_go())


def _require_reason(amount: Optional[Decimal], reason: Optional[str]) -> None:
    if amount is not None and not (reason and reason.strip()):
        fail("--reason: lowering an award needs a reason (it goes into the trace)", BAD_INPUT)
    if amount is not None and amount < 0:
        fail("--amount: must not be negative", BAD_INPUT)


# ------------------------------------------------------------------------------------ server side

@app.command()
@friendly
def up(
    demo: bool = typer.Option(False, "--demo", help="load a demo batch: registry, reviewers, a few applications"),
    port: int = typer.Option(int(os.environ.get("TEMPORAL_PORT", 7233)), "--port", help="Temporal gRPC port"),
    ui_port: int = typer.Option(int(os.environ.get("TEMPORAL_UI_PORT", 8233)), "--ui-port", help="Web UI port"),
    http_port: int = typer.Option(int(os.environ.get("TEMPORAL_HTTP_PORT", DEFAULT_HTTP_PORT)), "--http-port",
                                  help="Temporal HTTP API port (TEMPORAL_HTTP_ADDRESS, for a faster `status`)"),
    db_file: Path = typer.Option(Path(os.environ.get("TEMPORAL_DB_FILE", "var/temporal.db")), "--db-file",
                                 help="Temporal's SQLite file (kept between runs)"),
) -> None:
    """Start everything: SQLite DB, Temporal dev server (with Web UI) and a worker; Ctrl-C stops."""
    from cli.up import run_up
    run_up(demo=demo, port=port, ui_port=ui_port, db_file=db_file, console=console, http_port=http_port)


@app.command("console")
@friendly
def console_cmd(
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on"),
    port: int = typer.Option(int(os.environ.get("DISBURSE_CONSOLE_PORT", 8080) or 8080), "--port"),
) -> None:
    """Serve the web console (reviewers, operators, finance) against TEMPORAL_ADDRESS."""
    import uvicorn

    from console.app import create_app
    backend.init_db()
    backend.ensure_local_keys()
    uvicorn.run(create_app(), host=host, port=port, log_level="warning")


@app.command()
@friendly
def worker() -> None:
    """Run just the worker against TEMPORAL_ADDRESS (the server must be running)."""
    from cli.up import run_worker_only
    run_worker_only(console=console)


@app.command("register-attributes")
@friendly
def register_attributes(
    wait: float = typer.Option(120.0, "--wait", min=0, help="keep trying this many seconds while the server or its namespace is not up yet"),
) -> None:
    """Register the custom search attributes on the Temporal cluster at TEMPORAL_ADDRESS (namespace
    TEMPORAL_NAMESPACE); idempotent. Once per cluster: the dev server of `up` needs none of it."""
    import asyncio
    rows = asyncio.run(backend.register_attributes(wait, log=lambda m: typer.echo(f"disburse: {m}", err=True)))
    for name, typ, state in rows:
        console.print(inert(f"{name:<18} {typ:<12} {state}"))
    added = sum(1 for r in rows if r[2] == "added")
    console.print(inert(f"search attributes: {added} added, {len(rows) - added} already there "
                        f"(namespace {backend.namespace()} at {backend.address()})"))


# ------------------------------------------------------------------------------------ applications

@app.command()
@friendly
def submit(
    file: Path = typer.Argument(..., help="an application (JSON); see examples/"),
    operator: Optional[str] = typer.Option(None, "--operator", help="operator submitting it (recorded in the history)"),
    sla_days: Optional[int] = typer.Option(
        None, "--sla-days", min=1, envvar="DISBURSE_REVIEW_SLA_DAYS",
        help="days the bureaus have to decide before the application is flagged overdue (default 15)"),
) -> None:
    """Submit an application; prints its id (the workflow id)."""
    data = read_json(file)
    if sla_days is not None and isinstance(data, dict):
        data = {**data, "review_sla_days": sla_days}
    inp = backend.application_input(data, source=str(file), operator=operator)
    from cli.identity import acting
    acting(inp.operator)                     # logged in as the submitting operator, before connecting
    app_id = run(backend.submit, inp)
    from rich.text import Text
    console.print(Text.assemble("submitted ", inert(app_id, style="bold")))
    console.print(inert(f"  follow it: disburse status {app_id}"))


@app.command("submit-batch")
@friendly
def submit_batch(
    file: Path = typer.Argument(..., help="applications, one per row: CSV (UTF-8) or .xlsx with columns "
                                          "clause_id,year,enterprise_code,facts[,review_sla_days]"),
    operator: Optional[str] = typer.Option(None, "--operator", help="operator submitting them (your login)"),
) -> None:
    """Submit a batch of applications from a spreadsheet: every row is validated first (a bad row
    refuses the whole file, nothing submitted); rows already submitted are reported as such, so
    running a half-finished batch again submits only the rest (cli/batch.py)."""
    from cli import batch
    from cli.identity import acting
    from models.sheets import SheetRefused
    me = acting(operator)                    # logged in as the submitting operator, before reading
    data = batch.read_file(file)
    try:
        rows = batch.read_batch(data, str(file), operator=me.user)
    except SheetRefused as e:
        for line in e.lines():
            typer.echo(one_line(line), err=True)
        fail(e.headline, BAD_INPUT)

    def shown_row(o) -> None:
        reason = f": {o.reason}" if o.reason else ""
        console.print(inert(f"line {o.line}: {o.application_id}: {o.outcome}{reason}"))

    async def go(client):
        return await batch.submit_rows(client, rows, actor=me, on_row=shown_row)
    outcomes = run(go)
    console.print(inert(f"{file}: {batch.summary(outcomes)}"))
    if any(o.outcome in (batch.FAILED, batch.NOT_SUBMITTED) for o in outcomes):
        fail("the batch stopped before its end; run the same file again to submit the rest")


@app.command("apply-free")
@friendly
def apply_free(
    clause: str = typer.Argument(..., help="clause id, e.g. hz2025-04-tech-insurance-premium (`disburse policies`)"),
    year: str = typer.Option(..., "--year", help="support year, inside the clause's policy window"),
    operator: Optional[str] = typer.Option(None, "--operator", help="operator starting them (your login)"),
    yes: bool = typer.Option(False, "--yes", "-y", help="start them without asking"),
    preview_only: bool = typer.Option(False, "--preview-only", help="show (and export) the preview, start nothing"),
    out: Optional[Path] = typer.Option(None, "--out", help="write the preview to this .xlsx (or .csv) file"),
) -> None:
    """免申即享: preview who qualifies under CLAUSE for the year, then start their applications.

    Every enterprise of the registry is judged (region, qualifications and their dates, blacklist,
    the award book, the facts held: `disburse facts import`) and shown with its provisional amount
    or why not; on confirmation one application per eligible enterprise is started, signed as you;
    a rerun starts none twice. They then follow the normal review (models/apply_free.py)."""
    from models import apply_free as af
    me = None
    if not preview_only:
        from cli.identity import acting
        me = acting(operator)                # logged in as the operator, before anything is read
    try:
        p = af.preview(clause, year)
    except af.ApplyFreeError as e:
        fail(str(e), BAD_INPUT)
    from cli import show
    show.apply_free(console, p)
    if out is not None:
        from models import sheets
        try:
            sheets.write_table(out, af.Preview.HEADER, p.rows(), title=f"{p.clause_id} {p.year}")
        except sheets.RegistryError as e:
            fail(str(e), BAD_INPUT)
        console.print(inert(f"preview written to {out}"))
    if preview_only:
        console.print(inert("preview only: nothing started"))
        return
    if not p.eligible:
        console.print(inert("nothing to start"))
        return
    n = len(p.eligible)
    question = f"start {n} application{'s' if n != 1 else ''} under {p.clause_id} {p.year} as {me.user}?"
    if not yes:
        if not sys.stdin.isatty():
            console.print(inert(f"nothing started: {question[:1].upper() + question[1:-1]} with --yes"))
            return
        if not typer.confirm(question, default=False):
            console.print(inert("nothing started"))
            return
    _start_apply_free(p, me)


def _start_apply_free(p, me) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from cli import batch
    from models import apply_free as af
    rows = [batch.BatchRow(i, inp) for i, inp in enumerate(af.applications(p, me.user), start=1)]
    words = {batch.SUBMITTED: "started", batch.ALREADY: "already started"}

    with Progress(TextColumn("starting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        task = progress.add_task("starting", total=len(rows))

        def advanced(o) -> None:
            progress.advance(task)
            if o.outcome != batch.SUBMITTED:
                reason = f": {o.reason}" if o.reason else ""
                progress.console.print(inert(f"{o.application_id}: {words.get(o.outcome, o.outcome)}{reason}"))

        async def go(client):
            return await batch.submit_rows(client, rows, actor=me, on_row=advanced)
        outcomes = run(go)

    def count(kind: str) -> int:
        return sum(1 for o in outcomes if o.outcome == kind)
    left = count(batch.FAILED) + count(batch.NOT_SUBMITTED)
    console.print(inert(f"{p.clause_id} {p.year}: {count(batch.SUBMITTED)} started, {count(batch.ALREADY)} already "
                        f"started, {count(batch.REFUSED)} refused" + (f", {left} not started" if left else "")))
    if left:
        fail("the batch stopped before its end; run the same command again to start the rest")


@facts_app.command("import")
@friendly
def facts_import(file: Path = typer.Argument(..., help="CSV or .xlsx: credit_code,clause_id,year,facts (a JSON object)")) -> None:
    """Import (or replace) the facts the city holds per enterprise, clause and year, for 免申即享
    batches: every row is checked as a claim (registered enterprise, known clause, year in the policy
    window, the facts the clause needs), then all are written (or none)."""
    from models import held_facts
    _import("facts", lambda f: held_facts.import_facts(f, imported_by=_who()), file, ("row", "rows"))


def _who() -> str:
    try:
        from cli.identity import acting
        return acting().user
    except Exception:  # noqa: BLE001 - nobody logged in: the import is not signed anyway
        return ""


@facts_app.command("list")
@friendly
def facts_list(
    clause: Optional[str] = typer.Option(None, "--clause"),
    year: Optional[int] = typer.Option(None, "--year"),
    xlsx: Optional[Path] = typer.Option(None, "--xlsx", help="also write them to this .xlsx (or .csv) file"),
) -> None:
    """The facts held (the export imports back with `facts import`)."""
    from models import held_facts
    rows = held_facts.held_rows(clause, year)
    _rows_table("facts held", [{k: r[k] for k in ("credit_code", "clause_id", "year", "facts", "source")}
                               for r in rows])
    _export(xlsx, "facts", rows, ("credit_code", "clause_id", "year", "facts"))


@app.command()
@friendly
def status(
    app_id: str = typer.Argument(..., help="application id (workflow id)"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    trace: bool = typer.Option(False, "--trace", help="also show the calculation, step by step"),
) -> None:
    """Where an application stands: status, decisions, tranches (and the calculation trace)."""
    from cli import status as status_cmd      # also what the console script runs (cli/entry.py)
    status_cmd.show(app_id, as_json=as_json, trace=trace)


@app.command("list")
@friendly
def list_(
    status_: Optional[str] = typer.Option(None, "--status", help="review, info_requested, awaiting_budget, publicity, payout, awaiting_evidence, confirming, completed, rejected, refused, blacklisted, withdrawn, revoked"),
    clause: Optional[str] = typer.Option(None, "--clause", help="clause id, e.g. hz2025-04-tech-insurance-premium"),
    bureau: Optional[str] = typer.Option(None, "--bureau", help="a bureau reviewing it, e.g. 杭州市科技局"),
    enterprise: Optional[str] = typer.Option(None, "--enterprise", help="enterprise credit code"),
    limit: int = typer.Option(100, "--limit", min=1, help="at most this many rows"),
    show_query: bool = typer.Option(False, "--query", help="print the visibility query used"),
    xlsx: Optional[Path] = typer.Option(None, "--xlsx", help=XLSX_HELP),
) -> None:
    """Applications, from the Temporal visibility API (the same query works in the Web UI)."""
    query = backend.visibility_query(status=status_, clause=clause, bureau=bureau, enterprise=enterprise)
    if show_query:
        typer.echo(visible(query) or "(all applications)", err=True)
    rows = run(backend.list_applications, query, limit)
    from cli import show
    show.applications(console, rows, query)
    if xlsx is not None:
        flat = [{**r, "amount": Decimal(r["amount"]) if r.get("amount") else None,
                 "bureaus": "、".join(r.get("bureaus") or [])} for r in rows]
        _export(xlsx, "applications", flat, ("id", "clause", "enterprise", "year", "status", "amount", "bureaus"))


@app.command()
@friendly
def approve(
    app_id: str = typer.Argument(...),
    reviewer: str = typer.Option(..., "--reviewer", help="reviewer id (see `disburse reviewers list`)"),
    comment: str = typer.Option("", "--comment"),
    amount: Optional[Decimal] = typer.Option(None, "--amount", help="lower the award to this amount (never raise)"),
    reason: Optional[str] = typer.Option(None, "--reason", help="why the award is lowered (required with --amount)"),
) -> None:
    """Approve as your bureau; optionally lower the award with a reason."""
    _require_reason(amount, reason)
    run(backend.approve, app_id, reviewer=reviewer, comment=comment, amount=amount, reason=reason)
    console.print(inert(f"approved {app_id} as {reviewer}" + (f", lowered to {money(amount)}" if amount is not None else "")))


@app.command()
@friendly
def reject(
    app_id: str = typer.Argument(...),
    reviewer: str = typer.Option(..., "--reviewer"),
    comment: str = typer.Option(..., "--comment", help="why (required)"),
) -> None:
    """Reject an application (the reason is recorded)."""
    if not comment.strip():
        fail("--comment: a rejection needs a reason", BAD_INPUT)
    run(backend.reject, app_id, reviewer=reviewer, comment=comment)
    console.print(inert(f"rejected {app_id} as {reviewer}"))


@app.command("request-info")
@friendly
def request_info(
    app_id: str = typer.Argument(...),
    reviewer: str = typer.Option(..., "--reviewer"),
    comment: str = typer.Option(..., "--comment", help="what is missing"),
) -> None:
    """Ask the applicant for more information; the application waits for `provide-info`."""
    if not comment.strip():
        fail("--comment: say what information is needed", BAD_INPUT)
    run(backend.request_info, app_id, reviewer=reviewer, comment=comment)
    console.print(inert(f"asked for information on {app_id}"))


@app.command("provide-info")
@friendly
def provide_info(
    app_id: str = typer.Argument(...),
    file: Path = typer.Argument(..., help="JSON with the corrected or added facts"),
    operator: str = typer.Option(..., "--operator"),
) -> None:
    """Answer a request for information with corrected or added facts."""
    data = read_json(file)
    run(backend.provide_info, app_id, data, operator=operator, source=str(file))
    console.print(inert(f"information provided for {app_id}"))


@app.command()
@friendly
def evidence(
    app_id: str = typer.Argument(...),
    file: Path = typer.Argument(..., help="JSON: the next programme year's facts, e.g. {\"loans\": [...]}, or {\"facts\": {...}, \"comment\": \"...\"}"),
    operator: str = typer.Option(..., "--operator", help="the operator who submitted the application"),
) -> None:
    """Submit the next programme year's evidence (interest subsidies, first-set insurance): status awaiting_evidence."""
    data = read_json(file)
    run(backend.submit_evidence, app_id, data, operator=operator, source=str(file))
    console.print(inert(f"evidence recorded for {app_id}"))


@app.command("confirm-year")
@friendly
def confirm_year(
    app_id: str = typer.Argument(...),
    reviewer: str = typer.Option(..., "--reviewer"),
    comment: str = typer.Option("", "--comment"),
) -> None:
    """Confirm the next programme year of a multi-year application."""
    run(backend.confirm_year, app_id, reviewer=reviewer, comment=comment)
    console.print(inert(f"year confirmed for {app_id}"))


@app.command()
@friendly
def withdraw(
    app_id: str = typer.Argument(...),
    operator: str = typer.Option(..., "--operator"),
    comment: str = typer.Option("", "--comment"),
) -> None:
    """Withdraw an application before it is paid."""
    run(backend.withdraw, app_id, operator=operator, comment=comment)
    console.print(inert(f"withdrawn {app_id}"))


@app.command()
@friendly
def revoke(
    app_id: str = typer.Argument(...),
    reviewer: str = typer.Option(..., "--reviewer"),
    reason: str = typer.Option(..., "--reason"),
) -> None:
    """Revoke an approved application: unpaid tranches are cancelled."""
    if not reason.strip():
        fail("--reason: a revocation needs a reason", BAD_INPUT)
    run(backend.revoke, app_id, reviewer=reviewer, reason=reason)
    console.print(inert(f"revoked {app_id}"))


@app.command()
@friendly
def resume(
    app_id: str = typer.Argument(...),
    who: str = typer.Option(..., "--who", help="the submitting operator, or a reviewer of the finance bureau"),
    comment: str = typer.Option("", "--comment", help="what was fixed"),
) -> None:
    """Resume an application waiting in `attention` (a step failed; its note says why) once the cause is fixed."""
    run(backend.resume, app_id, who=who, comment=comment)
    console.print(inert(f"resumed {app_id}"))


# ------------------------------------------------------------------------------------ recoveries and amendments

_BASES = {"false-statement": "false_statement", "serious-dishonesty": "serious_dishonesty", "other": "other"}


@app.command()
@friendly
def clawback(
    app_id: str = typer.Argument(...),
    reviewer: str = typer.Option(..., "--reviewer", help="finance (a reviewer of the clause's 财政局), logged in"),
    amount: Optional[str] = typer.Option(None, "--amount", help="yuan to recover, e.g. 100000 or 100000.50"),
    everything: bool = typer.Option(False, "--all", help="recover everything paid"),
    basis: str = typer.Option(..., "--basis", help="false-statement (虚假申报) | serious-dishonesty (严重失信) | other"),
    reason: str = typer.Option(..., "--reason"),
) -> None:
    """Recover (追回) what an application was paid: the ledger gets recovery entries, unpaid
    tranches are cancelled, the enterprise is barred (`disburse bars`)."""
    if (amount is None) == (not everything):
        fail("--amount / --all: give one of them (an amount in yuan, or everything paid)", BAD_INPUT)
    if basis not in _BASES:
        fail(f"--basis: one of {', '.join(_BASES)}", BAD_INPUT)
    if not reason.strip():
        fail("--reason: a recovery needs a reason", BAD_INPUT)
    if amount is not None:
        from models.payloads import plain_yuan
        try:
            amount = plain_yuan(amount)
        except ValueError as e:
            fail(f"--amount: {e}", BAD_INPUT)
        if amount <= 0:
            fail("--amount: must be above zero", BAD_INPUT)
    res = run(backend.clawback, app_id, reviewer=reviewer, amount=amount, everything=everything,
              basis=_BASES[basis], reason=reason)
    console.print(inert(f"recovered {money(res.get('amount'))} of {app_id} (order #{res.get('order_id')}; "
                        f"the application had {res.get('application')})"))
    for e in res.get("entries") or []:
        console.print(inert(f"  ledger: {e['year']} #{e['seq']} {money(e['amount'])} (settles payment {e['payment']})"))
    console.print(inert(f"room under the caps {'released' if res.get('releases_room') else 'kept'}: "
                        f"{res.get('room_rule')}"))
    if res.get("bar"):
        console.print(inert(res["bar"]))


@app.command()
@friendly
def bars(
    enterprise: Optional[str] = typer.Option(None, "--enterprise", help="only this credit code"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Enterprises barred from new applications and further tranches after a recovery."""
    rows = backend.bars(enterprise)
    if as_json:
        print_json(rows)
        return
    _rows_table("bars", [{"enterprise": b["enterprise_code"], "from": b["from_day"], "until": b["until_day"],
                          "basis": b["basis"], "application": b["application_id"], "reason": b["reason"],
                          "period": b["rule"]} for b in rows])


@app.command("propose-amendment")
@friendly
def propose_amendment(
    app_id: str = typer.Argument(...),
    reviewer: str = typer.Option(..., "--reviewer", help="a reviewer of the lead bureau, logged in"),
    amount: str = typer.Option(..., "--amount", help="the award's corrected amount for the year, in yuan"),
    reason: str = typer.Option(..., "--reason"),
) -> None:
    """Propose a correction of an approved award (up or down); finance approves it."""
    from models.payloads import plain_yuan
    try:
        value = plain_yuan(amount)
    except ValueError as e:
        fail(f"--amount: {e}", BAD_INPUT)
    if not reason.strip():
        fail("--reason: an amendment needs a reason", BAD_INPUT)
    a = backend.to_plain(run(backend.propose_amendment, app_id, reviewer=reviewer, amount=value, reason=reason))
    console.print(inert(f"amendment #{a['number']} proposed for {app_id}: {money(a['before'])} → {money(a['after'])}"))


@app.command("approve-amendment")
@friendly
def approve_amendment(
    app_id: str = typer.Argument(...),
    reviewer: str = typer.Option(..., "--reviewer", help="finance, logged in (not the proposer)"),
    comment: str = typer.Option("", "--comment"),
) -> None:
    """Approve the amendment waiting for finance; the award book applies it (or refuses it: a cap)."""
    a = run(backend.approve_amendment, app_id, reviewer=reviewer, comment=comment)
    console.print(inert(f"amendment #{a['number']} of {app_id}: {a['note']}"))


@app.command("refuse-amendment")
@friendly
def refuse_amendment(
    app_id: str = typer.Argument(...),
    reviewer: str = typer.Option(..., "--reviewer"),
    comment: str = typer.Option(..., "--comment"),
) -> None:
    """Refuse the amendment waiting for finance (with a comment)."""
    a = backend.to_plain(run(backend.refuse_amendment, app_id, reviewer=reviewer, comment=comment))
    console.print(inert(f"amendment #{a['number']} of {app_id} refused"))


# ------------------------------------------------------------------------------------ 公示

@app.command("object")
@friendly
def object_(
    app_id: str = typer.Argument(...),
    who: str = typer.Option(..., "--who", help="you: the staff member recording the objection (logged in)"),
    name: str = typer.Option(..., "--name", help="the objector's real name (实名)"),
    contact: str = typer.Option(..., "--contact", help="the objector's phone, address or e-mail"),
    reason: str = typer.Option(..., "--reason", help="the objection, as written"),
) -> None:
    """Record a written, real-name objection received during the 公示 period (payout waits until the lead bureau decides)."""
    for flag, value in (("--name", name), ("--contact", contact), ("--reason", reason)):
        if not value.strip():
            fail(f"{flag}: must not be empty (an objection is real-name and written)", BAD_INPUT)
    rec = run(backend.object_to, app_id, who=who, objector_name=name, objector_contact=contact, reason=reason)
    console.print(inert(f"objection #{rec.number} recorded on {app_id}; the lead bureau decides "
                        f"(uphold-objection / dismiss-objection {app_id} {rec.number})"))


def _ruling(app_id: str, number: int, reviewer: str, reason: str, uphold: bool) -> None:
    if not reason.strip():
        fail("--reason: a decision on an objection needs a reason", BAD_INPUT)
    run(backend.rule_objection, app_id, reviewer=reviewer, objection=number, reason=reason, uphold=uphold)
    console.print(inert(f"objection #{number} on {app_id} {'upheld: the application is rejected' if uphold else 'dismissed'}"))


@app.command("uphold-objection")
@friendly
def uphold_objection(
    app_id: str = typer.Argument(...),
    number: int = typer.Argument(..., min=1, help="the objection's number (disburse status)"),
    reviewer: str = typer.Option(..., "--reviewer", help="a reviewer of the clause's lead bureau"),
    reason: str = typer.Option(..., "--reason"),
) -> None:
    """Uphold an objection as the lead bureau: the application ends `rejected` and nothing is paid."""
    _ruling(app_id, number, reviewer, reason, True)


@app.command("dismiss-objection")
@friendly
def dismiss_objection(
    app_id: str = typer.Argument(...),
    number: int = typer.Argument(..., min=1, help="the objection's number (disburse status)"),
    reviewer: str = typer.Option(..., "--reviewer", help="a reviewer of the clause's lead bureau"),
    reason: str = typer.Option(..., "--reason"),
) -> None:
    """Dismiss an objection as the lead bureau: the application goes on to payout after the period."""
    _ruling(app_id, number, reviewer, reason, False)


@publicity_app.command("list")
@friendly
def publicity_list(
    clause: Optional[str] = typer.Option(None, "--clause", help="only this clause"),
    out: Optional[Path] = typer.Option(None, "--out", help="write FILE.xlsx or FILE.csv instead of a table"),
    include_past: bool = typer.Option(False, "--all", help="also the awards whose 公示 is over"),
) -> None:
    """The publishable 公示 list: enterprise, credit code, clause, amount, notice period (from the database)."""
    from cli import publicity, show
    data = publicity.rows(clause, include_past=include_past)
    if out is None:
        show.rows_table(console, "公示", [{k: r[k] for k in publicity.COLUMNS} for r in data], money_cols=("amount",))
        return
    try:
        publicity.write(out, data)
    except publicity.ExportError as e:
        fail(str(e), BAD_INPUT)
    console.print(inert(f"{out}: {len(data)} awards"))


# ------------------------------------------------------------------------------------ registries

def _import(what: str, fn, file: Path, units: tuple[str, str] | None = None) -> None:
    """Run a registry import (CSV or .xlsx): a refusal of one row is one line; of several rows,
    one line per bad row (line, field, rule), then the count: nothing was imported either way."""
    from models.sheets import RegistryError, SheetRefused
    try:
        n = fn(file)
    except RegistryError as e:
        if isinstance(e, SheetRefused) and len(e.problems) > 1:
            for line in e.lines():
                typer.echo(one_line(line), err=True)
            fail(e.headline, BAD_INPUT)
        fail(str(e), BAD_INPUT)
    except ValueError as e:
        fail(str(e), BAD_INPUT)
    _imported(what, n, file, units)


def _imported(what: str, n: int, file: Path, units: tuple[str, str] | None = None) -> None:
    if n == 0:
        console.print(inert(f"{what}: no rows in {file} (only the header); nothing imported"))
        return
    unit = f" {units[n != 1]}" if units else ""
    console.print(inert(f"{what}: {n}{unit} imported from {file}"))


@blacklist_app.command("import")
@friendly
def blacklist_import(file: Path = typer.Argument(..., help="CSV or .xlsx: credit_code,name,listed_on,reason")) -> None:
    """Import (or refresh) the serious-dishonesty list from a CSV or .xlsx file: every row is checked
    first, then all are written (or none); an entry counts from its listed_on day (China time)."""
    _import("blacklist", backend.import_blacklist, file, ("entry", "entries"))


@blacklist_app.command("list")
@friendly
def blacklist_list(xlsx: Optional[Path] = typer.Option(None, "--xlsx", help=XLSX_HELP)) -> None:
    """Show the serious-dishonesty list (the export imports back with `blacklist import`)."""
    rows = backend.blacklist_rows()
    _rows_table("blacklist", rows)
    _export(xlsx, "blacklist", rows, ("credit_code", "name", "listed_on", "reason"))


@enterprises_app.command("import")
@friendly
def enterprises_import(file: Path = typer.Argument(..., help="CSV or .xlsx: credit_code,name,region,qualifications")) -> None:
    """Import (or refresh) the enterprise registry from a CSV or .xlsx file: every row is checked
    first, then all are written (or none); a region must agree with the credit code's region digits."""
    _import("enterprises", backend.import_enterprises, file)


@enterprises_app.command("list")
@friendly
def enterprises_list(xlsx: Optional[Path] = typer.Option(None, "--xlsx", help=XLSX_HELP)) -> None:
    """Show the enterprise registry (the export imports back with `enterprises import`)."""
    rows = backend.enterprise_rows()
    _rows_table("enterprises", rows)
    _export(xlsx, "enterprises", rows, ("credit_code", "name", "region", "qualifications"))


def _password(stdin: bool, prompt: str = "password") -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\n")
    return typer.prompt(prompt, hide_input=True)


@users_app.command("add")
@friendly
def users_add(
    user_id: str = typer.Argument(..., metavar="ID"),
    role: str = typer.Option(..., "--role", help="operator, reviewer, finance or ops"),
    bureau: Optional[str] = typer.Option(None, "--bureau", help="reviewer / finance: the qualified bureau"),
    name: str = typer.Option("", "--name"),
    email: str = typer.Option("", "--email"),
    webhook_url: str = typer.Option("", "--webhook-url",
                                    help="their group-chat robot (DingTalk, WeCom, Feishu) for notifications"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="read the password from standard input"),
) -> None:
    """Register a person (re-adding updates them and issues a new CLI token). Prints the token once:
    give it to them, or let them `disburse login`."""
    from models.users import UserError, add_user
    try:
        token = add_user(user_id, role=role, bureau=bureau, name=name, email=email, webhook_url=webhook_url,
                         password=_password(password_stdin, f"password for {user_id}"))
    except UserError as e:
        fail(str(e), BAD_INPUT)
    console.print(inert(f"user {user_id} ({role}{', ' + bureau if bureau else ''}) registered; CLI token:"))
    print(token)


@users_app.command("list")
@friendly
def users_list() -> None:
    """Registered people and their roles (never their passwords or tokens)."""
    from models.users import user_rows
    _rows_table("users", user_rows())


@app.command()
@friendly
def login(
    user_id: str = typer.Argument(..., metavar="USER"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="read the password from standard input"),
) -> None:
    """Log in on this machine: a fresh CLI token for USER, kept under ~/.config/disburse (0600).
    Commands then act as USER (or as the user their --reviewer / --operator option names)."""
    from cli.identity import save_token
    from models.users import UserError, new_token
    try:
        token = new_token(user_id, _password(password_stdin))
    except UserError as e:
        fail(str(e), 1)
    save_token(user_id, token)
    console.print(inert(f"logged in as {user_id}"))


@app.command()
@friendly
def logout(user_id: Optional[str] = typer.Argument(None, metavar="[USER]")) -> None:
    """Forget USER's token on this machine (default: the current user)."""
    from cli.identity import forget
    who = forget(user_id)
    console.print(inert(f"logged out {who}" if who else "nobody was logged in"))


@app.command()
@friendly
def whoami() -> None:
    """The user commands act as, their role and bureau."""
    from cli.identity import acting
    a = acting()
    console.print(inert(f"{a.user} ({a.role}{', ' + a.bureau if a.bureau else ''})"))


@keys_app.command("create")
@friendly
def keys_create(
    directory: Optional[Path] = typer.Option(None, "--dir", help="default var/keys (DISBURSE_VERIFY_KEYS)"),
    key_id: str = typer.Option("", "--id", help="key id (default k<N+1>)"),
) -> None:
    """A new signing key pair: KEY.pem (private: the console / CLI service only) and KEY.pub.pem (give
    it to every worker). Old public keys stay, so credentials signed with them still verify."""
    from models import credentials as creds
    where = directory or creds.key_directory()
    existing = sorted(where.glob("*.pub.pem")) if where.exists() else []
    kid = key_id or f"k{len(existing) + 1}"
    path = creds.Signer.generate(kid).save(where)
    console.print(inert(f"signing key {kid}: {path} (private) and {path.with_name(kid + '.pub.pem')} (public)"))


@reviewers_app.command("add")
@friendly
def reviewers_add(
    reviewer_id: str = typer.Argument(..., metavar="ID"),
    bureau: str = typer.Option(..., "--bureau", help="qualified bureau name, e.g. 杭州市财政局"),
    name: str = typer.Option("", "--name"),
) -> None:
    """Register a reviewer for a bureau (re-adding updates it)."""
    backend.add_reviewer(reviewer_id, bureau=bureau, name=name)
    console.print(inert(f"reviewer {reviewer_id} reviews for {bureau}"))


@reviewers_app.command("import")
@friendly
def reviewers_import(file: Path = typer.Argument(..., help="CSV or .xlsx: reviewer_id,bureau,name")) -> None:
    """Import (or update) reviewers from a CSV or .xlsx file: every row is checked first, then all
    are written (or none)."""
    _import("reviewers", backend.import_reviewers, file)


@reviewers_app.command("list")
@friendly
def reviewers_list(xlsx: Optional[Path] = typer.Option(None, "--xlsx", help=XLSX_HELP)) -> None:
    """Show the reviewers and their bureaus (the export imports back with `reviewers import`)."""
    rows = backend.reviewer_rows()
    _rows_table("reviewers", rows)
    _export(xlsx, "reviewers", rows, ("reviewer_id", "bureau", "name"))


@app.command()
@friendly
def ledger(
    application: Optional[str] = typer.Option(None, "--application", help="only this application id"),
    as_json: bool = typer.Option(False, "--json"),
    xlsx: Optional[Path] = typer.Option(None, "--xlsx", help=XLSX_HELP),
) -> None:
    """Paid tranches, from the ledger table."""
    rows = backend.ledger_rows(application)
    _export(xlsx, "ledger", rows, ("application_id", "clause_id", "enterprise_code", "year", "seq", "item_id",
                                   "amount", "due", "label", "paid_at"))
    if as_json:
        print_json(rows)
        return
    ids = {r["id"]: r for r in rows}
    shown = [{"application": r["application_id"], "year": r["year"], "#": r["seq"], "entry": r.get("kind") or "payment",
              "paid by clause": r["clause_id"], "item": r.get("item_id") or "", "amount": r["amount"],
              "settles": f"payment of #{ids[r['ref_id']]['seq']}" if r.get("ref_id") in ids else "",
              "reason": r.get("reason") or "", "when (UTC)": str(r["paid_at"])[:19]}
             for r in rows]
    _rows_table("ledger (payments, and recoveries / top-ups / corrections linked to them)", shown,
                money_cols=("amount",))
    if rows:
        paid = sum((Decimal(str(r.get("amount") or 0)) for r in rows if (r.get("kind") or "payment") == "payment"),
                   Decimal(0))
        net = sum((Decimal(str(r.get("amount") or 0)) for r in rows), Decimal(0))
        console.print(inert(f"total paid: {money(paid)}" + (f"; net of recoveries and amendments: {money(net)}"
                                                             if net != paid else "")))


@app.command()
@friendly
def audit(
    app_id: str = typer.Argument(..., help="application id"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """An application's whole record from the database alone: claim, decisions, calculations with
    their traces, the award book, payments, notifications. Works after Temporal has deleted the
    workflow's history (namespace retention)."""
    rec = backend.audit_record(app_id)
    if rec is None:
        fail(f"{clip(app_id)}: the database holds nothing about this application", 1)
    if as_json:
        print_json(rec)
        return
    from cli import show
    show.audit(console, rec)


@app.command()
@friendly
def book(
    application: Optional[str] = typer.Option(None, "--application", help="only this application id"),
    enterprise: Optional[str] = typer.Option(None, "--enterprise", help="only this enterprise (credit code)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The award book: every award line committed, paid or released, per tranche and item. Caps
    and 不重复 count what is committed or paid."""
    rows = backend.book_lines(application, enterprise)
    if as_json:
        print_json(rows)
        return
    shown = [{"application": r["application_id"], "year": r["year"], "#": r["seq"], "clause": r["clause_id"],
              "item": r["item_id"], "amount": r["amount"], "state": r["state"],
              "why released": r["release_reason"]} for r in rows]
    _rows_table("award book", shown, money_cols=("amount",))
    if rows:
        counting = sum((r["amount"] for r in rows if r["state"] in ("committed", "paid")), Decimal(0))
        console.print(inert(f"committed or paid: {money(counting)}"))


def _rows_table(title: str, rows: list[dict], money_cols: tuple[str, ...] = ()) -> None:
    from cli import show
    show.rows_table(console, title, rows, money_cols)


def _export(path: Optional[Path], title: str, rows: list[dict], columns: Optional[tuple[str, ...]] = None) -> None:
    """Rows (dicts) to an .xlsx (or .csv) file with models/sheets.py: one column per key, in order;
    money as numbers, formula-looking text kept as text."""
    if path is None:
        return
    from models import sheets
    cols = list(columns or (rows[0].keys() if rows else ()))
    try:
        sheets.write_table(path, cols, sheets.rows_of(rows, cols), title=title)
    except sheets.RegistryError as e:
        fail(str(e), BAD_INPUT)
    console.print(inert(f"{len(rows)} row{'s' if len(rows) != 1 else ''} written to {path}"))


# ------------------------------------------------------------------------------------ calc core

def _register_calc() -> None:
    from cli import calc_cmds
    calc_cmds.register(app)


_register_calc()


def _register_budget() -> None:
    from cli import budget_cmds
    budget_cmds.register(app)


_register_budget()


def main() -> None:
    """The typer application as a program (the console script, cli/entry.py, answers `disburse
    status` itself and hands everything else here); leaves with os._exit (entry.leave)."""
    from cli.entry import leave
    code = 0
    try:
        app()
    except SystemExit as e:
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
            code = 1
        else:
            code = e.code or 0
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        code = 130
    except CliError as e:  # raised outside a command (should not happen)
        typer.echo(f"error: {one_line(e)}", err=True)
        code = e.code
    leave(code)


if __name__ == "__main__":
    main()
