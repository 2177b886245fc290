"""Money and rates: Decimal only, rounded once per award to the fen (ROUND_HALF_UP)."""
from __future__ import annotations

from typing import Final

from decimal import ROUND_HALF_UP, Decimal

# Final: compiled (make compile), a module's constant is a C static, not a name looked up at each use
FEN: Final = Decimal("0.01")
ZERO: Final = Decimal(0)       # compare a Decimal with ZERO, not 0: against an int, Decimal converts it first
HUNDRED: Final = Decimal(100)
_HUNDREDTH: Final = Decimal("0.01")


def to_fen(amount: Decimal) -> Decimal:
    """Round an award to the fen, half up. Applied once, after every cap."""
    return amount.quantize(FEN, ROUND_HALF_UP)      # rounding by position: half the cost of rounding=


def pct(value: Decimal) -> Decimal:
    """A percentage (2.60) as a fraction (0.026): an exact scaling, value × 0.01."""
    return value * _HUNDREDTH


def fmt(amount: Decimal) -> str:
    """A decimal as a plain string, never in exponent form."""
    return format(amount, "f")
