"""The simulation (tests/simulation.py) in CI: a few seeds, each on a fresh time-skipping server
and database, with the real worker and activities; the invariants are checked at checkpoints and
at the end of every run. A failure names the seed and the step; replay it with

    DISBURSE_SIM_SEED=1234 .venv/bin/python -m pytest tests/test_simulation.py
    .venv/bin/python scripts/simulate.py --seed 1234 --steps 200 [--restarts]

(DISBURSE_SIM_STEPS overrides the number of steps.) Each run gets a server of its own: a run moves
the server's clock by up to a year and a half, which the other tests on the session's server
must not inherit.
"""
from __future__ import annotations

import os

import pytest

from tests.simulation import Config, Simulation

# (seed, steps, worker restarts): restarts need a worker without a workflow cache, which replays
# every history on every task and is several times slower, hence fewer steps.
RUNS = [(101, 140, False), (202, 140, False), (303, 140, False), (404, 45, True)]


def _runs():
    seed = os.environ.get("DISBURSE_SIM_SEED")
    steps = os.environ.get("DISBURSE_SIM_STEPS")
    runs = [(int(seed), n, restarts) for _, n, restarts in RUNS[-2:]] if seed else RUNS
    return [pytest.param(s, int(steps) if steps else n, r, id=f"seed{s}-{'restarts' if r else 'steps'}{n}")
            for s, n, r in runs]


@pytest.fixture()
def sim_harness():
    """A time-skipping server and worker of this run's own (see the module docstring)."""
    from tests.temporal_env import Harness
    h = Harness()
    h.start()
    yield h
    h.stop()


@pytest.mark.parametrize("seed,steps,restarts", _runs())
def test_simulation(sim_harness, db, seed, steps, restarts):
    report = sim_harness.run(Simulation(sim_harness, seed, Config(steps=steps, restarts=restarts)).run())
    print(report.summary())
    assert report.violation is None
    assert report.applications > 0 and sum(c["ok"] for c in report.ops.values()) > steps // 4, report.summary()
