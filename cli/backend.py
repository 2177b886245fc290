"""The CLI's one door to the backend (models/, workflows/client.py, worker.py).

Everything the commands need from the backend goes through here, imported lazily so that
`disburse --help` and the registry commands work without Temporal, and so that a change of name
in the backend is fixed in one place.
"""
from __future__ import annotations

import json
import os
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


def address() -> str:
    return temporal_address()


def namespace() -> str:
    return temporal_namespace()


async def register_attributes(wait: float, log) -> list[tuple[str, str, str]]:
    """deploy/attributes.py against TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE, through `connect` (so
    with whatever connection settings the client has)."""
    from deploy.attributes import AttributeConflict, register_when_ready
    try:
        return await register_when_ready(connect, temporal_namespace(), wait=wait, log=log)
    except AttributeConflict as e:
        raise CliError(str(e)) from None


def _wc():
    from workflows import client as wc
    return wc


def task_queue() -> str:
    try:
        return _wc().TASK_QUEUE
    except Exception:  # noqa: BLE001
        return "disburse"


def check_worker_settings() -> None:
    """Read the worker's concurrency settings now, so a bad one stops `disburse worker` before it
    connects (worker.ConcurrencyError, exit 78)."""
    try:
        from worker import Concurrency
    except ImportError as e:
        raise CliError(f"the worker cannot be loaded (worker.py: {e})") from None
    Concurrency.from_env()
    from models.publicity import day_seconds_setting
    day_seconds_setting()                    # DISBURSE_PUBLICITY_DAY_SECONDS (demos and tests only)


async def run_worker(client) -> None:
    try:
        from worker import run_worker as rw
    except ImportError as e:
        raise CliError(f"the worker cannot be loaded (worker.py: {e})") from None
    await rw(client)


# ------------------------------------------------------------------------------------ applications

MAX_JSON_BYTES = 5 * 1024 * 1024   # a request is a few kilobytes; anything this big is not one
MAX_JSON_DEPTH = 32                # a request nests 5 levels (request.facts.loans.0.principal)
MAX_INT_DIGITS = 20                # 10^12 yuan has 13 digits
MAX_JSON_ITEMS = 10_000            # items of one array or object (a claim has at most 200 loans)


class _Refused:
    """Stands in the parsed tree for a JSON value refused once its path is known (the parser's
    hooks do not know where they are)."""
    __slots__ = ("rule",)

    def __init__(self, rule: str):
        self.rule = rule


def _float(text: str) -> Any:
    if "e" in text or "E" in text:
        return _Refused(f"{_shown(text)} is in exponent notation; write the number out in digits")
    return Decimal(text)


def _int(text: str) -> Any:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        return _Refused(f"a number with more than {MAX_INT_DIGITS} digits ({len(text)} characters)")
    return int(text)


def _constant(text: str) -> Any:
    return _Refused(f"{text} is not a number (JSON has no NaN or Infinity)")


def _object(pairs: list[tuple[str, Any]]) -> Any:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            return _Refused(f"key \"{_shown(key)}\" appears twice in one object")
        obj[key] = value
    return obj


def _shown(value: Any, limit: int = 80) -> str:
    from calc.errors import shown
    return shown(value, limit)


def _not_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _first_problem(data: Any) -> tuple[str, str] | None:
    """(path, rule) of a refused value: nested too deep, a refused number or object, a string or
    key holding a lone surrogate. Iterative, and linear: only containers go on the stack, and a
    path is spelled out only for the value refused (5 MB of small values take a fraction of a second)."""
    def where(path: tuple[Any, ...]) -> str:
        return _shown(".".join(_shown(p, 40) for p in path), 160) if path else "(top level)"

    def scalar(value: Any) -> str | None:
        if type(value) is _Refused:
            return value.rule
        if type(value) is str and _not_unicode(value):
            return "a lone surrogate (\\ud800-\\udfff) in a string is not valid Unicode"
        return None

    if type(data) not in (dict, list):
        rule = scalar(data)
        return ("(top level)", rule) if rule else None
    stack: list[tuple[Any, tuple[Any, ...]]] = [(data, ())]
    while stack:
        node, path = stack.pop()
        if len(path) >= MAX_JSON_DEPTH:
            return where(path[:3]) + ".…", f"nested deeper than {MAX_JSON_DEPTH} levels"
        if len(node) > MAX_JSON_ITEMS:
            return where(path), f"more than {MAX_JSON_ITEMS} items in one {'object' if type(node) is dict else 'array'}"
        children = []
        for key, value in (node.items() if type(node) is dict else enumerate(node)):
            if type(key) is str and _not_unicode(key):
                return where(path), "a lone surrogate (\\ud800-\\udfff) in a key is not valid Unicode"
            if type(value) is dict or type(value) is list:
                children.append((value, (*path, key)))
            else:
                rule = scalar(value)
                if rule:
                    return where((*path, key)), rule
        stack.extend(reversed(children))
    return None


_KIND = {list: "an array", str: "a string", int: "a number", Decimal: "a number", bool: "true or false",
         type(None): "null"}


def load_json(path: Path) -> dict[str, Any]:
    """The one reader of the JSON files the commands take (calc, check, submit, provide-info,
    evidence): a UTF-8 file of at most 5 MB holding one JSON object. Anything else raises
    CliError(BAD_INPUT) worded as one line, naming the file and, inside it, the path of the value
    and the rule it breaks: not UTF-8 (UTF-16, GBK…), NUL bytes, too large, not JSON, nested deeper
    than 32 levels, more than 10,000 items in one array or object, a key twice in one object, NaN/Infinity, numbers in exponent notation or with
    more than 20 digits, lone surrogates, a top level that is not an object. Decimals are Decimal,
    never float. A UTF-8 byte-order mark is skipped."""
    name = _shown(str(path))

    def refuse(rule: str) -> CliError:
        return CliError(f"{name}: {rule}", BAD_INPUT)

    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_JSON_BYTES + 1)
    except FileNotFoundError:
        raise refuse("no such file") from None
    except IsADirectoryError:
        raise refuse("is a directory, expected a JSON file") from None
    except PermissionError:
        raise refuse("permission denied") from None
    except OSError as e:
        raise refuse(f"cannot be read ({e.strerror or type(e).__name__})") from None
    if len(raw) > MAX_JSON_BYTES:
        raise refuse(f"larger than {MAX_JSON_BYTES // (1024 * 1024)} MB; a request is a few kilobytes")
    if raw.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        raise refuse("is UTF-32 text; save it as UTF-8")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise refuse("is UTF-16 text; save it as UTF-8")
    if b"\x00" in raw:
        raise refuse("contains NUL bytes (UTF-16/UTF-32 text or a binary file); save it as UTF-8")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise refuse(f"is not UTF-8 (byte 0x{raw[e.start]:02x} at offset {e.start}); GBK and other "
                     "encodings are not read: save it as UTF-8") from None
    text = text.removeprefix("\ufeff")
    try:
        data = json.loads(text, parse_float=_float, parse_int=_int, parse_constant=_constant,
                          object_pairs_hook=_object)
    except json.JSONDecodeError as e:
        raise refuse(f"not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    except RecursionError:
        raise refuse(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    problem = _first_problem(data)
    if problem is not None:
        raise refuse(f"{problem[0]}: {problem[1]}")
    if not isinstance(data, dict):
        raise refuse(f"expected a JSON object {{...}} at the top level, got {_KIND.get(type(data), 'something else')}")
    return data


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


async def submit(client, inp, *, actor=None) -> str:
    """Submit as the logged-in operator (the CLI); `actor` given by callers that authenticated
    otherwise (the demo loader acts for its demo operator)."""
    return await _wc().submit(client, inp, actor=actor or _acting(inp.operator))


def _acting(user):
    from cli.identity import acting
    return acting(user or None)


def is_duplicate(e: BaseException) -> bool:
    from temporalio.exceptions import WorkflowAlreadyStartedError
    return isinstance(e, WorkflowAlreadyStartedError) or "Duplicate" in type(e).__name__ \
        or "AlreadySubmitted" in type(e).__name__


def duplicate_id(e: BaseException, fallback: Any) -> str:
    return str(getattr(e, "workflow_id", None) or getattr(e, "app_id", None) or fallback)


async def status(client, app_id: str):
    return await _wc().status(client, app_id)


def http_status(app_id: str, meanwhile=None):
    """The status query over Temporal's HTTP API (TEMPORAL_HTTP_ADDRESS; standard library only,
    no SDK); None: ask with `quick_status`. `meanwhile()` runs while the query is on its way."""
    from workflows.http_status import query_status
    return query_status(app_id, meanwhile=meanwhile)


async def quick_status(app_id: str, meanwhile=None):
    """The status query without the high-level client (fast start-up); None: ask with `status`.
    `meanwhile()` runs while the query is on its way."""
    return await _wc().quick_status(app_id, meanwhile=meanwhile)


async def calculation(client, app_id: str):
    return await _wc().calculation(client, app_id)


async def approve(client, app_id: str, *, reviewer: str, comment: str = "", amount=None, reason=None):
    return await _wc().approve(client, app_id, reviewer=reviewer, comment=comment, amount=amount, reason=reason,
                               actor=_acting(reviewer))


async def reject(client, app_id: str, *, reviewer: str, comment: str):
    return await _wc().reject(client, app_id, reviewer=reviewer, comment=comment, actor=_acting(reviewer))


async def request_info(client, app_id: str, *, reviewer: str, comment: str):
    return await _wc().request_info(client, app_id, reviewer=reviewer, comment=comment, actor=_acting(reviewer))


async def provide_info(client, app_id: str, data: dict, *, operator: str, source: str | None = None):
    return await _wc().provide_info(client, app_id, data, operator=operator, actor=_acting(operator))


async def submit_evidence(client, app_id: str, data: dict, *, operator: str | None = None, source: str | None = None):
    return await _wc().submit_evidence(client, app_id, data, operator=operator or "", actor=_acting(operator))


async def confirm_year(client, app_id: str, *, reviewer: str, comment: str = ""):
    return await _wc().confirm_year(client, app_id, reviewer=reviewer, comment=comment, actor=_acting(reviewer))


async def withdraw(client, app_id: str, *, operator: str, comment: str = ""):
    return await _wc().withdraw(client, app_id, operator=operator, comment=comment, actor=_acting(operator))


async def revoke(client, app_id: str, *, reviewer: str, reason: str):
    return await _wc().revoke(client, app_id, reviewer=reviewer, reason=reason, actor=_acting(reviewer))


async def resume(client, app_id: str, *, who: str, comment: str = ""):
    return await _wc().resume(client, app_id, who=who, comment=comment, actor=_acting(who))


async def clawback(client, app_id: str, *, reviewer: str, amount=None, everything: bool = False, basis: str,
                   reason: str):
    return await _wc().clawback(client, app_id, reviewer=reviewer, amount=amount, everything=everything, basis=basis,
                                reason=reason, actor=_acting(reviewer))


async def propose_amendment(client, app_id: str, *, reviewer: str, amount, reason: str):
    return await _wc().propose_amendment(client, app_id, reviewer=reviewer, amount=amount, reason=reason,
                                         actor=_acting(reviewer))


async def approve_amendment(client, app_id: str, *, reviewer: str, comment: str = ""):
    return await _wc().approve_amendment(client, app_id, reviewer=reviewer, comment=comment, actor=_acting(reviewer))


async def refuse_amendment(client, app_id: str, *, reviewer: str, comment: str):
    return await _wc().refuse_amendment(client, app_id, reviewer=reviewer, comment=comment, actor=_acting(reviewer))


def bars(enterprise: str | None = None) -> list[dict]:
    from models.recovery import bars as rows
    return rows(enterprise)


async def object_to(client, app_id: str, *, who: str, objector_name: str, objector_contact: str, reason: str):
    return await _wc().object_to(client, app_id, who=who, objector_name=objector_name,
                                 objector_contact=objector_contact, reason=reason, actor=_acting(who))


async def rule_objection(client, app_id: str, *, reviewer: str, objection: int, reason: str, uphold: bool):
    return await _wc().rule_objection(client, app_id, reviewer=reviewer, objection=objection, reason=reason,
                                      uphold=uphold, actor=_acting(reviewer))


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
    """The registry imports (CSV or .xlsx) raise RegistryError (every bad row in `.problems`)."""
    return _registry().import_blacklist_csv(Path(path))


def import_enterprises(path: Path) -> int:
    return _registry().import_enterprises_csv(Path(path))


def import_reviewers(path: Path) -> int:
    return _registry().import_reviewers_csv(Path(path))


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


DEMO_PASSWORD = os.environ.get("DISBURSE_DEMO_PASSWORD", "demo-password")


def ensure_local_keys():
    """The signing key pair under var/keys/ (unless DISBURSE_SIGNING_KEY / DISBURSE_VERIFY_KEYS
    point elsewhere), created on first run."""
    from models import credentials as creds
    if os.environ.get("DISBURSE_SIGNING_KEY"):
        return os.environ["DISBURSE_SIGNING_KEY"]
    return creds.ensure_local_keys(creds.key_directory())


def demo_users(reviewers_csv) -> int:
    """Demo: op-demo (operator) and one user per reviewer of the CSV (finance for a 财政局), all
    with DEMO_PASSWORD, logged in on this machine so the README's tour runs as written."""
    import csv

    from cli.identity import current_user, save_token
    from models.users import add_user
    n = 0
    previous = current_user()
    save_token("op-demo", add_user("op-demo", role="operator", name="演示经办人", password=DEMO_PASSWORD))
    n += 1
    with open(reviewers_csv, encoding="utf-8-sig", newline="") as f:
        for row in csv.DictReader(f):
            role = "finance" if row["bureau"].endswith("财政局") else "reviewer"
            save_token(row["reviewer_id"], add_user(row["reviewer_id"], role=role, bureau=row["bureau"],
                                                    name=row.get("name", ""), password=DEMO_PASSWORD))
            n += 1
    if previous:
        from cli.identity import config_dir
        (config_dir() / "current").write_text(previous)
    return n


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
