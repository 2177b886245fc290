"""For tests that run real processes (dev server, worker, the `disburse` command): the signing
service's key pair in the test's directory (the session's key, so in-process client calls and the
processes agree), a CLI config directory, and people registered and logged in."""
from __future__ import annotations

import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
DISBURSE = str(Path(sys.executable).parent / "disburse")
PASSWORD = "test-password-1"


def service_env(tmp: Path) -> dict[str, str]:
    """Environment for the worker and the CLI: keys (the test session's), CLI config dir."""
    from models import credentials as creds
    keys = tmp / "keys"
    signer = creds.signer()
    private = signer.save(keys)
    return {"DISBURSE_SIGNING_KEY": str(private), "DISBURSE_VERIFY_KEYS": str(keys),
            "DISBURSE_CONFIG_DIR": str(tmp / "config"), "DISBURSE_CONSOLE_PORT": "0",
            "DISBURSE_CONSOLE_SECRET": "test-console-secret",
            # 公示 notice days of one second on these real servers (models/publicity.py): demos and tests only
            "DISBURSE_PUBLICITY_DAY_SECONDS": "1"}


def people(env: dict, cwd, *users: tuple[str, str, str | None]) -> None:
    """Register (id, role, bureau) users with the CLI and log each in on this 'machine'."""
    for user_id, role, bureau in users:
        args = [DISBURSE, "users", "add", user_id, "--role", role, "--password-stdin"]
        if bureau:
            args += ["--bureau", bureau]
        for cmd in (args, [DISBURSE, "login", user_id, "--password-stdin"]):
            r = subprocess.run(cmd, cwd=cwd, env=env, input=PASSWORD + "\n", capture_output=True, text=True,
                               timeout=60)
            assert r.returncode == 0, f"{' '.join(cmd[1:4])}: {r.stderr}"


TOUR = (("op-1", "operator", None), ("kj-wang", "reviewer", "杭州市科技局"), ("cz-li", "finance", "杭州市财政局"))


def stop_process(proc: subprocess.Popen, timeout: float = 15) -> None:
    """Stop a process a test started: `disburse` with SIGINT (its graceful shutdown), anything else
    with SIGTERM; killed if it is still there after `timeout` seconds."""
    import signal
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT if proc.args[0] == DISBURSE else signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@dataclass
class DevServerRun:
    """What `devserver` yields."""
    port: int
    ui_port: int
    proc: subprocess.Popen
    env: dict[str, str] | None          # the server's environment, with TEMPORAL_ADDRESS (None: inherited)
    http_port: int | None = None        # its HTTP API's (http=True), named in env's TEMPORAL_HTTP_ADDRESS

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@contextmanager
def devserver(tmp_path: Path, env: dict[str, str] | None = None,
              ui_port: int | None = None, http: bool = False) -> Iterator[DevServerRun]:
    """A real Temporal dev server (`python -m deploy.devserver`) on free ports, its state in
    tmp_path/temporal.db, once it says "started"; stopped on leaving. `env`: the server's environment
    (TEMPORAL_ADDRESS added; yielded as `.env` for the processes that talk to it); None: it inherits
    ours. `ui_port`: the Web UI's, when the caller needs it beforehand (a free one otherwise).
    `http`: its HTTP API on a free port too, in env's TEMPORAL_HTTP_ADDRESS (as `disburse up` gives it)."""
    from deploy.devserver import free_port

    port, ui_port = free_port(), ui_port or free_port()
    http_port = free_port() if http else None
    if env is not None:
        env = {**env, "TEMPORAL_ADDRESS": f"127.0.0.1:{port}"}
        if http_port:
            env["TEMPORAL_HTTP_ADDRESS"] = f"127.0.0.1:{http_port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "deploy.devserver", "--port", str(port), "--ui-port", str(ui_port),
         *(["--http-port", str(http_port)] if http_port else []), "--db-file", str(tmp_path / "temporal.db")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()          # printed once the server answers
        assert "started" in line, (line, server.stderr.read() if server.poll() is not None else "")
        yield DevServerRun(port, ui_port, server, env, http_port)
    finally:
        stop_process(server)
