"""Bad input: refused before any arithmetic, naming the field and the rule."""
from __future__ import annotations

from pydantic import ValidationError


class InputError(ValueError):
    """The request cannot be evaluated. `field` is a dotted path (facts.premium), `rule` the rule broken."""

    def __init__(self, field: str, rule: str):
        super().__init__(f"{field}: {rule}")
        self.field, self.rule = field, rule

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "rule": self.rule}

    @classmethod
    def from_validation(cls, e: ValidationError, prefix: str = "") -> "InputError":
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        field = f"{prefix}.{loc}" if prefix and loc else (prefix or loc or "-")
        return cls(field, err["msg"])
