"""Bad input: refused before any arithmetic, naming the field and the rule."""
from __future__ import annotations

import unicodedata

from pydantic import ValidationError

ECHO = 80   # at most this many characters of any input value are echoed back in a message


def shown(value: object, limit: int = ECHO) -> str:
    """An input value as it may appear in a message: one line (control and format characters and
    lone surrogates escaped, so a value can neither break the line nor drive the terminal), at
    most `limit` characters, then "… (N chars)" with the length of the whole value."""
    text = value if isinstance(value, str) else str(value)
    n = len(text)
    head = text[:limit]
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") for c in head):
        head = "".join(c.encode("unicode_escape").decode("ascii")
                       if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") else c for c in head)
    return head if n <= limit else f"{head}… ({n} chars)"


class InputError(ValueError):
    """The request cannot be evaluated. `field` is a dotted path (facts.premium), `rule` the rule broken."""

    def __init__(self, field: str, rule: str):
        super().__init__(f"{field}: {rule}")
        self.field, self.rule = field, rule

    def __reduce__(self):
        """Picklable with its field and rule (calc.batch sends it back from a worker process)."""
        return (type(self), (self.field, self.rule))

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "rule": self.rule}

    @classmethod
    def from_validation(cls, e: ValidationError, prefix: str = "") -> "InputError":
        err = e.errors()[0]
        loc = ".".join(shown(p) for p in err["loc"])     # a key of the input may be part of the path
        field = f"{prefix}.{loc}" if prefix and loc else (prefix or loc or "-")
        return cls(field, err["msg"].removeprefix("Value error, "))
