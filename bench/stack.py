"""What the workflow benches share: a Temporal dev server of their own (deploy/devserver.py, free
ports, a temporary SQLite file), a temporary disburse database, a signing key pair, the bench
worker as a subprocess (bench/worker.py: the project's worker plus the bare baseline), the two
kinds of application and what their histories hold."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from models import credentials as creds  # noqa: E402
from models.application import ApplicationInput  # noqa: E402

CLAUSE = "hz2025-04-tech-insurance-premium"          # single year, one tranche (tests/temporal_env.py)
FACTS = {"premium": "800000", "policy_no": "P-1", "period_start": "2026-01-10"}
OPERATOR = creds.Actor(user="op-bench", role="operator")
LEAD = creds.Actor(user="hz-kjj", role="reviewer", bureau="杭州市科技局")
FINANCE = creds.Actor(user="hz-czj", role="finance", bureau="杭州市财政局")


def enterprise_code(n: int) -> str:
    from calc.credit_code import make
    return make(f"91330106MA2B{n:05d}"[:17])


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))]


@dataclass
class Stack:
    tmp: Path
    worker_env: dict = field(default_factory=dict)
    server: object = None
    client: object = None
    worker: subprocess.Popen | None = None

    async def start(self, enterprises: int) -> "Stack":
        from deploy.devserver import DevServer, free_port
        db_url = f"sqlite:///{self.tmp / 'disburse.db'}"
        os.environ["DISBURSE_DB_URL"] = db_url
        self._database(enterprises)
        signer = creds.Signer.generate("bench")
        signer.save(self.tmp / "keys")
        creds.use_signer(signer)
        self.server = DevServer(port=free_port(), ui_port=None, db_file=self.tmp / "temporal.db", headless=True)
        self.server.start()
        self.client = await self.server.connect(timeout=120)
        env = {**os.environ, "TEMPORAL_ADDRESS": self.server.address, "DISBURSE_DB_URL": db_url,
               "DISBURSE_VERIFY_KEYS": str(self.tmp / "keys"), "PYTHONUNBUFFERED": "1",
               "DISBURSE_PUBLICITY_DAY_SECONDS": str(NOTICE_DAY_SECONDS), **self.worker_env}
        env.pop("DISBURSE_METRICS_PORT", None)
        self.worker = subprocess.Popen([sys.executable, "-m", "bench.worker"], cwd=ROOT, env=env,
                                       stdout=open(self.tmp / "worker.log", "wb"), stderr=subprocess.STDOUT)
        return self

    def _database(self, enterprises: int) -> None:
        from bench.baseline import create_table
        from models import registry
        from models.db import init_db
        init_db()
        for rid, actor in (("hz-kjj", LEAD), ("hz-czj", FINANCE)):
            registry.add_reviewer(rid, actor.bureau, rid)
        path = self.tmp / "enterprises.csv"
        with open(path, "w", encoding="utf-8") as f:
            f.write("credit_code,name,region,qualifications\n")
            for n in range(enterprises):
                f.write(f"{enterprise_code(n)},E{n},,tech_enterprise:2020-01-01\n")
        registry.import_enterprises_csv(path)
        create_table()

    def pids(self) -> dict[str, int]:
        return {"worker": self.worker.pid, "server": self.server.proc.pid}

    def cpu_seconds(self) -> dict[str, float]:
        import psutil
        out = {}
        for name, pid in self.pids().items():
            t = psutil.Process(pid).cpu_times()
            out[name] = t.user + t.system + t.children_user + t.children_system
        return out

    def rss_mb(self) -> dict[str, float]:
        import psutil
        return {name: psutil.Process(pid).memory_info().rss / 2**20 for name, pid in self.pids().items()}

    def stop(self) -> None:
        import signal
        if self.worker is not None and self.worker.poll() is None:
            self.worker.send_signal(signal.SIGINT)
            try:
                self.worker.wait(20)
            except subprocess.TimeoutExpired:
                self.worker.kill()
                self.worker.wait(5)
        if self.server is not None:
            self.server.stop()


# ------------------------------------------------------------------------------ the two kinds

async def submit_project(client, n: int) -> str:
    from workflows import client as wc
    code = enterprise_code(n)
    inp = ApplicationInput.model_validate({"clause_id": CLAUSE, "year": 2026, "enterprise_code": code,
                                           "enterprise_name": f"E{n}", "operator": OPERATOR.user,
                                           "facts": FACTS})
    return await wc.submit(client, inp, actor=OPERATOR)


async def approve_project(client, app_id: str) -> None:
    from workflows import client as wc
    await wc.approve(client, app_id, reviewer=LEAD.user, comment="ok", actor=LEAD)
    await wc.approve(client, app_id, reviewer=FINANCE.user, comment="ok", actor=FINANCE)


async def project_app(client, n: int) -> tuple[str, float]:
    """One application of the project, submit -> both approvals -> completed; (id, seconds)."""
    t0 = time.monotonic()
    app_id = await submit_project(client, n)
    await approve_project(client, app_id)
    result = await client.get_workflow_handle(app_id).result()
    if result.get("status") != "completed":
        raise RuntimeError(f"{app_id} ended {result.get('status')}: {result.get('note')}")
    return app_id, time.monotonic() - t0


NOTICE_DAY_SECONDS = 1          # the bench worker's 公示 notice day (DISBURSE_PUBLICITY_DAY_SECONDS)


def notice_seconds() -> int:
    """How long the project's 公示 lasts on the bench worker: the clause's notice days of
    NOTICE_DAY_SECONDS each; the baseline waits on a timer as long."""
    from models.publicity import period
    from datetime import datetime, timezone
    published = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return int((period(CLAUSE, published, NOTICE_DAY_SECONDS).ends_at - published).total_seconds())


async def submit_baseline(client, wid: str, activities: int):
    from bench.baseline import BASELINE_TYPE
    from workflows.client import TASK_QUEUE
    h = await client.start_workflow(BASELINE_TYPE, args=[activities, notice_seconds()], id=wid,
                                    task_queue=TASK_QUEUE)
    await h.execute_update("opened", id="opened")
    return h


async def approve_baseline(h) -> None:
    await h.execute_update("approve", LEAD.bureau, id=f"approve:{LEAD.user}")
    await h.execute_update("approve", FINANCE.bureau, id=f"approve:{FINANCE.user}")


async def baseline_app(client, wid: str, activities: int) -> tuple[str, float]:
    t0 = time.monotonic()
    h = await submit_baseline(client, wid, activities)
    await approve_baseline(h)
    await h.result()
    return wid, time.monotonic() - t0


# ------------------------------------------------------------------------------ histories

async def history_counts(client, workflow_id: str) -> Counter:
    """Event types of a workflow's history (plus 'events', and 'activities' = scheduled + local)."""
    from temporalio.api.enums.v1 import EventType
    hist = await client.get_workflow_handle(workflow_id).fetch_history()
    c = Counter(EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in hist.events)
    c["events"] = len(hist.events)
    c["activities"] = c["ACTIVITY_TASK_SCHEDULED"] + c["MARKER_RECORDED"]
    return c


async def histories(client, ids: list[str], limit: int = 20) -> list[Counter]:
    sem = asyncio.Semaphore(limit)

    async def one(wid):
        async with sem:
            return await history_counts(client, wid)
    return await asyncio.gather(*(one(w) for w in ids))
