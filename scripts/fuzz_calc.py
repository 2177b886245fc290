"""Fuzz the calculation core's front door for longer than CI does.

    .venv/bin/python scripts/fuzz_calc.py --examples 100000 --seed 7

Runs the hostile requests of tests/test_fuzz_calc.py (junk of every type, and valid claims of every
clause with values, lists and keys mutated) through `calc.parse_request` + `calc.calculate` and
checks the same invariant: an InputError or a CalcResult (amount ≥ 0, to the fen, tranches adding
up, never above a cap, zero with a refusal naming its rule) — never another exception. Prints the
examples run, the time, and what the requests came to; exits 1 with the failing request (shrunk by
hypothesis) when the invariant breaks. The same seed gives the same run.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hypothesis import HealthCheck, given, seed, settings  # noqa: E402

from tests.test_fuzz_calc import check, claims, junk, requests  # noqa: E402

KINDS = {"mixed": requests, "claims": claims(), "junk": junk}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=20_000, help="how many requests to try (default 20000)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0); the same seed, the same run")
    ap.add_argument("--kind", choices=sorted(KINDS), default="mixed",
                    help="junk only, near-valid claims only, or both (default)")
    args = ap.parse_args(argv)
    outcomes: Counter = Counter()

    @seed(args.seed)
    @settings(max_examples=args.examples, deadline=None, database=None, print_blob=True,
              suppress_health_check=list(HealthCheck))
    @given(data=KINDS[args.kind])
    def fuzz(data):
        outcomes[check(data)] += 1

    started = time.perf_counter()
    try:
        fuzz()
    except Exception as e:   # noqa: BLE001 - report, do not hide
        print(f"INVARIANT BROKEN after {sum(outcomes.values())} examples: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started
    total = sum(outcomes.values())
    print(f"{total} examples ({args.kind}, seed {args.seed}) in {elapsed:.1f} s "
          f"({total / elapsed:.0f}/s): the invariant held")
    for outcome, n in outcomes.most_common():
        print(f"  {n:8d}  {outcome}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
