"""One clear line on stderr and a non-zero exit for every error a user can cause: no tracebacks.

Commands are wrapped with `@friendly`; anything they raise is turned into `error: ...` by
`describe()`. Exit codes: 1 = the operation was refused or failed, 2 = bad input,
3 = the Temporal server cannot be reached. Whatever the error echoes back (a clause id, a file
name, a cell) is printed as one bounded line, its control characters shown as escapes
(cli/safe_text.py).
"""
from __future__ import annotations

import functools
import json
import os
import sys
from typing import Any, Callable

from cli.safe_text import one_line

BAD_INPUT, FAILED, UNREACHABLE = 2, 1, 3


class CliError(Exception):
    """An error already worded for the user."""

    def __init__(self, message: str, code: int = FAILED):
        super().__init__(message)
        self.code = code


def temporal_address() -> str:
    return os.environ.get("TEMPORAL_ADDRESS", "localhost:7233")


def temporal_namespace() -> str:
    return os.environ.get("TEMPORAL_NAMESPACE", "default")


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(input)"


def describe_validation(e: Any, source: str | None = None) -> str:
    """A pydantic ValidationError in one line, naming the field of the first problem."""
    errors = e.errors()
    first = errors[0] if errors else {"loc": (), "msg": str(e)}
    msg = first.get("msg", "invalid").removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    prefix = f"{source}: " if source else ""
    return f"{prefix}{_loc(tuple(first.get('loc', ())))}: {msg}{more}"


def _is_connection_failure(e: BaseException) -> bool:
    text = str(e).lower()
    return any(s in text for s in (
        "failed client connect", "connection refused", "tcp connect error", "transport error",
        "failed to connect", "dns error", "connect error", "unavailable"))


def describe(e: BaseException) -> tuple[str, int]:
    """(message, exit code) for an exception raised by a command; the message is one line, bounded
    in length, with no control characters (it may echo hostile input)."""
    message, code = _describe(e)
    return one_line(message), code


def _loaded(module: str, name: str) -> Any:
    """Class `name` of `module` if that module is loaded, else None. An exception of that class (or
    of a subclass) can only exist once its module is loaded, so the error path never imports the
    database, the calculation core or pydantic just to find out it has nothing to do with them:
    `disburse status NO-SUCH-ID` says so at once."""
    mod = sys.modules.get(module)
    return getattr(mod, name, None) if mod is not None else None


def _describe(e: BaseException) -> tuple[str, int]:
    if isinstance(e, CliError):
        return str(e), e.code
    validation_error = _loaded("pydantic_core", "ValidationError")     # pydantic.ValidationError
    if validation_error is not None and isinstance(e, validation_error):
        return describe_validation(e), BAD_INPUT
    name = type(e).__name__
    registry_error = _loaded("models.registry", "RegistryError")
    if registry_error is not None and isinstance(e, registry_error):   # FILE: line N: FIELD: RULE
        return str(e), BAD_INPUT
    input_error = _loaded("calc.errors", "InputError")
    if input_error is not None and isinstance(e, input_error):
        return f"{e.field}: {e.rule}", BAD_INPUT
    if _loaded("temporalio.service", "RPCError") is not None:
        from temporalio.exceptions import WorkflowAlreadyStartedError
        from temporalio.service import RPCError
        if isinstance(e, WorkflowAlreadyStartedError):
            return f"application {e.workflow_id} was already submitted", FAILED
        if isinstance(e, RPCError):
            return _server_error(int(e.status), e.message)
    server_error = _loaded("workflows.http_status", "ServerError")      # the same, over the HTTP API
    if server_error is not None and isinstance(e, server_error):
        return _server_error(e.code, e.message)
    if isinstance(e, (ConnectionError, OSError)) and _is_connection_failure(e):
        return _unreachable(), UNREACHABLE
    if isinstance(e, RuntimeError) and _is_connection_failure(e):
        return _unreachable(), UNREACHABLE
    if isinstance(e, FileNotFoundError):
        return f"{e.filename}: no such file", BAD_INPUT
    if isinstance(e, json.JSONDecodeError):
        return f"not valid JSON: {e}", BAD_INPUT
    if name in ("OperationalError", "IntegrityError") and hasattr(e, "orig"):
        return f"database: {e.orig}", FAILED
    if "Duplicate" in name or "AlreadyExists" in name or "AlreadySubmitted" in name:
        return str(e) or "already submitted", FAILED
    if "NotFound" in name or "Unknown" in name:
        return str(e) or "not found", FAILED
    if isinstance(e, ValueError):
        return str(e), BAD_INPUT
    message = str(e).strip().splitlines()[0] if str(e).strip() else name
    return f"{message}", FAILED


def _server_error(code: int, message: str) -> tuple[str, int]:
    """An error the Temporal server answered with gRPC status `code` (RPCStatusCode's numbers):
    over gRPC (temporalio's RPCError) or over the HTTP API (workflows.http_status.ServerError)."""
    if code == 5:                      # NOT_FOUND
        return f"not found: {message}", FAILED
    if code == 14:                     # UNAVAILABLE
        return _unreachable(), UNREACHABLE
    if code == 3:                      # INVALID_ARGUMENT
        return f"rejected by the Temporal server: {message}", BAD_INPUT
    return f"Temporal: {message}", FAILED


def _unreachable() -> str:
    return (f"cannot reach the Temporal server at {temporal_address()}: it is not running; "
            "start it with `make run` (or `disburse up`), or set TEMPORAL_ADDRESS")


def fail(message: str, code: int = FAILED) -> None:
    raise CliError(message, code)


def report(e: BaseException) -> int:
    """Print `e` as the one `error: ...` line on stderr; the exit code."""
    message, code = describe(e)
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()
    return code


def friendly(fn: Callable) -> Callable:
    """Run a command; print any error as one line on stderr and exit non-zero. (typer is imported
    when a command runs, by then loaded: the console script's `disburse status` uses this module
    without it, cli/entry.py.)"""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import typer
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit, KeyboardInterrupt):
            raise
        except BaseException as e:  # noqa: BLE001 - the whole point: no tracebacks
            if os.environ.get("DISBURSE_DEBUG"):
                raise
            raise typer.Exit(report(e)) from None
    return wrapper
