"""The calculation core compiled (make compile: mypyc, calc/*.so) and as pure Python give the same
results: every scenario and a seeded spread of claims under every clause, digested whole
(tests/calc_digest.py). Without a build both runs are pure Python and the test still passes;
DISBURSE_EXPECT_COMPILED=1 (the CI job that runs make compile first) also asks that the compiled
modules were the ones imported, so a build that silently fell back is not taken for one that ran."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# what the digest imports of scripts/compile_calc.sh's modules (calc.batch, calc.limits and calc.workdays it does not)
COMPILED = {"calc.caps", "calc.catalogue", "calc.context", "calc.credit_code", "calc.engine", "calc.errors",
            "calc.formulas", "calc.history", "calc.items", "calc.money", "calc.rules"}


def test_no_build_older_than_its_sources():
    """A calc/*.so is imported in place of the .py next to it: one built before the .py was last
    edited runs the old code. make compile records what it compiled (calc/.compiled-sources)."""
    built = sorted(p.name.split(".")[0] for p in (ROOT / "calc").glob("*.so"))
    if not built:
        return
    record = ROOT / "calc" / ".compiled-sources"
    assert record.exists(), f"calc/*.so without calc/.compiled-sources: make compile again, or make uncompile"
    for line in record.read_text().splitlines():
        digest, path = line.split(maxsplit=1)
        now = hashlib.sha256((ROOT / path).read_bytes()).hexdigest()
        assert now == digest, f"{path} changed since make compile: make compile again, or make uncompile"


def _digest(*args: str) -> dict:
    r = subprocess.run([sys.executable, "-m", "tests.calc_digest", *args], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_compiled_and_pure_python_give_the_same_results():
    pure, as_built = _digest("pure"), _digest()
    assert pure["compiled"] == []
    assert pure["results"] == as_built["results"] > 500
    assert as_built["digest"] == pure["digest"], f"compiled modules {as_built['compiled']} differ from pure Python"
    if os.environ.get("DISBURSE_EXPECT_COMPILED") == "1":
        assert set(as_built["compiled"]) >= COMPILED, as_built["compiled"]


def test_the_build_lives_inside_the_calc_package():
    """The compiled modules' shared runtime library is calc/native__mypyc.*.so: the installed
    `disburse` command imports the calc package from any directory, where a library at the
    repository's root is not on the path (every `disburse calc` failed: "No module named
    '…__mypyc'")."""
    assert not list(ROOT.glob("*__mypyc*.so")), "a shared library at the root: make compile again"
    if list((ROOT / "calc").glob("*.so")):
        assert list((ROOT / "calc").glob("native__mypyc*.so"))
