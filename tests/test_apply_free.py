"""免申即享 (apply-free) batches (models/apply_free.py, `disburse apply-free`, `disburse facts import`):
the registry, the blacklist, the award book and the facts held decide who qualifies under a clause
for a year; the preview names every enterprise with its provisional amount or the rule that
refused it; confirmation starts one application per eligible enterprise through the batch path,
signed as the operator; they follow the normal review; a rerun starts none twice."""
from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from models import users
from tests.backend_helpers import wait_status
from tests.cli_env import PASSWORD
from tests.temporal_env import PREMIUM_CLAUSE, PREMIUM_FACTS, fresh_code

HEADER = ("credit_code", "clause_id", "year", "facts")


def _facts(premium: str, policy: str) -> str:
    return json.dumps({**PREMIUM_FACTS, "premium": premium, "policy_no": policy})


def _csv(tmp_path: Path, rows: list[list], name: str = "facts.csv", header=HEADER) -> Path:
    import csv
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(header)
    w.writerows(rows)
    p = tmp_path / name
    p.write_text(out.getvalue(), encoding="utf-8")
    return p


def _xlsx(tmp_path: Path, rows: list[list], name: str = "facts.xlsx", header=HEADER) -> Path:
    from openpyxl import Workbook
    wb = Workbook()
    ws = wb.active
    ws.append(list(header))
    for r in rows:
        ws.append(r)
    p = tmp_path / name
    wb.save(p)
    return p


@pytest.fixture
def city(db, tmp_path):
    return _city(db, tmp_path)


def _city(db, tmp_path):
    """A registry of six enterprises and what the city holds about them for the premium clause 2026:
    two eligible (400,000.00 and 50,000.00), one blacklisted, one without facts, one whose
    qualification ended before 2026, one registered in Zhengzhou (outside Hangzhou)."""
    codes = {k: fresh_code() for k in ("a", "b", "listed", "nofacts", "expired")}
    codes["zz"] = fresh_code("410100")
    quals = {k: "tech_enterprise:2020-01-01" for k in codes}
    quals["expired"] = "tech_enterprise:2020-01-01:2025-06-30"
    for k, c in codes.items():
        db.add_enterprise(c, name=f"企业{k}", qualifications=quals[k])
    db.add_blacklist(codes["listed"], name="企业listed", reason="严重失信")
    premiums = {"a": "800000", "b": "100000", "listed": "300000", "expired": "300000", "zz": "300000"}
    rows = [[codes[k], PREMIUM_CLAUSE, "2026", _facts(p, f"P-{k}")] for k, p in premiums.items()]
    from models import held_facts
    assert held_facts.import_facts(_xlsx(tmp_path, rows)) == 5
    return codes


def _by_code(p):
    return {c.credit_code: c for c in p.candidates}


# ------------------------------------------------------------------------------------ preview

def test_preview_names_every_enterprise_with_its_amount_or_the_rule(city):
    from models import apply_free as af
    p = af.preview(PREMIUM_CLAUSE, 2026)
    c = _by_code(p)
    assert len(p.candidates) == 6
    assert (c[city["a"]].outcome, c[city["a"]].amount) == ("eligible", Decimal("400000.00"))
    assert (c[city["b"]].outcome, c[city["b"]].amount) == ("eligible", Decimal("50000.00"))
    assert p.total == Decimal("450000.00")
    why = {k: (c[city[k]].outcome, c[city[k]].rule) for k in ("listed", "nofacts", "expired", "zz")}
    assert why == {"listed": ("not eligible", "blacklist"), "nofacts": ("not eligible", "facts"),
                   "expired": ("not eligible", "qualification"), "zz": ("not eligible", "jurisdiction")}
    assert "严重失信" in c[city["listed"]].reason
    assert "no facts held" in c[city["nofacts"]].reason and "facts.premium" in c[city["nofacts"]].reason
    assert "410100" in c[city["zz"]].reason
    assert all(x.amount is None for x in p.ineligible)
    assert "2 eligible, provisional total 450,000.00 yuan" in p.summary()



def test_an_enterprise_barred_after_a_recovery_is_not_eligible(city):
    """A bar (after a 追回, models/recovery.py) holds for apply-free starts as for submissions."""
    from datetime import date, datetime, timezone

    from models import apply_free as af
    from models.db import session
    from models.tables import Bar
    with session() as s:
        s.add(Bar(enterprise_code=city["a"], from_day=date(2026, 1, 5), until_day=date(2099, 1, 5),
                  reason="虚假申报追回", basis="false-statement", rule="hz2025 (十九)", application_id="app-x",
                  created_at=datetime.now(timezone.utc)))
        s.commit()
    c = _by_code(af.preview(PREMIUM_CLAUSE, 2026))
    assert (c[city["a"]].outcome, c[city["a"]].rule) == ("not eligible", "bar")
    assert "barred" in c[city["a"]].reason and "2099-01-05" in c[city["a"]].reason
    assert c[city["b"]].outcome == "eligible"

def test_the_provisional_amount_counts_the_award_book(db_any, tmp_path):
    """Caps count what the award book holds (committed or paid, not released): 'a' already has
    450,000.00 under the clause for 2026 from another policy, so 50,000.00 is left under the cap.
    (SQLite and PostgreSQL.)"""
    from datetime import date, datetime, timezone
    city = _city(db_any, tmp_path)

    from models import apply_free as af
    from models.db import session
    from models.tables import AwardLine
    now = datetime.now(timezone.utc)
    with session() as s:
        for i, (state, amount) in enumerate((("committed", "450000.00"), ("released", "90000.00"))):
            s.add(AwardLine(application_id=f"app-{city['a']}-other-{i}", enterprise_code=city["a"],
                            clause_id=PREMIUM_CLAUSE, year=2026, seq=1, item_id=f"policy:OLD-{i}@2026-01-01",
                            amount=Decimal(amount), item_value=Decimal(amount), due=date(2026, 12, 31),
                            state=state, committed_at=now))
        s.commit()
    c = _by_code(af.preview(PREMIUM_CLAUSE, 2026))
    assert (c[city["a"]].outcome, c[city["a"]].amount) == ("eligible", Decimal("50000.00"))
    assert c[city["b"]].amount == Decimal("50000.00")


def test_the_preview_exports_to_xlsx(city, tmp_path):
    from models import apply_free as af, sheets
    p = af.preview(PREMIUM_CLAUSE, 2026)
    out = sheets.write_table(tmp_path / "preview.xlsx", af.Preview.HEADER, p.rows())
    cols = tuple(sheets.Column(h, 1000) for h in af.Preview.HEADER)
    rows, problems = sheets.read_table(out.read_bytes(), "preview.xlsx", cols, max_rows=100)
    assert problems == [] and len(rows) == 6
    amounts = {r["credit_code"]: r["provisional_amount"] for _, r in rows}
    assert amounts[city["a"]] == "400000" and amounts[city["listed"]] == ""


@pytest.mark.parametrize("clause, year, needle", [
    ("hz2025-99-no-such-clause", "2026", "clause: unknown clause"),
    (PREMIUM_CLAUSE, "2030", "--year: 2030 is outside hz2025's policy window"),
    (PREMIUM_CLAUSE, "二〇二六", "--year: "),
])
def test_hostile_requests_are_one_clear_line(db, clause, year, needle):
    from models import apply_free as af
    with pytest.raises(af.ApplyFreeError) as e:
        af.preview(clause, year)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_a_facts_file_with_bad_rows_is_refused_row_by_row_and_nothing_imported(db, tmp_path):
    from models import held_facts
    from models.sheets import RegistryError
    known, unknown = fresh_code(), fresh_code()
    db.add_enterprise(known, name="K", qualifications="tech_enterprise:2020-01-01")
    p = _csv(tmp_path, [
        [known, PREMIUM_CLAUSE, "2026", _facts("800000", "P-1")],                 # line 2: good
        [unknown, PREMIUM_CLAUSE, "2026", _facts("800000", "P-2")],               # 3: not registered
        [known, "hz2025-99-nope", "2026", _facts("800000", "P-3")],               # 4: unknown clause
        [known, PREMIUM_CLAUSE, "2031", _facts("800000", "P-4")],                 # 5: outside the window
        [known, PREMIUM_CLAUSE, "2027", json.dumps({"premium": "1e30"})],         # 6: bad number
        [known, PREMIUM_CLAUSE, "2027", json.dumps({"premium": "100"})],          # 7: lacks policy_no
        [known, PREMIUM_CLAUSE, "2026", _facts("1", "P-8")],                      # 8: same as line 2
    ])
    with pytest.raises(RegistryError) as e:
        held_facts.import_facts(p)
    got = [(x.line, x.field) for x in e.value.problems]
    assert got == [(3, "credit_code"), (4, "clause_id"), (5, "year"), (6, "facts.premium"),
                   (7, "facts.policy_no"), (8, "credit_code")], e.value.lines()
    assert all(line.startswith(f"{p}: line ") for line in e.value.lines())
    assert held_facts.held_rows() == []


def test_facts_as_columns_read_like_the_json(db, tmp_path):
    """A bureau's own sheet: one column per fact (Excel numbers and dates typed as such)."""
    from datetime import datetime

    from models import held_facts
    from models.sheets import RegistryError
    a, b = fresh_code(), fresh_code()
    for c in (a, b):
        db.add_enterprise(c, name="K", qualifications="tech_enterprise:2020-01-01")
    held_facts.import_facts(_xlsx(tmp_path, [[a, PREMIUM_CLAUSE, 2026, 800000, "P-1", datetime(2026, 1, 10)]],
                                  header=("credit_code", "clause_id", "year", "premium", "policy_no", "period_start")))
    held_facts.import_facts(_csv(tmp_path, [[b, PREMIUM_CLAUSE, "2026", json.dumps(PREMIUM_FACTS)]]))
    got = {r["credit_code"]: r["facts"] for r in held_facts.held_rows()}
    assert got[a] == got[b] and json.loads(got[a]) == PREMIUM_FACTS
    with pytest.raises(RegistryError) as e:
        held_facts.import_facts(_csv(tmp_path, [[a, PREMIUM_CLAUSE, "2026", json.dumps(PREMIUM_FACTS), "1"]],
                                     header=HEADER + ("premium",)))
    assert (e.value.line, e.value.field) == (2, "premium") and "given twice" in str(e.value)


def test_facts_round_trip_through_the_export(db, tmp_path):
    from models import held_facts, sheets
    code = fresh_code()
    db.add_enterprise(code, name="K", qualifications="tech_enterprise:2020-01-01")
    held_facts.import_facts(_csv(tmp_path, [[code, PREMIUM_CLAUSE, "2026", _facts("800000", "=HYPERLINK()")]]))
    before = held_facts.held_rows()
    out = sheets.write_table(tmp_path / "f.xlsx", HEADER, sheets.rows_of(before, HEADER))
    assert held_facts.import_facts(out) == 1
    after = held_facts.held_rows()
    assert [{k: r[k] for k in HEADER} for r in after] == [{k: r[k] for k in HEADER} for r in before]


# ------------------------------------------------------------------------------------ starting

def _actor(user="op-af"):
    from models.credentials import Actor
    return Actor(user=user, role="operator", bureau=None)


def test_confirmation_starts_one_application_per_eligible_enterprise_once(harness, city):
    from cli import batch
    from models import apply_free as af
    from models.application import workflow_id_for
    from workflows import client as wc

    async def go():
        p = af.preview(PREMIUM_CLAUSE, 2026)
        rows = [batch.BatchRow(i, inp) for i, inp in enumerate(af.applications(p, "op-af"), start=1)]
        assert {r.inp.enterprise_code for r in rows} == {city["a"], city["b"]}
        out = await batch.submit_rows(harness.client, rows, actor=_actor())
        assert [o.outcome for o in out] == ["submitted", "submitted"]
        for k in ("a", "b"):
            app_id = workflow_id_for(city[k], PREMIUM_CLAUSE, 2026)
            await wait_status(harness, app_id, "review")               # the normal review follows
        # a rerun: the preview shows them started, and the same claims start nothing again
        again = af.preview(PREMIUM_CLAUSE, 2026)
        assert {c.credit_code for c in again.started} == {city["a"], city["b"]}
        assert again.eligible == []
        second = await batch.submit_rows(harness.client, rows, actor=_actor())
        assert [o.outcome for o in second] == ["already submitted"] * 2
        st = await wc.status(harness.client, workflow_id_for(city["a"], PREMIUM_CLAUSE, 2026))
        assert st["status"] == "review" and st.get("operator", "op-af") == "op-af"
        from models.db import session
        from models.tables import ApplicationRow
        from sqlmodel import select
        with session() as s:
            mirrored = {r.enterprise_code: r.status for r in s.exec(select(ApplicationRow))}
        assert mirrored == {city["a"]: "review", city["b"]: "review"}
    harness.run(go())


def _cli_on(harness, monkeypatch):
    """`disburse` in-process, its Temporal calls run on the harness's loop (where the workers run)."""
    import cli.main as main
    monkeypatch.setattr(main, "run", lambda fn, *a, **kw: harness.run(fn(harness.client, *a, **kw)))
    runner = CliRunner()
    return lambda *args: runner.invoke(main.app, [str(a) for a in args], catch_exceptions=False)


def test_cli_preview_confirm_and_rerun(harness, city, monkeypatch, tmp_path):
    from models.application import workflow_id_for
    monkeypatch.setenv("DISBURSE_TOKEN", users.add_user("op-af", role="operator", password=PASSWORD))
    cli = _cli_on(harness, monkeypatch)
    r = cli("apply-free", PREMIUM_CLAUSE, "--year", "2026", "--preview-only", "--out", tmp_path / "p.xlsx")
    assert r.exit_code == 0, r.output
    assert "400,000.00" in r.stdout and "50,000.00" in r.stdout and "blacklist" in r.stdout
    assert "nothing started" in r.stdout and (tmp_path / "p.xlsx").exists()
    r = cli("apply-free", PREMIUM_CLAUSE, "--year", "2026")          # no --yes, not a terminal
    assert r.exit_code == 0 and "nothing started" in r.stdout and "--yes" in r.stdout
    assert not _started(city)
    r = cli("apply-free", PREMIUM_CLAUSE, "--year", "2026", "--yes")
    assert r.exit_code == 0, r.output
    assert "2 started, 0 already started, 0 refused" in r.stdout
    for k in ("a", "b"):
        harness.run(wait_status(harness, workflow_id_for(city[k], PREMIUM_CLAUSE, 2026), "review"))
    r = cli("apply-free", PREMIUM_CLAUSE, "--year", "2026", "--yes")
    assert r.exit_code == 0, r.output
    assert "already started" in r.stdout and "nothing to start" in r.stdout


def _started(city) -> bool:
    from models.db import session
    from models.tables import ApplicationRow
    with session() as s:
        return any(s.get(ApplicationRow, f"app-{c}-{PREMIUM_CLAUSE}-2026") for c in city.values())


def test_cli_refuses_hostile_input_in_one_line(db, tmp_path, monkeypatch):
    import cli.main as main
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
    monkeypatch.setenv("DISBURSE_TOKEN", users.add_user("op-af", role="operator", password=PASSWORD))
    runner = CliRunner()
    for args, needle in ((["apply-free", "hz2025-99-x", "--year", "2026"], "clause: unknown clause"),
                         (["apply-free", PREMIUM_CLAUSE, "--year", "1999"], "--year: 1999 is outside")):
        r = runner.invoke(main.app, args, catch_exceptions=False)
        assert r.exit_code == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.output
    bad = _csv(tmp_path, [[fresh_code(), PREMIUM_CLAUSE, "2026", "{"]])
    r = runner.invoke(main.app, ["facts", "import", str(bad)], catch_exceptions=False)
    assert r.exit_code == 2 and "line 2: credit_code" in r.stderr and len(r.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------------------------ console

def test_console_preview_and_confirm(harness, city):
    import re

    import httpx

    from console.app import create_app
    from models.application import workflow_id_for
    users.add_user("op-af", role="operator", password=PASSWORD)
    users.add_user("kj-af", role="reviewer", bureau="杭州市科技局", password=PASSWORD)

    def console():
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(temporal_client=harness.client)),
                                 base_url="http://console.test", follow_redirects=False)

    async def go():
        async with console() as op, console() as kj:
            await op.post("/login", data={"user": "op-af", "password": PASSWORD, "next": "/"})
            home = await op.get("/")
            assert 'href="/apply-free"' in home.text
            token = re.search(r'name="csrf" value="([^"]+)"', home.text).group(1)
            r = await op.get("/apply-free", params={"clause": PREMIUM_CLAUSE, "year": "2031"})
            assert r.status_code == 400 and "2031 is outside" in r.text
            r = await op.get("/apply-free", params={"clause": PREMIUM_CLAUSE, "year": "2026"})
            assert r.status_code == 200 and "400,000.00" in r.text and "[blacklist]" in r.text
            assert "确认发起 2 个申请" in r.text
            form = {"clause": PREMIUM_CLAUSE, "year": "2026"}
            assert (await op.post("/apply-free", data=form)).status_code == 403          # no CSRF token
            r = await op.post("/apply-free", data={**form, "csrf": token})
            assert r.status_code == 200 and "发起 2 个" in r.text, r.text
            for k in ("a", "b"):
                await wait_status(harness, workflow_id_for(city[k], PREMIUM_CLAUSE, 2026), "review")
            r = await op.post("/apply-free", data={**form, "csrf": token})
            assert r.status_code == 200 and "发起 0 个" in r.text and r.text.count("<td>已发起</td>") == 2
            await kj.post("/login", data={"user": "kj-af", "password": PASSWORD, "next": "/"})
            assert (await kj.get("/apply-free")).status_code == 403
    harness.run(go())
