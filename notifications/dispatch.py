"""Send one notification to its contacts through every channel each has, and say what happened.

    dispatch(n, contacts, channels=None, *, idempotency_key=None) -> list[Delivery]

`n` is a `models.application.Notification` or anything with `application_id`, `kind` and
`message` (attributes or dict keys). A contact may also be given as a dict (a users table's row); one
that is not a valid `Contact` is reported (channel "contact") and the others still get the notice. The message is rendered once per notification (`render`:
Chinese text per kind, the application id, a console link when DISBURSE_CONSOLE_URL is set, the
notification's own message last, bounded and inert), then sent to each contact on each channel
where the contact has an address — one `Delivery` per (contact, channel), in order; a contact with
an address on no channel gets one failed Delivery (channel "none"), so no notice is lost silently. A contact id
given twice counts once; a target two contacts share (one group chat's robot) gets the message once.

Nothing raises: a failing channel, a bad setting, a broken custom channel are each reported in
that delivery's `error`, and the others still go. The caller logs them (and may raise to have
Temporal retry the activity).

With an `idempotency_key` (the notify activity's run id + activity id, stable across its retries)
each delivery is recorded in `notification_delivery`; a later dispatch under the same key skips
every (contact, channel) recorded as delivered (`skipped`) and tries again those that failed. A
message is recorded after it was sent: a crash in between sends it once more on the retry (at least
once, never lost). A database that cannot be read or written does not stop a delivery; the
delivery then says "not recorded".
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any, Iterable, Optional, Sequence
from urllib.parse import quote

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from notifications import settings as _settings
from notifications.channels import Channel, ChannelError, default_channels
from notifications.model import Contact, Delivery, Outgoing
from notifications.text import one_line, paragraph

__all__ = ["Contact", "Delivery", "KINDS", "dispatch", "render"]

ID_LIMIT = 200
MESSAGE_LIMIT = 1000
MESSAGE_LINES = 20
ERROR_LIMIT = 500
KEY_LIMIT = 500

# kind -> (title, what it means for the reader)
KINDS: dict[str, tuple[str, str]] = {
    "awaiting_review": ("待审核", "该申请正等待审核，请登录系统处理。"),
    "info_requested": ("需补充材料", "审核部门要求补充材料，补充后审核继续。"),
    "escalation": ("超期提醒", "该申请已超过审核时限，仍在等待处理。"),
    "tranche_paid": ("资金已拨付", "该申请的一笔扶持资金已拨付。"),
    "programme_ended": ("扶持期结束", "该申请的多年度扶持已结束。"),
    "evidence_due": ("待提交年度材料", "多年度扶持的下一年度需要提交材料，逾期视为放弃。"),
    "awaiting_confirmation": ("待财政确认", "下一年度的核算已完成，等待财政部门确认。"),
    "awaiting_budget": ("待追加预算", "预算指标不足以承担该申请的核定金额，等待财政部门追加预算或作出决定。"),
    "publicity": ("公示中", "该申请的扶持金额已进入公示期，公示期满且无异议后拨付。"),
    "objection": ("公示异议", "公示期内收到实名书面异议，请牵头部门审查后作出维持或驳回决定。"),
}
FALLBACK = ("通知", "该申请有一条新通知（类型：{kind}）。")


def _field(n: Any, name: str) -> str:
    value = n.get(name) if isinstance(n, dict) else getattr(n, name, None)
    return "" if value is None else str(value)


def render(n: Any) -> tuple[str, str]:
    """(subject, body) of notification `n`: plain text, every part from outside bounded and inert."""
    app_id, kind, message = _field(n, "application_id"), _field(n, "kind"), _field(n, "message")
    shown_id = one_line(app_id, ID_LIMIT)
    if kind in KINDS:
        title, meaning = KINDS[kind]
    else:
        title, meaning = FALLBACK[0], FALLBACK[1].format(kind=one_line(kind, 64))
    subject = f"【disburse】{title}：{shown_id}"
    lines = [f"【disburse】{title}", f"申请编号：{shown_id}", meaning]
    console = _settings.console_url_or_none()
    if console and app_id:
        lines.append(f"查看：{console}/applications/{quote(app_id, safe='')}")
    text = paragraph(message, MESSAGE_LIMIT, MESSAGE_LINES)
    if text:
        lines += ["", "说明：", text]
    return subject, "\n".join(lines)


def _describe(e: BaseException) -> str:
    text = str(e) if isinstance(e, ChannelError) else f"{type(e).__name__}: {e}"
    return one_line(text, ERROR_LIMIT)


def _channel_name(ch: Any) -> str:
    return one_line(getattr(ch, "name", None) or type(ch).__name__, 64)


# ------------------------------------------------------------------------------- the record
def _delivered(key: str, user_id: str, channel: str):
    """The recorded delivery under this key, if it succeeded."""
    from models.db import session
    from models.tables import NotificationDelivery as Row
    with session() as s:
        row = s.exec(select(Row).where(Row.idempotency_key == key, Row.user_id == user_id,
                                       Row.channel == channel)).first()
        return row if row is not None and row.ok else None


def _record(key: str, d: Delivery) -> None:
    """Insert or update the (key, user, channel) row with this attempt; a delivered row stays so."""
    from models.db import session
    from models.tables import NotificationDelivery as Row

    def update(s) -> None:
        row = s.exec(select(Row).where(Row.idempotency_key == key, Row.user_id == d.user_id,
                                       Row.channel == d.channel)).first()
        if row is None:
            s.add(Row(idempotency_key=key, user_id=d.user_id, channel=d.channel, target=d.target, ok=d.ok,
                      error=d.error, created_at=datetime.now(timezone.utc)))
        elif not row.ok:
            row.ok, row.error, row.target, row.created_at = d.ok, d.error, d.target, datetime.now(timezone.utc)
            s.add(row)
        s.commit()

    with session() as s:
        try:
            update(s)
        except IntegrityError:          # a concurrent attempt inserted it first
            s.rollback()
            update(s)


# ----------------------------------------------------------------------------------- send
def _one(ch: Channel, name: str, contact: Contact, target: str, shown: str, subject: str, body: str,
         n: Any, key: Optional[str]) -> Delivery:
    note = None
    if key is not None:
        try:
            if _delivered(key, contact.user_id, name) is not None:
                return Delivery(user_id=contact.user_id, channel=name, target=shown, ok=True, skipped=True)
        except Exception as e:                                   # noqa: BLE001 - reported, never raised
            note = f"not recorded (database: {_describe(e)})"
    try:
        ch.send(Outgoing(contact=contact, target=target, subject=subject, body=body,
                         application_id=_field(n, "application_id"), kind=_field(n, "kind")))
        d = Delivery(user_id=contact.user_id, channel=name, target=shown, ok=True)
    except Exception as e:                                       # noqa: BLE001 - reported, never raised
        d = Delivery(user_id=contact.user_id, channel=name, target=shown, ok=False, error=_describe(e))
    if key is not None and note is None:
        try:
            _record(key, d)
        except Exception as e:                                   # noqa: BLE001
            note = f"not recorded (database: {_describe(e)})"
    if note is not None:
        d = d.model_copy(update={"error": f"{d.error}; {note}" if d.error else f"delivered; {note}"})
    return d


def dispatch(n: Any, contacts: Iterable[Contact | dict], channels: Optional[Sequence[Channel]] = None, *,
             idempotency_key: Optional[str] = None) -> list[Delivery]:
    """Send notification `n` to every contact on every channel it has (default: e-mail and webhooks
    from the environment's settings); one Delivery per (contact, channel). Never raises."""
    key = idempotency_key or None
    if key is not None and len(key) > KEY_LIMIT:           # still one key per key, and bounded
        key = f"{key[:400]}#{hashlib.sha256(key.encode('utf-8', 'surrogatepass')).hexdigest()}"
    subject, body = render(n)
    chans = list(channels) if channels is not None else default_channels()
    out: list[Delivery] = []
    users: set[str] = set()
    first_to: dict[tuple[str, str], Delivery] = {}
    for contact in contacts:
        if not isinstance(contact, Contact):
            try:
                contact = Contact.model_validate(contact)
            except Exception as e:                               # noqa: BLE001 - one bad row, not all
                user = contact.get("user_id") if isinstance(contact, dict) else getattr(contact, "user_id", None)
                out.append(Delivery(user_id=one_line(user or "?", 200), channel="contact", target="", ok=False,
                                    error=_describe(e)))
                continue
        if contact.user_id in users:
            continue
        users.add(contact.user_id)
        before = len(out)
        for ch in chans:
            name = _channel_name(ch)
            try:
                target = ch.target(contact)
                if not target:
                    continue
                shown = one_line(ch.shown(target), 300)
            except Exception as e:                               # noqa: BLE001 - a broken custom channel
                out.append(Delivery(user_id=contact.user_id, channel=name, target="", ok=False, error=_describe(e)))
                continue
            earlier = first_to.get((name, target))
            if earlier is not None:                              # one group chat, two contacts: once
                out.append(earlier.model_copy(update={"user_id": contact.user_id, "skipped": True}))
                continue
            d = _one(ch, name, contact, target, shown, subject, body, n, key)
            first_to[(name, target)] = d
            out.append(d)
        if len(out) == before:                                   # nobody would hear of it: say so
            names = ", ".join(_channel_name(ch) for ch in chans) or "none"
            out.append(Delivery(user_id=contact.user_id, channel="none", target="", ok=False,
                                error=f"the contact has no address on any channel ({names})"))
    return out
