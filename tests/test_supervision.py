"""`disburse up` supervises its worker: the worker runs as a child process, and one that dies
(kill -9 here; a SIGBUS when the database file became unwritable in real life) is started again,
with a log line for each restart, while the dev server and everything submitted carry on. Ctrl-C
still stops it all.

Against a REAL dev server on free ports with a temporary database, driven through the CLI.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.test_devserver import DISBURSE, ROOT, disburse

from tests.cli_env import TOUR, people, service_env, stop_process

pytestmark = pytest.mark.devserver

EXAMPLE = ROOT / "examples" / "hz2025-04-tech-insurance-premium.json"


class Lines:
    """Everything a process prints on stdout, read in a thread so it never blocks on a full pipe."""

    def __init__(self, proc: subprocess.Popen):
        self.proc, self.lines, self._lock = proc, [], threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    def snapshot(self) -> list[str]:
        with self._lock:
            return list(self.lines)

    def wait_for(self, pattern: str, timeout: float, after: int = 0) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.snapshot()[after:]:
                m = re.search(pattern, line)
                if m:
                    return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"no line matching {pattern!r} within {timeout} s:\n" + "\n".join(self.snapshot()))


def ppid(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return None
    return int(re.search(r"^PPid:\s+(\d+)", status, re.M).group(1))


def alive(pid: int) -> bool:
    try:
        state = re.search(r"^State:\s+(\S)", Path(f"/proc/{pid}/status").read_text(), re.M).group(1)
    except FileNotFoundError:
        return False
    return state != "Z"


def test_up_restarts_a_worker_killed_with_sigkill_and_ctrl_c_still_stops_everything(tmp_path):
    from deploy.devserver import free_port

    port, ui_port = free_port(), free_port()
    env = {**os.environ, "TEMPORAL_ADDRESS": f"127.0.0.1:{port}",
           "DISBURSE_DB_URL": f"sqlite:///{tmp_path / 'disburse.db'}", "PYTHONUNBUFFERED": "1",
           **service_env(tmp_path)}
    env.pop("DISBURSE_DEBUG", None)
    up = subprocess.Popen([DISBURSE, "up", "--port", str(port), "--ui-port", str(ui_port), "--http-port", str(free_port()),
                           "--db-file", str(tmp_path / "temporal.db")], cwd=tmp_path, env=env,
                          stdout=subprocess.PIPE, stderr=open(tmp_path / "up.err", "w"), text=True)
    out = Lines(up)
    try:
        out.wait_for(r"^disburse: ready", 90)
        first = int(out.wait_for(r"worker .*started \(pid (\d+)\)", 5).group(1))
        assert ppid(first) == up.pid and alive(first), "the worker is a child process of disburse up"

        seen = len(out.snapshot())
        t_kill = time.monotonic()
        os.kill(first, signal.SIGKILL)
        died = out.wait_for(r"worker .*exited unexpectedly \((.*?)\).*restart", 15, after=seen)
        assert "SIGKILL" in died.group(1)
        second = int(out.wait_for(r"worker .*restarted \(pid (\d+)\)", 30, after=seen).group(1))
        restart_s = time.monotonic() - t_kill
        assert second != first and ppid(second) == up.pid and alive(second)
        assert not alive(first)

        # an application submitted after the restart is paid by the new worker
        people(env, tmp_path, *TOUR)
        disburse(env, tmp_path, "enterprises", "import", ROOT / "examples" / "enterprises.csv")
        app_id = disburse(env, tmp_path, "submit", EXAMPLE, "--operator", "op-1").stdout.split("submitted", 1)[1].split()[0]
        disburse(env, tmp_path, "approve", app_id, "--reviewer", "kj-wang")
        disburse(env, tmp_path, "approve", app_id, "--reviewer", "cz-li")
        deadline, st = time.monotonic() + 60, {}
        while time.monotonic() < deadline:
            st = json.loads(disburse(env, tmp_path, "status", app_id, "--json").stdout)
            if st["status"] == "completed":
                break
            time.sleep(0.5)
        assert st["status"] == "completed" and st["awarded"] == "400000.00", st
        print(f"worker restarted {restart_s:.1f} s after kill -9; application completed "
              f"{time.monotonic() - t_kill:.1f} s after it")

        # Ctrl-C: the worker is stopped, not restarted, and so is the dev server
        seen = len(out.snapshot())
        up.send_signal(signal.SIGINT)
        up.wait(timeout=40)
        after = out.snapshot()[seen:]
        assert not any("restart" in x for x in after), after
        assert any(x.startswith("disburse: stopped") for x in after), after
        assert not alive(second)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _port_open(port):
            time.sleep(0.2)
        assert not _port_open(port), "the dev server was left running"
    finally:
        stop_process(up)


def _port_open(port: int) -> bool:
    from deploy.devserver import port_open
    return port_open("127.0.0.1", port)
