"""Business metrics, exported on the worker's Prometheus endpoint next to the SDK's own
(DISBURSE_METRICS_PORT; worker.py). Names start with `disburse_`; money is counted in fen.

- from the activities (counters, per worker; sum them across workers):
  disburse_applications_opened, disburse_awards_committed_fen, disburse_awards_paid_fen,
  disburse_awards_released_fen (label clause_id)
- from the workflow (counters; not counted again on replay): disburse_status_changes (label
  status), disburse_sla_breaches, disburse_activity_failures (labels activity, error)
- from the database, every DISBURSE_METRICS_INTERVAL seconds (gauges, the same on every worker:
  take max, not sum): disburse_applications (label status), disburse_book_fen (label state:
  committed / paid / released)
"""
from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

from temporalio import activity

log = logging.getLogger("disburse")


def _fen(amount: Decimal) -> int:
    return int(Decimal(amount) * 100)


def count(name: str, value: int = 1, description: str = "", **labels: str) -> None:
    """Add to a counter from inside an activity (a no-op where no metrics are configured)."""
    if value <= 0:
        return
    activity.metric_meter().create_counter(name, description).add(value, labels)


def award_committed(clause_id: str, amount: Decimal) -> None:
    count("disburse_awards_committed_fen", _fen(amount), "awards committed to the award book, in fen",
          clause_id=clause_id)


def award_paid(clause_id: str, amount: Decimal) -> None:
    count("disburse_awards_paid_fen", _fen(amount), "tranches paid into the ledger, in fen", clause_id=clause_id)


def award_released(clause_id: str, amount: Decimal) -> None:
    count("disburse_awards_released_fen", _fen(amount), "commitments released, in fen", clause_id=clause_id)


def application_opened(clause_id: str) -> None:
    count("disburse_applications_opened", 1, "applications opened by the worker", clause_id=clause_id)


def database_gauges() -> dict[tuple[str, str], int]:
    """(gauge, label value) -> value, from the database: applications by status, the award book by state."""
    from sqlalchemy import func
    from sqlmodel import select

    from models.db import session
    from models.tables import ApplicationRow, AwardLine
    out: dict[tuple[str, str], int] = {}
    with session() as s:
        for status, n in s.exec(select(ApplicationRow.status, func.count()).group_by(ApplicationRow.status)):
            out[("disburse_applications", status)] = int(n)
        for state, total in s.exec(select(AwardLine.state, func.sum(AwardLine.amount)).group_by(AwardLine.state)):
            out[("disburse_book_fen", state)] = _fen(total or 0)
    return out


async def publish_database_gauges(meter, interval: float) -> None:
    """Runs beside the worker: sets the database gauges every `interval` seconds."""
    gauges = {"disburse_applications": ("status", "applications by status (from the database)"),
              "disburse_book_fen": ("state", "the award book by state, in fen (from the database)")}
    made = {name: meter.create_gauge(name, text) for name, (_, text) in gauges.items()}
    seen: set[tuple[str, str]] = set()
    while True:
        try:
            values = await asyncio.to_thread(database_gauges)
            for key in seen - set(values):            # a status nobody is in any more reads 0
                values[key] = 0
            for (name, label), value in values.items():
                made[name].set(value, {gauges[name][0]: label})
            seen |= set(values)
        except Exception as e:  # noqa: BLE001 - a metrics hiccup must never stop the worker
            log.warning("metrics_database_gauges_failed: %s", e)
        await asyncio.sleep(interval)
