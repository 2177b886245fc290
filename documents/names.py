"""File names as uploaders send them, made fit to show and to keep as metadata."""
from __future__ import annotations

import unicodedata

MAX_FILENAME = 200                # characters, extension kept
_DROPPED = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}   # controls, format (bidi overrides), separators...


def sanitize_filename(name: object) -> str:
    """A file name fit to show and to store as metadata: the last path component only (no
    directories, either slash), no control or format characters (bidi overrides included), no
    leading dots, at most MAX_FILENAME characters keeping a short extension; "document" if
    nothing is left. It is never used as a path: the bytes are stored under their hash."""
    if not isinstance(name, str):
        return "document"
    name = unicodedata.normalize("NFC", name[:65536])
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c) not in _DROPPED)
    name = name.strip().lstrip(".").strip()
    if not name:
        return "document"
    if len(name) > MAX_FILENAME:
        stem, dot, ext = name.rpartition(".")
        if dot and stem and 0 < len(ext) <= 16:
            name = stem[:MAX_FILENAME - len(ext) - 1].rstrip() + "." + ext
        else:
            name = name[:MAX_FILENAME]
    return name
