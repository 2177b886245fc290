#!/usr/bin/env python
"""Run the application simulation (tests/simulation.py) outside pytest, for longer than CI does.

    .venv/bin/python scripts/simulate.py --seed 7 --steps 1000 --runs 5     # seeds 7, 8, 9, 10, 11
    .venv/bin/python scripts/simulate.py --seed 404 --steps 100 --restarts  # with worker restarts
    .venv/bin/python scripts/simulate.py --seed 7 --steps 300 --verbose     # every operation

Each run starts its own time-skipping Temporal server and worker (tests/temporal_env.py) and a
fresh SQLite database in a temporary directory, drives the applications of a few enterprises
with the seed's operations, and checks the invariants at checkpoints and at the end. Per run it
prints the seed, the steps, the operations by kind (accepted/refused), the applications by final
status, why applications were refused, the total paid, and "invariants: OK" or the first
violation with the step it was found at and the last operations. Exit status 1 if any run broke
an invariant (or hung), 0 otherwise.

--seed S replays a run: the same operations are drawn in the same order; which application an
operation acts on follows the statuses observed, and concurrent operations interleave as timing
has it, so a replay usually (not always) takes the same path. The activities' logs go to stderr
(2>/dev/null hides them).
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=None, help="first seed (default: a random one, printed)")
    parser.add_argument("--steps", type=int, default=1000, help="operations per run (default 1000)")
    parser.add_argument("--runs", type=int, default=1, help="runs, with seeds seed, seed+1, ... (default 1)")
    parser.add_argument("--restarts", action="store_true",
                        help="restart the worker now and then (a worker without a workflow cache: slower)")
    parser.add_argument("--verbose", action="store_true", help="print every operation as it happens")
    args = parser.parse_args()
    if args.steps < 1 or args.runs < 1:
        parser.error("--steps and --runs must be at least 1")

    from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

    from tests.simulation import Config, SimulationFailure, run_seed
    # the SDK core's warnings (one per worker start about the test server's version) off the report
    Runtime.set_default(Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(
        filter=TelemetryFilter(core_level="ERROR", other_level="ERROR")))))
    first = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1_000_000)
    failed, started = [], time.monotonic()
    total_steps, total_paid = 0, Decimal("0.00")
    for seed in range(first, first + args.runs):
        print(f"--- run {seed - first + 1}/{args.runs}: seed {seed}, {args.steps} steps"
              + (", worker restarts" if args.restarts else ""), flush=True)
        with tempfile.TemporaryDirectory(prefix="disburse-sim-") as workdir:
            try:
                report = run_seed(seed, args.steps, workdir=workdir, config=Config(restarts=args.restarts),
                                  log=(lambda line: print(line, flush=True)) if args.verbose else None)
            except SimulationFailure as e:
                failed.append(seed)
                report = getattr(e, "report", None)
                print(str(e), flush=True)
            if report is not None:
                print(report.summary(), flush=True)
                total_steps += report.steps
                total_paid += report.total_paid
    print(f"--- {args.runs} run(s), {total_steps} steps in {time.monotonic() - started:.0f}s, "
          f"{total_paid} paid in all; "
          + (f"invariants violated with seed(s) {', '.join(map(str, failed))}" if failed else "invariants held"))
    return 1 if failed else 0


if __name__ == "__main__":
    code = 2
    try:
        code = main()
    except KeyboardInterrupt:
        code = 130
    except SystemExit as e:                   # argparse: --help, usage errors
        code = e.code if isinstance(e.code, int) else 2
    except BaseException:                     # noqa: BLE001 - shown, then the exit below
        import traceback
        traceback.print_exc()
    finally:
        # temporalio 1.35 can crash the interpreter at exit (see cli/main.py main()): leave at once
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
