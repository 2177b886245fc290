"""The `disburse` console script (pyproject.toml, [project.scripts]).

`disburse status APP_ID [--json] [--trace]` — what people run over and over and what scripts
poll — is answered here without typer, click and pydantic (together about as long to import as
the whole rest of the command, bench/cli.py): `status_args` reads the few shapes of those words
that typer's parser reads the same way, and nothing else. Everything else — other commands,
--help, an unknown option, a missing or odd argument, shell completion, DISBURSE_DEBUG — goes to
the typer application (cli/main.py), whose parser, help and errors stay the reference; both run
the same command (cli/status.py) and report errors the same way (cli/errors.py).
tests/test_cli_entry.py runs the two side by side."""
from __future__ import annotations

import os
import sys
from typing import Optional


def status_args(args: list[str]) -> Optional[tuple[str, bool, bool]]:
    """(app_id, --json, --trace) from the words after `status`, or None when they are anything
    but one application id (not empty, not starting with '-') and those two flags, in any order."""
    app_id, flags = None, set()
    for arg in args:
        if arg in ("--json", "--trace"):
            flags.add(arg)
        elif arg and not arg.startswith("-") and app_id is None:
            app_id = arg
        else:
            return None
    return None if app_id is None else (app_id, "--json" in flags, "--trace" in flags)


def _completing() -> bool:
    """A shell asking typer for completions (_DISBURSE_COMPLETE=...)."""
    return any(k.startswith("_") and k.endswith("_COMPLETE") for k in os.environ)


def quick(args: list[str]) -> Optional[int]:
    """The exit code of `disburse ARGS` answered here, or None: for typer to answer."""
    if args[:1] != ["status"] or os.environ.get("DISBURSE_DEBUG") or _completing():
        return None
    parsed = status_args(args[1:])
    if parsed is None:
        return None
    from cli import status
    from cli.errors import report
    try:
        status.show(*parsed)
    except KeyboardInterrupt:         # what typer makes of it: 130, silently
        return 130
    except SystemExit:
        raise
    except BaseException as e:  # noqa: BLE001 - as cli.errors.friendly: one line, no traceback
        return report(e)
    return 0


def leave(code: int) -> None:
    """Exit with os._exit once the output is flushed: temporalio 1.35's core runtime can crash the
    interpreter at exit (about 1 run in 10 here) after the command has done its work, which would
    turn a success into a segfault."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):   # output piped into `head`, or closed
            pass
    os._exit(code)


def main() -> None:
    code = quick(sys.argv[1:])
    if code is None:
        from cli.main import main as typer_main
        typer_main()                   # leaves itself
    leave(code)
