"""One digest of what the calculation core computes for a fixed set of claims: every scenario of
tests/scenarios, and a seeded spread of claims under every clause of the catalogue (bare, with
prior awards that bring caps and 不重复 into play, and claimed against each other under
从优、就高、不重复). Each result counts whole: amount, schedule, trace, refusal, items, as JSON.

    python -m tests.calc_digest          # the core as it imports (compiled modules where built)
    python -m tests.calc_digest pure     # the .py sources only, even where calc/*.so exist

Prints one JSON line: {"compiled": [modules loaded from a C extension], "results": n, "digest": sha256}.
tests/test_calc_compiled.py runs both and asks for the same digest (docs/compiled-core.md: make compile)."""
from __future__ import annotations

import hashlib
import importlib.machinery as machinery
import json
import random
import sys
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class _SourceOnly:
    """A finder for calc and calc.*: the .py file, never an extension module next to it."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name != "calc" and not name.startswith("calc."):
            return None
        finder = machinery.FileFinder(str(path[0]) if path else str(ROOT),
                                      (machinery.SourceFileLoader, machinery.SOURCE_SUFFIXES))
        return finder.find_spec(name, target)


def _results():
    from calc import InputError, calculate, calculate_claims, catalogue, parse_request
    from tests.claims import request_for
    from tests.test_scenarios import HERE, _request
    from calc.parameters import load_yaml

    def run(f):
        try:
            out = f()
        except InputError as e:
            return f"InputError {e.field}: {e}"
        if isinstance(out, list):
            return "[" + ",".join(r.model_dump_json() for r in out) + "]"
        return out.model_dump_json()

    for path in sorted(HERE.glob("*.yaml")):
        if path.name == "enterprises.yaml":
            continue
        for case in load_yaml(path.read_text(encoding="utf-8")):
            if "claims" in case:
                yield run(lambda: calculate_claims([parse_request(_request(case, c)) for c in case["claims"]]))
            else:
                yield run(lambda: calculate(parse_request(_request(case))))
    rnd = random.Random(20261128)
    ids = sorted(catalogue().clauses)
    for cid in ids:
        for _ in range(6):
            base = Decimal(rnd.randrange(1, 60_000_000)) / (100 if rnd.random() < 0.5 else 1)
            req = request_for(cid, base, realistic=rnd.random() < 0.5)
            yield run(lambda: calculate(req))
            prior = [{"clause_id": rnd.choice((cid, rnd.choice(ids))), "year": req.year - rnd.randrange(0, 3),
                      "amount": str(Decimal(rnd.randrange(0, 5_000_000))),
                      "item_id": rnd.choice((None, *calculate(req).items))} for _ in range(rnd.randrange(1, 4))]
            yield run(lambda: calculate(request_for(cid, base, prior_awards=prior)))
    for _ in range(60):
        a, b = rnd.sample(ids, 2)
        base = Decimal(rnd.randrange(1, 20_000_000))
        ra, rb = request_for(a, base), request_for(b, base)
        if ra.year == rb.year:
            yield run(lambda: calculate_claims([ra, rb.model_copy(update={"enterprise": ra.enterprise})]))


def main(argv: list[str]) -> None:
    if "pure" in argv:
        sys.meta_path.insert(0, _SourceOnly)
    sys.path.insert(0, str(ROOT))
    digest, n = hashlib.sha256(), 0
    for text in _results():
        digest.update(text.encode())
        digest.update(b"\n")
        n += 1
    compiled = sorted(name for name, m in sys.modules.items()
                      if (name == "calc" or name.startswith("calc.")) and str(getattr(m, "__file__", "")).endswith(".so"))
    print(json.dumps({"compiled": compiled, "results": n, "digest": digest.hexdigest()}))


if __name__ == "__main__":
    main(sys.argv[1:])
