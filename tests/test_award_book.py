"""The award book (models/book.py): commitments count from the moment they are calculated, a
payment pays the book's amount once, a release frees the room, and one enterprise's book is
serialized under real concurrency (threads, one SQLite database, as the worker's activities run).
Each behaviour runs on SQLite and on PostgreSQL (`db_any`); the concurrency tests on PostgreSQL are
in tests/test_postgres.py."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal

import pytest

from calc.model import CalcResult, Refusal, Tranche
from models import book
from models.db import session

CAP = Decimal("100000")


def _award(app: str, want: str = "30000", seen: list | None = None, pause: float = 0.0):
    """A stand-in calculation: min(want, cap − what the book already holds)."""
    def calculate(prior: list[dict]) -> CalcResult:
        used = sum((p["amount"] for p in prior), Decimal(0))
        if seen is not None:
            seen.append(used)
        time.sleep(pause)                      # widen the window between reading the book and writing it
        amount = min(Decimal(want), CAP - used)
        if amount <= 0:
            return CalcResult(clause_id="c", year=2026, amount=Decimal("0.00"),
                              refusal=Refusal(code="cap_exhausted", reason="cap used up", rule="cap:per_year"))
        return CalcResult(clause_id="c", year=2026, amount=amount, items={f"item:{app}": amount},
                          item_values={f"item:{app}": Decimal(want)},
                          schedule=(Tranche(1, date(2026, 1, 1), amount),))
    return calculate


def test_twenty_concurrent_commitments_of_one_enterprise_hold_the_cap(db):
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda i: book.commit(f"app-{i}", "E-1", 2026, _award(str(i), pause=0.02)), range(20)))
    assert sum(r.amount for r in results) == CAP                 # 30k + 30k + 30k + 10k, the rest refused
    assert sorted(r.amount for r in results if r.refusal is None) == [Decimal("10000"), Decimal("30000"),
                                                                       Decimal("30000"), Decimal("30000")]
    assert sum(ln["amount"] for ln in book.lines(enterprise_code="E-1")) == CAP


def test_other_enterprises_are_not_held_up_by_one(db_any):
    results = []
    def one(i):
        results.append(book.commit(f"app-x{i}", f"E-{i}", 2026, _award(str(i))))
    threads = [threading.Thread(target=one, args=(i,)) for i in range(5)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert [r.amount for r in results] == [Decimal("30000")] * 5


def test_a_retried_commit_returns_the_first_result_without_calculating_again(db_any):
    seen: list = []
    first = book.commit("app-1", "E-1", 2026, _award("1", seen=seen))
    again = book.commit("app-1", "E-1", 2026, _award("1", want="99999", seen=seen))
    assert again.amount == first.amount == Decimal("30000") and len(seen) == 1


def test_an_award_counts_from_the_moment_it_is_committed(db_any):
    book.commit("app-1", "E-1", 2026, _award("1", want="80000"))          # committed, not paid
    second = book.commit("app-2", "E-1", 2026, _award("2", want="80000"))
    assert second.amount == Decimal("20000")


def test_a_payment_pays_the_book_amount_once(db_any):
    book.commit("app-1", "E-1", 2026, _award("1"))
    assert book.pay("app-1", 2026, 1) == (Decimal("30000.00"), True, "paid")
    assert book.pay("app-1", 2026, 1) == (Decimal("30000.00"), False, "paid")
    from models.registry import ledger_rows
    assert [r["amount"] for r in ledger_rows("app-1")] == [Decimal("30000.00")]


def test_nothing_is_paid_without_a_commitment(db_any):
    with pytest.raises(book.BookError, match="no commitment"):
        book.pay("app-forged", 2026, 7)


def test_a_release_frees_the_room_and_a_released_tranche_is_not_paid(db_any):
    book.commit("app-1", "E-1", 2026, _award("1", want="100000"))
    assert book.release("app-1", "withdrawn by op-1") == Decimal("100000.00")
    assert book.pay("app-1", 2026, 1) == (Decimal("100000.00"), False, "released")
    assert book.commit("app-2", "E-1", 2026, _award("2", want="100000")).amount == Decimal("100000")
    with session() as s:
        assert [p["item_id"] for p in book.prior_awards(s, "E-1")] == ["item:2"]


def test_paid_lines_stay_paid_when_the_rest_is_released(db_any):
    from models.tables import AwardLine
    result = CalcResult(clause_id="c", year=2026, amount=Decimal("100.00"), items={"item:a": Decimal("100.00")},
                        schedule=(Tranche(1, date(2026, 1, 1), Decimal("40.00")),
                                  Tranche(2, date(2026, 6, 1), Decimal("60.00"))))
    book.commit("app-1", "E-1", 2026, lambda prior: result)
    book.pay("app-1", 2026, 1)
    assert book.release("app-1", "revoked") == Decimal("60.00")
    assert [(ln["seq"], ln["state"]) for ln in book.lines("app-1")] == [(1, "paid"), (2, "released")]
    assert AwardLine  # the table behind it


def test_a_tranche_is_split_over_its_items_to_the_fen(db):
    result = CalcResult(clause_id="c", year=2026, amount=Decimal("100.00"),
                        items={"loan:A@2026": Decimal("33.33"), "loan:B@2026": Decimal("66.67")},
                        schedule=(Tranche(1, date(2026, 1, 1), Decimal("33.34")),
                                  Tranche(2, date(2026, 6, 1), Decimal("66.66"))))
    lines = book.lines_of(result)
    assert sum(ln["amount"] for ln in lines) == Decimal("100.00")
    for seq, total in ((1, Decimal("33.34")), (2, Decimal("66.66"))):
        assert sum(ln["amount"] for ln in lines if ln["seq"] == seq) == total


def test_a_payment_check_that_refuses_releases_the_tranche_once(db_any):
    """lean-history-2: the payment's own credit check runs under the enterprise's lock; its refusal
    releases the tranche in the same transaction, so no later attempt of the payment can pay it."""
    book.commit("app-1", "E-1", 2026, _award("1"))
    asked: list = []

    def listed(s, code: str):
        asked.append(code)
        return "not paid, credit check: 严重失信 (2026-12-01)"
    assert book.pay("app-1", 2026, 1, check=listed) == (Decimal("30000.00"), True, "released")
    assert asked == ["E-1"]
    assert book.pay("app-1", 2026, 1, check=lambda s, code: None) == (Decimal("30000.00"), False, "released")
    assert book.pay("app-1", 2026, 1) == (Decimal("30000.00"), False, "released")
    assert book.release_reason("app-1", 2026, 1) == "not paid, credit check: 严重失信 (2026-12-01)"
    from models.registry import ledger_rows
    assert ledger_rows("app-1") == []
    assert book.commit("app-2", "E-1", 2026, _award("2", want="100000")).amount == Decimal("100000")   # room freed


def test_a_paid_tranche_is_not_checked_again(db_any):
    """A retry of a payment that went through (the worker crashed before reporting it) finds it
    paid: the credit check is not asked again, whatever the list says now."""
    book.commit("app-1", "E-1", 2026, _award("1"))
    assert book.pay("app-1", 2026, 1, check=lambda s, code: None) == (Decimal("30000.00"), True, "paid")
    asked: list = []
    assert book.pay("app-1", 2026, 1, check=lambda s, code: asked.append(code) or "listed") == \
        (Decimal("30000.00"), False, "paid")
    assert asked == [] and book.release_reason("app-1", 2026, 1) is None
