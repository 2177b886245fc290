"""The product and its tests read nothing outside the repository.

The workshop folder beside the checkout (material for building disburse) is not part of the
product: a clone with nothing beside it must pass `make test` (`.ci/run` proves that). This is
the cheap guard: no tracked file of the product, its tests or its data refers to that folder.
The needles are built from pieces so this file does not match itself.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ("calc", "models", "workflows", "activities", "notifications", "cli", "deploy", "tests", "policies",
           "scripts", "worker.py", "Makefile", "pyproject.toml")
_WORKSHOP = "sha" + "red"
# ../<workshop>, /<workshop>/, <workshop>/seeds (its seed texts), and the parent of the checkout
NEEDLES = (".." + "/" + _WORKSHOP, "/" + _WORKSHOP + "/", _WORKSHOP + "/seeds", "parents" + "[2]")
_SKIP_DIRS = {"__pycache__", ".pytest_cache", ".hypothesis"}


def _tracked_files() -> list[Path]:
    """The tracked files under CHECKED (git ls-files); without git, every file under them."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--", *CHECKED], cwd=ROOT,
                             capture_output=True, check=True).stdout
        return [ROOT / p for p in out.decode("utf-8").split("\0") if p]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for name in CHECKED:
            p = ROOT / name
            if p.is_file():
                files.append(p)
            elif p.is_dir():
                files += [f for f in p.rglob("*")
                          if f.is_file() and not _SKIP_DIRS & set(f.relative_to(ROOT).parts)]
        return files


def test_the_guard_sees_the_tree():
    names = {f.relative_to(ROOT).as_posix() for f in _tracked_files()}
    assert "Makefile" in names and "tests/test_policy_data.py" in names, sorted(names)[:20]


def test_nothing_refers_to_the_workshop_folder():
    hits = []
    for f in _tracked_files():
        if not f.is_file():
            continue
        data = f.read_bytes()
        for needle in NEEDLES:
            if needle.encode() in data:
                line = data[:data.index(needle.encode())].count(b"\n") + 1
                hits.append(f"{f.relative_to(ROOT).as_posix()}:{line}: {needle}")
    assert not hits, "references outside the repository:\n" + "\n".join(hits)
