"""Batches from a spreadsheet: one application per row of a CSV (UTF-8, with or without BOM) or
.xlsx file (its first sheet), for `disburse submit-batch` and the console's /batch.

Columns (a header row names them, in any order):

    clause_id        e.g. hz2025-04-tech-insurance-premium
    year             e.g. 2026
    enterprise_code  统一社会信用代码
    facts            the claim's facts as ONE JSON object in the cell, exactly as under "facts" in
                     examples/*.json, e.g. {"premium": "800000", "policy_no": "P-1", ...}
    review_sla_days  optional: days the bureaus have to decide (default 15)

The operator is whoever submits the file (the logged-in user), never a column.

All or nothing: every row is read and validated (the claim as `disburse submit` validates it, the
clause and its facts, at most one row per enterprise, clause and year) before anything is
submitted; if any row is bad the whole file is refused with one line per bad row (line, field,
rule) and nothing is submitted. Then the rows are submitted one by one; a row whose application
already exists is reported "already submitted", so running a half-finished batch again (after a
crash, a lost connection) submits only the rest.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional

from models import sheets
from models.sheets import Column, RegistryError, SheetRefused

MAX_ROWS = 5_000                        # rows per file: split larger batches
MAX_FILE_BYTES = 16 * 1024 * 1024
FACTS_MAX = 32_767                      # characters of the facts cell (Excel's own limit for a cell)
COLUMNS = (
    Column("clause_id", 80, required=True, nonempty=True),
    Column("year", 10, required=True, nonempty=True),
    Column("enterprise_code", 40, required=True, nonempty=True),
    Column("facts", FACTS_MAX, required=True, nonempty=True),
    Column("review_sla_days", 3),
)

NOTHING = "nothing was submitted"        # a refused file's headline ends with it

SUBMITTED, ALREADY, REFUSED, FAILED, NOT_SUBMITTED = (
    "submitted", "already submitted", "refused", "failed", "not submitted")


@dataclass(frozen=True)
class BatchRow:
    line: int                           # the row's line in the CSV / row number in the sheet
    inp: Any                            # models.ApplicationInput


@dataclass(frozen=True)
class Outcome:
    line: int
    application_id: str
    outcome: str                        # SUBMITTED, ALREADY, REFUSED, FAILED, NOT_SUBMITTED
    reason: str = ""


# ------------------------------------------------------------------------------------ reading

def read_file(path) -> bytes:
    """The bytes of a batch file (size limit; RegistryError naming the file otherwise)."""
    return sheets.read_bytes(path, MAX_FILE_BYTES)


def read_batch(data: bytes, name: str, *, operator: str) -> list[BatchRow]:
    """Every row of the file as an application of `operator`, or SheetRefused listing every bad row."""
    try:
        if len(data) > MAX_FILE_BYTES:
            raise RegistryError(f"file is larger than {MAX_FILE_BYTES:,} bytes; split it", path=name)
        rows, problems = sheets.read_table(data, name, COLUMNS, max_rows=MAX_ROWS)
        if not rows and not problems:
            raise RegistryError("no rows: the file has a header and nothing else", path=name)
    except RegistryError as e:
        raise SheetRefused(name, [e], nothing=NOTHING) from None
    return sheets.checked_rows(
        name, rows, problems, lambda line, cells: BatchRow(line, _application(cells, operator)),
        lambda row: row.inp.application_id,
        lambda row, first: RegistryError(f"same enterprise, clause and year as line {first}: a file lists each "
                                         "application once", field="enterprise_code"),
        nothing=NOTHING)


def _facts(text: str) -> dict:
    from cli import backend as b
    try:
        data = json.loads(text, parse_float=b._float, parse_int=b._int, parse_constant=b._constant,
                          object_pairs_hook=b._object)
    except json.JSONDecodeError as e:
        raise RegistryError(f"not valid JSON (character {e.pos + 1}: {e.msg}); write one JSON object, "
                            "e.g. {\"premium\": \"800000\"}", field="facts") from None
    except RecursionError:
        raise RegistryError(f"nested deeper than {b.MAX_JSON_DEPTH} levels", field="facts") from None
    problem = b._first_problem(data)
    if problem is not None:
        raise RegistryError(f"{problem[0]}: {problem[1]}", field="facts")
    if not isinstance(data, dict):
        raise RegistryError("expected a JSON object {...}", field="facts")
    return data


def _application(cells: dict[str, str], operator: str):
    from pydantic import ValidationError

    from calc import InputError
    from cli.errors import _loc
    from models import ApplicationInput
    from models.clauses import check_application
    data: dict[str, Any] = {"clause_id": cells.get("clause_id", ""), "year": cells.get("year", ""),
                            "enterprise_code": cells.get("enterprise_code", ""), "operator": operator,
                            "facts": _facts(cells.get("facts", ""))}
    sla = cells.get("review_sla_days", "")
    if sla:
        if not (sla.isascii() and sla.isdigit()):
            raise RegistryError("a whole number of days, e.g. 15", field="review_sla_days")
        data["review_sla_days"] = int(sla)
    try:
        inp = ApplicationInput.model_validate(data)
        check_application(inp)
        return inp
    except ValidationError as e:
        errors = e.errors()
        first = errors[0]
        more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        raise RegistryError(first.get("msg", "invalid").removeprefix("Value error, ") + more,
                            field=_loc(tuple(first.get("loc", ())))) from None
    except InputError as e:
        raise RegistryError(e.rule, field=e.field) from None


# ------------------------------------------------------------------------------------ submitting

async def submit_rows(client, rows: list[BatchRow], *, actor, task_queue: Optional[str] = None,
                      on_row=None) -> list[Outcome]:
    """Submit each row in turn (workflows/client.submit, signed for `actor`). A row whose
    application exists is ALREADY; a claim the worker refuses is REFUSED with its reason. Any other
    error (the server unreachable...) stops the batch: that row FAILED, the rest NOT_SUBMITTED
    (running the file again submits them). `on_row(outcome)` is called after each row."""
    from cli.errors import describe
    from workflows import client as wc
    kw = {"task_queue": task_queue} if task_queue else {}
    out: list[Outcome] = []
    stopped: Optional[int] = None
    for r in rows:
        wid = r.inp.application_id
        if stopped is not None:
            o = Outcome(r.line, wid, NOT_SUBMITTED, f"the batch stopped at line {stopped}")
        else:
            try:
                await wc.submit(client, r.inp, actor=actor, **kw)
                o = Outcome(r.line, wid, SUBMITTED)
            except wc.DuplicateApplication:
                o = Outcome(r.line, wid, ALREADY)
            except wc.RequestRefused as e:
                o = Outcome(r.line, wid, REFUSED, describe(e)[0])
            except Exception as e:  # noqa: BLE001 - reported, and the rest left for a re-run
                o = Outcome(r.line, wid, FAILED, describe(e)[0])
                stopped = r.line
        out.append(o)
        if on_row is not None:
            on_row(o)
    return out


def summary(outcomes: list[Outcome]) -> str:
    def n(kind: str) -> int:
        return sum(1 for o in outcomes if o.outcome == kind)
    line = f"{len(outcomes)} rows: {n(SUBMITTED)} submitted, {n(ALREADY)} already submitted, {n(REFUSED)} refused"
    left = n(FAILED) + n(NOT_SUBMITTED)
    if left:
        line += f", {left} not submitted (run the file again to submit them)"
    return line
