"""What a new workflow instance costs the worker: the sandbox imports the workflow module afresh
for each instance (a new application, or one evicted from the sticky cache and woken again), and
without a bytecode cache (PYTHONDONTWRITEBYTECODE=1, a read-only image) Python compiled it each
time. Prints the CPU time per instance of a replayed recording (tests/histories), with Python's own
loader and with the worker's kept code (workflows/code_cache.py), in rounds taken in turn, the
bytecode cache out of reach for both (as in the deployed image before it was compiled at build).

    .venv/bin/python -m bench.instance [--n 20] [--rounds 3] [--history rejected-v5-lean2]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20, help="instances per round and way")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--history", default="rejected-v5-lean2", help="a recording in tests/histories")
    args = ap.parse_args()
    sys.dont_write_bytecode = True
    sys.pycache_prefix = tempfile.mkdtemp(prefix="bench-instance-")   # no cached bytecode to read

    from temporalio.worker import Replayer

    from tests.test_replay import _history
    from workflows import code_cache
    from workflows.application import ApplicationWorkflow
    from workflows.codec import data_converter

    history = _history(ROOT / "tests" / "histories" / f"{args.history}.json")
    replayer = Replayer(workflows=[ApplicationWorkflow], data_converter=data_converter())

    def per_instance(n: int) -> float:
        async def go():
            for _ in range(n):
                await replayer.replay_workflow(history)
        start = time.process_time()
        asyncio.run(go())
        return (time.process_time() - start) / n * 1000

    ways = {"Python's loader": [], "kept code (workflows/code_cache.py)": []}
    per_instance(2)                                       # warm-up
    for _ in range(args.rounds):
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, code_cache.KeptCodeFinder)]
        ways["Python's loader"].append(per_instance(args.n))
        code_cache.install()
        ways["kept code (workflows/code_cache.py)"].append(per_instance(args.n))
    print(f"a new workflow instance: replay of {args.history} ({len(history.events)} events), "
          f"{args.n} instances × {args.rounds} rounds, CPU ms per instance (best; all rounds)")
    best = {}
    for way, ms in ways.items():
        best[way] = min(ms)
        print(f"  {way:40} {best[way]:6.1f}   ({', '.join(f'{x:.1f}' for x in ms)})")
    old, new = best.values()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"  saved per instance: {old - new:.1f} ms ({new / old:.2f}×); load average {load:.1f} on "
          f"{os.cpu_count()} cores")


if __name__ == "__main__":
    main()
