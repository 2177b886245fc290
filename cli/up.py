"""`disburse up` and `disburse worker`: the long-running commands.

`up` = SQLite DB (var/disburse.db) + Temporal dev server (var/temporal.db, Web UI) + a worker,
until Ctrl-C. A second run reuses both files, so workflows started before carry on; if a server
already listens on the port it is reused instead of starting another.

The worker is a child process (`disburse worker`) that `up` supervises (deploy/supervisor.py): if
it dies — kill -9, a crash in native code — it is started again after a backoff (1 s, doubling up
to 30 s), and each restart is logged. What it was doing is not lost: Temporal hands its workflow
tasks and activities to the new worker once their timeouts pass.
"""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from cli import backend
from cli.errors import BAD_INPUT, CliError, UNREACHABLE

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# The demo batch: a few applications across several clauses and cities (examples/*.json).
DEMO_APPLICATIONS = (
    "hz2025-04-tech-insurance-premium",
    "hz2025-01-tech-loan-interest",
    "hz2025-06-first-set-equipment-insurance",
    "hz2025-09-vc-early-stage-reward",
    "hu2023-04-ip-insurance-premium",
    "zz2025-2.2-tech-insurance-premium",
    "py2024-05-use-first-transfer-insurance",
)


def _exit_hard(code: int) -> None:
    """Leave without running interpreter finalizers: temporalio 1.35's core runtime can crash the
    process at exit after a clean shutdown (see scripts/test.sh)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _stop_on_signals(loop, on_first=None) -> asyncio.Event:
    """An event set by the first SIGINT/SIGTERM (after `on_first()`); a second one leaves at once."""
    stop = asyncio.Event()

    def on_signal() -> None:
        if stop.is_set():
            print("\ndisburse: second interrupt, leaving now", file=sys.stderr)
            _exit_hard(130)
        if on_first is not None:
            on_first()
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    return stop


async def _serve(client, console: Console, ready_message=None, after_start=None) -> None:
    """Run the worker until SIGINT/SIGTERM, then shut it down gracefully (a second Ctrl-C
    leaves at once)."""
    loop = asyncio.get_running_loop()
    stop = _stop_on_signals(loop)
    task = asyncio.create_task(backend.run_worker(client))
    try:
        # give the worker a moment to fail fast (bad registration, ...)
        done, _ = await asyncio.wait({task}, timeout=0.5)
        if done:
            task.result()
            return
        if after_start is not None:
            await after_start()
        if ready_message is not None:
            ready_message()
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            stopper.cancel()
            task.result()   # the worker ended on its own: surface why
            return
        console.print("\ndisburse: stopping the worker…")
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=15)


def _ready(console: Console, ui: str, http_address: str | None = None) -> None:
    console.print(f"disburse: worker         running on task queue {backend.task_queue()}")
    console.print(f"disburse: Web UI         {ui}")
    if console_port():
        console.print(f"disburse: console        http://localhost:{console_port()}  (reviewers, operators, finance)")
    console.print("disburse: submit         .venv/bin/disburse submit "
                  "examples/hz2025-04-tech-insurance-premium.json")
    console.print("disburse: list / status  .venv/bin/disburse list · .venv/bin/disburse status APP_ID")
    if http_address and not _default_pair(http_address):
        console.print(f"disburse: faster status export TEMPORAL_HTTP_ADDRESS={http_address}  "
                      "(`disburse status` asks the HTTP API, without loading the Temporal SDK)")
    console.print("disburse: ready — Ctrl-C stops (state is kept in var/)")


def _default_pair(http_address: str) -> bool:
    """Whether a shell with TEMPORAL_ADDRESS unset (localhost:7233) finds this HTTP API by itself:
    it asks the address workflows/http_status.default_address pairs with that one (localhost:7243),
    where a loopback name (http_status._LOOPBACK) is as good as localhost; nothing to export then.
    Not ::1 (as before): `up` binds 127.0.0.1, and a shell's localhost need not reach ::1 (an
    IPv4-only container), so a server there still gets the export line."""
    from workflows.http_status import _LOOPBACK, DEFAULT_GRPC_PORT, default_address
    _, _, asked_port = default_address(f"localhost:{DEFAULT_GRPC_PORT}").rpartition(":")
    host, _, port = http_address.rpartition(":")
    return port == asked_port and host in _LOOPBACK and host != "::1"


def _dev_server_env(server) -> dict[str, str]:
    """The worker child's environment under `up`: the dev server we talk to, in plaintext, whatever
    TLS, API key or profile the shell has for other clusters (as `up`'s own client does); its HTTP
    API when `up` started it with one (TEMPORAL_HTTP_ADDRESS), else none (a reused server's HTTP
    port is not known)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TEMPORAL_TLS", "TEMPORAL_GRPC_META_"))
           and k not in ("TEMPORAL_API_KEY", "TEMPORAL_PROFILE", "TEMPORAL_HTTP_ADDRESS")}
    env.update(TEMPORAL_ADDRESS=server.address, TEMPORAL_NAMESPACE=server.namespace, TEMPORAL_CONFIG_FILE=os.devnull)
    if server.http_address:
        env["TEMPORAL_HTTP_ADDRESS"] = server.http_address
    return env


def console_port() -> int:
    """DISBURSE_CONSOLE_PORT (default 8080; 0: no console)."""
    return int(os.environ.get("DISBURSE_CONSOLE_PORT", "8080") or 0)


def ui_codec_endpoint() -> str | None:
    """The codec endpoint the dev server's Web UI is given (--ui-codec-endpoint):
    DISBURSE_UI_CODEC_ENDPOINT if set ("off": none), else the console's /codec when payloads are
    encrypted (DISBURSE_PAYLOAD_KEYS) and the console runs; else none."""
    explicit = os.environ.get("DISBURSE_UI_CODEC_ENDPOINT", "").strip()
    if explicit:
        return None if explicit.lower() == "off" else explicit
    port = console_port()
    if os.environ.get("DISBURSE_PAYLOAD_KEYS", "").strip() and port:
        return f"http://localhost:{port}/codec"
    return None


async def _supervise_worker(client, console: Console, *, demo: bool, ready_message,
                            env: dict[str, str] | None = None, ui_url: str | None = None) -> None:
    """Run `disburse worker` as a supervised child until SIGINT/SIGTERM (a second Ctrl-C leaves at
    once), loading the demo batch once it runs."""
    from deploy.supervisor import EX_CONFIG, Supervisor, worker_command

    loop = asyncio.get_running_loop()
    stop = _stop_on_signals(loop, lambda: console.print("\ndisburse: stopping the worker…"))
    supervisor = Supervisor(worker_command(), name="worker        ", env=os.environ if env is None else env,
                            log=lambda m: console.print(f"disburse: {m}"), stdout=subprocess.DEVNULL)
    task = asyncio.create_task(supervisor.run(stop))
    web = None
    if console_port():                        # the web console, supervised the same way
        web_env = {**(os.environ if env is None else env), "DISBURSE_TEMPORAL_UI": ui_url or ""}
        web_sup = Supervisor([sys.executable, "-m", "cli.main", "console", "--port", str(console_port())],
                             name="console       ", env=web_env, log=lambda m: console.print(f"disburse: {m}"),
                             stdout=subprocess.DEVNULL)
        web = asyncio.create_task(web_sup.run(stop))
    try:
        await asyncio.wait({task, asyncio.ensure_future(supervisor.started.wait())},
                           return_when=asyncio.FIRST_COMPLETED)
        if demo and not task.done():          # stopped meanwhile: drop the rest of the demo
            loading = asyncio.create_task(_load_demo(client, console))
            await asyncio.wait({loading, task}, return_when=asyncio.FIRST_COMPLETED)
            if not loading.done():
                loading.cancel()
            elif loading.exception() is not None:
                raise loading.exception()
        if not task.done():
            ready_message()
        if await task == EX_CONFIG:
            raise CliError("the worker cannot start with these settings (see the error above)", BAD_INPUT)
    finally:
        if not task.done():
            stop.set()
            await asyncio.wait({task}, timeout=30)
        if web is not None and not web.done():
            stop.set()
            await asyncio.wait({web}, timeout=15)


def run_up(*, demo: bool, port: int, ui_port: int, db_file: Path, console: Console,
           http_port: int | None = None) -> None:
    from deploy.devserver import DevServer, DevServerError

    backend.check_worker_settings()          # a bad DISBURSE_* concurrency setting: say so before starting anything
    Path("var").mkdir(exist_ok=True)
    db_url = backend.init_db()
    keys = backend.ensure_local_keys()       # the signing key pair the CLI, the console and the worker share
    server = DevServer(port=port, ui_port=ui_port, db_file=db_file, host="127.0.0.1",
                       codec_endpoint=ui_codec_endpoint(), http_port=http_port)
    if server.ui_url:                        # the console's codec endpoint answers CORS for this Web UI
        os.environ.setdefault("DISBURSE_WEB_UI_ORIGIN", server.ui_url)
    started = server.start()
    address = server.address
    os.environ["TEMPORAL_ADDRESS"] = address
    if server.http_address:
        os.environ["TEMPORAL_HTTP_ADDRESS"] = server.http_address
    else:                                    # a reused server: its HTTP API, if any, is not ours to name
        os.environ.pop("TEMPORAL_HTTP_ADDRESS", None)
    code = 0
    try:
        console.print(f"disburse: database       {db_url}")
        console.print(f"disburse: signing keys   {keys}")
        if started:
            http = f", HTTP API on {server.http_address}" if server.http_address else ""
            console.print(f"disburse: temporal       started dev server on {address}{http} "
                          f"(state in {db_file}, log in {server.log_file})")
        else:
            console.print(f"disburse: temporal       reusing the server already on {address}")

        async def main() -> None:
            try:
                client = await server.connect(timeout=60)
            except DevServerError as e:
                raise CliError(str(e), UNREACHABLE) from None
            ui = server.ui_url if started else f"http://localhost:{ui_port}"
            await _supervise_worker(client, console, demo=demo, env=_dev_server_env(server), ui_url=ui,
                                    ready_message=lambda: _ready(console, ui, server.http_address))

        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    except CliError as e:
        print(f"error: {e}", file=sys.stderr)
        code = e.code
    except Exception as e:  # noqa: BLE001 - one line, then stop the server we started
        from cli.errors import describe
        message, code = describe(e)
        print(f"error: {message}", file=sys.stderr)
    finally:
        if started:
            console.print("disburse: stopping the Temporal dev server…")
            server.stop()
    console.print("disburse: stopped")
    _exit_hard(code)


def run_worker_only(*, console: Console) -> None:
    code = 0

    async def main() -> None:
        client = await backend.connect_worker()
        console.print(f"disburse: worker on {backend.task_queue()} against {backend.connection_line()} — Ctrl-C stops")
        await _serve(client, console)

    try:
        backend.check_worker_settings()
        backend.init_db()
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    except Exception as e:  # noqa: BLE001
        from cli.errors import describe
        message, code = describe(e)
        code = getattr(e, "exit_code", code)      # 78 (EX_CONFIG) for a bad setting: not worth a restart
        print(f"error: {message}", file=sys.stderr)
    _exit_hard(code)


async def _load_demo(client, console: Console) -> None:
    """Registry, reviewers, blacklist and a few applications from examples/. Idempotent: imports
    replace rows, and an application submitted on an earlier run is reported, not an error."""
    n = backend.import_enterprises(EXAMPLES / "enterprises.csv")
    r = backend.import_reviewers(EXAMPLES / "reviewers.csv")
    b = backend.import_blacklist(EXAMPLES / "blacklist.csv")
    console.print(f"disburse: demo           {n} enterprises, {r} reviewers, {b} blacklist entries loaded from examples/")
    users = backend.demo_users(EXAMPLES / "reviewers.csv")
    console.print(f"disburse: demo           {users} demo users (password {backend.DEMO_PASSWORD!r}), logged in on "
                  "this machine: op-demo and every reviewer of examples/reviewers.csv")
    for clause in DEMO_APPLICATIONS:
        path = EXAMPLES / f"{clause}.json"
        try:
            inp = backend.application_input(backend.load_json(path), source=str(path))   # operator op-demo
            app_id = await backend.submit(client, inp)
            console.print(f"disburse: demo           submitted {app_id}")
        except Exception as e:  # noqa: BLE001
            if backend.is_duplicate(e):
                console.print(f"disburse: demo           {backend.duplicate_id(e, path)} already submitted (kept)")
            else:
                from cli.errors import describe
                console.print(f"disburse: demo           {path.name}: {describe(e)[0]}")
