"""Batches from a spreadsheet (cli/batch.py): one application per row of a CSV or xlsx file, every
row validated before anything is submitted, duplicates within the file refused, re-running a
file reports what was already submitted. The CLI's `submit-batch` and the console's /batch."""
from __future__ import annotations

import io
import json
import re

import httpx
import pytest

from models import users
from models.sheets import SheetRefused
from tests.backend_helpers import register, wait_status
from tests.cli_env import PASSWORD
from tests.temporal_env import PREMIUM_CLAUSE, PREMIUM_FACTS, fresh_code

FACTS = json.dumps(PREMIUM_FACTS)


def _csv(rows: list[list[str]], header=("clause_id", "year", "enterprise_code", "facts"), bom=False) -> bytes:
    import csv
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(header)
    w.writerows(rows)
    return (("\ufeff" if bom else "") + out.getvalue()).encode("utf-8")


def _xlsx(rows: list[list], header=("clause_id", "year", "enterprise_code", "facts")) -> bytes:
    from openpyxl import Workbook
    wb = Workbook()
    ws = wb.active
    ws.append(list(header))
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _actor(user="op-b"):
    from models.credentials import Actor
    return Actor(user=user, role="operator", bureau=None)


# ------------------------------------------------------------------------------------ reading

def test_a_good_file_reads_into_applications(db):
    from cli import batch
    codes = [fresh_code() for _ in range(2)]
    rows = batch.read_batch(_csv([[PREMIUM_CLAUSE, "2026", c, FACTS] for c in codes], bom=True), "b.csv",
                            operator="op-b")
    assert [r.line for r in rows] == [2, 3]
    assert [r.inp.enterprise_code for r in rows] == codes
    assert all(r.inp.operator == "op-b" for r in rows)


def test_a_bad_row_refuses_the_whole_file_naming_each_row(db):
    from cli import batch
    good, dup = fresh_code(), fresh_code()
    data = _csv([
        [PREMIUM_CLAUSE, "2026", good, FACTS],
        ["hz2025-99-no-such-clause", "2026", fresh_code(), FACTS],             # line 3: unknown clause
        [PREMIUM_CLAUSE, "2026", "91330106MA2T00000X", FACTS],                 # line 4: bad credit code
        [PREMIUM_CLAUSE, "2026", fresh_code(), "{premium: 1"],                 # line 5: not JSON
        [PREMIUM_CLAUSE, "2026", dup, FACTS],
        [PREMIUM_CLAUSE, "2026", dup, FACTS],                                   # line 7: same as line 6
    ])
    with pytest.raises(SheetRefused) as e:
        batch.read_batch(data, "b.csv", operator="op-b")
    problems = e.value.problems
    assert [p.line for p in problems] == [3, 4, 5, 7]
    text = "\n".join([e.value.headline, *e.value.lines()])
    assert "4 rows" in text.splitlines()[0]
    assert "line 3: clause_id: unknown clause" in text
    assert "line 4: enterprise_code" in text
    assert "line 5: facts: not valid JSON" in text
    assert "line 7" in text and "line 6" in text


def test_limits_and_columns(db, monkeypatch):
    from cli import batch
    with pytest.raises(SheetRefused, match="operator: unknown column"):
        batch.read_batch(_csv([], header=("clause_id", "year", "enterprise_code", "facts", "operator")), "b.csv",
                         operator="op-b")
    monkeypatch.setattr(batch, "MAX_ROWS", 2)
    with pytest.raises(SheetRefused, match="more than 2 rows"):
        batch.read_batch(_csv([[PREMIUM_CLAUSE, "2026", fresh_code(), FACTS] for _ in range(3)]), "b.csv",
                         operator="op-b")
    with pytest.raises(SheetRefused, match="facts: longer than"):
        batch.read_batch(_csv([[PREMIUM_CLAUSE, "2026", fresh_code(), json.dumps({**PREMIUM_FACTS, "policy_no": "P" * batch.FACTS_MAX})]]),
                         "b.csv", operator="op-b")
    with pytest.raises(SheetRefused, match="no rows"):
        batch.read_batch(_csv([]), "b.csv", operator="op-b")


def test_xlsx_reads_like_csv(db):
    from cli import batch
    code = fresh_code()
    rows = batch.read_batch(_xlsx([[PREMIUM_CLAUSE, 2026, code, FACTS]],
                                  header=("clause_id", "year", "enterprise_code", "facts", "review_sla_days")),
                            "b.xlsx", operator="op-b")
    assert len(rows) == 1 and rows[0].inp.year == 2026 and rows[0].inp.enterprise_code == code
    with pytest.raises(SheetRefused, match="line 2: year"):
        batch.read_batch(_xlsx([[PREMIUM_CLAUSE, "soon", code, FACTS]]), "b.xlsx", operator="op-b")


# ------------------------------------------------------------------------------------ submitting

def test_a_batch_submits_each_row_and_a_rerun_reports_already_submitted(harness, db):
    from cli import batch
    codes = [register(db, fresh_code()) for _ in range(3)]
    data = _csv([[PREMIUM_CLAUSE, "2026", c, FACTS] for c in codes])

    async def go():
        rows = batch.read_batch(data, "b.csv", operator="op-b")
        out = await batch.submit_rows(harness.client, rows, actor=_actor())
        assert [o.outcome for o in out] == ["submitted"] * 3
        for o in out:
            assert (await wait_status(harness, o.application_id, "review"))["status"] == "review"
        again = await batch.submit_rows(harness.client, batch.read_batch(data, "b.csv", operator="op-b"),
                                        actor=_actor())
        assert [o.outcome for o in again] == ["already submitted"] * 3
        assert [o.application_id for o in again] == [o.application_id for o in out]
        # a half-finished batch: the file grows by one row, only that one is submitted
        more = register(db, fresh_code())
        grown = _csv([[PREMIUM_CLAUSE, "2026", c, FACTS] for c in [*codes, more]])
        third = await batch.submit_rows(harness.client, batch.read_batch(grown, "b.csv", operator="op-b"),
                                        actor=_actor())
        assert [o.outcome for o in third] == ["already submitted"] * 3 + ["submitted"]
        assert batch.summary(third) == "4 rows: 1 submitted, 3 already submitted, 0 refused"
    harness.run(go())


# ------------------------------------------------------------------------------------ CLI

def test_cli_refuses_a_bad_file_without_connecting(tmp_path, monkeypatch, db):
    from typer.testing import CliRunner

    from cli.main import app
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
    monkeypatch.setenv("DISBURSE_TOKEN", users.add_user("op-b", role="operator", password=PASSWORD))
    f = tmp_path / "b.csv"
    f.write_bytes(_csv([[PREMIUM_CLAUSE, "2026", fresh_code(), FACTS],
                        ["hz2025-99-no-such-clause", "2026", fresh_code(), FACTS]]))
    r = CliRunner().invoke(app, ["submit-batch", str(f), "--operator", "op-b"], catch_exceptions=False)
    assert r.exit_code != 0
    assert "line 3: clause_id: unknown clause" in r.stderr
    assert "nothing was submitted" in r.stderr


# ------------------------------------------------------------------------------------ console

def _console(harness):
    from console.app import create_app
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(temporal_client=harness.client)),
                             base_url="http://console.test", follow_redirects=False)


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def test_console_batch_upload(harness, db):
    users.add_user("op-b", role="operator", password=PASSWORD)
    users.add_user("kj-b", role="reviewer", bureau="杭州市科技局", password=PASSWORD)
    codes = [register(db, fresh_code()) for _ in range(2)]
    data = _csv([[PREMIUM_CLAUSE, "2026", c, FACTS] for c in codes])
    bad = _csv([[PREMIUM_CLAUSE, "2026", "not-a-code", FACTS]])

    async def go():
        async with _console(harness) as op, _console(harness) as kj:
            await op.post("/login", data={"user": "op-b", "password": PASSWORD, "next": "/"})
            form = await op.get("/batch")
            assert form.status_code == 200 and 'action="/batch"' in form.text
            assert 'href="/batch"' in form.text                                  # in the nav
            token = _csrf(form.text)
            r = await op.post("/batch", data={}, files={"batch": ("b.csv", data)})
            assert r.status_code == 403                                          # no CSRF token
            r = await op.post("/batch", data={"csrf": token}, files={"batch": ("b.csv", bad)})
            assert r.status_code == 400 and "line 2: enterprise_code" in r.text
            r = await op.post("/batch", data={"csrf": token}, files={"batch": ("b.csv", data)})
            assert r.status_code == 200, r.text
            from models.application import workflow_id_for
            for c in codes:
                app_id = workflow_id_for(c, PREMIUM_CLAUSE, 2026)
                assert f'href="/applications/{app_id}"' in r.text
                await wait_status(harness, app_id, "review")
            assert "已提交" in r.text
            r = await op.post("/batch", data={"csrf": token}, files={"batch": ("b.csv", data)})
            assert r.status_code == 200 and r.text.count("此前已提交") == 2
            await kj.post("/login", data={"user": "kj-b", "password": PASSWORD, "next": "/"})
            assert (await kj.get("/batch")).status_code == 403
            page = await kj.get("/")
            r = await kj.post("/batch", data={"csrf": _csrf(page.text)}, files={"batch": ("b.csv", data)})
            assert r.status_code == 403
    harness.run(go())
