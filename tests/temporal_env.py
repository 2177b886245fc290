"""A time-skipping Temporal environment with the workers, one per test (conftest's `harness`; its
own event loop; tests call `run(coro)`), and helpers to build applications."""
from __future__ import annotations

import asyncio
import itertools
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from calc.credit_code import make as make_code
from models import search_attributes as sa

TEST_SERVER = Path(sys.prefix) / "bin" / "temporal-test-server"
ENTERPRISE = "91330106MA2H00001E"
PREMIUM_CLAUSE = "hz2025-04-tech-insurance-premium"
LOAN_CLAUSE = "hz2025-01-tech-loan-interest"
PREMIUM_FACTS = {"premium": "800000", "policy_no": "P-1", "period_start": "2026-01-10"}

REVIEWERS = {
    "hz-kjj": "杭州市科技局", "hz-czj": "杭州市财政局", "hz-czj2": "杭州市财政局", "hz-jxj": "杭州市经信局",
    "hz-jtj": "杭州市交通运输局", "hu-jrb": "湖州市金融办", "hu-czj": "湖州市财政局",
}

_serial = itertools.count(1)


def fresh_code(region: str = "330106") -> str:
    """A distinct valid credit code per call (workflow ids must not collide across tests)."""
    n = next(_serial)
    return make_code(f"91{region}MA2T{n:05d}"[:17])


def loan(year: int) -> dict:
    return {"loan_id": f"L-{year}", "principal": "8000000", "annual_rate_pct": "2.60",
            "contract_date": f"{year - 1}-12-20", "term_months": 12, "start": f"{year}-01-01",
            "end": f"{year}-12-31"}


class Harness:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.env: WorkflowEnvironment | None = None
        self._worker_task = None
        self._executor = ThreadPoolExecutor(max_workers=16)

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    @property
    def client(self):
        return self.env.client

    def start(self) -> None:
        self.run(self._start())

    async def _start(self) -> None:
        from worker import build_worker
        from workflows.codec import data_converter     # encrypted when DISBURSE_PAYLOAD_KEYS is set
        self.env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=str(TEST_SERVER), data_converter=data_converter())
        await self.env.client.operator_service.add_search_attributes(AddSearchAttributesRequest(
            namespace=self.env.client.namespace,
            search_attributes={k.name: k.indexed_value_type for k in sa.ALL}))
        from tests import fake_activities as fake
        self.workers = [build_worker(self.env.client, executor=self._executor)]
        # the same workflow with one activity replaced, on a task queue of its own
        for queue, *stand_ins in ((fake.STAGED_QUEUE, fake.staged_commit_award, fake.staged_settle_award),
                                  (fake.FLAKY_QUEUE, fake.flaky_pay_tranche),
                                  (fake.SLOW_MIRROR_QUEUE, fake.slow_mirror_status),
                                  (fake.SLOW_PAY_QUEUE, fake.slow_pay_tranche),
                                  (fake.BROKEN_QUEUE, fake.broken_commit_award, fake.broken_settle_award)):
            self.workers.append(self._worker_with(queue, *stand_ins))
        self._tasks = [self.loop.create_task(w.run()) for w in self.workers]
        await asyncio.sleep(0)

    def _worker_with(self, queue: str, *stand_ins):
        from temporalio.worker import Worker

        from activities import ALL_ACTIVITIES
        from workflows.application import ApplicationWorkflow
        from workflows.legacy import LegacyApplicationWorkflow
        names = {getattr(a, "__temporal_activity_definition").name for a in stand_ins}
        acts = [a for a in ALL_ACTIVITIES if getattr(a, "__temporal_activity_definition").name not in names] \
            + list(stand_ins)
        return Worker(self.env.client, task_queue=queue, workflows=[ApplicationWorkflow, LegacyApplicationWorkflow],
                      activities=acts,
                      activity_executor=self._executor)

    async def restart_main_worker(self, timeout: float = 30, **options) -> None:
        """Stop the main worker (task queue "disburse") and start a fresh one on the same queue, as
        a deploy or a crash-and-restart would: workflows in flight carry on from their history.
        `options` are Worker arguments that replace build_worker's for the new worker.

        The time-skipping test server never times out a sticky task queue (a real server hands the
        workflows of a stopped worker to the others): a workflow cached by the stopped worker
        would wait for it forever. Workers that are restarted should hold no cache: call
        restart_main_worker(max_cached_workflows=0, max_concurrent_workflow_tasks=1) once before
        the first workflow starts (without a cache, a second concurrent workflow task can wait
        behind a local activity until it times out)."""
        from unittest import mock

        import worker as main_worker
        old, task = self.workers[0], self._tasks[0]
        await asyncio.wait_for(old.shutdown(), timeout)
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), timeout)
        real = main_worker.Worker

        def with_options(*args, **kwargs):       # these options win over build_worker's own
            return real(*args, **{**kwargs, **options})
        with mock.patch.object(main_worker, "Worker", with_options):
            new = main_worker.build_worker(self.env.client, executor=self._executor)
        self.workers[0] = new
        self._tasks[0] = self.loop.create_task(new.run())
        await asyncio.sleep(0)

    def stop(self) -> None:
        async def _stop():
            try:
                for w in self.workers:
                    await asyncio.wait_for(w.shutdown(), 20)
            except Exception:  # noqa: BLE001
                pass
            try:
                await asyncio.wait_for(self.env.shutdown(), 20)
            except Exception:  # noqa: BLE001
                pass
        self.run(_stop())
        self._executor.shutdown(wait=False)
