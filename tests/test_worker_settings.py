"""The worker's concurrency comes from the environment (worker.Concurrency): today's numbers by
default, every variable checked, and the thread pool never smaller than the activity slots."""
from __future__ import annotations

import pytest

from worker import Concurrency, ConcurrencyError


def test_defaults_are_the_numbers_the_worker_always_had():
    c = Concurrency.from_env({})
    assert (c.workflow_tasks, c.activities, c.activity_threads, c.cached_workflows) == (100, 16, 16, 1000)


def test_each_variable_is_read_and_threads_follow_the_activity_slots():
    c = Concurrency.from_env({"DISBURSE_MAX_CONCURRENT_WORKFLOW_TASKS": "40",
                              "DISBURSE_MAX_CONCURRENT_ACTIVITIES": " 32 ",
                              "DISBURSE_MAX_CACHED_WORKFLOWS": "0"})
    assert (c.workflow_tasks, c.activities, c.activity_threads, c.cached_workflows) == (40, 32, 32, 0)
    c = Concurrency.from_env({"DISBURSE_MAX_CONCURRENT_ACTIVITIES": "8", "DISBURSE_ACTIVITY_THREADS": "12"})
    assert (c.activities, c.activity_threads) == (8, 12)


@pytest.mark.parametrize("env, named", [
    ({"DISBURSE_MAX_CONCURRENT_ACTIVITIES": "0"}, "DISBURSE_MAX_CONCURRENT_ACTIVITIES"),
    ({"DISBURSE_MAX_CONCURRENT_ACTIVITIES": "-4"}, "DISBURSE_MAX_CONCURRENT_ACTIVITIES"),
    ({"DISBURSE_MAX_CONCURRENT_ACTIVITIES": "1e3"}, "DISBURSE_MAX_CONCURRENT_ACTIVITIES"),
    ({"DISBURSE_MAX_CONCURRENT_ACTIVITIES": "١٦"}, "DISBURSE_MAX_CONCURRENT_ACTIVITIES"),   # not ASCII
    ({"DISBURSE_MAX_CONCURRENT_WORKFLOW_TASKS": "lots"}, "DISBURSE_MAX_CONCURRENT_WORKFLOW_TASKS"),
    ({"DISBURSE_MAX_CONCURRENT_WORKFLOW_TASKS": "1"}, "DISBURSE_MAX_CONCURRENT_WORKFLOW_TASKS"),  # sticky cache needs 2
    ({"DISBURSE_MAX_CACHED_WORKFLOWS": "many"}, "DISBURSE_MAX_CACHED_WORKFLOWS"),
    ({"DISBURSE_ACTIVITY_THREADS": "999999"}, "DISBURSE_ACTIVITY_THREADS"),
    ({"DISBURSE_MAX_CONCURRENT_ACTIVITIES": "32", "DISBURSE_ACTIVITY_THREADS": "16"}, "DISBURSE_ACTIVITY_THREADS"),
])
def test_an_unusable_value_is_refused_naming_the_variable(env, named):
    with pytest.raises(ConcurrencyError, match=named) as e:
        Concurrency.from_env(env)
    assert e.value.exit_code == 78


def test_one_workflow_task_slot_is_allowed_without_the_sticky_cache():
    c = Concurrency.from_env({"DISBURSE_MAX_CONCURRENT_WORKFLOW_TASKS": "1", "DISBURSE_MAX_CACHED_WORKFLOWS": "0"})
    assert (c.workflow_tasks, c.cached_workflows) == (1, 0)


def test_the_worker_is_built_with_them(monkeypatch):
    """build_worker hands the numbers to the SDK's Worker (its config is what the SDK uses)."""
    from concurrent.futures import ThreadPoolExecutor
    from unittest import mock

    import worker

    with mock.patch.object(worker, "Worker") as W, ThreadPoolExecutor(4) as ex:
        worker.build_worker(object(), executor=ex, concurrency=Concurrency(
            workflow_tasks=7, activities=3, activity_threads=4, cached_workflows=50))
    kw = W.call_args.kwargs
    assert (kw["max_concurrent_workflow_tasks"], kw["max_concurrent_activities"], kw["max_cached_workflows"]) \
        == (7, 3, 50)
    monkeypatch.setenv("DISBURSE_MAX_CONCURRENT_ACTIVITIES", "5")
    with mock.patch.object(worker, "Worker") as W, ThreadPoolExecutor(5) as ex:
        worker.build_worker(object(), executor=ex)
    assert W.call_args.kwargs["max_concurrent_activities"] == 5


def test_disburse_worker_refuses_a_bad_setting_before_connecting(tmp_path):
    """Exit 78 (EX_CONFIG), one line naming the variable; nothing listens on the address given,
    so reaching the server first would have said something else."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "DISBURSE_ACTIVITY_THREADS": "4", "DISBURSE_MAX_CONCURRENT_ACTIVITIES": "8",
           "TEMPORAL_ADDRESS": "127.0.0.1:1", "DISBURSE_DB_URL": f"sqlite:///{tmp_path / 'd.db'}"}
    r = subprocess.run([str(Path(sys.executable).parent / "disburse"), "worker"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 78, r
    assert r.stderr.startswith("error: DISBURSE_ACTIVITY_THREADS=4") and len(r.stderr.splitlines()) == 1


def test_an_unusable_publicity_day_setting_stops_the_worker_before_connecting(tmp_path):
    """DISBURSE_PUBLICITY_DAY_SECONDS (demos and tests only, models/publicity.py): exit 78, one line."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "DISBURSE_PUBLICITY_DAY_SECONDS": "-5", "TEMPORAL_ADDRESS": "127.0.0.1:1",
           "DISBURSE_DB_URL": f"sqlite:///{tmp_path / 'd.db'}"}
    r = subprocess.run([str(Path(sys.executable).parent / "disburse"), "worker"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 78, r
    assert r.stderr.startswith("error: DISBURSE_PUBLICITY_DAY_SECONDS='-5'") and len(r.stderr.splitlines()) == 1


def test_the_publicity_day_setting_is_read_as_whole_seconds():
    import pytest

    from models.publicity import PublicitySettingError, day_seconds_setting
    assert day_seconds_setting({}) is None and day_seconds_setting({"DISBURSE_PUBLICITY_DAY_SECONDS": " "}) is None
    assert day_seconds_setting({"DISBURSE_PUBLICITY_DAY_SECONDS": "60"}) == 60
    for bad in ("0", "1.5", "86401", "６０", "1e3"):
        with pytest.raises(PublicitySettingError, match="DISBURSE_PUBLICITY_DAY_SECONDS"):
            day_seconds_setting({"DISBURSE_PUBLICITY_DAY_SECONDS": bad})
