"""People who use disburse: operators, reviewers of a bureau, finance, ops — with argon2 password
hashes, lock-out after repeated failures, and a CLI token each (stored as its SHA-256 hash).

The console authenticates with the password and keeps a session; the CLI with the token. Either
then asks the signing service (models/credentials.py) for a credential the workflow verifies.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta, timezone
from typing import Optional

from sqlmodel import select

from models.credentials import Actor
from models.db import session
from models.tables import Reviewer, UserRow

ROLES = ("operator", "reviewer", "finance", "ops")
MAX_FAILURES = 5                       # then the account is locked for LOCK_FOR
LOCK_FOR = timedelta(minutes=15)
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


class UserError(ValueError):
    """A refused user operation (bad id, unknown bureau, wrong password, locked...)."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _aware(t: Optional[datetime]) -> Optional[datetime]:
    return t if t is None or t.tzinfo else t.replace(tzinfo=timezone.utc)


def _hasher():
    from argon2 import PasswordHasher
    return PasswordHasher()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_user(user_id: str, *, role: str, password: str, name: str = "", bureau: Optional[str] = None,
             email: str = "", webhook_url: str = "") -> str:
    """Register (or update) a user; returns a new CLI token (shown once). Reviewers and finance
    belong to a bureau the policies name (finance: a 财政局); they are also put in the reviewer
    registry."""
    user_id = user_id.strip()
    if not _ID.match(user_id):
        raise UserError(f"user id {user_id[:64]!r}: letters, digits and . _ @ - only, at most 64 characters")
    if role not in ROLES:
        raise UserError(f"role {role!r}: one of {', '.join(ROLES)}")
    if len(password) < 10:
        raise UserError("password: at least 10 characters")
    if role in ("reviewer", "finance"):
        from models.clauses import known_bureaus
        if not bureau or bureau not in known_bureaus():
            raise UserError(f"bureau {bureau!r}: a {role} belongs to a bureau the policies name")
        if role == "finance" and not bureau.endswith("财政局"):
            raise UserError(f"bureau {bureau}: finance users belong to a 财政局")
    elif bureau:
        raise UserError(f"an {role} belongs to no bureau")
    email, webhook_url = email.strip(), webhook_url.strip()
    if email and (len(email) > 254 or not re.fullmatch(r"[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+", email)):
        raise UserError(f"email {email[:64]!r}: one address, name@domain")
    if webhook_url and (len(webhook_url) > 2000 or not re.fullmatch(r"https?://[^\s]+", webhook_url)):
        raise UserError(f"webhook url {webhook_url[:64]!r}: an http(s) address without spaces")
    token = secrets.token_urlsafe(32)
    with session() as s:
        row = s.get(UserRow, user_id) or UserRow(user_id=user_id, role=role, created_at=_now())
        row.name, row.role, row.bureau, row.email, row.webhook_url = name, role, bureau, email, webhook_url
        row.password_hash = _hasher().hash(password)
        row.token_hash = token_hash(token)
        row.failed_logins, row.locked_until, row.disabled = 0, None, False
        s.add(row)
        if role in ("reviewer", "finance"):
            s.merge(Reviewer(reviewer_id=user_id, bureau=bureau, name=name))
        s.commit()
    return token


def authenticate(user_id: str, password: str, *, now: Optional[datetime] = None) -> Actor:
    """The actor, if the password is right and the account is not locked; else UserError. Every
    failure counts; MAX_FAILURES in a row lock the account for LOCK_FOR (the same answer is given
    for an unknown user and a wrong password)."""
    now = now or _now()
    with session() as s:
        row = s.get(UserRow, user_id.strip())
        if row is None or row.disabled:
            _hasher().hash(password)                     # the same work as a real check
            raise UserError("wrong user or password")
        if row.locked_until and _aware(row.locked_until) > now:
            raise UserError(f"account locked after {MAX_FAILURES} failed logins; try again after "
                            f"{_aware(row.locked_until).isoformat(timespec='minutes')}")
        try:
            _hasher().verify(row.password_hash, password)
        except Exception:  # noqa: BLE001 - VerifyMismatchError, InvalidHash: a failure either way
            row.failed_logins += 1
            if row.failed_logins >= MAX_FAILURES:
                row.locked_until, row.failed_logins = now + LOCK_FOR, 0
            s.add(row)
            s.commit()
            raise UserError("wrong user or password") from None
        row.failed_logins, row.locked_until = 0, None
        s.add(row)
        s.commit()
        return Actor(user=row.user_id, role=row.role, bureau=row.bureau)


def new_token(user_id: str, password: str) -> str:
    """`disburse login`: a fresh CLI token for the user (the old one stops working)."""
    authenticate(user_id, password)
    token = secrets.token_urlsafe(32)
    with session() as s:
        row = s.get(UserRow, user_id.strip())
        row.token_hash = token_hash(token)
        s.add(row)
        s.commit()
    return token


def actor_for_token(token: str) -> Actor:
    """The actor a CLI token belongs to; UserError if none."""
    wanted = token_hash(token.strip())
    with session() as s:
        row = s.exec(select(UserRow).where(UserRow.token_hash == wanted)).first()
    if row is None or row.disabled or not hmac.compare_digest(row.token_hash or "", wanted):
        raise UserError("the CLI token is not valid; log in again (`disburse login USER`)")
    return Actor(user=row.user_id, role=row.role, bureau=row.bureau)


def actor(user_id: str) -> Actor:
    """The actor of a registered user, or of a registered reviewer (finance if their bureau is a
    财政局), else an operator. For the service layer (workflows/client.py): the console and the CLI
    authenticate the person before they ask for a signature."""
    with session() as s:
        row = s.get(UserRow, user_id)
        if row is not None:
            return Actor(user=row.user_id, role=row.role, bureau=row.bureau)
        rev = s.get(Reviewer, user_id)
    if rev is not None:
        return Actor(user=user_id, role="finance" if rev.bureau.endswith("财政局") else "reviewer", bureau=rev.bureau)
    return Actor(user=user_id, role="operator")


def user_rows() -> list[dict]:
    with session() as s:
        return [{"user_id": r.user_id, "name": r.name, "role": r.role, "bureau": r.bureau or "",
                 "email": r.email, "locked": bool(r.locked_until and _aware(r.locked_until) > _now())}
                for r in s.exec(select(UserRow).order_by(UserRow.user_id))]


def contacts_for(recipients: list[str]) -> list[dict]:
    """The people a notification goes to: a recipient is a user id, or a bureau (every reviewer
    and finance user of that bureau). As notifications.Contact fields."""
    wanted_users = set(recipients)
    out: dict[str, dict] = {}
    with session() as s:
        for row in s.exec(select(UserRow).where(UserRow.disabled == False)):  # noqa: E712
            if row.user_id in wanted_users or (row.bureau and row.bureau in wanted_users):
                out[row.user_id] = {"user_id": row.user_id, "name": row.name, "email": row.email,
                                    "webhook_url": row.webhook_url}
    return list(out.values())
