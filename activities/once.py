"""Rows an activity writes are written once, however often the activity is retried: a row is
identified by a unique key, by default `source` = the workflow run id + the activity id (the same
on every attempt); the ledger uses (application, year, tranche)."""
from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select
from temporalio import activity


def activity_key() -> str:
    info = activity.info()
    return f"{info.workflow_run_id}/{info.activity_id}"


def add_once(s: Session, row, key: tuple[str, ...] = ("source",)):
    """Add and commit `row` unless a row with the same values in the unique `key` columns exists.
    Returns None when this call added it, else the row already there."""
    table = type(row)

    def existing():
        return s.exec(select(table).where(*(getattr(table, k) == getattr(row, k) for k in key))).first()

    found = existing()
    if found is not None:
        return found
    s.add(row)
    try:
        s.commit()
    except IntegrityError:       # a concurrent attempt won
        s.rollback()
        return existing()
    return None
