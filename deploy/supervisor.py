"""Keep one child process running: start it, and when it exits without being asked to, start it
again after a backoff, saying so each time. What `disburse up` does with its worker (a worker that
dies — kill -9, a SIGBUS when the database file became unwritable, an out-of-memory kill — is
back within seconds); systemd (`Restart=always`), Docker (`restart: unless-stopped`) and
Kubernetes do the same for the topologies in deploy/.

    supervisor = Supervisor([sys.executable, "-m", "cli.main", "worker"], name="worker", log=print)
    stop = asyncio.Event()
    code = await supervisor.run(stop)      # until stop is set (then SIGTERM, SIGKILL after a grace)

Rules:
- any exit that was not asked for is restarted, a clean one too: a worker has no reason to end;
- except exit status 78 (EX_CONFIG, a setting that no restart will fix): it gives up and returns 78;
- backoff 1 s, 2 s, 4 s ... up to 30 s between restarts; back to 1 s once a child has run 30 s;
- the child has its own session (a Ctrl-C in the terminal reaches only us; we stop it, and it is
  not restarted), and on Linux it gets SIGTERM if we die, even by kill -9 (PR_SET_PDEATHSIG), so
  no orphaned worker keeps polling.
"""
from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from typing import Callable, Mapping, Sequence

EX_CONFIG = 78


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


def _load_prctl():
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()          # looked up here: the child, between fork and exec, imports nothing
_PR_SET_PDEATHSIG = 1
_SIGTERM = int(signal.SIGTERM)


def _die_with_parent() -> None:       # runs in the child between fork and exec
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, _SIGTERM, 0, 0, 0)


class Supervisor:
    def __init__(self, command: Sequence[str], *, name: str = "worker", env: Mapping[str, str] | None = None,
                 cwd: str | None = None, log: Callable[[str], None] = print, stdout=None, stderr=None,
                 backoff_initial: float = 1.0, backoff_max: float = 30.0, stable_after: float = 30.0,
                 stop_timeout: float = 20.0):
        self.command = list(command)
        self.name = name
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.log = log
        self.stdout, self.stderr = stdout, stderr
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self.stable_after = stable_after
        self.stop_timeout = stop_timeout
        self.proc: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self.started = asyncio.Event()      # set once the first child is running

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.returncode is None else None

    async def _spawn(self) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *self.command, env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL,
            stdout=self.stdout, stderr=self.stderr, start_new_session=True, preexec_fn=_die_with_parent)

    async def run(self, stop: asyncio.Event) -> int:
        """Supervise until `stop` is set (returns 0 once the child is stopped) or the child exits
        with EX_CONFIG (returns 78)."""
        delay = self.backoff_initial
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                self.proc = await self._spawn()
                began = time.monotonic()
                if self.restarts:
                    self.log(f"{self.name} restarted (pid {self.proc.pid})")
                else:
                    self.log(f"{self.name} started (pid {self.proc.pid})")
                self.started.set()
                exited = asyncio.ensure_future(self.proc.wait())
                await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if stop.is_set():
                    exited.cancel()
                    await self._terminate()
                    return 0
                ran = time.monotonic() - began
                code = self.proc.returncode
                if code == EX_CONFIG:
                    self.log(f"{self.name} exited with status {EX_CONFIG} (a configuration error, see "
                             f"above) after {ran:.1f} s; not restarting it")
                    return EX_CONFIG
                if ran >= self.stable_after:
                    delay = self.backoff_initial
                self.restarts += 1
                self.log(f"{self.name} exited unexpectedly ({describe_exit(code)}) after {ran:.1f} s; "
                         f"restart {self.restarts} in {delay:.1f} s")
                await asyncio.wait({stopping}, timeout=delay)
                delay = min(delay * 2, self.backoff_max)
            return 0
        finally:
            stopping.cancel()
            if self.proc is not None and self.proc.returncode is None:   # cancelled: leave nothing behind
                await self._terminate()

    async def _terminate(self) -> None:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        try:
            proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            await asyncio.wait_for(proc.wait(), self.stop_timeout)
        except asyncio.TimeoutError:
            self.log(f"{self.name} did not stop within {self.stop_timeout:.0f} s; killing it")
            try:
                proc.kill()
            except ProcessLookupError:
                pass
            await proc.wait()


def worker_command() -> list[str]:
    """`disburse worker`, with this interpreter (the same virtualenv)."""
    return [sys.executable, "-m", "cli.main", "worker"]
