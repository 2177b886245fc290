"""The `disburse` console script (cli/entry.py) answers `disburse status APP_ID [--json] [--trace]`
itself, without typer: it must print the same bytes on the same streams with the same exit code
as the typer command (cli/main.py) does, and hand everything else — other commands, --help,
unknown options, a missing or odd argument — to typer, whose parser and errors are the reference.
Both are run as the shell runs them: the installed script against `cli.main:main`, the typer
entry point it replaces."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from tests.backend_helpers import submit_new
from tests.cli_env import DISBURSE

# the typer path, started as the console script used to start it
TYPER = [sys.executable, "-c", "import sys; sys.argv[0] = 'disburse'; from cli.main import main; main()"]


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **extra}
    for name in ("DISBURSE_DEBUG", "_DISBURSE_COMPLETE"):
        env.pop(name, None)
    return env


def _both(args: list[str], env: dict[str, str]) -> tuple[tuple, tuple]:
    """(exit code, stdout, stderr) of the console script and of the typer entry point."""
    def one(cmd: list[str]) -> tuple:
        r = subprocess.run(cmd + args, env=env, capture_output=True, text=True, timeout=120)
        return r.returncode, r.stdout, r.stderr
    return one([DISBURSE]), one(TYPER)


@pytest.mark.parametrize("args", [
    ["status"],                                   # missing APP_ID
    ["status", "app-x", "--bogus"],               # unknown option: typer's error, exit 2
    ["status", "--jsn", "app-x"],
    ["status", "app-x", "app-y"],                 # an extra argument
    ["status", "app-x", "--json=1"],              # a flag given a value
    ["status", "--", "app-x"],
    ["status", ""],
    ["status", "-h"],
    ["status", "app-x", "--help"],
    ["--help"],
])
def test_what_the_quick_parser_does_not_take_goes_to_typer(args):
    from cli import entry
    if args[0] == "status":
        assert entry.status_args(args[1:]) is None
    quick, typer_path = _both(args, _env(TEMPORAL_ADDRESS="127.0.0.1:1"))
    assert quick == typer_path
    assert "Traceback" not in quick[2], quick


@pytest.mark.parametrize("args", [["status", "app-x"], ["status", "--json", "app-x"], ["status", "app-x", "--json"],
                                  ["status", "app-x", "--json", "--json"], ["status", "--trace", "app-x"]])
def test_the_quick_parser_reads_what_typer_reads(args):
    from cli import entry
    app_id, as_json, trace = entry.status_args(args[1:])
    assert (app_id, as_json, trace) == ("app-x", "--json" in args, "--trace" in args)
    quick, typer_path = _both(args, _env(TEMPORAL_ADDRESS="127.0.0.1:1"))       # nobody there: exit 3
    assert quick == typer_path and quick[0] == 3 and quick[2].startswith("error: cannot reach"), quick


def test_the_script_shows_what_the_typer_command_shows(harness, db):
    """The same application through the console script and through typer: the table, --json,
    --trace, and an unknown application."""
    env = _env(TEMPORAL_ADDRESS=harness.client.service_client.config.target_host,
               TEMPORAL_NAMESPACE=harness.client.namespace)
    app_id = harness.run(submit_new(harness, db))
    for args in (["status", app_id], ["status", app_id, "--json"], ["status", "--trace", app_id],
                 ["status", "app-no-such-application"]):
        # the processes ask while the harness's loop runs the worker
        quick, typer_path = harness.run(asyncio.to_thread(_both, args, env))
        assert quick == typer_path, args
        if args[1] == "app-no-such-application":
            assert quick[0] == 1 and quick[2].startswith("error: not found"), quick
        else:
            assert quick[0] == 0 and app_id in quick[1] and "review" in quick[1], quick
