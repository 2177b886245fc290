"""record_payout: idempotent ledger insert, unique (application_id, year, seq)."""
from __future__ import annotations

from datetime import date, datetime, timezone

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from temporalio import activity

from activities.logs import bind
from models.application import PayoutInput, PayoutRecord
from models.db import session
from models.tables import LedgerEntry


def _existing(s, req: PayoutInput):
    return s.exec(select(LedgerEntry).where(LedgerEntry.application_id == req.application_id,
                                            LedgerEntry.year == req.year, LedgerEntry.seq == req.seq)).first()


def write_payout(req: PayoutInput) -> PayoutRecord:
    with session() as s:
        row = _existing(s, req)
        if row is None:
            s.add(LedgerEntry(application_id=req.application_id, clause_id=req.clause_id,
                              enterprise_code=req.enterprise_code, year=req.year, seq=req.seq, amount=req.amount,
                              item_id=req.item_id,
                              due=date.fromisoformat(req.due) if req.due else None, label=req.label,
                              paid_at=datetime.now(timezone.utc)))
            try:
                s.commit()
                return PayoutRecord(application_id=req.application_id, year=req.year, seq=req.seq,
                                    amount=req.amount, created=True)
            except IntegrityError:      # a concurrent attempt won the race
                s.rollback()
                row = _existing(s, req)
        return PayoutRecord(application_id=row.application_id, year=row.year, seq=row.seq,
                            amount=row.amount, created=False)


@activity.defn
def record_payout(req: PayoutInput) -> PayoutRecord:
    log = bind(req.application_id, req.clause_id)
    rec = write_payout(req)
    log.info("payout_recorded" if rec.created else "payout_already_recorded",
             year=req.year, seq=req.seq, amount=str(rec.amount))
    return rec
