"""The disburse worker: ApplicationWorkflow + activities on task queue "disburse".

    python worker.py            # connects to TEMPORAL_ADDRESS (default localhost:7233)
"""
from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker

from activities import ALL_ACTIVITIES
from activities.logs import configure as configure_logging
from models.db import init_db
from workflows.application import ApplicationWorkflow
from workflows.legacy import LegacyApplicationWorkflow
from workflows.client import TASK_QUEUE, connect


def build_worker(client: Client, *, task_queue: str = TASK_QUEUE, executor: ThreadPoolExecutor) -> Worker:
    return Worker(client, task_queue=task_queue, workflows=[ApplicationWorkflow, LegacyApplicationWorkflow],
                  activities=ALL_ACTIVITIES, activity_executor=executor,
                  max_concurrent_activities=16)


async def run_worker(client: Client, *, task_queue: str = TASK_QUEUE) -> None:
    """Run until cancelled."""
    configure_logging()
    init_db()
    with ThreadPoolExecutor(max_workers=16) as executor:
        await build_worker(client, task_queue=task_queue, executor=executor).run()


async def _main() -> None:
    client = await connect(os.environ.get("TEMPORAL_ADDRESS", "localhost:7233"),
                           namespace=os.environ.get("TEMPORAL_NAMESPACE", "default"))
    await run_worker(client)


if __name__ == "__main__":
    try:
        asyncio.run(_main())
    except KeyboardInterrupt:
        pass
