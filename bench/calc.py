"""Benchmark of the calculation core: clause evaluations per second on one core, traces on.

Prints three figures:
  1. throughput over a mixed batch of every payable clause (target ≥ 50,000/s);
  2. cost per evaluation as the catalogue grows (×1, ×10, ×100 clauses loaded);
  3. cost per evaluation as the enterprise's award history grows (0, 100, 10,000 prior awards,
     indexed once per enterprise, as the ledger activity does).

    .venv/bin/python bench/calc.py [--seconds 2]
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from calc import calculate, catalogue  # noqa: E402
from calc.catalogue import Catalogue  # noqa: E402
from calc.history import AwardHistory  # noqa: E402
from tests.claims import request_for  # noqa: E402


def batch(n_per_clause: int = 8) -> list:
    rnd = random.Random(7)
    reqs = []
    for cid in sorted(catalogue().clauses):
        for _ in range(n_per_clause):
            reqs.append(request_for(cid, Decimal(rnd.randrange(10_000, 50_000_000)), realistic=True))
    rnd.shuffle(reqs)
    return reqs


def rate(reqs, seconds: float, history=None, cat=None) -> tuple[float, int]:
    """Evaluations per second over `reqs`, repeated for about `seconds`."""
    n, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for r in reqs:
            calculate(r, history=history, cat=cat)
        n += len(reqs)
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start), n


def inflated(factor: int) -> Catalogue:
    """The real catalogue plus (factor − 1) renamed copies of every clause."""
    base = catalogue()
    clauses = dict(base.clauses)
    for k in range(1, factor):
        for cid, (doc, clause) in base.clauses.items():
            copy_id = f"{cid}-copy{k}"
            clauses[copy_id] = (doc, clause.model_copy(update={"id": copy_id}))
    return Catalogue(documents=base.documents, clauses=clauses, groups=base.groups)


def history_of(n: int) -> AwardHistory:
    rnd = random.Random(11)
    ids = sorted(catalogue().clauses)
    h = AwardHistory()
    for i in range(n):
        h.add(rnd.choice(ids), rnd.randrange(2000, 2025), Decimal(rnd.randrange(1, 100_000)), f"item-{i}")
    return h


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    args = ap.parse_args()
    reqs = batch()
    n_clauses = len(catalogue().clauses)
    for r in reqs[:50]:   # warm up
        calculate(r)
    traces = sum(len(calculate(r).trace) for r in reqs) / len(reqs)
    print(f"disburse calc benchmark · {n_clauses} payable clauses · batch of {len(reqs)} claims · "
          f"{traces:.1f} trace steps per evaluation · one core")
    ev, n = rate(reqs, args.seconds, history=AwardHistory())
    print(f"1. mixed batch, traces on: {ev:,.0f} evaluations/s ({1e6 / ev:.1f} µs each, {n:,} evaluations)"
          f"  target ≥ 50,000/s: {'met' if ev >= 50_000 else 'NOT MET'}")
    print("2. cost per evaluation vs clauses loaded:")
    for factor in (1, 10, 100):
        cat = inflated(factor)
        ev, _ = rate(reqs, args.seconds / 2, history=AwardHistory(), cat=cat)
        print(f"   {len(cat.clauses):>6,} clauses loaded: {1e6 / ev:6.1f} µs/evaluation")
    print("3. cost per evaluation vs award history (indexed once per enterprise):")
    for size in (0, 100, 10_000):
        h = history_of(size)
        ev, _ = rate(reqs, args.seconds / 2, history=h)
        print(f"   {size:>6,} prior awards: {1e6 / ev:6.1f} µs/evaluation")


if __name__ == "__main__":
    main()
