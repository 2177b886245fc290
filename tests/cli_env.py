"""For tests that run real processes (dev server, worker, the `disburse` command): the signing
service's key pair in the test's directory (the session's key, so in-process client calls and the
processes agree), a CLI config directory, and people registered and logged in."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
