"""The simulation (tests/simulation.py) in CI: eighteen seeds, 2,330 steps in all, each on a
fresh time-skipping server and database, with the real worker and activities; the invariants
are checked at checkpoints and at the end of every run. A failure names the seed and the step; replay it with

    DISBURSE_SIM_SEED=1234 .venv/bin/python -m pytest tests/test_simulation.py
    .venv/bin/python scripts/simulate.py --seed 1234 --steps 200 [--restarts]

(DISBURSE_SIM_STEPS overrides the number of steps.) Each run gets a server and a database of its
own (tests/simulation.py run_seed): a run moves the server's clock by up to a year and a half.
"""
from __future__ import annotations

import os

import pytest

from tests.simulation import ClockStalled, Config, run_seed

# (seed, steps, worker restarts): fifteen seeds of 140 steps and two of 45 with worker restarts,
# 2,190 steps in all, each run on a server of its own. Many moderate runs rather than a few long
# ones: the time-skipping test server (temporal-test-server 1.40) now and then stops skipping
# time altogether (its clock then runs at wall-clock speed, so a skip of a day never returns)
# with no workflow task or activity pending, the likelier the longer a run and the busier the
# machine. The simulation reports that as ClockStalled, and such a seed runs again once on a
# fresh server; an invariant broken is never run again. scripts/simulate.py runs longer seeds.
# Restarts need a worker without a workflow cache, which replays every history on every task and
# is several times slower, hence fewer steps.
# Seed 305 (140 steps) is a regression: a revocation 0 ms after the last approval, while the
# credit check and the binding calculation ran as local activities, made the server refuse the task
# that completed the workflow; the refused attempt had mirrored `refused`, the attempt run again took
# the revocation first, and its write ranked below the refused one's (seen failing before the
# mirror's versions followed the workflow task's time: workflows/application.py _mirror_version).
RUNS = ([(seed, 140, False) for seed in range(101, 1601, 100)] + [(305, 140, False)]
        + [(404, 45, True), (4004, 45, True)])


def _runs():
    seed = os.environ.get("DISBURSE_SIM_SEED")
    steps = os.environ.get("DISBURSE_SIM_STEPS")
    runs = [(int(seed), 140, False), (int(seed), 45, True)] if seed else RUNS
    return [pytest.param(s, int(steps) if steps else n, r, id=f"seed{s}-{'restarts' if r else 'steps'}{n}")
            for s, n, r in runs]


@pytest.mark.parametrize("seed,steps,restarts", _runs())
def test_simulation(tmp_path, monkeypatch, seed, steps, restarts):
    monkeypatch.setenv("DISBURSE_DB_URL", "")          # run_seed points it at each run's database
    report = None
    for attempt in (1, 2):
        try:
            workdir = tmp_path / f"attempt{attempt}"
            workdir.mkdir()
            report = run_seed(seed, steps, workdir=workdir, config=Config(restarts=restarts))
            break
        except ClockStalled as e:
            # the test server's fault, not the system's (see ClockStalled): once more, fresh server
            if attempt == 2:
                raise
            print(f"attempt 1: {str(e).splitlines()[0]}; running the seed again on a fresh server")
    print(report.summary())
    assert report.violation is None
    assert report.applications > 0 and sum(c["ok"] for c in report.ops.values()) > steps // 4, report.summary()



def test_a_stalled_clock_is_told_apart(monkeypatch):
    """A clock skip that never returns while the server's clock runs at wall-clock speed and
    nothing is pending is ClockStalled (run again); one that hangs while work is pending stays an
    ordinary failure once the operation timeout passes."""
    import asyncio
    import time
    from datetime import datetime, timedelta, timezone

    from tests import simulation as sim
    monkeypatch.setattr(sim, "STALL_CHECK", 0.05)
    monkeypatch.setattr(sim, "STALL_LOOK", 0.05)

    class TestService:
        async def unlock_time_skipping_with_sleep(self, req, timeout=None):
            await asyncio.Event().wait()         # never returns

    class Client:
        test_service = TestService()

    class Env:                                   # a test server that has stopped skipping
        started = time.monotonic()
        client = Client()

        async def get_current_time(self):
            return datetime(2027, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=time.monotonic() - self.started)

    class H:
        env = Env()

    def simulation(pending: list[str]) -> sim.Simulation:
        s = sim.Simulation.__new__(sim.Simulation)
        s.h, s.cfg, s.seed, s.step, s.history, s.apps = H(), sim.Config(op_timeout=1.0), 1, 7, [], {}

        async def pending_work():
            return pending
        s.pending_work = pending_work
        return s

    with pytest.raises(ClockStalled, match="stopped skipping"):
        asyncio.run(simulation([])._skip(timedelta(days=1), "advance time by 1 day"))
    with pytest.raises(sim.SimulationFailure, match="no answer within") as failure:
        asyncio.run(simulation(["app-x"])._skip(timedelta(days=1), "advance time by 1 day"))
    assert not isinstance(failure.value, ClockStalled)


def test_invariant_six_tells_a_starved_task_from_a_failed_one(monkeypatch):
    """A workflow task failed by the SDK's deadlock detector (an activation that held its thread
    2 s of wall clock on a starved machine) is not a violation; any other failure is, and so is a
    benign UNHANDLED_COMMAND that repeats."""
    import asyncio

    from temporalio.api.enums.v1 import WorkflowTaskFailedCause
    from temporalio.api.history.v1 import History, HistoryEvent

    from tests import simulation as sim

    def failed(event_id: int, message: str, cause=WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE):
        ev = HistoryEvent(event_id=event_id)
        ev.workflow_task_failed_event_attributes.cause = cause
        ev.workflow_task_failed_event_attributes.failure.message = message
        return ev

    starved = "[TMPRL1101] Potential deadlock detected: workflow didn't yield within 2 second(s)."
    histories = {
        "starved": [History(events=[failed(4, starved), failed(7, starved)])],
        "broken": [History(events=[failed(4, "ZeroDivisionError: division by zero")])],
        "looping": [History(events=[failed(4, "", sim.BENIGN_TASK_FAILURE), failed(7, "", sim.BENIGN_TASK_FAILURE)])],
    }

    async def runs(client, wid):
        return histories[wid]

    monkeypatch.setattr(sim, "_runs", runs)
    problems = asyncio.run(sim.check_histories(None, list(histories)))
    assert [p.split(":")[1].strip() for p in problems] == ["broken run 1 event 4", "looping run 1 event 7"], problems
