"""Text that goes out in a notification, made inert and bounded (the rules of cli/safe_text.py).

Messages are plain text everywhere (e-mail text/plain, robots' msgtype text), so no markup is
interpreted and none needs escaping. What remains: control characters (terminal escapes, NUL, CR/LF
that would break a header), bidirectional overrides that reorder text on screen, and size. Here
control characters and bidi controls are shown as visible escapes (`\\x1b`, `\\u202e`), never
sent raw; line breaks survive only in bodies (CRLF, CR, NEL, U+2028/9 become one LF; at most one
blank line in a row and a bounded number of lines); everything is clipped to a limit, saying so.
"""
from __future__ import annotations

import re
import unicodedata

from cli.safe_text import visible

CLIPPED = "…（已截断，共 {n:,} 字）"
_BREAKS = re.compile(r"\r\n|[\r\n\x0b\x0c\x85\u2028\u2029]")
_SPACES = re.compile(r"[ \t]+")
_BLANKS = re.compile(r"\n{3,}")


def _base(value: object) -> str:
    s = "" if value is None else str(value)
    s = "".join("\ufffd" if unicodedata.category(ch) == "Cs" else ch for ch in s)   # lone surrogates
    return unicodedata.normalize("NFC", s)


def clip(s: str, limit: int) -> str:
    """At most about `limit` characters (the note saying how long it was comes on top)."""
    if len(s) <= limit:
        return s
    return s[:limit].rstrip() + CLIPPED.format(n=len(s))


def one_line(value: object, limit: int) -> str:
    """For a header, a subject, a name: no line break or control character, clipped."""
    s = _BREAKS.sub(" ", _base(value)).replace("\t", " ")
    s = _SPACES.sub(" ", visible(s)).strip()
    return clip(s, limit)


def paragraph(value: object, limit: int, max_lines: int = 20) -> str:
    """For a body: LF line breaks only, no control character, at most one blank line in a row,
    at most `max_lines` lines, clipped."""
    s = _BREAKS.sub("\n", _base(value)).replace("\t", " ")
    s = visible(s, keep="\n")
    lines = [_SPACES.sub(" ", line).rstrip() for line in s.split("\n")]
    s = _BLANKS.sub("\n\n", "\n".join(lines)).strip("\n")
    kept = s.split("\n")
    if len(kept) > max_lines:
        s = "\n".join(kept[:max_lines]) + "\n" + CLIPPED.format(n=len(s))
    return clip(s, limit)


def clip_bytes(s: str, limit: int) -> str:
    """`s` cut (on a character boundary, with a mark) so that its UTF-8 encoding fits `limit` bytes."""
    data = s.encode("utf-8")
    if len(data) <= limit:
        return s
    mark = "…"
    cut = data[:limit - len(mark.encode("utf-8"))].decode("utf-8", errors="ignore")
    return cut + mark
