"""`disburse calc`, `disburse policies`, `disburse check`: the calculation core from the shell,
without Temporal. The core (and rich) are imported when one of these commands runs, not when the
command line starts (`disburse --help`, `disburse status` do not load it)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from cli.backend import load_json
from cli.errors import BAD_INPUT, CliError, friendly

MAX_LINE = 500   # an error is one line of at most this many characters


def _fail(message: str, code: int = BAD_INPUT) -> None:
    from calc.errors import shown
    typer.echo(f"error: {shown(message, MAX_LINE)}", err=True)
    raise typer.Exit(code)


def _read_json(path: Path) -> dict:
    """The CLI's one JSON loader (cli/backend.load_json), its refusal as one line."""
    try:
        return load_json(path)
    except CliError as e:
        _fail(str(e), e.code)


def _emit(data: Any) -> None:
    """The result as JSON on stdout, written in one piece (UTF-8, or escaped where the terminal
    cannot show it), so an error can never leave half a document behind."""
    text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    try:
        sys.stdout.write(text)
    except UnicodeEncodeError:
        sys.stdout.write(json.dumps(data, ensure_ascii=True, indent=2) + "\n")


def calc(file: Path = typer.Argument(..., help="a calculation request (JSON)")) -> None:
    """Run the calculation core on FILE.json and print the result as JSON
    (amount as a decimal string, schedule, trace, refusal)."""
    from calc import InputError, calculate, parse_request
    from calc.parameters import ParameterError
    data = _read_json(file)
    request = data.get("calc", data)
    if not isinstance(request, dict):
        _fail(f"{file}: calc: expected a JSON object, the calculation request")
    try:
        result = calculate(parse_request(request))
    except InputError as e:
        _fail(f"{file}: {e.field}: {e.rule}")
    except ParameterError as e:
        _fail(f"policy data: {e}", 1)
    _emit(result.to_json_dict())


def policies(
    doc: str = typer.Option(None, "--doc", help="only this document (hz2025, hu2023, ...)"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """List the payable clauses with Chinese and English names, bureaus and validity, and the
    items that are not payable by rule."""
    from rich.console import Console

    from calc import catalogue
    from calc.parameters import ParameterError
    try:
        cat = catalogue()
    except ParameterError as e:
        _fail(f"policy data: {e}")
    docs = [d for d in cat.documents.values() if doc is None or d.id == doc]
    if doc and not docs:
        _fail(f"--doc: unknown document {doc!r}; documents are {', '.join(cat.documents)}")
    if as_json:
        out = [{"doc": d.id, "title": d.title, "window": [str(d.window.start), str(d.window.end)],
                "clauses": [{"id": c.id, "item": c.item, "name_zh": c.name_zh, "name_en": c.name_en,
                             "bureaus": list(c.bureaus), "formula": c.formula} for c in d.clauses],
                "not_payable_by_rule": [n.model_dump() for n in d.non_computable]} for d in docs]
        _emit(out)
        return
    console = Console(highlight=False)
    for d in docs:
        console.print(f"[bold]{d.id}[/bold] · {d.title} · {d.number or ''} · in force "
                      f"{d.window.start} to {d.window.end} · {d.issuer}")
        for c in d.clauses:
            console.print(f"  [bold cyan]{c.id}[/bold cyan]  {c.item}")
            console.print(f"      {c.name_zh} · {c.name_en}")
            console.print(f"      bureaus: {c.bureaus[0]} (lead)" + "".join(f", {b}" for b in c.bureaus[1:]))
        for n in d.non_computable:
            console.print(f"  [dim]{n.item} {n.name_zh}: {n.reason}[/dim]")
        for lim in d.limits:
            console.print(f"  [dim]{lim.id} {lim.item} {lim.name_zh}: limit, pays nothing — {lim.rule}[/dim]")
        console.print()


def check(file: Path = typer.Argument(..., help="facts of a loan or guarantee (JSON)")) -> None:
    """Evaluate the limits that constrain loans and guarantees (they pay nothing themselves)."""
    from calc import InputError
    from calc.limits import check_limits
    from calc.model import parse_number
    data = _read_json(file)
    facts = data.get("facts", data)
    doc = data.get("doc")
    if not isinstance(facts, dict):
        _fail(f"{file}: facts: expected a JSON object of facts")
    if doc is not None and not isinstance(doc, str):
        _fail(f"{file}: doc: expected a document id such as \"hz2021\"")
    try:
        facts = {k: (v if isinstance(v, bool) else parse_number(v, f"facts.{k}")) for k, v in facts.items()
                 if k != "doc"}
    except InputError as e:
        _fail(f"{file}: {e.field}: {e.rule}")
    results = check_limits(facts, doc=doc)
    _emit(results)
    if any(not r["ok"] for r in results):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    # `friendly`: whatever escapes a command is still one line on stderr, never a traceback
    app.command("calc")(friendly(calc))
    app.command("policies")(friendly(policies))
    app.command("check")(friendly(check))


if __name__ == "__main__":   # python -m cli.calc_cmds calc FILE.json
    standalone = typer.Typer(add_completion=False)
    register(standalone)
    standalone()
