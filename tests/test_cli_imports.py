"""The command line's start-up cost is its imports: the client side (cli.main, workflows.client and
what `disburse status` runs) never loads the worker side — the workflow, the activities, the
database, the calculation core, the policy catalogue, structlog — and `disburse --help` loads not
even the Temporal SDK. Checked on the modules a fresh interpreter holds afterwards, never with a
stopwatch (bench/cli.py measures the time)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# what only the worker (or a command that needs it: submit, calc, the registries) may load
WORKER_SIDE = (
    "workflows.application", "workflows.legacy", "activities", "worker", "calc", "models.application",
    "models.clauses", "models.tables", "models.db", "models.registry", "models.users", "sqlalchemy", "sqlmodel",
    "alembic", "structlog", "yaml", "openpyxl",
)
# nor what `status` has no use for: the SDK's high-level client and data converter (it asks on the
# service layer: tests/test_quick_status.py), the request payloads and credentials, the payload
# cipher (no DISBURSE_PAYLOAD_KEYS here)
NOT_FOR_STATUS = WORKER_SIDE + ("temporalio.client", "temporalio.contrib", "temporalio.converter", "temporalio.worker",
                                "models.payloads", "models.credentials", "cryptography")
# and what `--help` has no use for (pydantic it may load: typer coerces parameters with it)
NOT_FOR_HELP = WORKER_SIDE + ("temporalio", "rich", "cryptography", "asyncio")
# `disburse status APP_ID [--json]` from the console script (cli/entry.py) parses its three words
# itself: not even the command-line framework, nor pydantic (typer coerces parameters with it)
NOT_FOR_THE_STATUS_SCRIPT = NOT_FOR_STATUS + ("cli.main", "typer", "click", "pydantic", "pydantic_core",
                                               "annotated_types", "rich")


def _loaded_after(code: str, forbidden: tuple[str, ...], **env: str) -> list[str]:
    """Run `code` in a fresh interpreter; the forbidden modules (or their submodules) it loaded."""
    probe = (f"import sys, json\n{code}\n"
             f"bad = {forbidden!r}\n"
             "print(json.dumps(sorted(m for m in sys.modules if any(m == b or m.startswith(b + '.') for b in bad))))")
    import os
    r = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **env})
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def _top(modules: list[str]) -> list[str]:
    return sorted({m.split(".")[0] if not m.startswith(("models.", "workflows.")) else m for m in modules})


def test_the_client_side_imports_no_worker_side_module():
    loaded = _loaded_after("import cli.main, cli.backend, cli.show, cli.errors, cli.identity, workflows.client, "
                           "workflows.codec, workflows.connection, models.credentials, models.search_attributes",
                           WORKER_SIDE)
    assert loaded == [], _top(loaded)


def test_status_runs_without_the_worker_side():
    """`disburse status ID` all the way to its (connection) error: connect, query, show."""
    code = ("from typer.testing import CliRunner\n"
            "from cli.main import app\n"
            "r = CliRunner().invoke(app, ['status', 'app-x'])\n"
            "assert r.exit_code == 3 and 'cannot reach the Temporal server' in r.stderr, (r.exit_code, r.output)\n")
    loaded = _loaded_after(code, NOT_FOR_STATUS, TEMPORAL_ADDRESS="127.0.0.1:1", DISBURSE_PAYLOAD_KEYS="")
    assert loaded == [], _top(loaded)


def test_the_status_script_loads_no_command_line_framework():
    """The console script's `disburse status ID` (and --json) all the way to the (connection)
    error, as the shell runs it: no typer, click, pydantic, rich (nothing to draw)."""
    code = ("import contextlib, io\n"
            "from cli import entry\n"
            "for args in (['status', 'app-x'], ['status', '--json', 'app-x']):\n"
            "    err = io.StringIO()\n"
            "    with contextlib.redirect_stderr(err):\n"
            "        code = entry.quick(args)\n"
            "    assert code == 3 and err.getvalue().startswith('error: cannot reach the Temporal server'), "
            "(code, err.getvalue())\n")
    loaded = _loaded_after(code, NOT_FOR_THE_STATUS_SCRIPT, TEMPORAL_ADDRESS="127.0.0.1:1", DISBURSE_PAYLOAD_KEYS="",
                           DISBURSE_DEBUG="")
    assert loaded == [], _top(loaded)


# over Temporal's HTTP API (TEMPORAL_HTTP_ADDRESS, workflows/http_status.py) `status` loads no Temporal SDK at all
NOT_FOR_STATUS_OVER_HTTP = NOT_FOR_THE_STATUS_SCRIPT + ("temporalio", "google.protobuf", "grpc", "asyncio")


def test_the_status_script_over_the_http_api_loads_no_temporal_sdk():
    """The console script's `disburse status ID` answered by an HTTP API (a stand-in in the same
    process: the gRPC address goes nowhere), as a table, as JSON, and an unknown id: the standard
    library and the CLI's own modules; rich only to draw the table."""
    code = ("import base64, contextlib, io, json, threading\n"
            "from http.server import BaseHTTPRequestHandler, HTTPServer\n"
            "st = {'application_id': 'app-x', 'status': 'review', 'year': 2026}\n"
            "class H(BaseHTTPRequestHandler):\n"
            "    def do_POST(self):\n"
            "        self.rfile.read(int(self.headers['Content-Length']))\n"
            "        if 'app-none' in self.path:\n"
            "            code, doc = 404, {'code': 5, 'message': 'workflow not found for ID: app-none', 'details': [\n"
            "                {'@type': 'type.googleapis.com/temporal.api.errordetails.v1.NotFoundFailure'}]}\n"
            "        else:\n"
            "            code, doc = 200, {'queryResult': {'payloads': [{'metadata': {'encoding': 'anNvbi9wbGFpbg=='},\n"
            "                'data': base64.b64encode(json.dumps(st).encode()).decode()}]}}\n"
            "        raw = json.dumps(doc).encode()\n"
            "        self.send_response(code); self.send_header('Content-Length', str(len(raw))); self.end_headers()\n"
            "        self.wfile.write(raw)\n"
            "    def log_message(self, *a): pass\n"
            "server = HTTPServer(('127.0.0.1', 0), H)\n"
            "threading.Thread(target=server.serve_forever, daemon=True).start()\n"
            "import os; os.environ['TEMPORAL_HTTP_ADDRESS'] = '127.0.0.1:%d' % server.server_address[1]\n"
            "from cli import entry\n"
            "for args, want in ((['status', '--json', 'app-x'], 0), (['status', 'app-none'], 1), "
            "(['status', 'app-x'], 0)):\n"
            "    out, err = io.StringIO(), io.StringIO()\n"
            "    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):\n"
            "        code = entry.quick(args)\n"
            "    assert code == want and ('app-x' in out.getvalue() if want == 0 else "
            "err.getvalue() == 'error: not found: workflow not found for ID: app-none\\n'), (args, code, out.getvalue(), err.getvalue())\n"
            "    if args[1] == '--json':\n"
            "        assert json.loads(out.getvalue()) == st\n"
            "        assert 'rich' not in sys.modules\n")
    loaded = _loaded_after(code, tuple(m for m in NOT_FOR_STATUS_OVER_HTTP if m != "rich"),     # rich: the table
                           TEMPORAL_ADDRESS="127.0.0.1:1", DISBURSE_PAYLOAD_KEYS="", DISBURSE_DEBUG="",
                           TEMPORAL_CONFIG_FILE=os.devnull)
    assert loaded == [], _top(loaded)


def test_help_loads_only_the_command_line():
    code = ("from typer.testing import CliRunner\n"
            "from cli.main import app\n"
            "for args in (['--help'], ['status', '--help'], ['users', '--help']):\n"
            "    r = CliRunner().invoke(app, args)\n"
            "    assert r.exit_code == 0 and 'Usage' in r.stdout, r.output\n")
    loaded = _loaded_after(code, NOT_FOR_HELP)
    assert loaded == [], _top(loaded)


def test_the_client_names_what_the_workflow_registers():
    """The client sends the workflow type, updates and queries by name (so it need not import the
    workflow): the names are the ones the worker's workflow class registers."""
    from temporalio.workflow import _Definition

    from models.payloads import DecisionRecord
    from workflows import client as wc
    from workflows.application import ApplicationWorkflow
    defn = _Definition.must_from_class(ApplicationWorkflow)
    assert wc.WORKFLOW_TYPE == defn.name == "Application"
    assert set(wc.UPDATES) <= set(defn.updates), set(wc.UPDATES) - set(defn.updates)
    assert set(wc.QUERIES) <= set(defn.queries), set(wc.QUERIES) - set(defn.queries)
    from models.clawback import Amendment
    from models.publicity import ObjectionRecord
    for name in wc.UPDATES[1:]:       # a DecisionRecord; an amendment's the Amendment, an objection's its record
        expected = (Amendment if name.endswith("_amendment")
                    else ObjectionRecord if name in ("object", "uphold_objection", "dismiss_objection")
                    else DecisionRecord)
        assert defn.updates[name].ret_type is expected, name


def test_the_light_payloads_are_the_ones_the_workflow_uses():
    """models.payloads holds the update payloads; models.application (and `models`) re-export the
    same classes, so the worker, the console and the client agree."""
    import models
    from models import application, payloads
    for name in payloads.__all__:
        assert getattr(application, name) is getattr(payloads, name), name
    assert sorted(models.__all__) == sorted(application.__all__)
    assert models.ApplicationInput is application.ApplicationInput


def test_the_console_made_on_first_use_stands_in_for_a_rich_console(capsys):
    """cli.main.console is created when first used (rich is not loaded for --help) and serves
    wherever a rich Console does: printing, and inside rich's own Progress / Live."""
    from rich.progress import Progress

    import cli.main as main
    with Progress(console=main.console, transient=True) as progress:
        progress.console.print("while it runs")
    main.console.print("[b]after[/b]")
    out = capsys.readouterr().out
    assert "while it runs" in out and "after" in out and "[b]" not in out


def test_every_module_imports_first():
    """Each module of the product imports in a fresh interpreter as the first of its package (the
    lazy package __init__s mean any module may be the first: `disburse bars` once found
    models.clawback and models.application importing each other half-way)."""
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    modules = sorted(".".join(p.relative_to(root).with_suffix("").parts)
                     for pkg in ("models", "cli", "activities", "workflows", "calc", "console", "documents",
                                 "notifications")
                     for p in (root / pkg).glob("*.py") if p.name != "__init__.py")

    def first(module: str) -> tuple[str, str]:
        r = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=root, capture_output=True, text=True,
                           timeout=120)
        return module, (r.stderr.strip().splitlines() or [""])[-1] if r.returncode else ""

    with ThreadPoolExecutor(4) as pool:
        failed = [f"{m}: {err}" for m, err in pool.map(first, modules) if err]
    assert len(modules) > 40 and failed == [], failed
