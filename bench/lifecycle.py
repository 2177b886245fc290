"""The workflow's cost next to Temporal itself (issue 11): the project's application workflow
against a bare workflow of the same shape (bench/baseline.py: a start, an `opened` update, two
decision updates with validators, a durable timer as long as the project's 公示, and as many
activities as the project runs (local ones included), each doing one SQLite upsert), in paired
rounds on one dev server and one worker (A B A B ...).

    .venv/bin/python -m bench.lifecycle [--n 100] [--rounds 2] [--activities K] [--show-history]

It starts its own Temporal dev server (free port, temporary SQLite file), a temporary disburse
database and the bench worker (bench/worker.py: the project's worker with the baseline beside it,
settings from the environment as for `disburse worker`, and a 公示 notice day of 1 s:
DISBURSE_PUBLICITY_DAY_SECONDS, so the project's 公示 lasts 5 s and so does the baseline's timer).
Each batch runs N applications at once: submit (start + `opened`), both approvals, until completed.
Prints, per kind: throughput (apps/s), p50/p95 submit -> completed, history events, workflow tasks
(WorkflowTaskCompleted), activities (scheduled + local) per application, worker + server CPU per
application, and the ratios project / baseline. Targets: throughput >= 1.0x, p95 <= 1.0x, <= 40
events and <= 5 workflow tasks.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import stack as st  # noqa: E402


async def batch(stack, kind: str, first: int, n: int, activities: int) -> dict:
    cpu0 = stack.cpu_seconds()
    t0 = time.monotonic()
    if kind == "project":
        runs = await asyncio.gather(*(st.project_app(stack.client, first + i) for i in range(n)))
    else:
        runs = await asyncio.gather(*(st.baseline_app(stack.client, f"bench-base-{first + i}", activities)
                                      for i in range(n)))
    elapsed = time.monotonic() - t0
    cpu1 = stack.cpu_seconds()
    counts = await st.histories(stack.client, [wid for wid, _ in runs])
    return {"elapsed": elapsed, "latencies": [s for _, s in runs], "counts": counts,
            "cpu": {k: cpu1[k] - cpu0[k] for k in cpu0}, "n": n, "ids": [wid for wid, _ in runs]}


def summary(batches: list[dict]) -> dict:
    n = sum(b["n"] for b in batches)
    lat = [x for b in batches for x in b["latencies"]]
    counts = [c for b in batches for c in b["counts"]]

    def per_app(key):
        return sum(c[key] for c in counts) / len(counts)
    return {
        "throughput": sum(b["n"] / b["elapsed"] for b in batches) / len(batches),
        "p50": st.pct(lat, 50), "p95": st.pct(lat, 95),
        "events": per_app("events"), "wft": per_app("WORKFLOW_TASK_COMPLETED"),
        "activities": per_app("activities"), "timeouts": sum(c["WORKFLOW_TASK_TIMED_OUT"] for c in counts),
        "failed_wft": sum(c["WORKFLOW_TASK_FAILED"] for c in counts),
        "cpu_ms": 1000 * sum(sum(b["cpu"].values()) for b in batches) / n,
        "server_share": sum(b["cpu"]["server"] for b in batches) / max(1e-9, sum(sum(b["cpu"].values())
                                                                               for b in batches)),
    }


async def solo(stack, kind: str, first: int, count: int, activities: int) -> float:
    """p50 of `count` applications run one at a time."""
    lat = []
    for i in range(count):
        if kind == "project":
            lat.append((await st.project_app(stack.client, first + i))[1])
        else:
            lat.append((await st.baseline_app(stack.client, f"bench-solo-{first + i}", activities))[1])
    return st.pct(lat, 50)


async def show_history(stack, wid: str) -> None:
    from temporalio.api.enums.v1 import EventType
    hist = await stack.client.get_workflow_handle(wid).fetch_history()
    print(f"\nhistory of {wid} ({len(hist.events)} events):")
    for e in hist.events:
        name = EventType.Name(e.event_type).removeprefix("EVENT_TYPE_")
        detail = ""
        if e.HasField("activity_task_scheduled_event_attributes"):
            detail = e.activity_task_scheduled_event_attributes.activity_type.name
        elif e.HasField("marker_recorded_event_attributes"):
            m = e.marker_recorded_event_attributes
            detail = m.marker_name
            import json
            for key in ("activity_type", "data"):          # the local activity's type (core keeps it in data)
                if key in m.details:
                    try:
                        v = json.loads(m.details[key].payloads[0].data)
                    except ValueError:
                        continue
                    detail += " " + str(v.get("activity_type", "") if isinstance(v, dict) else v)
                    break
        elif e.HasField("workflow_execution_update_accepted_event_attributes"):
            detail = e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        elif e.HasField("upsert_workflow_search_attributes_event_attributes"):
            detail = ",".join(e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields)
        print(f"  {e.event_id:3d} {name} {detail}")


def fmt_table(p: dict, b: dict, solo_p: float, solo_b: float) -> str:
    rows = [
        ("throughput (apps/s)", p["throughput"], b["throughput"], p["throughput"] / b["throughput"], "{:.2f}"),
        ("p50 submit -> completed (s)", p["p50"], b["p50"], p["p50"] / b["p50"], "{:.2f}"),
        ("p95 submit -> completed (s)", p["p95"], b["p95"], p["p95"] / b["p95"], "{:.2f}"),
        ("one application alone, p50 (s)", solo_p, solo_b, solo_p / solo_b, "{:.3f}"),
        ("history events / app", p["events"], b["events"], p["events"] / b["events"], "{:.1f}"),
        ("workflow tasks / app", p["wft"], b["wft"], p["wft"] / b["wft"], "{:.2f}"),
        ("activities / app (incl. local)", p["activities"], b["activities"], None, "{:.1f}"),
        ("worker + server CPU / app (ms)", p["cpu_ms"], b["cpu_ms"], p["cpu_ms"] / b["cpu_ms"], "{:.0f}"),
        ("server's share of that CPU", p["server_share"], b["server_share"], None, "{:.0%}"),
        ("workflow task timeouts / failures", f"{p['timeouts']} / {p['failed_wft']}",
         f"{b['timeouts']} / {b['failed_wft']}", None, "{}"),
    ]
    out = [f"{'':34s} {'project':>10s} {'baseline':>10s} {'ratio':>8s}"]
    for name, pv, bv, ratio, f in rows:
        out.append(f"{name:34s} {f.format(pv):>10s} {f.format(bv):>10s} "
                   f"{(f'{ratio:.2f}x' if ratio is not None else ''):>8s}")
    return "\n".join(out)


def verdict(p: dict, b: dict) -> str:
    checks = [("throughput >= 1.0x baseline", p["throughput"] >= b["throughput"]),
              ("p95 <= 1.0x baseline", p["p95"] <= b["p95"]),
              ("<= 40 events / app", p["events"] <= 40), ("<= 5 workflow tasks / app", p["wft"] <= 5)]
    return "\n".join(f"target {name}: {'met' if ok else 'NOT MET'}" for name, ok in checks)


async def main_async(args) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="disburse-bench-"))
    stack = st.Stack(tmp)
    solo_n = 5
    total = args.n * args.rounds + 2 + solo_n
    await stack.start(enterprises=total)
    try:
        print(f"dev server {stack.server.address}, worker pid {stack.worker.pid}, files in {tmp}", flush=True)
        warm, _ = await st.project_app(stack.client, total - 1)      # warm-up, not counted
        if args.activities is None:          # the baseline runs as many activities as the project (local included)
            args.activities = (await st.history_counts(stack.client, warm))["activities"]
        await st.baseline_app(stack.client, "bench-warm", args.activities)
        solo_p = await solo(stack, "project", total - 1 - solo_n, solo_n, args.activities)
        solo_b = await solo(stack, "baseline", 0, solo_n, args.activities)
        results = {"project": [], "baseline": []}
        for r in range(args.rounds):
            for kind in ("project", "baseline"):
                b = await batch(stack, kind, r * args.n, args.n, args.activities)
                results[kind].append(b)
                print(f"round {r + 1} {kind:8s}: {b['n']} apps in {b['elapsed']:.1f} s "
                      f"({b['n'] / b['elapsed']:.2f} apps/s, p95 {st.pct(b['latencies'], 95):.2f} s)", flush=True)
        p, b = summary(results["project"]), summary(results["baseline"])
        print(f"\n{args.n} concurrent single-tranche applications ({st.CLAUSE}), {args.rounds} paired rounds; "
              f"baseline: {args.activities} activities")
        print(fmt_table(p, b, solo_p, solo_b))
        print(verdict(p, b))
        if args.show_history:
            await show_history(stack, results["project"][-1]["ids"][0])
            apps = [(wid, c) for b in results["project"] for wid, c in zip(b["ids"], b["counts"])]
            fewest = min(c["WORKFLOW_TASK_COMPLETED"] for _, c in apps)
            more = [(wid, c) for wid, c in apps if c["WORKFLOW_TASK_COMPLETED"] > fewest]
            if more:                             # what gave them a workflow task more
                print(f"\n{len(more)} of {len(apps)} applications had more than {fewest} workflow tasks; the first:")
                await show_history(stack, more[0][0])
    finally:
        stack.stop()
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.lifecycle", description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100, help="applications per batch (all at once)")
    ap.add_argument("--rounds", type=int, default=2, help="paired rounds: project, baseline, project, ...")
    ap.add_argument("--activities", type=int, default=None,
                    help="activities of the baseline (default: as many as the project's application runs, "
                         "local activities included, counted in a warm-up application's history)")
    ap.add_argument("--show-history", action="store_true",
                    help="print one project application's history, and the first with more workflow tasks than most")
    args = ap.parse_args(argv)
    if args.n < 1 or args.rounds < 1 or (args.activities is not None and args.activities < 1):
        ap.error("--n, --rounds and --activities must be at least 1")
    code = asyncio.run(main_async(args))
    sys.stdout.flush()
    os._exit(code)          # temporalio 1.35 may crash at interpreter exit


if __name__ == "__main__":
    main()
