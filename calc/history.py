"""An enterprise's prior awards, indexed once so every cap lookup is a dictionary hit.

Build it once per enterprise (`AwardHistory.of(awards)`) and pass it to `calculate`: the cost
of an evaluation then does not grow with the length of the award history. Prior awards are what
the award book holds for the enterprise: every award committed or paid, not only what was paid.
Item keys are those of calc/items.py.
"""
from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Iterable

from calc import items
from calc.model import PriorAward

ZERO = Decimal(0)


class AwardHistory:
    __slots__ = ("_by_clause_year", "_by_clause", "_years", "_by_item", "_by_group", "_group_years",
                 "has_item_awards")

    def __init__(self) -> None:
        self._by_clause_year: dict[tuple[str, int], Decimal] = defaultdict(Decimal)
        self._by_clause: dict[str, Decimal] = defaultdict(Decimal)
        self._years: dict[str, set[int]] = defaultdict(set)
        self._by_item: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        self._by_group: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        self._group_years: dict[tuple[str, str], set[int]] = defaultdict(set)
        self.has_item_awards = False     # whether any award named its item (has_any_item may then be true)

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
            self.has_item_awards = True
            self._by_item[item_id][clause_id] += amount
            g = (clause_id, items.group(item_id))
            self._by_group[g] += amount
            if amount > 0:
                self._group_years[g].add(year)

    def in_year(self, clauses: tuple[str, ...], year: int) -> Decimal:
        if len(clauses) == 1:
            return self._by_clause_year.get((clauses[0], year), ZERO)
        return sum((self._by_clause_year.get((c, year), ZERO) for c in clauses), ZERO)

    def in_years(self, clauses: Iterable[str], first: int, last: int) -> Decimal:
        get, total = self._by_clause_year.get, ZERO
        for c in clauses:
            for y in range(first, last + 1):
                total = total + get((c, y), ZERO)       # as sum(..., ZERO): left to right from ZERO
        return total

    def all_time(self, clauses: tuple[str, ...]) -> Decimal:
        if len(clauses) == 1:
            return self._by_clause.get(clauses[0], ZERO)
        return sum((self._by_clause.get(c, ZERO) for c in clauses), ZERO)

    def supported_years(self, clause_id: str) -> set[int]:
        return self._years.get(clause_id, set())

    def for_item(self, item_id: str) -> dict[str, Decimal]:
        """Awards already made for this item (any clause, any support year), by clause."""
        found = self._by_item.get(item_id)
        return {c: a for c, a in found.items() if a} if found else {}

    def has_any_item(self, item_ids) -> bool:
        """Whether any award was made for one of these items (for_item would find something)."""
        by_item = self._by_item
        if not by_item:
            return False
        for item_id in item_ids:
            found = by_item.get(item_id)
            if found and any(found.values()):
                return True
        return False

    def for_group(self, clause_id: str, group: str) -> Decimal:
        """Awards under `clause_id` for every item of a group (a loan, a policy, an investee)."""
        return self._by_group.get((clause_id, group), ZERO)

    def group_years(self, clause_id: str, group: str) -> set[int]:
        """Support years in which `clause_id` awarded something for the group."""
        return self._group_years.get((clause_id, group), set())
