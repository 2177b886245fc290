"""Load run (issue 11): many applications in flight on one machine — most waiting in review, a
share approved and completing — with the memory of the worker and of the dev server sampled after
warm-up, and workflow-task timeouts counted in the histories.

    .venv/bin/python -m bench.load [--n 10000] [--share 0.1] [--hold 60] [--interval 5]

Same stack as bench/lifecycle.py (a dev server of its own, a temporary database, the bench worker
as a subprocess, settings from the environment). Phases:
  1. submit N applications (start + `opened`, --concurrency at a time): the warm-up; all N now wait in review;
  2. approve the share (both bureaus) and wait until those applications complete;
  3. hold for --hold seconds with everything else still waiting.
RSS of the worker and of the server is sampled every --interval seconds from the end of phase 1
to the end; printed: RSS at warm-up and at the end, the slope (least squares, MB/min), the peak,
approve -> completed p50/p95, and WorkflowTaskTimedOut / WorkflowTaskFailed events in the histories
of every completed application and of a sample of the waiting ones.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import stack as st  # noqa: E402


def slope_per_minute(samples: list[tuple[float, float]]) -> float:
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mt = sum(t for t, _ in samples) / n
    mv = sum(v for _, v in samples) / n
    var = sum((t - mt) ** 2 for t, _ in samples)
    return 60 * sum((t - mt) * (v - mv) for t, v in samples) / var if var else 0.0


async def sampler(stack, samples: dict, interval: float, t0: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        now = time.monotonic() - t0
        for name, mb in stack.rss_mb().items():
            samples.setdefault(name, []).append((now, mb))
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except asyncio.TimeoutError:
            pass


RPC_TIMEOUTS = {"n": 0}       # update calls whose RPC timed out under load (retried: update ids are stable)


async def patiently(call, *args):
    """An update call, again after an RPC timeout (the same update id returns the first result)."""
    from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
    for attempt in range(10):
        try:
            return await call(*args)
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            RPC_TIMEOUTS["n"] += 1
            if attempt == 9:
                raise


async def submit_patiently(client, i: int) -> str:
    from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError

    from models.application import workflow_id_for
    try:
        return await st.submit_project(client, i)
    except WorkflowUpdateRPCTimeoutOrCancelledError:     # started; wait for `opened` again
        RPC_TIMEOUTS["n"] += 1
        wid = workflow_id_for(st.enterprise_code(i), st.CLAUSE, 2026)
        await patiently(lambda: client.get_workflow_handle(wid).execute_update("opened", id="opened"))
        return wid


async def bounded(limit: int, coros):
    sem = asyncio.Semaphore(limit)

    async def one(c):
        async with sem:
            return await c
    return await asyncio.gather(*(one(c) for c in coros))


async def main_async(args) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="disburse-load-"))
    stack = st.Stack(tmp)
    await stack.start(enterprises=args.n)
    try:
        print(f"dev server {stack.server.address}, worker pid {stack.worker.pid}, files in {tmp}", flush=True)
        t0 = time.monotonic()
        ids: list[str] = [None] * args.n   # type: ignore[list-item]
        done = 0

        async def submit(i):
            nonlocal done
            ids[i] = await submit_patiently(stack.client, i)
            done += 1
            if done % 1000 == 0:
                print(f"  {done} submitted ({time.monotonic() - t0:.0f} s), RSS "
                      + ", ".join(f"{k} {v:.0f} MB" for k, v in stack.rss_mb().items()), flush=True)
        await bounded(args.concurrency, (submit(i) for i in range(args.n)))
        warm = time.monotonic()
        print(f"phase 1: {args.n} applications in review after {warm - t0:.0f} s "
              f"({args.n / (warm - t0):.1f} submits/s)", flush=True)

        samples: dict[str, list[tuple[float, float]]] = {}
        stop = asyncio.Event()
        sampling = asyncio.create_task(sampler(stack, samples, args.interval, warm, stop))
        rnd = random.Random(11)
        chosen = sorted(rnd.sample(range(args.n), int(args.n * args.share)))

        async def complete(i):
            a = time.monotonic()
            await patiently(st.approve_project, stack.client, ids[i])
            result = await stack.client.get_workflow_handle(ids[i]).result()
            if result.get("status") != "completed":
                raise RuntimeError(f"{ids[i]} ended {result.get('status')}")
            return time.monotonic() - a
        lat = await bounded(args.concurrency, (complete(i) for i in chosen))
        p2 = time.monotonic()
        print(f"phase 2: {len(chosen)} approved and completed in {p2 - warm:.0f} s "
              f"({len(chosen) / max(1e-9, p2 - warm):.1f}/s; approve -> completed p50 {st.pct(lat, 50):.2f} s, "
              f"p95 {st.pct(lat, 95):.2f} s)", flush=True)
        await asyncio.sleep(args.hold)
        stop.set()
        await sampling
        print(f"phase 3: held {args.hold:.0f} s with {args.n - len(chosen)} applications waiting in review", flush=True)

        waiting = [ids[i] for i in sorted(set(range(args.n)) - set(chosen))]
        sample = [ids[i] for i in chosen] + rnd.sample(waiting, min(args.sample, len(waiting)))
        counts = await st.histories(stack.client, sample)
        timeouts = sum(c["WORKFLOW_TASK_TIMED_OUT"] for c in counts)
        failures = sum(c["WORKFLOW_TASK_FAILED"] for c in counts)
        print(f"\n{args.n} applications in flight, {len(chosen)} completed ({args.share:.0%}), "
              f"sampled every {args.interval:.0f} s for {time.monotonic() - warm:.0f} s after warm-up")
        print(f"{'':8s} {'warm-up MB':>10s} {'end MB':>8s} {'peak MB':>8s} {'slope MB/min':>12s}")
        for name in ("worker", "server"):
            s = samples.get(name, [])
            if s:
                print(f"{name:8s} {s[0][1]:10.0f} {s[-1][1]:8.0f} {max(v for _, v in s):8.0f} "
                      f"{slope_per_minute(s):12.2f}")
        print(f"workflow task timeouts: {timeouts}, workflow task failures: {failures} "
              f"(in {len(counts)} histories: every completed application and {len(sample) - len(chosen)} waiting)")
        print(f"update RPCs that timed out under load and were retried: {RPC_TIMEOUTS['n']}")
        print(f"events per completed application: {sum(c['events'] for c in counts[:len(chosen)]) / max(1, len(chosen)):.1f}")
    finally:
        stack.stop()
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10_000, help="applications in flight")
    ap.add_argument("--share", type=float, default=0.1, help="share approved and completing")
    ap.add_argument("--hold", type=float, default=60, help="seconds to hold after the share completed")
    ap.add_argument("--interval", type=float, default=5, help="seconds between memory samples")
    ap.add_argument("--concurrency", type=int, default=16, help="submissions / approvals at once")
    ap.add_argument("--sample", type=int, default=300, help="histories of waiting applications to read")
    args = ap.parse_args(argv)
    if args.n < 1 or not 0 <= args.share <= 1 or args.interval <= 0 or args.hold < 0:
        ap.error("--n >= 1, 0 <= --share <= 1, --interval > 0, --hold >= 0")
    code = asyncio.run(main_async(args))
    sys.stdout.flush()
    os._exit(code)          # temporalio 1.35 may crash at interpreter exit


if __name__ == "__main__":
    main()
