"""notify (log line + notifications row) and record_status (mirror into applications/decisions)."""
from __future__ import annotations

from datetime import datetime, timezone

from temporalio import activity

from activities.logs import bind
from activities.once import activity_key, add_once
from models.application import Notification, StatusUpdate
from models.db import session
from models.tables import ApplicationRow, DecisionRow, NotificationRow


def _now() -> datetime:
    return datetime.now(timezone.utc)


@activity.defn
def notify(n: Notification) -> None:
    log = bind(n.application_id, None)
    log.info("notification", kind=n.kind, message=n.message, recipients=n.recipients)
    with session() as s:
        add_once(s, NotificationRow(application_id=n.application_id, kind=n.kind, message=n.message,
                                    recipients=";".join(n.recipients), created_at=_now(), source=activity_key()))


@activity.defn
def record_status(u: StatusUpdate) -> None:
    log = bind(u.application_id, u.clause_id)
    with session() as s:
        row = s.get(ApplicationRow, u.application_id)
        if row is None:
            row = ApplicationRow(application_id=u.application_id, clause_id=u.clause_id,
                                 enterprise_code=u.enterprise_code, year=u.year, status=u.status,
                                 awarded=u.awarded, updated_at=_now(), version=-1)
        if u.version > row.version:          # mirrors can run concurrently; the latest state wins
            row.enterprise_name = u.enterprise_name
            row.year, row.status, row.awarded, row.overdue = u.year, u.status, u.awarded, u.overdue
            row.bureaus = ";".join(u.bureaus)
            row.version = u.version
            row.updated_at = _now()
            s.add(row)
            s.commit()
        if u.decision is not None:
            d = u.decision
            add_once(s, DecisionRow(application_id=u.application_id, kind=d.kind, who=d.who, bureau=d.bureau,
                                    comment=d.comment, year=d.year, decided_at=d.when, source=activity_key()))
    log.info("status_recorded", status=u.status, decision=u.decision.kind if u.decision else None)
