"""User-supplied text on a terminal or in a spreadsheet, made harmless. The one place for it.

Anything that came from outside (a CSV cell, a name, a comment, a clause id on the command line)
may carry rich markup (`[bold]`, `[/x]`), terminal control sequences (ESC, NUL, CR, C1 codes),
bidirectional overrides, or be megabytes long. Here:

- `inert(s)`: a `rich.text.Text` for a table cell or a message: never parsed as markup, control
  characters shown as escapes, newline/tab kept only where asked;
- `shown(s)`: a value to echo inside a message: control characters shown as escapes (`\\x1b`,
  `\\u202e`), clipped;
- `json_text(text)`: JSON output with the same escaped as \\uXXXX (the same value);
- `one_line(message)`: a whole message on one bounded line (what `error: ...` prints);
- `first_unsafe(s)`: the first character that would be refused in stored text;
- `spreadsheet_cell(value)`: a CSV export cell that a spreadsheet will not run as a formula (every
  CSV the CLI writes goes through it; there is no such export yet).
"""
from __future__ import annotations

import unicodedata
from decimal import Decimal
from typing import Any, Optional

ECHO_LIMIT = 80          # an echoed value is clipped to this many characters
MESSAGE_LIMIT = 500      # a whole error message, likewise

# Unicode characters that reorder or hide text on display (Trojan Source, CVE-2021-42574).
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def is_unsafe(ch: str) -> bool:
    """C0/C1 controls and DEL (category Cc), line/paragraph separators, bidi controls."""
    return ch in BIDI_CONTROLS or unicodedata.category(ch) in ("Cc", "Zl", "Zp")


def first_unsafe(s: str, keep: str = "") -> Optional[tuple[int, str]]:
    """(index, character) of the first unsafe character not in `keep`, or None."""
    for i, ch in enumerate(s):
        if ch not in keep and is_unsafe(ch):
            return i, ch
    return None


def codepoint(ch: str) -> str:
    """'U+001B' (and the name where Unicode has one, e.g. 'U+202E RIGHT-TO-LEFT OVERRIDE')."""
    name = unicodedata.name(ch, "")
    return f"U+{ord(ch):04X}" + (f" {name}" if name else "")


_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(ch: str) -> str:
    if ch in _SHORT:
        return _SHORT[ch]
    o = ord(ch)
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}"


def visible(s: str, keep: str = "") -> str:
    """`s` with every unsafe character (except those in `keep`) written as a visible escape."""
    if first_unsafe(s, keep) is None:
        return s
    return "".join(_escape(ch) if ch not in keep and is_unsafe(ch) else ch for ch in s)


def clip(s: str, limit: int = ECHO_LIMIT) -> str:
    """At most `limit` characters of `s`, saying how long it was when clipped."""
    if len(s) <= limit:
        return s
    return f"{s[:limit]}… ({len(s):,} chars)"


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def shown(value: Any, limit: int = ECHO_LIMIT) -> str:
    """A value to echo inside a message: clipped, control characters visible, no markup meaning
    (plain str: print it with markup off, or wrap it with `inert`)."""
    return visible(clip(_text(value), limit))


def one_line(message: Any, limit: int = MESSAGE_LIMIT) -> str:
    """A whole message as one bounded line: newlines and other controls visible, clipped."""
    return visible(clip(_text(message), limit))


def inert(value: Any, *, multiline: bool = False, style: str = ""):
    """A rich Text for `value`: no markup, no emoji codes, control characters visible (newline and
    tab kept when `multiline`). Use it for every table cell or message part a user supplied."""
    from rich.text import Text
    return Text(visible(_text(value), "\n\t" if multiline else ""), style=style)


def json_text(text: str) -> str:
    """JSON text (from json.dumps) with every unsafe character written as a \\uXXXX escape: the
    same JSON value, safe on a terminal. (json.dumps escapes C0 controls itself, not C1, bidi
    controls or line separators; outside strings its output has only ASCII and newlines.)"""
    return "".join(f"\\u{ord(ch):04x}" if ch != "\n" and is_unsafe(ch) else ch for ch in text)


# OWASP "CSV Injection" and ASVS 1.2.10: a cell starting with = + - @ tab CR (ASVS adds NUL) may be
# run as a formula by a spreadsheet. LF and the full-width forms are a precaution (in neither list).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\x00", "\n", "＝", "＋", "－", "＠")


def spreadsheet_cell(value: Any) -> Any:
    """A value for a CSV export: numbers as they are; text that a spreadsheet could take for a
    formula (starting with = + - @ tab CR NUL LF) prefixed with a single quote, so it stays text.
    Quoting of commas and double quotes is left to the csv writer."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float, Decimal)):
        return value
    s = str(value)
    return "'" + s if s.startswith(FORMULA_TRIGGERS) else s
