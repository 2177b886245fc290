"""The disburse worker: the Application workflow (and the first version's, for applications still
running under it) + activities on task queue "disburse".

    python worker.py            # or: disburse worker

Connection: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TLS / mTLS / API key from the environment or a
profile (workflows/connection.py). Metrics: DISBURSE_METRICS_PORT opens a Prometheus endpoint
(http://0.0.0.0:PORT/metrics) with the SDK's runtime metrics and the business metrics of
activities/metrics.py.
"""
from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

from temporalio.client import Client
from temporalio.worker import Worker

from activities import ALL_ACTIVITIES
from activities.logs import configure as configure_logging
from models.db import init_db
from workflows.application import ApplicationWorkflow
from workflows.client import TASK_QUEUE, connect
from workflows.connection import metrics_port
from workflows.legacy import LegacyApplicationWorkflow


def build_worker(client: Client, *, task_queue: str = TASK_QUEUE, executor: ThreadPoolExecutor) -> Worker:
    return Worker(client, task_queue=task_queue, workflows=[ApplicationWorkflow, LegacyApplicationWorkflow],
                  activities=ALL_ACTIVITIES, activity_executor=executor,
                  max_concurrent_activities=16)


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


async def run_worker(client: Client, *, task_queue: str = TASK_QUEUE) -> None:
    """Run until cancelled."""
    configure_logging()
    init_db()
    gauges = None
    if metrics_port() is not None:
        from activities.metrics import publish_database_gauges
        meter = client.service_client.config.runtime.metric_meter
        interval = float(os.environ.get("DISBURSE_METRICS_INTERVAL", "15"))
        gauges = asyncio.create_task(publish_database_gauges(meter, interval))
    try:
        with ThreadPoolExecutor(max_workers=16) as executor:
            await build_worker(client, task_queue=task_queue, executor=executor).run()
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
