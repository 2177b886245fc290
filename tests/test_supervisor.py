"""deploy/supervisor.py: the restart loop `disburse up` runs its worker in, on stand-in children
(small Python processes), fast."""
from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from deploy.supervisor import EX_CONFIG, Supervisor, describe_exit

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


def _alive(pid: int) -> bool:
    try:
        state = re.search(r"^State:\s+(\S)", Path(f"/proc/{pid}/status").read_text(), re.M).group(1)
    except FileNotFoundError:
        return False
    return state != "Z"


async def _until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition never met"
        await asyncio.sleep(0.02)


def test_a_killed_child_is_restarted_and_logged_and_stop_ends_it_for_good():
    log: list[str] = []

    async def go():
        sup = Supervisor(SLEEPER, name="worker", log=log.append, backoff_initial=0.1)
        stop = asyncio.Event()
        task = asyncio.create_task(sup.run(stop))
        await sup.started.wait()
        first = sup.pid
        assert os.getsid(first) == first, "the child has a session of its own (Ctrl-C reaches only us)"
        os.kill(first, signal.SIGKILL)
        await _until(lambda: sup.pid not in (None, first))
        second = sup.pid
        stop.set()
        assert await asyncio.wait_for(task, 10) == 0
        return first, second

    first, second = asyncio.run(go())
    assert not _alive(first) and not _alive(second)
    assert log[0] == f"worker started (pid {first})"
    assert re.fullmatch(r"worker exited unexpectedly \(killed by SIGKILL\) after \d+\.\d s; restart 1 in 0\.1 s",
                        log[1]), log
    assert log[2] == f"worker restarted (pid {second})"
    assert len(log) == 3, "stopping is not an unexpected exit"


def test_backoff_doubles_up_to_its_ceiling_and_a_clean_exit_is_restarted_too():
    log: list[str] = []

    async def go():
        sup = Supervisor([sys.executable, "-c", "pass"], log=log.append, backoff_initial=0.1,
                         backoff_max=0.4)
        stop = asyncio.Event()
        task = asyncio.create_task(sup.run(stop))
        await _until(lambda: sup.restarts >= 5)
        stop.set()
        assert await asyncio.wait_for(task, 10) == 0

    asyncio.run(go())
    delays = [m.group(1) for m in (re.search(r"exit status 0\) .* in (\S+) s", x) for x in log) if m]
    assert delays[:5] == ["0.1", "0.2", "0.4", "0.4", "0.4"], log


def test_a_configuration_error_is_not_restarted():
    log: list[str] = []

    async def go():
        sup = Supervisor([sys.executable, "-c", f"raise SystemExit({EX_CONFIG})"], log=log.append,
                         backoff_initial=0.01)
        return await asyncio.wait_for(sup.run(asyncio.Event()), 20)

    assert asyncio.run(go()) == EX_CONFIG
    assert len(log) == 2 and "not restarting" in log[1], log


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period():
    log: list[str] = []
    stubborn = [sys.executable, "-c",
                "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(600)"]

    async def go():
        sup = Supervisor(stubborn, log=log.append, stop_timeout=0.5, stdout=subprocess.PIPE)
        stop = asyncio.Event()
        task = asyncio.create_task(sup.run(stop))
        await sup.started.wait()
        await sup.proc.stdout.readline()            # its SIGTERM handler is in place
        pid = sup.pid
        stop.set()
        t0 = time.monotonic()
        assert await asyncio.wait_for(task, 10) == 0
        return pid, time.monotonic() - t0

    pid, took = asyncio.run(go())
    assert not _alive(pid) and 0.4 < took < 5
    assert "killing it" in log[-1]


def test_the_child_does_not_outlive_a_supervisor_killed_with_sigkill(tmp_path):
    """PR_SET_PDEATHSIG: no orphaned worker keeps polling after `disburse up` is killed -9."""
    script = tmp_path / "sup.py"
    script.write_text(
        "import asyncio, sys\n"
        "from deploy.supervisor import Supervisor\n"
        "async def main():\n"
        f"    sup = Supervisor({SLEEPER!r}, log=lambda m: print(m, flush=True))\n"
        "    await sup.run(asyncio.Event())\n"
        "asyncio.run(main())\n")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parent.parent)
    try:
        line = proc.stdout.readline()
        child = int(re.search(r"pid (\d+)", line).group(1))
        assert _alive(child)
        proc.kill()
        proc.wait(5)
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child), "the child outlived its supervisor"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_exits_are_described_by_signal_name_or_status():
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert describe_exit(-signal.SIGBUS) == "killed by SIGBUS"
    assert describe_exit(3) == "exit status 3"
