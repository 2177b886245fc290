"""Budget lines (models/budget.py): the award book's commitments draw on the line of their clause and
year under the line's lock; a line that cannot cover an award commits nothing and the application
waits in awaiting_budget until finance tops it up or rejects it; releases give the room back,
payments move it from committed to paid; imports are all or nothing; the report, its workbook and
its chart. Book tests run on SQLite and PostgreSQL (`db_any`); the workflow on the time-skipping
server."""
from __future__ import annotations

import threading
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from calc.model import CalcResult, Tranche
from models import book, budget
from models.sheets import SheetRefused
from tests.temporal_env import PREMIUM_CLAUSE

LOAN = "hz2025-01-tech-loan-interest"
HEADER = "line_id,name,year,clause_ids,amount,document\n"


def _lines(tmp_path: Path, *rows: str, name: str = "budget.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def _import(tmp_path: Path, *rows: str) -> int:
    return budget.import_file(_lines(tmp_path, *rows), who="cz-li")


def _award(app: str, amount: str, *, clause: str = PREMIUM_CLAUSE, dues=(date(2026, 3, 1),), pause: float = 0.0):
    """A stand-in calculation: `amount` in as many tranches as `dues` (the last takes the rest)."""
    def calculate(prior: list[dict]) -> CalcResult:
        time.sleep(pause)                      # widen the window between the budget check and the write
        total = Decimal(amount)
        part = (total / len(dues)).quantize(Decimal("0.01"))
        schedule = tuple(Tranche(i + 1, d, part if i < len(dues) - 1 else total - part * (len(dues) - 1))
                         for i, d in enumerate(dues))
        return CalcResult(clause_id=clause, year=2026, amount=total, items={f"item:{app}": total},
                          item_values={f"item:{app}": total}, schedule=schedule)
    return calculate


def _figures(line_id: str) -> dict:
    return next(r for r in budget.report() if r["line_id"] == line_id)


# ------------------------------------------------------------------------------------ the award book

def test_a_clause_without_a_line_is_not_budget_controlled(db_any, tmp_path):
    _import(tmp_path, f"B-LOAN,贷款贴息,2026,{LOAN},100,杭财预〔2026〕1号")
    res = book.commit("app-1", "E-1", 2026, _award("1", "400000"), budget=True)
    assert res.refusal is None and res.amount == Decimal("400000")
    assert [ln["state"] for ln in book.lines("app-1")] == ["committed"]


def test_an_exhausted_line_commits_nothing_until_it_is_topped_up(db_any, tmp_path):
    _import(tmp_path, f"B-PREM,科技保险,2026,{PREMIUM_CLAUSE},500000,杭财预〔2026〕2号")
    first = book.commit("app-1", "E-1", 2026, _award("1", "400000"), budget=True)
    assert first.refusal is None
    second = book.commit("app-2", "E-2", 2026, _award("2", "400000"), budget=True)
    assert second.refusal.code == "budget_exhausted"
    assert second.refusal.rule == "budget:B-PREM"
    assert "B-PREM" in second.refusal.reason and "400000" in second.refusal.reason
    assert "100000.00 available of 500000.00" in second.refusal.reason
    assert book.lines("app-2") == []                                  # nothing committed
    assert _figures("B-PREM")["available"] == Decimal("100000.00")
    budget.top_up("B-PREM", Decimal("300000"), who="cz-li", document="杭财预〔2026〕9号", reason="追加")
    again = book.commit("app-2", "E-2", 2026, _award("2", "400000"), budget=True)
    assert again.refusal is None
    f = _figures("B-PREM")
    assert (f["budget"], f["committed"], f["available"]) == (Decimal("800000.00"), Decimal("800000.00"), Decimal("0.00"))


def test_two_enterprises_racing_for_the_last_room_exactly_one_fits(db_any, tmp_path):
    """Real concurrency: threads, each its own enterprise (so the enterprise locks do not serialize
    them), against one line with room for one award; repeated so the race has its chances."""
    for round_ in range(4):
        line = f"B-RACE{round_}"
        _import(tmp_path, f"{line},科技保险,{2026 + round_},{PREMIUM_CLAUSE},300000,")
        results: dict[int, CalcResult] = {}
        barrier = threading.Barrier(2)

        def one(i: int) -> None:
            barrier.wait()
            results[i] = book.commit(f"app-r{round_}-{i}", f"E-r{round_}-{i}", 2026 + round_,
                                     _award(f"r{round_}{i}", "200000", pause=0.05), budget=True)
        threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        codes = sorted(r.refusal.code if r.refusal else "committed" for r in results.values())
        assert codes == ["budget_exhausted", "committed"], codes
        f = _figures(line)
        assert f["committed"] == Decimal("200000.00") and f["available"] == Decimal("100000.00")


def test_many_enterprises_at_once_never_overdraw_a_line(db_any, tmp_path):
    _import(tmp_path, f"B-MANY,科技保险,2026,{PREMIUM_CLAUSE},100000,")
    results = []
    lock = threading.Lock()

    def one(i: int) -> None:
        r = book.commit(f"app-m{i}", f"E-m{i}", 2026, _award(f"m{i}", "30000", pause=0.02), budget=True)
        with lock:
            results.append(r)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sum(1 for r in results if r.refusal is None) == 3          # 3 × 30,000 ≤ 100,000 < 4 × 30,000
    assert _figures("B-MANY")["committed"] == Decimal("90000.00")


def test_a_release_gives_the_room_back_and_a_payment_moves_it_to_paid(db_any, tmp_path):
    _import(tmp_path, f"B-PREM,科技保险,2026,{PREMIUM_CLAUSE},500000,")
    book.commit("app-1", "E-1", 2026, _award("1", "300000", dues=(date(2026, 3, 1), date(2027, 3, 1))), budget=True)
    assert book.commit("app-2", "E-2", 2026, _award("2", "300000"), budget=True).refusal.code == "budget_exhausted"
    book.pay("app-1", 2026, 1)
    f = _figures("B-PREM")
    assert (f["committed"], f["paid"], f["available"]) == (Decimal("150000.00"), Decimal("150000.00"),
                                                           Decimal("200000.00"))
    assert book.release("app-1", "withdrawn") == Decimal("150000.00")   # the unpaid tranche
    f = _figures("B-PREM")
    assert (f["committed"], f["paid"], f["available"]) == (Decimal("0.00"), Decimal("150000.00"),
                                                           Decimal("350000.00"))
    assert book.commit("app-2", "E-2", 2026, _award("2", "300000"), budget=True).refusal is None
    from models.audit import audit_record, budget_record
    assert audit_record("app-2")["budget_lines"] == ["B-PREM"]
    assert [c["kind"] for c in budget_record("B-PREM")["changes"]] == ["created"]


def test_the_report_is_exact_to_the_fen_with_the_forecast_by_due_year(db_any, tmp_path):
    _import(tmp_path, f"B-G,科技保险与贴息,2026,{PREMIUM_CLAUSE};{LOAN},1000000.01,杭财预〔2026〕3号",
            f"B-27,科技保险,2027,{PREMIUM_CLAUSE},5,")
    book.commit("app-1", "E-1", 2026, _award("1", "100000.03", dues=(date(2026, 5, 1), date(2027, 5, 1),
                                                                    date(2028, 5, 1))), budget=True)
    book.commit("app-2", "E-2", 2026, _award("2", "0.05", clause=LOAN, dues=(date(2027, 1, 1),)), budget=True)
    book.pay("app-1", 2026, 1)                                        # 33,333.34 paid
    f = _figures("B-G")
    assert f["clause_ids"] == sorted([PREMIUM_CLAUSE, LOAN])
    assert f["budget"] == Decimal("1000000.01")
    assert f["paid"] == Decimal("33333.34")                          # 100000.03 in 33333.34 + 33333.34 + 33333.35
    assert f["committed"] == Decimal("66666.74")                     # 33333.34 + 33333.35 + 0.05
    assert f["available"] == Decimal("899999.93")                    # 1000000.01 − 100000.03 − 0.05
    assert f["forecast"] == {2027: Decimal("33333.39"), 2028: Decimal("33333.35")}
    assert f["document"] == "杭财预〔2026〕3号" and f["imported_by"] == "cz-li"
    assert _figures("B-27")["available"] == Decimal("5.00")
    assert [r["line_id"] for r in budget.report(2027)] == ["B-27"]


# ------------------------------------------------------------------------------------ imports

def test_a_malformed_csv_is_refused_row_by_row_and_nothing_is_imported(db, tmp_path):
    path = _lines(tmp_path,
                  f"B-1,科技保险,2026,{PREMIUM_CLAUSE},500000,ok",
                  f"B 2,科技保险,2026,{LOAN},500000,",                  # 3: line_id
                  "B-3,x,2026,hz2025-99-nothing,1,",                     # 4: clause_ids
                  f"B-4,x,26,{LOAN},1,",                                 # 5: year
                  f"B-5,x,2027,{LOAN},1e6,",                             # 6: amount
                  f"B-6,x,2027,{LOAN},-5,",                              # 7: amount
                  f"B-1,x,2027,{LOAN},5,",                               # 8: line_id twice
                  f"B-7,x,2026,{PREMIUM_CLAUSE},5,")                     # 9: clause twice in a year
    with pytest.raises(SheetRefused) as e:
        budget.import_file(path, who="cz-li")
    lines = e.value.lines()
    assert [ln.split(": ")[1:3] for ln in lines] == [
        ["line 3", "line_id"], ["line 4", "clause_ids"], ["line 5", "year"], ["line 6", "amount"],
        ["line 7", "amount"], ["line 8", "line_id"], ["line 9", "clause_ids"]]
    assert all(ln.startswith(f"{path}: line ") for ln in lines)
    assert "7 rows refused; nothing was imported" in e.value.headline
    assert budget.report() == [] and budget.changes() == []


def test_a_malformed_workbook_is_refused_row_by_row(db, tmp_path):
    from openpyxl import Workbook
    wb = Workbook()
    ws = wb.active
    ws.append(list(HEADER.strip().split(",")))
    ws.append(["B-1", "科技保险", 2026, PREMIUM_CLAUSE, 500000, "ok"])
    ws.append(["B-2", "贴息", 2026, LOAN, 12.345, ""])                   # 3: three decimals
    ws.append(["B-3", "贴息", "二〇二六", LOAN, 5, ""])                  # 4: year
    ws.append(["B-4", "", 2027, LOAN, 5, ""])                          # 5: name empty
    path = tmp_path / "budget.xlsx"
    wb.save(path)
    with pytest.raises(SheetRefused) as e:
        budget.import_file(path, who="cz-li")
    assert [ln.split(": ")[1:3] for ln in e.value.lines()] == [
        ["line 3", "amount"], ["line 4", "year"], ["line 5", "name"]]
    assert budget.report() == []


def test_a_reimport_sets_the_amount_but_never_below_what_is_drawn(db, tmp_path):
    _import(tmp_path, f"B-1,科技保险,2026,{PREMIUM_CLAUSE},500000,v1")
    _import(tmp_path, f"B-1,科技保险,2026,{PREMIUM_CLAUSE},500000,v1")       # the same file: no change
    book.commit("app-1", "E-1", 2026, _award("1", "400000"), budget=True)
    with pytest.raises(SheetRefused) as e:
        _import(tmp_path, f"B-1,科技保险,2026,{PREMIUM_CLAUSE},300000,v2")
    assert "amount: 300000.00 is less than the line has drawn (400000.00 committed" in e.value.lines()[0]
    with pytest.raises(SheetRefused) as e:
        _import(tmp_path, f"B-1,科技保险,2026,{LOAN},900000,v2")
    assert "clause_ids: line B-1 pays" in e.value.lines()[0]
    _import(tmp_path, f"B-1,科技保险,2026,{PREMIUM_CLAUSE},900000,v2")
    assert [(c["kind"], c["amount_before"], c["amount_after"]) for c in budget.changes("B-1")] == [
        ("created", Decimal("0.00"), Decimal("500000.00")), ("set", Decimal("500000.00"), Decimal("900000.00"))]


def test_xlsx_export_imports_back_as_it_was(db, tmp_path, monkeypatch):
    _import(tmp_path, f"B-G,科技保险与贴息,2026,{PREMIUM_CLAUSE};{LOAN},1234567.89,杭财预〔2026〕3号",
            f"B-27,=SUM(A1),2027,{PREMIUM_CLAUSE},0.01,-1")
    out = budget.export_xlsx(tmp_path / "report.xlsx")
    before = [{k: r[k] for k in ("line_id", "name", "year", "clause_ids", "budget", "document")} for r in budget.report()]
    from models.db import init_db
    monkeypatch.setenv("DISBURSE_DB_URL", f"sqlite:///{tmp_path / 'other.db'}")
    init_db()
    assert budget.report() == []
    assert budget.import_file(out, who="cz-wang") == 2
    after = [{k: r[k] for k in ("line_id", "name", "year", "clause_ids", "budget", "document")} for r in budget.report()]
    assert after == before


def test_the_chart_is_written(db, tmp_path):
    from cli.budget_chart import draw, series
    _import(tmp_path, f"B-1,科技保险,2026,{PREMIUM_CLAUSE},500000,", f"B-2,科技保险,2027,{PREMIUM_CLAUSE},700000,")
    book.commit("app-1", "E-1", 2026, _award("1", "300000", dues=(date(2026, 3, 1), date(2028, 3, 1))), budget=True)
    book.pay("app-1", 2026, 1)
    rows = budget.report()
    assert series(rows) == {
        2026: {"budget": Decimal("500000.00"), "paid": Decimal("150000.00"), "committed": Decimal("150000.00"),
               "forecast": Decimal(0)},
        2027: {"budget": Decimal("700000.00"), "paid": Decimal(0), "committed": Decimal(0), "forecast": Decimal(0)},
        2028: {"budget": Decimal(0), "paid": Decimal(0), "committed": Decimal(0), "forecast": Decimal("150000.00")}}
    svg = draw(rows, tmp_path / "budget.svg").read_text()
    assert svg.startswith("<?xml") and all(str(y) in svg for y in (2026, 2027, 2028))
    png = draw(rows, tmp_path / "budget.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 1000


# ------------------------------------------------------------------------------------ the workflow

def test_workflow_waits_for_budget_until_finance_tops_it_up(harness, db, tmp_path):
    """400,000 against a line with 100,000: awaiting_budget (status, search attribute, note naming
    the line, needed and available); a top-up too small and a retry: still waiting; enough, and
    the daily re-check pays it without being asked."""
    from datetime import timedelta

    from models import search_attributes as sa
    from tests.backend_helpers import approve_both, result, submit_new, wait_status
    from workflows import client as wc
    _import(tmp_path, f"B-PREM,科技保险,2026,{PREMIUM_CLAUSE},100000,杭财预〔2026〕2号")

    async def go():
        app_id = await submit_new(harness, db)
        await approve_both(harness, app_id)
        st = await wait_status(harness, app_id, "awaiting_budget")
        assert st["note"] == ("awaiting budget: budget line B-PREM (科技保险, 2026) cannot cover 400000.00: "
                              "100000.00 available of 100000.00")
        assert st["tranches"] == [] and book.lines(app_id) == []
        d = await harness.client.get_workflow_handle(app_id).describe()
        assert d.typed_search_attributes.get(sa.STATUS) == "awaiting_budget"
        with pytest.raises(wc.RequestRefused, match="only 杭州市财政局 may try the budget again"):
            await wc.retry_budget(harness.client, app_id, who="hz-kjj")
        row = budget.top_up("B-PREM", Decimal("100000"), who="hz-czj")
        from cli.budget_cmds import _waiting        # whom `disburse budget add` asks to try again
        for _ in range(100):
            if _waiting(row) == [app_id]:
                break
            import asyncio
            await asyncio.sleep(0.05)
        assert _waiting(row) == [app_id]
        await wc.retry_budget(harness.client, app_id, who="hz-czj", comment="+100000", request_key="t1")
        st = await wait_status(harness, app_id, "awaiting_budget")
        for _ in range(100):                  # the retry ran: the note names the new figures
            st = await wc.status(harness.client, app_id)
            if "200000.00 available" in (st["note"] or ""):
                break
            import asyncio
            await asyncio.sleep(0.05)
        assert st["status"] == "awaiting_budget" and "200000.00 available of 200000.00" in st["note"]
        budget.top_up("B-PREM", Decimal("200000"), who="hz-czj")
        await harness.env.sleep(timedelta(days=1, minutes=1))   # no retry asked: the daily re-check
        res = await result(harness, app_id)
        assert res["status"] == "completed", res
        assert db.ledger_rows(app_id)[0]["amount"] == Decimal("400000.00")
        f = _figures("B-PREM")
        assert (f["paid"], f["committed"], f["available"]) == (Decimal("400000.00"), Decimal("0.00"), Decimal("0.00"))
        assert [x["kind"] for x in res["decisions"]] == ["approve", "approve", "retry_budget"]
    harness.run(go())


def test_finance_rejects_an_application_for_budget(harness, db, tmp_path):
    from tests.backend_helpers import approve_both, result, submit_new, wait_status
    from workflows import client as wc
    _import(tmp_path, f"B-PREM,科技保险,2026,{PREMIUM_CLAUSE},1000,")

    async def go():
        app_id = await submit_new(harness, db)
        with pytest.raises(wc.RequestRefused, match="not awaiting budget"):
            await wc.reject_for_budget(harness.client, app_id, reviewer="hz-czj", reason="no money")
        await approve_both(harness, app_id)
        await wait_status(harness, app_id, "awaiting_budget")
        await wc.reject_for_budget(harness.client, app_id, reviewer="hz-czj", reason="本年度预算已用完")
        res = await result(harness, app_id)
        assert res["status"] == "refused"
        assert res["note"].startswith("budget_exhausted: rejected for budget by hz-czj: 本年度预算已用完 (budget line B-PREM")
        assert res["tranches"] == [] and book.lines(app_id) == [] and db.ledger_rows(app_id) == []
        assert _figures("B-PREM")["available"] == Decimal("1000.00")
        assert res["decisions"][-1]["kind"] == "reject_for_budget"
        from models.audit import audit_record
        assert [d["kind"] for d in audit_record(app_id)["decisions"]][-1] == "reject_for_budget"
    harness.run(go())


def test_an_application_awaiting_budget_can_be_withdrawn(harness, db, tmp_path):
    from tests.backend_helpers import approve_both, result, submit_new, wait_status
    from workflows import client as wc
    _import(tmp_path, f"B-PREM,科技保险,2026,{PREMIUM_CLAUSE},1000,")

    async def go():
        app_id = await submit_new(harness, db)
        await approve_both(harness, app_id)
        await wait_status(harness, app_id, "awaiting_budget")
        await wc.withdraw(harness.client, app_id, operator="op-demo", comment="不再申请")
        res = await result(harness, app_id)
        assert res["status"] == "withdrawn" and book.lines(app_id) == []
        assert _figures("B-PREM")["available"] == Decimal("1000.00")
    harness.run(go())


def test_the_budget_histories_are_kept():
    """Recorded with `python -m tests.record_histories v3-budget` (patch "budget-lines"); replayed by
    tests/test_replay.py."""
    names = {p.stem for p in (Path(__file__).parent / "histories").glob("*.json")}
    assert {"budget_topped_up-v3-budget", "budget_rejected-v3-budget"} <= names


# ------------------------------------------------------------------------------------ the CLI

@pytest.fixture
def cli(tmp_path, monkeypatch):
    """`disburse ARGS...` in-process on a fresh SQLite file, finance (cz-li) and an operator (op-1)
    registered, each with a CLI token; `as_` picks who is logged in."""
    monkeypatch.setenv("DISBURSE_DB_URL", f"sqlite:///{tmp_path / 'disburse.db'}")
    monkeypatch.setenv("DISBURSE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")      # nothing listens there
    monkeypatch.delenv("DISBURSE_TOKEN", raising=False)
    from typer.testing import CliRunner

    from cli.identity import save_token
    from cli.main import app
    from models.users import add_user
    save_token("op-1", add_user("op-1", role="operator", password="pw-operator-1"))
    save_token("cz-li", add_user("cz-li", role="finance", bureau="杭州市财政局", password="pw-finance-1"))
    runner = CliRunner()

    def run(*args, as_: str = "cz-li"):
        (tmp_path / "config" / "current").write_text(as_)
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    return run


def test_only_finance_changes_budgets(cli, tmp_path):
    path = _lines(tmp_path, f"B-1,科技保险,2026,{PREMIUM_CLAUSE},500000,")
    r = cli("budget", "import", path, as_="op-1")
    assert r.exit_code == 2 and r.stderr.strip() == "error: only finance may change budgets; op-1 is operator"
    r = cli("budget", "import", path)
    assert r.exit_code == 0, r.output
    assert "1 line imported" in r.stdout and "by cz-li" in r.stdout
    r = cli("budget", "add", "B-1", "--amount", "1000", as_="op-1")
    assert r.exit_code == 2 and "only finance" in r.stderr
    r = cli("budget", "add", "B-1", "--amount", "-1")
    assert r.exit_code == 2 and r.stderr.startswith("error: --amount: a plain number of yuan")
    r = cli("budget", "add", "B-9", "--amount", "5")
    assert r.exit_code == 2 and "no such budget line" in r.stderr
    r = cli("budget", "add", "B-1", "--amount", "250000.50", "--document", "杭财预〔2026〕9号", "--reason", "追加")
    assert r.exit_code == 0, r.output
    assert "budget 750,000.50, available 750,000.50" in r.stdout
    r = cli("budget", "history", "B-1", "--json")
    import json
    changes = json.loads(r.stdout)["changes"]
    assert [(c["kind"], c["amount_before"], c["amount_after"], c["who"], c["document"]) for c in changes] == [
        ("created", "0.00", "500000.00", "cz-li", ""), ("top_up", "500000.00", "750000.50", "cz-li", "杭财预〔2026〕9号")]


def test_a_refused_import_lists_every_bad_row(cli, tmp_path):
    path = _lines(tmp_path, f"B-1,科技保险,2026,{PREMIUM_CLAUSE},500000,", "B-2,x,2026,nope,1,", "B-3,x,2026,nope,1,")
    r = cli("budget", "import", path)
    assert r.exit_code == 2
    err = r.stderr.strip().splitlines()
    assert err[:2] == [f"error: {path}: line 3: clause_ids: 'nope' is not a payable clause (`disburse policies` "
                       "lists them)", f"error: {path}: line 4: clause_ids: 'nope' is not a payable clause "
                       "(`disburse policies` lists them)"]
    assert err[2] == f"error: {path}: 2 rows refused; nothing was imported"
    assert "budget lines (预算指标): empty" in cli("budget").stdout


def test_the_report_its_workbook_and_its_chart(cli, tmp_path):
    assert cli("budget", "import", _lines(tmp_path, f"B-1,科技保险,2026,{PREMIUM_CLAUSE},500000,文号")).exit_code == 0
    book.commit("app-1", "E-1", 2026, _award("1", "300000", dues=(date(2026, 3, 1), date(2027, 3, 1))), budget=True)
    r = cli("budget", "--xlsx", tmp_path / "r.xlsx", "--chart", tmp_path / "r.svg")
    assert r.exit_code == 0, r.output
    assert "B-1" in r.stdout and "300,000.00" in r.stdout and "2026: 150,000.00; 2027: 150,000.00" in r.stdout
    from openpyxl import load_workbook
    wb = load_workbook(tmp_path / "r.xlsx")
    assert wb.sheetnames == ["预算指标", "执行情况", "预计拨付"]
    assert [c.value for c in wb["执行情况"][2]] == ["B-1", 2026, 500000, 300000, 0, 200000]
    assert "2027" in (tmp_path / "r.svg").read_text()
    r = cli("budget", "--chart", tmp_path / "r.pdf")
    assert r.exit_code == 2 and "--chart: the file must end in .svg or .png" in r.stderr


def test_a_top_up_stands_when_the_waiting_applications_cannot_be_told(cli, tmp_path):
    from datetime import datetime, timezone

    from models.db import session
    from models.tables import ApplicationRow
    assert cli("budget", "import", _lines(tmp_path, f"B-1,科技保险,2026,{PREMIUM_CLAUSE},5,")).exit_code == 0
    with session() as s:
        s.add(ApplicationRow(application_id="app-x", clause_id=PREMIUM_CLAUSE, enterprise_code="E", year=2026,
                             status="awaiting_budget", awarded=Decimal(0), updated_at=datetime.now(timezone.utc)))
        s.commit()
    r = cli("budget", "add", "B-1", "--amount", "10")               # Temporal is not reachable
    assert r.exit_code == 0, r.output
    assert "the top-up is recorded, but the waiting applications could not be told" in r.stdout
    assert _figures("B-1")["budget"] == Decimal("15.00")
