"""Which documents belong to which application: the `document` table (models/tables.py).

    attach(application_id, data, *, filename, purpose, year, uploaded_by) -> DocumentRow
    documents_of(application_id) -> [dict, ...]

An attachment names the stored bytes by their SHA-256; the same file attached again for the same
application, purpose and programme year is the same attachment (returned, not duplicated), and the
bytes are stored once however many applications attach them.
"""
from __future__ import annotations

import unicodedata
from datetime import datetime, timezone
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from documents.errors import DocumentError
from documents.names import sanitize_filename
from documents.store import Data, put

PURPOSES = ("submission", "information", "evidence")
MAX_APPLICATION_ID = 200
MAX_UPLOADER = 64


def _text(field: str, value: object, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DocumentError(field, "required")
    if len(value) > limit:
        raise DocumentError(field, f"longer than {limit} characters")
    if any(unicodedata.category(c)[0] == "C" for c in value):
        raise DocumentError(field, "control or format characters are not allowed")
    return value.strip()


def _year(year: object) -> int:
    if not isinstance(year, int) or isinstance(year, bool) or not (year == 0 or 2000 <= year <= 2100):
        raise DocumentError("year", "the programme year (2000-2100), or 0 for none")
    return year


def attach(application_id: str, data: Data, *, filename: str, purpose: str, year: int, uploaded_by: str,
           declared_type: str = ""):
    """Store `data` (documents.store.put: size limit, type from the bytes) and record it as a
    document of the application. Everything is checked before anything is stored; the same bytes
    attached again for the same application, purpose and year return the first record."""
    from models.db import session
    from models.tables import DocumentRow
    application_id = _text("application_id", application_id, MAX_APPLICATION_ID)
    if purpose not in PURPOSES:
        raise DocumentError("purpose", f"one of {', '.join(PURPOSES)}")
    year = _year(year)
    uploaded_by = _text("uploaded_by", uploaded_by, MAX_UPLOADER)
    name = sanitize_filename(filename)
    stored = put(data, filename=name, declared_type=declared_type)

    def same():
        return select(DocumentRow).where(DocumentRow.application_id == application_id,
                                         DocumentRow.sha256 == stored.sha256, DocumentRow.purpose == purpose,
                                         DocumentRow.year == year)
    with session() as s:
        existing = s.exec(same()).first()
        if existing is not None:
            return existing
        row = DocumentRow(sha256=stored.sha256, application_id=application_id, year=year, purpose=purpose,
                          filename=name, media_type=stored.media_type, size=stored.size, uploaded_by=uploaded_by,
                          uploaded_at=datetime.now(timezone.utc))
        s.add(row)
        try:
            s.commit()
        except IntegrityError:             # attached at the same moment by another request
            s.rollback()
            return s.exec(same()).one()
        s.refresh(row)
        return row


def documents_of(application_id: str) -> list[dict[str, Any]]:
    """The application's documents, oldest first, as dicts (sha256, filename, media_type, size,
    purpose, year, uploaded_by, uploaded_at, id)."""
    from models.db import session
    from models.tables import DocumentRow
    with session() as s:
        rows = s.exec(select(DocumentRow).where(DocumentRow.application_id == application_id)
                      .order_by(DocumentRow.uploaded_at, DocumentRow.id)).all()
        return [{f: getattr(r, f) for f in DocumentRow.model_fields} for r in rows]
