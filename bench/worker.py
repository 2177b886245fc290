"""The bench's worker process: the project's worker (worker.py: run_worker, its settings from the
environment) with the bare baseline (bench/baseline.py) registered beside the project's workflows.

    python -m bench.worker          # TEMPORAL_ADDRESS, DISBURSE_DB_URL, DISBURSE_VERIFY_KEYS as for `disburse worker`
"""
from __future__ import annotations

import asyncio

import worker
from bench.baseline import BaselineWorkflow, bench_upsert


def _with_baseline(real):
    def build(*args, **kwargs):
        kwargs["workflows"] = [*kwargs.get("workflows", []), BaselineWorkflow]
        kwargs["activities"] = [*kwargs.get("activities", []), bench_upsert]
        return real(*args, **kwargs)
    return build


async def main() -> None:
    worker.Worker = _with_baseline(worker.Worker)
    await worker.run_worker(await worker.connect_worker_client())


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
