"""Hostile files given to the REAL `disburse` command (a subprocess, as an operator runs it).

Every file of tests/bad_files/ and every file generated below (the binary and the big ones are
made here, not committed) must end the same way: exit code 2 (bad input), nothing on stdout,
exactly one line on stderr, no traceback, at most 500 characters, naming what is wrong.
Every command that reads a JSON file goes through the one loader (cli/backend.load_json), so one
case of each kind of loader refusal is also run through `check`, `submit`, `provide-info` and
`evidence` (refused before any connection to Temporal).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DISBURSE = ROOT / ".venv" / "bin" / "disburse"
CORPUS = ROOT / "tests" / "bad_files"
EXAMPLE = ROOT / "examples" / "calc" / "hz2025-01-tech-loan-interest.json"
MB = 1024 * 1024

# committed corpus: file name -> a phrase the one error line must contain (the rule that bit)
COMMITTED = {
    "top-level-array.json": "JSON object",
    "top-level-string.json": "JSON object",
    "top-level-number.json": "JSON object",
    "top-level-null.json": "JSON object",
    "empty.json": "not valid JSON",
    "only-whitespace.json": "not valid JSON",
    "not-json.json": "not valid JSON",
    "truncated.json": "not valid JSON",
    "calc-not-an-object.json": "calc: expected a JSON object",
    "lone-surrogate.json": "enterprise.name: a lone surrogate",
    "lone-surrogate-key.json": "lone surrogate",
    "nan-amount.json": "facts.premium: NaN",
    "infinity-amount.json": "facts.premium: -Infinity",
    "exponent-amount.json": "facts.premium: 1e30 is in exponent notation",
    "huge-integer.json": "facts.premium: a number with more than 20 digits",
    "fullwidth-digits.json": "facts.premium: ",
    "duplicate-key.json": "appears twice",
    "control-char-in-key.json": "facts.a\\nb\\x1b[31m",
    "wrong-types.json": "clause_id",
    "nested-junk.json": "facts.loans.0",
    "deep-100.json": "nested deeper than",
    "duplicate-loan.json": "facts.loans.1.loan_id: ",
}
# cases refused by the loader itself, also run through the other commands that read a JSON file
# (one of each kind of refusal: the loader is the same code whatever the command)
LOADER_LEVEL = {"top-level-array.json", "lone-surrogate.json", "duplicate-key.json", "gbk.json", "a-directory"}


def _request(clause_id: str = "hz2025-04-tech-insurance-premium", name: str = "杭州示例科技有限公司") -> dict:
    return {"clause_id": clause_id, "year": 2026,
            "enterprise": {"credit_code": "91330106MA2H00001E", "name": name,
                           "qualifications": [{"kind": "tech_enterprise", "valid_from": "2020-01-01"}]},
            "facts": {"premium": "800000", "policy_no": "P-1", "period_start": "2026-01-10"}}


def _generated(d: Path) -> dict[str, tuple[Path, str]]:
    """The binary and big cases, written into tmp: name -> (path, phrase expected on stderr)."""
    text = json.dumps(_request(), ensure_ascii=False)
    out: dict[str, tuple[Path, str]] = {}

    def put(name: str, data: bytes, phrase: str) -> None:
        p = d / name
        p.write_bytes(data)
        out[name] = (p, phrase)

    put("utf16-le-bom.json", text.encode("utf-16"), "UTF-16")
    put("utf16-be-no-bom.json", text.encode("utf-16-be"), "NUL")
    put("utf32.json", text.encode("utf-32"), "UTF-32")
    put("gbk.json", text.encode("gbk"), "not UTF-8")
    put("latin1.json", json.dumps({"name": "Müller"}, ensure_ascii=False).encode("latin-1"), "not UTF-8")
    put("nul-bytes.json", b'{"clause_id": "hz\x00"}', "NUL")
    put("binary.json", bytes(range(256)) * 8, "NUL")
    put("too-large.json", b'{"clause_id": "' + b"a" * (6 * MB) + b'"}', "larger than 5 MB")
    put("id-4mb.json", json.dumps(_request(clause_id="x" * (4 * MB))).encode(), "clause_id")
    put("id-10mb.json", json.dumps(_request(clause_id="x" * (10 * MB))).encode(), "larger than 5 MB")
    big_key = _request()
    big_key["facts"]["k" * MB] = 1
    put("key-1mb.json", json.dumps(big_key).encode(), f"(1048576 chars)")
    put("name-4mb.json", json.dumps(_request(name="名" * MB), ensure_ascii=False).encode(), "enterprise.name")
    many = _request()
    many["facts"]["loans"] = [{}] * 900_000                    # 3.6 MB: each item would be validated
    put("many-items.json", json.dumps(many).encode(), "facts.loans: more than 10000 items")
    put("many-keys.json", json.dumps({**_request(), "facts": {f"k{i}": 1 for i in range(300_000)}}).encode(),
        "facts: more than 10000 items")
    put("deep-100000.json", b"[" * 100_000 + b"]" * 100_000, "nested deeper than")
    put("deep-objects.json", b'{"a":' * 5000 + b"1" + b"}" * 5000, "nested deeper than")
    (d / "a-directory").mkdir()
    out["a-directory"] = (d / "a-directory", "is a directory")
    out["missing.json"] = (d / "missing.json", "no such file")
    newline = d / "bad\nname\x1b[31m.json"
    newline.write_text("[]", encoding="utf-8")
    out["newline-in-name"] = (newline, "JSON object")
    long_name = d / ("n" * 250 + ".json")
    long_name.write_text("[]", encoding="utf-8")
    out["long-name"] = (long_name, "JSON object")
    return out


def _run(args: list[str], tmp: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TEMPORAL_ADDRESS": "127.0.0.1:9", "DISBURSE_DB_URL": f"sqlite:///{tmp / 'x.db'}",
           "PYTHONIOENCODING": "utf-8"}
    env.pop("DISBURSE_DEBUG", None)
    return subprocess.run([str(DISBURSE), *args], capture_output=True, timeout=120, env=env, cwd=tmp)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    return _generated(tmp_path_factory.mktemp("generated"))


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, generated):
    """Run every case through the real CLI once, in parallel: (command, case) -> (result, phrase)."""
    assert DISBURSE.exists(), "run `make env` first"
    tmp = tmp_path_factory.mktemp("bad")
    cases = {name: (CORPUS / name, phrase) for name, phrase in COMMITTED.items()}
    cases.update(generated)
    jobs = {}
    for name, (path, phrase) in cases.items():
        jobs[("calc", name)] = (["calc", str(path)], phrase)
        if name in LOADER_LEVEL:
            jobs[("check", name)] = (["check", str(path)], phrase)
            jobs[("submit", name)] = (["submit", str(path), "--operator", "op-1"], phrase)
            jobs[("provide-info", name)] = (["provide-info", "app-x", str(path), "--operator", "op-1"], phrase)
            jobs[("evidence", name)] = (["evidence", "app-x", str(path), "--operator", "op-1"], phrase)
    with ThreadPoolExecutor(max_workers=min(16, (os.cpu_count() or 2) * 2)) as pool:
        futures = {key: pool.submit(_run, args, tmp) for key, (args, _) in jobs.items()}
        return {key: (f.result(), jobs[key][1]) for key, f in futures.items()}


def _keys():
    names = list(COMMITTED) + ["utf16-le-bom.json", "utf16-be-no-bom.json", "utf32.json", "gbk.json",
                               "latin1.json", "nul-bytes.json", "binary.json", "too-large.json", "id-4mb.json",
                               "id-10mb.json", "key-1mb.json", "many-items.json", "many-keys.json", "name-4mb.json", "deep-100000.json", "deep-objects.json",
                               "a-directory", "missing.json", "newline-in-name", "long-name"]
    keys = [("calc", n) for n in names]
    for cmd in ("check", "submit", "provide-info", "evidence"):
        keys += [(cmd, n) for n in names if n in LOADER_LEVEL]
    return keys


def test_the_corpus_is_all_listed():
    assert {p.name for p in CORPUS.glob("*.json")} == set(COMMITTED)


@pytest.mark.parametrize("key", _keys(), ids=lambda k: f"{k[0]}:{k[1]}")
def test_a_bad_file_is_one_line_on_stderr_exit_2(outcomes, key):
    r, phrase = outcomes[key]
    out, err = r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")
    assert r.returncode == 2, (r.returncode, err[-2000:])
    assert out == "", out[:500]
    assert "Traceback" not in err, err[-2000:]
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n"), err[:2000]
    assert len(err.rstrip("\n")) <= 500, err[:600]
    assert err.startswith("error: "), err
    assert phrase in err, (phrase, err)


@pytest.mark.parametrize("case, run", [("id-4mb.json", "x"), ("key-1mb.json", "k"), ("name-4mb.json", "名")])
def test_a_long_input_value_is_echoed_at_most_80_characters(outcomes, case, run):
    err = outcomes[("calc", case)][0].stderr.decode()
    assert run * 81 not in err, err[:600]


@pytest.mark.parametrize("case", ["many-items.json", "many-keys.json", "too-large.json", "deep-100000.json"])
def test_a_hostile_file_is_refused_in_seconds(generated, case, tmp_path):
    """No file makes a command work for long (900,000 loans took 77 s and 7 GB before the item
    limits): each is refused in seconds, run on its own."""
    path, _ = generated[case]
    started = time.perf_counter()
    r = _run(["calc", str(path)], tmp_path)
    assert r.returncode == 2, r.stderr[:300]
    assert time.perf_counter() - started < 10


def test_the_example_still_runs(tmp_path):
    r = _run(["calc", str(EXAMPLE)], tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["amount"] == "60493.15"


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    f = tmp_path / "bom.json"
    f.write_bytes(b"\xef\xbb\xbf" + EXAMPLE.read_bytes())
    r = _run(["calc", str(f)], tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["amount"] == "60493.15"


def test_output_survives_a_terminal_that_is_not_utf8(tmp_path):
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    r = subprocess.run([str(DISBURSE), "calc", str(EXAMPLE)], capture_output=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["amount"] == "60493.15"


if __name__ == "__main__":   # pragma: no cover - a quick look: python tests/test_bad_files.py FILE
    print(_run(["calc", sys.argv[1]], Path.cwd()))
