"""The CLI's one door to the backend (models/, workflows/client.py, worker.py).

Everything the commands need from the backend goes through here, imported lazily so that
`disburse --help` and the registry commands work without Temporal, and so that a change of name
in the backend is fixed in one place.
"""
from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable

from cli.errors import BAD_INPUT, CliError, describe_validation, temporal_address, temporal_namespace


# ------------------------------------------------------------------------------------ temporal

async def connect():
    return await _wc().connect()          # TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TLS, API key, profile


async def connect_worker():
    """The worker's client: connection settings plus the metrics endpoint (DISBURSE_METRICS_PORT)."""
    from worker import connect_worker_client
    return await connect_worker_client()


def connection_line() -> str:
    from workflows.connection import connect_config, describe, metrics_port
    line = describe(connect_config())
    port = metrics_port()
    return line + (f"; metrics on :{port}/metrics" if port else "")


def _wc():
    from workflows import client as wc
    return wc


def task_queue() -> str:
    try:
        return _wc().TASK_QUEUE
    except Exception:  # noqa: BLE001
        return "disburse"


async def run_worker(client) -> None:
    try:
        from worker import run_worker as rw
    except ImportError as e:
        raise CliError(f"the worker cannot be loaded (worker.py: {e})") from None
    await rw(client)


# ------------------------------------------------------------------------------------ applications

def load_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"), parse_float=Decimal)


def application_input(data: Any, *, source: str | None = None, operator: str | None = None):
    from pydantic import ValidationError

    from models import ApplicationInput

    if not isinstance(data, dict):
        raise CliError(f"{source or 'input'}: expected a JSON object", BAD_INPUT)
    if operator:
        data = {**data, "operator": operator}
    from calc import InputError
    from models.clauses import check_application
    try:
        inp = ApplicationInput.model_validate(data)
        check_application(inp)           # clause known, facts complete: before any connection
        return inp
    except ValidationError as e:
        raise CliError(describe_validation(e, source), BAD_INPUT) from None
    except InputError as e:
        raise CliError(f"{source + ': ' if source else ''}{e.field}: {e.rule}", BAD_INPUT) from None


async def submit(client, inp) -> str:
    return await _wc().submit(client, inp)


def is_duplicate(e: BaseException) -> bool:
    from temporalio.exceptions import WorkflowAlreadyStartedError
    return isinstance(e, WorkflowAlreadyStartedError) or "Duplicate" in type(e).__name__ \
        or "AlreadySubmitted" in type(e).__name__


def duplicate_id(e: BaseException, fallback: Any) -> str:
    return str(getattr(e, "workflow_id", None) or getattr(e, "app_id", None) or fallback)


async def status(client, app_id: str):
    return await _wc().status(client, app_id)


async def calculation(client, app_id: str):
    return await _wc().calculation(client, app_id)


async def approve(client, app_id: str, *, reviewer: str, comment: str = "", amount=None, reason=None):
    return await _wc().approve(client, app_id, reviewer=reviewer, comment=comment, amount=amount, reason=reason)


async def reject(client, app_id: str, *, reviewer: str, comment: str):
    return await _wc().reject(client, app_id, reviewer=reviewer, comment=comment)


async def request_info(client, app_id: str, *, reviewer: str, comment: str):
    return await _wc().request_info(client, app_id, reviewer=reviewer, comment=comment)


async def provide_info(client, app_id: str, data: dict, *, operator: str, source: str | None = None):
    return await _wc().provide_info(client, app_id, data, operator=operator)


async def submit_evidence(client, app_id: str, data: dict, *, operator: str | None = None, source: str | None = None):
    return await _wc().submit_evidence(client, app_id, data, operator=operator or "")


async def confirm_year(client, app_id: str, *, reviewer: str, comment: str = ""):
    return await _wc().confirm_year(client, app_id, reviewer=reviewer, comment=comment)


async def withdraw(client, app_id: str, *, operator: str, comment: str = ""):
    return await _wc().withdraw(client, app_id, operator=operator, comment=comment)


async def revoke(client, app_id: str, *, reviewer: str, reason: str):
    return await _wc().revoke(client, app_id, reviewer=reviewer, reason=reason)


async def resume(client, app_id: str, *, who: str, comment: str = ""):
    return await _wc().resume(client, app_id, who=who, comment=comment)


# ------------------------------------------------------------------------------------ visibility

def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def visibility_query(*, status: str | None = None, clause: str | None = None, bureau: str | None = None,
                     enterprise: str | None = None) -> str:
    """A Temporal visibility query over the custom search attributes (usable in the Web UI too)."""
    parts = []
    for attr, value in (("ApplicationStatus", status), ("ClauseId", clause), ("Bureau", bureau), ("EnterpriseCode", enterprise)):
        if value:
            parts.append(f"{_attr_name(attr)} = {_quote(value)}")
    return " AND ".join(parts)


def _attr_name(logical: str) -> str:
    return logical


async def list_applications(client, query: str, limit: int = 100) -> list[dict]:
    return await _wc().list_applications(client, query, limit=limit)


def to_plain(obj: Any) -> Any:
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if isinstance(obj, (list, tuple)):
        return [to_plain(x) for x in obj]
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    return obj


# ------------------------------------------------------------------------------------ database

def _registry():
    from models import registry
    return registry


def _bad_input(fn, *args, **kw):
    """Registry errors (RegistryError: bad CSV, bad credit code, missing file) become one-line CLI errors."""
    try:
        return fn(*args, **kw)
    except ValueError as e:
        raise CliError(str(e), BAD_INPUT) from None


def init_db() -> str:
    from models import db
    eng = db.init_db()
    return eng.url.render_as_string(hide_password=True)


def import_blacklist(path: Path) -> int:
    return _bad_input(_registry().import_blacklist_csv, Path(path))


def import_enterprises(path: Path) -> int:
    return _bad_input(_registry().import_enterprises_csv, Path(path))


def import_reviewers(path: Path) -> int:
    return _bad_input(_registry().import_reviewers_csv, Path(path))


def add_reviewer(reviewer_id: str, *, bureau: str, name: str = "") -> None:
    _bad_input(_registry().add_reviewer, reviewer_id, bureau, name)


def blacklist_rows() -> list[dict]:
    return _registry().blacklist_rows()


def enterprise_rows() -> list[dict]:
    return _registry().enterprise_rows()


def reviewer_rows() -> list[dict]:
    return _registry().list_reviewers()


def ledger_rows(application: str | None = None) -> list[dict]:
    return _registry().ledger_rows(application)


def audit_record(application_id: str):
    from models.audit import audit_record
    return audit_record(application_id)


def book_lines(application: str | None = None, enterprise: str | None = None) -> list[dict]:
    from models import book
    return book.lines(application, enterprise)


def rows(items: Iterable[Any], fields: tuple[str, ...]) -> list[dict]:
    out = []
    for it in items:
        d = it.model_dump() if hasattr(it, "model_dump") else dict(it)
        out.append({f: d.get(f) for f in fields})
    return out
