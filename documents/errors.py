"""The errors of the document store."""
from __future__ import annotations


class DocumentError(ValueError):
    """A document refused, or not to be had: `field` (content, size, sha256, purpose, ...) and the
    rule it breaks, one line: `str(e)` is "FIELD: RULE"."""

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = " ".join(str(rule).split())          # one line, whatever it quotes
        super().__init__(f"{field}: {self.rule}")


class DocumentNotFound(DocumentError):
    """Nothing is stored under that SHA-256."""


class DocumentCorrupt(DocumentError):
    """The stored bytes do not hash to their name: altered or damaged in storage."""


class SettingsError(ValueError):
    """A DISBURSE_DOCUMENTS_* setting is unusable: the message names it. Not worth a restart."""
    exit_code = 78
