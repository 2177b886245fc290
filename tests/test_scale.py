"""Horizontal scale: several `disburse worker` processes on one task queue, one dev server, one
database. One of them is killed with SIGKILL while payouts are happening; every application still
completes, and every tranche is paid exactly once (the ledger has one row per tranche, and the
award book's paid lines add up to the ledger, tranche by tranche). Every history replays from its
start on a worker that never saw it (DISBURSE_KEEP_HISTORIES=DIR keeps them for a look).

Against a REAL dev server on free ports with a temporary SQLite database (one host: several
processes share one SQLite file safely; several hosts need PostgreSQL).
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections import Counter, defaultdict
from contextlib import ExitStack
from decimal import Decimal

import pytest

from tests.cli_env import devserver, stop_process
from tests.test_devserver import DISBURSE

pytestmark = pytest.mark.devserver

WORKERS = 3
# eight single-tranche applications (Hangzhou, R&D insurance premium) and four staged listing
# rewards (Huzhou) whose two stages are both due today: 16 tranches
HZ, HU = "hz2025-04-tech-insurance-premium", "hu2023-06-listing-reward"
N_HZ, N_HU = 8, 4


def _claims():
    from calc.credit_code import make
    claims = []
    for i in range(N_HZ):
        claims.append((make(f"91330106MA2HC{i:04d}"), "330106", {
            "clause_id": HZ, "year": 2026, "operator": "op-1",
            "facts": {"premium": str(600000 + 10000 * i), "policy_no": f"RD-SCALE-{i}", "period_start": "2026-01-10"}}))
    for i in range(N_HU):
        claims.append((make(f"91330502MA2HC{i:04d}"), "330502", {
            "clause_id": HU, "year": 2025, "operator": "op-1",
            "facts": {"review_amount": str(10000000 + 1000000 * i),
                      "stages": {"filing_accepted": "2025-03-15", "approved": "2025-10-20"}}}))
    return claims


def _busiest(logs) -> int:
    """Index of the worker that has logged the most activity so far (the likeliest to hold work)."""
    counts = []
    for path in logs:
        try:
            counts.append(sum(1 for line in path.read_text().splitlines() if '"activity"' in line))
        except FileNotFoundError:
            counts.append(0)
    return max(range(len(counts)), key=counts.__getitem__)


def test_three_workers_one_killed_with_sigkill_mid_payout_every_tranche_paid_exactly_once(tmp_path, monkeypatch):
    from models import book, registry
    from models.application import ApplicationInput
    from models.clauses import clause_info
    from temporalio.worker import Replayer
    from workflows import client as wc
    from workflows.application import ApplicationWorkflow
    from workflows.codec import data_converter
    from workflows.legacy import LegacyApplicationWorkflow

    db_url = f"sqlite:///{tmp_path / 'disburse.db'}"
    from tests.cli_env import service_env
    env = {**os.environ, "DISBURSE_DB_URL": db_url, "PYTHONUNBUFFERED": "1", **service_env(tmp_path)}
    env.pop("DISBURSE_DEBUG", None)
    monkeypatch.setenv("DISBURSE_DB_URL", db_url)

    claims = _claims()
    reviewers = {}
    for code, region, claim in claims:
        registry.add_enterprise(code, name=f"规模测试企业{code[-4:]}", region=region,
                                qualifications="tech_enterprise:2020-01-01;high_tech:2020-01-01")
        for bureau in clause_info(claim["clause_id"]).required_bureaus:
            reviewers.setdefault(bureau, f"r-{len(reviewers)}")
    for bureau, rid in reviewers.items():
        registry.add_reviewer(rid, bureau, rid)

    workers: list[subprocess.Popen] = []
    logs = [tmp_path / f"worker-{i}.log" for i in range(WORKERS)]
    with devserver(tmp_path, env) as server, ExitStack() as stopping:
        env = server.env
        stopping.callback(lambda: [stop_process(w) for w in workers])      # the workers, then the server
        for log in logs:
            workers.append(subprocess.Popen([DISBURSE, "worker"], cwd=tmp_path, env=env,
                                            stdout=subprocess.DEVNULL, stderr=open(log, "w")))

        async def go():
            client = await wc.connect(env["TEMPORAL_ADDRESS"])
            ids = []
            for code, _, claim in claims:
                inp = ApplicationInput.model_validate({**claim, "enterprise_code": code})
                ids.append((await wc.submit(client, inp), clause_info(inp.clause_id).required_bureaus))
            await asyncio.gather(*(wc.approve(client, app_id, reviewer=reviewers[bureaus[0]])
                                   for app_id, bureaus in ids))               # the lead bureaus
            await asyncio.gather(*(wc.approve(client, app_id, reviewer=reviewers[b])
                                   for app_id, bureaus in ids for b in bureaus[1:]))   # finance: payouts start
            # kill -9 the busiest worker once the first payments are in
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and len(registry.ledger_rows()) < 2:
                await asyncio.sleep(0.02)
            paid_at_kill = len(registry.ledger_rows())
            victim = workers[_busiest(logs)]
            victim.send_signal(signal.SIGKILL)
            t_kill = time.monotonic()
            victim.wait(5)

            final: dict[str, dict] = {}
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline and len(final) < len(ids):
                for app_id, _ in ids:
                    if app_id not in final:
                        st = await wc.status(client, app_id)
                        if st["status"] in ("completed", "refused", "attention", "rejected", "blacklisted"):
                            final[app_id] = st
                await asyncio.sleep(0.5)
            recovered_s = time.monotonic() - t_kill

            # what the histories say: the killed worker's part, and what Temporal handed over after it
            identity = f"{victim.pid}@"
            touched, timeouts = 0, Counter()
            histories = [await client.get_workflow_handle(app_id).fetch_history() for app_id, _ in ids]
            keep = os.environ.get("DISBURSE_KEEP_HISTORIES")
            if keep:                                   # for a look at a failure
                os.makedirs(keep, exist_ok=True)
                for h in histories:
                    with open(os.path.join(keep, f"{h.workflow_id}.json"), "w") as f:
                        f.write(h.to_json())
            # every history replays from its start on a worker that never saw it (as a status query
            # does on a worker without the workflow in its cache)
            replayer = Replayer(workflows=[ApplicationWorkflow, LegacyApplicationWorkflow],
                                data_converter=data_converter())
            nondeterministic = {}
            for h in histories:
                failure = (await replayer.replay_workflow(h, raise_on_replay_failure=False)).replay_failure
                if failure is not None:
                    nondeterministic[h.workflow_id] = str(failure)
            for h in histories:
                events = h.events
                text = str(events)
                touched += identity in text
                scheduled = {}
                for e in events:
                    if e.HasField("activity_task_scheduled_event_attributes"):
                        scheduled[e.event_id] = e.activity_task_scheduled_event_attributes.activity_type.name
                    elif e.HasField("activity_task_started_event_attributes"):
                        a = e.activity_task_started_event_attributes
                        if a.attempt > 1:                       # an earlier attempt timed out on the dead worker
                            timeouts[f"activity {scheduled.get(a.scheduled_event_id)}"] += 1
                    elif e.HasField("workflow_task_timed_out_event_attributes"):
                        timeouts["workflow task"] += 1
            return ids, final, paid_at_kill, recovered_s, touched, timeouts, victim.pid, nondeterministic

        ids, final, paid_at_kill, recovered_s, touched, timeouts, victim_pid, nondeterministic = asyncio.run(go())
        for w in workers:
            assert w.poll() is None or w.pid == victim_pid, "a surviving worker died"

    assert not nondeterministic, nondeterministic
    assert touched >= 1, "the killed worker had taken no work: the test proved nothing"
    assert len(final) == len(ids), f"not settled: {sorted(set(i for i, _ in ids) - set(final))}"
    assert {st["status"] for st in final.values()} == {"completed"}, \
        {k: (v["status"], v.get("note")) for k, v in final.items() if v["status"] != "completed"}

    ledger = registry.ledger_rows()
    per_tranche = Counter((r["application_id"], r["year"], r["seq"]) for r in ledger)
    assert all(n == 1 for n in per_tranche.values()), [k for k, n in per_tranche.items() if n > 1]
    lines = book.lines()
    paid_lines = defaultdict(Decimal)
    for ln in lines:
        assert ln["state"] == "paid", ln                      # nothing left committed, nothing released
        paid_lines[(ln["application_id"], ln["year"], ln["seq"])] += ln["amount"]
    assert set(paid_lines) == set(per_tranche), "a tranche of the book has no ledger row, or the reverse"
    for r in ledger:
        assert Decimal(str(r["amount"])) == paid_lines[(r["application_id"], r["year"], r["seq"])], r
    assert len(ledger) == N_HZ + 2 * N_HU
    for app_id, st in final.items():
        assert Decimal(st["awarded"]) == sum((Decimal(str(r["amount"])) for r in ledger
                                              if r["application_id"] == app_id), Decimal(0)), app_id
    print(json.dumps({"applications": len(ids), "tranches": len(ledger), "workers": WORKERS,
                      "paid_when_killed": paid_at_kill, "all_completed_s_after_kill": round(recovered_s, 1),
                      "applications_the_killed_worker_had_worked_on": touched,
                      "tasks_timed_out_and_handed_over": dict(timeouts)}))
