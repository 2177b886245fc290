"""`disburse calc`, `disburse policies`, `disburse check`: the calculation core from the shell,
without Temporal."""
from __future__ import annotations

import json
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path

import typer
from rich.console import Console

from calc import InputError, calculate, catalogue, parse_request
from calc.limits import check_limits
from calc.parameters import ParameterError


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    except FileNotFoundError:
        _fail(f"{path}: no such file")
    except json.JSONDecodeError as e:
        _fail(f"{path}: not valid JSON: {e}")


def calc(file: Path = typer.Argument(..., help="a calculation request (JSON)")) -> None:
    """Run the calculation core on FILE.json and print the result as JSON
    (amount as a decimal string, schedule, trace, refusal)."""
    data = _read_json(file)
    try:
        result = calculate(parse_request(data.get("calc", data)))
    except InputError as e:
        _fail(f"{file}: {e.field}: {e.rule}")
    except ParameterError as e:
        _fail(f"policy data: {e}")
    json.dump(result.to_json_dict(), sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def policies(
    doc: str = typer.Option(None, "--doc", help="only this document (hz2025, hu2023, ...)"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """List the payable clauses with Chinese and English names, bureaus and validity, and the
    items that are not payable by rule."""
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
        json.dump(out, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
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
    data = _read_json(file)
    facts = data.get("facts", data)
    try:
        facts = {k: (Decimal(str(v)) if not isinstance(v, bool) else v) for k, v in facts.items()}
    except InvalidOperation as e:
        _fail(f"{file}: facts must be numbers: {e}")
    results = check_limits(facts, doc=data.get("doc"))
    json.dump(results, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")
    if any(not r["ok"] for r in results):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("calc")(calc)
    app.command("policies")(policies)
    app.command("check")(check)


if __name__ == "__main__":   # python -m cli.calc_cmds calc FILE.json
    standalone = typer.Typer(add_completion=False)
    register(standalone)
    standalone()
