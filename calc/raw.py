"""What a formula computed (calc.formulas): Raw, a tuple subclass. Kept in a module of its own,
imported by calc.formulas, because mypyc cannot compile a class that inherits from tuple: this
module stays interpreted when the calculation core is compiled (`make compile`)."""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from operator import itemgetter

Part = tuple[str, date, Decimal]   # label, due date, amount


class Raw(tuple):
    """What a formula computed: the raw award, the parts it is paid in (empty: one tranche of the
    whole award) and each item's share (item key, calc/items.py). A tuple (amount, parts, items),
    built by the formulas in one C call (`tuple_new(RAW, (amount, parts, items))`)."""
    __slots__ = ()
    amount: Decimal = property(itemgetter(0))                 # type: ignore[assignment]
    parts: list[Part] = property(itemgetter(1))               # type: ignore[assignment]
    items: dict[str, Decimal] = property(itemgetter(2))       # type: ignore[assignment]

    def __new__(cls, amount: Decimal, parts: list[Part] | None = None,
                items: dict[str, Decimal] | None = None) -> "Raw":
        return tuple.__new__(cls, (amount, [] if parts is None else parts, {} if items is None else items))
