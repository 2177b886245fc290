"""The application's own activities: open it (the worker resolves the clause, the enterprise and
the reviewer registry from its own data; a barred enterprise is refused), reload the reviewer
registry, the credit check on a given day (the blacklist, and a bar after a recovery),
notifications, and the status mirror (an upsert, run as a local activity)."""
from __future__ import annotations

import re
from datetime import date, datetime, timezone
from decimal import Decimal

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import metrics
from activities.logs import bind
from activities.once import activity_key, add_once
from calc import InputError
from models import registry
from models import credentials as creds
from models.application import (
    CreditCheck, CreditResult, Notification, OpenClaim, Opened, OpenRequest, Pinned, StatusUpdate, opening_notice,
)
from models.clauses import check_application, clause_info
from models.db import engine, session
from models.tables import ApplicationRow, ClaimRow, DecisionRow, NotificationRow


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _refuse(message: str) -> ApplicationError:
    """The claim cannot be an application: the workflow fails (and its id may be used again)."""
    return ApplicationError(message, type="InvalidClaim", non_retryable=True)


@activity.defn
def open_application(req: OpenRequest) -> Pinned:
    """Check the claim against the worker's own policy data and registry, and pin what the
    application will decide with: the clause's bureaus, programme and window, the enterprise's
    registered name, the reviewer registry. The submission must carry the operator's credential."""
    claim = req.claim
    log = bind(claim.application_id, claim.clause_id)
    try:
        cred = creds.verifier().verify(req.credential, application_id=claim.application_id, actions=("submit",),
                                       now=_now())
    except creds.CredentialError as e:
        raise _refuse(f"credential: {e}") from None
    if cred.user != claim.operator or cred.role != "operator":
        raise _refuse(f"credential: signed for {cred.user} ({cred.role}); the claim is submitted by operator "
                      f"{claim.operator}")
    try:
        check_application(claim)
    except InputError as e:
        raise _refuse(f"{e.field}: {e.rule}") from None
    info = clause_info(claim.clause_id)
    if (info.first_year and claim.year < info.first_year) or (info.last_year and claim.year > info.last_year):
        raise _refuse(f"year: {claim.year} lies outside the policy window of {claim.clause_id} "
                      f"({info.first_year}–{info.last_year})")
    try:
        ent = registry.enterprise(claim.enterprise_code)
    except (ValidationError, ValueError) as e:
        raise _refuse(f"enterprise_code: the registry row of {claim.enterprise_code} is invalid ({e})") from None
    if ent is None:
        raise _refuse(f"enterprise_code: {claim.enterprise_code} is not in the enterprise registry "
                      "(`disburse enterprises import`)")
    from models.recovery import active_bar, bar_line
    bar = active_bar(claim.enterprise_code, registry.today_cn())      # barred after a recovery (追回)
    if bar is not None:
        raise _refuse(f"enterprise_code: {bar_line(bar)}")
    from models.publicity import DAY_SECONDS_ENV, PublicitySettingError, day_seconds_setting
    try:
        day_seconds = day_seconds_setting()
    except PublicitySettingError as e:
        raise ApplicationError(str(e), type="ValueError", non_retryable=True) from None
    if day_seconds:
        log.warning("publicity_demo_setting", day_seconds=day_seconds,
                    message=f"{DAY_SECONDS_ENV} is set: this application's 公示 notice days last {day_seconds} s "
                            "(demos and tests only)")
    pinned = Pinned(clause=info, enterprise_name=ent.name, reviewers=registry.reviewer_snapshot(),
                    publicity_day_seconds=day_seconds)
    with session() as s:                  # the claim, for the audit record (outlives the history)
        add_once(s, ClaimRow(application_id=claim.application_id, claim_json=claim.model_dump_json(),
                             pinned_json=pinned.model_dump_json(), opened_at=_now()), key=("application_id",))
    metrics.application_opened(claim.clause_id)
    log.info("opened", year=claim.year, lead_bureau=info.lead_bureau)
    return pinned


@activity.defn
def open_claim(req: OpenClaim) -> Opened:
    """lean-history-2: open_application, the provisional calculation and the first status row
    (with the `awaiting_review` notice) in one local activity. Each part is keyed as on its own
    (the claim row by application, the status row by version, the notice by its key): run again
    after a crash, it writes nothing twice."""
    from activities.publicity import provisional_calculation
    pinned = open_application(req.open)
    provisional = provisional_calculation(req.estimate)
    claim = req.open.claim
    update = StatusUpdate(
        version=req.mirror_version, application_id=claim.application_id, clause_id=claim.clause_id,
        enterprise_code=claim.enterprise_code, enterprise_name=pinned.enterprise_name, year=claim.year,
        status="review", bureaus=list(pinned.clause.bureaus),
        provisional=Decimal(provisional.amount) if provisional.amount is not None else None,
        notices=[opening_notice(claim.application_id, pinned, claim.year, req.notice_key)])
    undelivered = mirror_status(update)
    return Opened(pinned=pinned, provisional=provisional, mirrored=update, undelivered=undelivered)


@activity.defn
def load_reviewers(application_id: str) -> dict[str, str]:
    """The reviewer registry as the database holds it now (reviewer id -> bureau)."""
    bind(application_id)
    return registry.reviewer_snapshot()


@activity.defn
def check_credit(req: CreditCheck) -> CreditResult:
    """Is the enterprise on the 严重失信 list on this day (an entry counts from its listed_on)?"""
    log = bind(req.application_id, req.clause_id)
    result = credit_on(req.enterprise_code, date.fromisoformat(req.day))
    log.info("blacklist_checked", enterprise_code=req.enterprise_code, listed=result.listed, day=req.day,
             barred=result.bar is not None)
    return result


def credit_on(enterprise_code: str, day: date, s=None) -> CreditResult:
    """The credit check: the 严重失信 list on `day` (an entry counts from its listed_on), then a
    bar after a recovery (追回): no further tranche either. In the session `s` when given (the
    payment's, holding the enterprise's book lock: a second connection there could wait for a pool
    that the lock's waiters hold)."""
    entry = registry.blacklist_entry(enterprise_code, on=day, s=s)
    if entry is not None:
        return CreditResult(listed=True, reason=entry.get("reason") or "listed")
    from models.recovery import active_bar, bar_line
    bar = active_bar(enterprise_code, day, s)
    if bar is not None:
        return CreditResult(listed=True, reason=bar_line(bar), bar=bar_line(bar))
    return CreditResult(listed=False)


def _clause_of(application_id: str) -> str | None:
    """The clause in an application id (app-<credit code>-<clause>-<year>), for the log line."""
    m = re.fullmatch(r"app-[0-9A-Z]{18}-(.+)-\d{4}", application_id or "")
    return m.group(1) if m else None


DELIVERY_ATTEMPTS = 5        # then a channel that still fails is logged, not retried any more


@activity.defn
def notify(n: Notification) -> None:
    """Record the notification (the console shows it to its recipients) and send it through the
    people's channels (e-mail, group-chat robots: notifications/). A failed delivery is retried
    with the activity a few times (each (key, person, channel) is sent once), then logged."""
    failed = send_notice(n, n.key or activity_key())
    if failed and activity.info().attempt < DELIVERY_ATTEMPTS:
        raise ApplicationError(f"{failed} deliveries failed; retrying", type="DeliveryFailed")


def send_notice(n: Notification, key: str) -> int:
    """Record the notification once under `key` and send it through the people's channels (each
    (key, person, channel) once); returns how many deliveries failed."""
    log = bind(n.application_id, _clause_of(n.application_id))
    log.info("notification", kind=n.kind, message=n.message, recipients=n.recipients)
    with session() as s:
        add_once(s, NotificationRow(application_id=n.application_id, kind=n.kind, message=n.message,
                                    recipients=";".join(n.recipients), created_at=_now(), source=key))
    from models.users import contacts_for
    from notifications.dispatch import dispatch
    deliveries = dispatch(n, contacts_for(n.recipients), idempotency_key=key)
    failed = [d for d in deliveries if not d.ok and not d.skipped and d.channel not in ("none", "contact")]
    for d in failed:
        log.warning("delivery_failed", user=d.user_id, channel=d.channel, error=d.error)
    return len(failed)


def _upsert(s, u: StatusUpdate) -> None:
    """Insert the application's row or update it, whichever is needed, in one statement; an older
    version never overwrites a newer one (mirrors of one application may arrive out of order)."""
    values = dict(application_id=u.application_id, clause_id=u.clause_id, enterprise_code=u.enterprise_code,
                  enterprise_name=u.enterprise_name, year=u.year, status=u.status, awarded=u.awarded,
                  bureaus=";".join(u.bureaus), overdue=u.overdue, version=u.version, updated_at=_now(),
                  amount=u.amount, provisional=u.provisional, publicity_from=u.publicity_from,
                  publicity_until=u.publicity_until)
    if engine().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(ApplicationRow).values(**values)
    changed = {k: stmt.excluded[k] for k in values if k != "application_id"}
    s.execute(stmt.on_conflict_do_update(index_elements=["application_id"], set_=changed,
                                         where=ApplicationRow.version < stmt.excluded.version))


def write_status(u: StatusUpdate, decision_source: str | None = None) -> None:
    with session() as s:
        _upsert(s, u)
        s.commit()
        if u.decision is not None and decision_source:
            d = u.decision
            add_once(s, DecisionRow(application_id=u.application_id, kind=d.kind, who=d.who, bureau=d.bureau,
                                    comment=d.comment, year=d.year, decided_at=d.when, source=decision_source))
        for index, d in u.decisions:
            add_once(s, DecisionRow(application_id=u.application_id, kind=d.kind, who=d.who, bureau=d.bureau,
                                    comment=d.comment, year=d.year, amount=d.amount, decided_at=d.when,
                                    source=f"{u.application_id}#{index}"))


@activity.defn
def mirror_status(u: StatusUpdate) -> list[str]:
    """The application's status and new decisions into the database (the CLI's lists, the audit
    record); run as a local activity by the workflow, never on the path of an update's reply. Then
    the notices that came with it (lean-history), each recorded and sent once under its key;
    returns the keys of those with a delivery that failed (the workflow sends them again)."""
    log = bind(u.application_id, u.clause_id)
    write_status(u)
    log.info("status_recorded", status=u.status, decisions=len(u.decisions), version=u.version)
    return [n.key for n in u.notices if send_notice(n, n.key)]


@activity.defn
def record_status(u: StatusUpdate) -> None:
    """The first version's status mirror (workflows/legacy.py)."""
    log = bind(u.application_id, u.clause_id)
    try:
        write_status(u, decision_source=activity_key())
    except IntegrityError:           # cannot happen with the upsert; kept explicit for old rows
        raise
    log.info("status_recorded", status=u.status, decision=u.decision.kind if u.decision else None)


@activity.defn(name="check_blacklist")
def check_blacklist(req: dict) -> dict:
    """The first version's credit check (today in China)."""
    entry = registry.blacklist_entry(req["enterprise_code"])
    bind(req.get("application_id"), req.get("clause_id")).info(
        "blacklist_checked", enterprise_code=req["enterprise_code"], listed=entry is not None)
    return {"listed": entry is not None, "reason": (entry.get("reason") or "listed") if entry else None}
