"""Rows an activity writes are written once, however often the activity is retried: each carries
`source` = the workflow run id + the activity id (the same on every attempt), which is unique."""
from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select
from temporalio import activity


def activity_key() -> str:
    info = activity.info()
    return f"{info.workflow_run_id}/{info.activity_id}"


def add_once(s: Session, row) -> bool:
    """Add and commit `row` (whose `source` is set) unless an earlier attempt did; True if added."""
    table = type(row)
    if s.exec(select(table).where(table.source == row.source)).first() is not None:
        return False
    s.add(row)
    try:
        s.commit()
    except IntegrityError:       # a concurrent attempt won
        s.rollback()
        return False
    return True
