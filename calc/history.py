"""An enterprise's prior awards, indexed once so every cap lookup is a dictionary hit.

Build it once per enterprise (`AwardHistory.of(awards)`) and pass it to `calculate`: the cost
of an evaluation then does not grow with the length of the award history.
"""
from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Iterable

from calc.model import PriorAward

ZERO = Decimal(0)


class AwardHistory:
    __slots__ = ("_by_clause_year", "_by_clause", "_years", "_by_item", "_by_item_year")

    def __init__(self) -> None:
        self._by_clause_year: dict[tuple[str, int], Decimal] = defaultdict(Decimal)
        self._by_clause: dict[str, Decimal] = defaultdict(Decimal)
        self._years: dict[str, set[int]] = defaultdict(set)
        self._by_item: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        self._by_item_year: dict[tuple[str, int], dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))

    @classmethod
    def of(cls, awards: Iterable[PriorAward]) -> "AwardHistory":
        h = cls()
        for a in awards:
            h.add(a.clause_id, a.year, a.amount, a.item_id)
        return h

    def add(self, clause_id: str, year: int, amount: Decimal, item_id: str | None = None) -> None:
        self._by_clause_year[(clause_id, year)] += amount
        self._by_clause[clause_id] += amount
        if amount > 0:
            self._years[clause_id].add(year)
        if item_id:
            self._by_item[(clause_id, item_id)] += amount
            self._by_item_year[(item_id, year)][clause_id] += amount

    def in_year(self, clauses: tuple[str, ...], year: int) -> Decimal:
        if len(clauses) == 1:
            return self._by_clause_year.get((clauses[0], year), ZERO)
        return sum((self._by_clause_year.get((c, year), ZERO) for c in clauses), ZERO)

    def in_years(self, clauses: Iterable[str], first: int, last: int) -> Decimal:
        return sum((self._by_clause_year.get((c, y), ZERO)
                    for c in clauses for y in range(first, last + 1)), ZERO)

    def all_time(self, clauses: tuple[str, ...]) -> Decimal:
        if len(clauses) == 1:
            return self._by_clause.get(clauses[0], ZERO)
        return sum((self._by_clause.get(c, ZERO) for c in clauses), ZERO)

    def supported_years(self, clause_id: str) -> set[int]:
        return self._years.get(clause_id, set())

    def for_item(self, clause_id: str, item_id: str) -> Decimal:
        return self._by_item.get((clause_id, item_id), ZERO)

    def item_in_year(self, item_id: str, year: int) -> dict[str, Decimal]:
        """Awards already made for this item (loan, policy, investment) in this year, by clause."""
        found = self._by_item_year.get((item_id, year))
        return dict(found) if found else {}
