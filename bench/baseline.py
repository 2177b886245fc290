"""The bare baseline of bench/lifecycle.py: a workflow of the application's shape and nothing
else — a start, an `opened` update, two decision updates with validators, and a fixed number of
activities that each do one SQLite upsert — to measure what Temporal itself costs next to the
project's workflow (issue 11).

Registered beside the project's workflows on the bench worker (bench/worker.py), same task queue,
same worker settings, same database."""
from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError

BASELINE_TYPE = "BenchBaseline"
TABLE = "bench_baseline"


@activity.defn(name="bench_upsert")
def bench_upsert(key: str, step: int) -> int:
    """One upsert into a table of the bench's own, through the project's engine (models/db.py)."""
    from sqlalchemy import text

    from models.db import session
    with session() as s:
        s.execute(text(f"INSERT INTO {TABLE} (key, step, n) VALUES (:k, :s, 1) "
                       "ON CONFLICT(key) DO UPDATE SET step = excluded.step, n = n + 1"), {"k": key, "s": step})
        s.commit()
    return step


def create_table() -> None:
    from sqlalchemy import text

    from models.db import session
    with session() as s:
        s.execute(text(f"CREATE TABLE IF NOT EXISTS {TABLE} (key TEXT PRIMARY KEY, step INTEGER, n INTEGER)"))
        s.commit()


@workflow.defn(name=BASELINE_TYPE)
class BaselineWorkflow:
    """open (one activity) -> both decisions -> a timer as long as the application's 公示 ->
    the remaining activities, one after another."""

    @workflow.init
    def __init__(self, activities: int, notice_seconds: float = 0) -> None:
        self.opened_done = False
        self.decided: dict[str, str] = {}

    @workflow.run
    async def run(self, activities: int, notice_seconds: float = 0) -> int:
        key = workflow.info().workflow_id
        await workflow.execute_activity(bench_upsert, args=[key, 0], start_to_close_timeout=timedelta(seconds=60))
        self.opened_done = True
        await workflow.wait_condition(lambda: len(self.decided) == 2)
        if notice_seconds:                   # the application's 公示: one durable timer
            await workflow.sleep(notice_seconds)
        for step in range(1, activities):
            await workflow.execute_activity(bench_upsert, args=[key, step],
                                            start_to_close_timeout=timedelta(seconds=60))
        return activities

    @workflow.update
    async def opened(self) -> bool:
        await workflow.wait_condition(lambda: self.opened_done)
        return True

    @workflow.update
    def approve(self, bureau: str) -> str:
        self.decided[bureau] = "approve"
        return bureau

    @approve.validator
    def _v_approve(self, bureau: str) -> None:
        if not self.opened_done:
            raise ApplicationError("still opening", type="InvalidRequest", non_retryable=True)
        if bureau in self.decided:
            raise ApplicationError(f"{bureau} has already decided", type="InvalidRequest", non_retryable=True)
