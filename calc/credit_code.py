"""统一社会信用代码 (GB 32100-2015): 18 characters, check digit over the first 17."""
from __future__ import annotations

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_VALUE = {c: i for i, c in enumerate(ALPHABET)}


def check_char(first17: str) -> str:
    bad = [c for c in first17 if c not in _VALUE]
    if len(first17) != 17 or bad:
        raise ValueError(f"need 17 characters of {ALPHABET} (no I, O, S, V, Z), got {first17!r}")
    total = sum(_VALUE[c] * w for c, w in zip(first17, WEIGHTS))
    return ALPHABET[(31 - total % 31) % 31]


def validate(code: str) -> str:
    """Return the code upper-cased, or raise ValueError saying which rule it breaks."""
    code = code.strip().upper()
    if len(code) != 18:
        raise ValueError(f"unified social credit code must have 18 characters, got {len(code)}")
    bad = [c for c in code if c not in _VALUE]
    if bad:
        raise ValueError(f"unified social credit code has characters outside GB 32100: {''.join(bad)}")
    if not code[2:8].isdigit():
        raise ValueError("unified social credit code: characters 3-8 must be the region code digits")
    expected = check_char(code[:17])
    if code[17] != expected:
        raise ValueError(
            f"unified social credit code check digit is {code[17]}, GB 32100 gives {expected}"
        )
    return code


def region_of(code: str) -> str:
    """The 6-digit administrative region code (characters 3-8)."""
    return code[2:8]


def make(first17: str) -> str:
    """Complete a 17-character prefix with its check digit (for fixtures and demos)."""
    return first17 + check_char(first17)
