"""The disburse worker: the Application workflow (and the first version's, for applications still
running under it) + activities on task queue "disburse".

    python worker.py            # or: disburse worker

Connection: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TLS / mTLS / API key from the environment or a
profile (workflows/connection.py). Metrics: DISBURSE_METRICS_PORT opens a Prometheus endpoint
(http://0.0.0.0:PORT/metrics) with the SDK's runtime metrics and the business metrics of
activities/metrics.py.

Concurrency comes from the environment (README "Production": sizing), read when the worker starts:

    DISBURSE_MAX_CONCURRENT_WORKFLOW_TASKS   workflow task slots        (default 100)
    DISBURSE_MAX_CONCURRENT_ACTIVITIES       activity slots             (default 16)
    DISBURSE_ACTIVITY_THREADS                activity thread pool size  (default: the activity slots)
    DISBURSE_MAX_CACHED_WORKFLOWS            sticky cache, in workflows (default 1000; 0 turns it off)

A value that is not a whole number in range, or fewer threads than activity slots, stops the worker
with ConcurrencyError before it polls (`disburse worker` exits 78, EX_CONFIG: no restart helps).

    DISBURSE_PUBLICITY_DAY_SECONDS   DEMOS AND TESTS ONLY: a 公示 notice day lasts N seconds (1-86400)
                                     instead of a working day on the official calendar; pinned into
                                     each application when it opens (models/publicity.py)
"""
from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Mapping, Optional

from temporalio.client import Client
from temporalio.worker import Worker

from activities import ALL_ACTIVITIES
from activities.logs import configure as configure_logging
from models.db import init_db
from workflows.application import ApplicationWorkflow
from workflows import code_cache
from workflows.client import TASK_QUEUE, connect
from workflows.connection import metrics_port
from workflows.legacy import LegacyApplicationWorkflow
from workflows.recovery import RecoveryWorkflow


class ConcurrencyError(ValueError):
    """A concurrency setting in the environment is unusable; the message names the variable."""
    exit_code = 78      # EX_CONFIG: a supervisor (disburse up, systemd) does not restart on it


@dataclass(frozen=True)
class Concurrency:
    workflow_tasks: int = 100       # the SDK's default
    activities: int = 16
    activity_threads: int = 16      # sync activities and local activities run on these threads
    cached_workflows: int = 1000    # the SDK's default

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Concurrency":
        env = os.environ if environ is None else environ

        def number(name: str, default: int, low: int) -> int:
            raw = (env.get(name) or "").strip()
            if not raw:
                return default
            if not (raw.isascii() and raw.isdigit()) or int(raw) < low or int(raw) > 100_000:
                raise ConcurrencyError(f"{name}={raw!r}: expected a whole number from {low} to 100000")
            return int(raw)

        activities = number("DISBURSE_MAX_CONCURRENT_ACTIVITIES", cls.activities, 1)
        threads = number("DISBURSE_ACTIVITY_THREADS", activities, 1)
        if threads < activities:
            raise ConcurrencyError(
                f"DISBURSE_ACTIVITY_THREADS={threads} is below DISBURSE_MAX_CONCURRENT_ACTIVITIES="
                f"{activities}: every activity slot needs a thread")
        # the SDK needs two workflow task slots when the sticky cache is on
        cached = number("DISBURSE_MAX_CACHED_WORKFLOWS", cls.cached_workflows, 0)
        workflow_tasks = number("DISBURSE_MAX_CONCURRENT_WORKFLOW_TASKS", cls.workflow_tasks, 2 if cached else 1)
        return cls(workflow_tasks=workflow_tasks, activities=activities, activity_threads=threads,
                   cached_workflows=cached)


def build_worker(client: Client, *, task_queue: str = TASK_QUEUE, executor: ThreadPoolExecutor,
                 concurrency: Concurrency | None = None) -> Worker:
    c = concurrency or Concurrency.from_env()
    code_cache.install()        # the sandbox imports the workflow module per instance: compile it once
    return Worker(client, task_queue=task_queue,
                  workflows=[ApplicationWorkflow, LegacyApplicationWorkflow, RecoveryWorkflow],
                  activities=ALL_ACTIVITIES, activity_executor=executor,
                  max_concurrent_activities=c.activities, max_concurrent_workflow_tasks=c.workflow_tasks,
                  max_cached_workflows=c.cached_workflows)


def metrics_runtime():
    """A Temporal runtime that serves Prometheus metrics on DISBURSE_METRICS_PORT, or None."""
    port = metrics_port()
    if port is None:
        return None
    from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=f"0.0.0.0:{port}")))


async def connect_worker_client(address: Optional[str] = None, namespace: Optional[str] = None) -> Client:
    """The worker's client: the connection settings, plus the metrics runtime when configured."""
    return await connect(address, namespace, runtime=metrics_runtime())


def load_keys() -> None:
    """The public keys that credentials are verified with, loaded before any workflow runs (the
    workflow's validators read them from memory; the sandbox does no file I/O)."""
    from models import credentials as creds
    v = creds.verifier()
    if not v.keys:
        raise SystemExit(f"disburse worker: no public keys in {creds.key_directory()} (DISBURSE_VERIFY_KEYS): "
                         "no decision could be verified; run `disburse keys create` or set DISBURSE_VERIFY_KEYS")


async def run_worker(client: Client, *, task_queue: str = TASK_QUEUE) -> None:
    """Run until cancelled."""
    concurrency = Concurrency.from_env()     # a bad setting stops us before anything else
    from models.publicity import DAY_SECONDS_ENV, day_seconds_setting
    day_seconds = day_seconds_setting()      # likewise (PublicitySettingError, exit 78)
    configure_logging()
    init_db()
    load_keys()
    gauges = None
    if metrics_port() is not None:
        from activities.metrics import publish_database_gauges
        meter = client.service_client.config.runtime.metric_meter
        interval = float(os.environ.get("DISBURSE_METRICS_INTERVAL", "15"))
        gauges = asyncio.create_task(publish_database_gauges(meter, interval))
    try:
        logging.getLogger("disburse.worker").info("worker_started", extra={
            "task_queue": task_queue, "pid": os.getpid(), **vars(concurrency)})
        if day_seconds:
            logging.getLogger("disburse.worker").warning("publicity_demo_setting", extra={
                "setting": f"{DAY_SECONDS_ENV}={day_seconds}",
                "note": f"DEMO/TEST ONLY: 公示 notice days of applications opened by this worker last {day_seconds} s, "
                           "not working days on the official calendar; never set it in production"})
        with ThreadPoolExecutor(max_workers=concurrency.activity_threads) as executor:
            await build_worker(client, task_queue=task_queue, executor=executor, concurrency=concurrency).run()
    finally:
        if gauges is not None:
            gauges.cancel()


async def _main() -> None:
    await run_worker(await connect_worker_client())


if __name__ == "__main__":
    try:
        asyncio.run(_main())
    except KeyboardInterrupt:
        pass
