"""record_payout: idempotent ledger insert, unique (application_id, year, seq)."""
from __future__ import annotations

from datetime import date, datetime, timezone

from temporalio import activity

from activities.logs import bind
from activities.once import add_once
from models.application import PayoutInput, PayoutRecord
from models.db import session
from models.tables import LedgerEntry


def write_payout(req: PayoutInput) -> PayoutRecord:
    row = LedgerEntry(application_id=req.application_id, clause_id=req.clause_id, enterprise_code=req.enterprise_code,
                      year=req.year, seq=req.seq, amount=req.amount, item_id=req.item_id,
                      due=date.fromisoformat(req.due) if req.due else None, label=req.label,
                      paid_at=datetime.now(timezone.utc))
    with session() as s:
        found = add_once(s, row, key=("application_id", "year", "seq"))
        paid = found if found is not None else row
        return PayoutRecord(application_id=paid.application_id, year=paid.year, seq=paid.seq,
                            amount=paid.amount, created=found is None)


@activity.defn
def record_payout(req: PayoutInput) -> PayoutRecord:
    log = bind(req.application_id, req.clause_id)
    rec = write_payout(req)
    log.info("payout_recorded" if rec.created else "payout_already_recorded",
             year=req.year, seq=req.seq, amount=str(rec.amount))
    return rec
