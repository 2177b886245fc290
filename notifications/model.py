"""Who gets a notification (`Contact`), one message on its way to one of them (`Outgoing`), and
what became of it (`Delivery`)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Optional
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from cli.safe_text import first_unsafe

RobotKind = Literal["dingtalk", "wecom", "feishu"]

# one mailbox, no display name, nothing a header parser would split on or a line break
_EMAIL = re.compile(r"[^\s@<>()\[\],;:\"\\]+@[^\s@<>()\[\],;:\"\\]+")


class Contact(BaseModel):
    """A person or a group chat: `user_id` is the operator or reviewer id (or a bureau's own id),
    `email` and `webhook_url` the channels it has (either, both or none). `webhook_kind` picks the
    robot's JSON shape (otherwise the URL's host or DISBURSE_WEBHOOK_KIND decides);
    `webhook_secret` signs DingTalk and Feishu requests (a WeCom robot has no signing)."""
    model_config = ConfigDict(frozen=True)

    user_id: str = Field(min_length=1, max_length=200)
    name: str = Field(default="", max_length=200)       # shown as text only; sanitized when sent
    email: Optional[str] = Field(default=None, max_length=254)
    webhook_url: Optional[str] = Field(default=None, max_length=2048, repr=False)   # carries the robot's token
    webhook_kind: Optional[RobotKind] = None
    webhook_secret: Optional[SecretStr] = Field(default=None, repr=False)

    @field_validator("email", "webhook_url", "webhook_kind", "webhook_secret", mode="before")
    @classmethod
    def _blank_is_none(cls, v):
        """A users table keeps "" for "none" (app_user.email, webhook_url): no address, not a bad one."""
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("user_id")
    @classmethod
    def _user_id(cls, v: str) -> str:
        if first_unsafe(v) is not None or v != v.strip():
            raise ValueError("user_id: no control characters or surrounding spaces")
        return v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return v.strip()

    @field_validator("email")
    @classmethod
    def _email(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return None
        if not _EMAIL.fullmatch(v) or first_unsafe(v) is not None:
            raise ValueError("email: one address, local@domain, with no name, space, comma or control character")
        return v

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return None
        if any(ch.isspace() for ch in v) or first_unsafe(v) is not None:
            raise ValueError("webhook_url: no spaces or control characters")
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("webhook_url: an http(s) URL with a host")
        return v


@dataclass(frozen=True)
class Outgoing:
    """One rendered message for one contact on one channel: `target` is that channel's address of
    the contact (an e-mail address, a webhook URL); `subject` and `body` are plain text."""
    contact: Contact
    target: str
    subject: str
    body: str
    application_id: str = ""
    kind: str = ""


class Delivery(BaseModel):
    """What became of one (contact, channel): `ok` it was delivered (now or, with `skipped`, before:
    under the same idempotency key, or to the same target for another contact of this dispatch);
    `error` why not — or, with `ok`, that it was delivered but could not be recorded. `target` is
    shown without secrets (a webhook's token is masked)."""
    user_id: str
    channel: str
    target: str
    ok: bool
    error: Optional[str] = None
    skipped: bool = False
