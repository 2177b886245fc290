"""Channels a notification goes out on: e-mail over SMTP and group-chat robot webhooks (DingTalk,
WeCom, Feishu custom robots). A channel raises on failure; `dispatch` catches and reports it.

A `Channel` has a `name` (the `channel` of a delivery), `target(contact)` (the contact's address on
this channel, None when it has none), `shown(target)` (that address as it may be logged and stored:
no secrets) and `send(message)`. Construction never raises: a settings problem is raised by `send`,
so the other channels still deliver.
"""
from __future__ import annotations

import base64
import email.policy
import hashlib
import hmac
import json
import smtplib
import ssl
import time
from datetime import datetime, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Optional, Protocol, runtime_checkable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from notifications import settings as _settings
from notifications.model import Contact, Outgoing
from notifications.text import clip_bytes, one_line, paragraph

SUBJECT_LIMIT = 200
BODY_LIMIT = 4000
NAME_LIMIT = 100
# what each robot accepts in one text message, in UTF-8 bytes (WeCom: "最长不超过2048个字节";
# DingTalk and Feishu allow about 20,000 bytes for the whole request)
ROBOT_BYTES = {"dingtalk": 18000, "wecom": 2048, "feishu": 18000}
ROBOT_HOSTS = {"oapi.dingtalk.com": "dingtalk", "qyapi.weixin.qq.com": "wecom",
               "open.feishu.cn": "feishu", "open.larksuite.com": "feishu"}
ANSWER_LIMIT = 300


class ChannelError(Exception):
    """A delivery failed; the message says why (and never holds a secret)."""


@runtime_checkable
class Channel(Protocol):
    name: str

    def target(self, contact: Contact) -> Optional[str]: ...

    def shown(self, target: str) -> str: ...

    def send(self, message: Outgoing) -> None: ...


def _load(loader):
    try:
        return loader(), None
    except _settings.SettingsError as e:
        return None, ChannelError(str(e))


# ------------------------------------------------------------------------------------ e-mail
class SmtpChannel:
    """One e-mail per contact (text/plain, UTF-8; the subject and names RFC 2047-encoded), one SMTP
    connection each; the envelope's only recipient is the contact's address. STARTTLS is required
    when set (never a fallback to clear text); login only after TLS, or on this host."""
    name = "email"

    def __init__(self, settings: Optional[_settings.SmtpSettings] = None):
        if settings is None:
            settings, self._problem = _load(_settings.load_smtp)
        else:
            self._problem = None
        self.settings = settings

    def target(self, contact: Contact) -> Optional[str]:
        return contact.email

    def shown(self, target: str) -> str:
        return target

    def message(self, m: Outgoing) -> EmailMessage:
        s = self.settings
        msg = EmailMessage(policy=email.policy.SMTP)
        msg["From"] = s.sender
        msg["To"] = Address(display_name=one_line(m.contact.name, NAME_LIMIT), addr_spec=m.target)
        msg["Subject"] = one_line(m.subject, SUBJECT_LIMIT)
        msg["Date"] = format_datetime(datetime.now(timezone.utc))
        msg["Message-ID"] = make_msgid(domain=s.sender_addr.rpartition("@")[2] or "localhost")
        msg.set_content(paragraph(m.body, BODY_LIMIT, max_lines=60) + "\n", charset="utf-8")
        return msg

    def send(self, m: Outgoing) -> None:
        if self._problem is not None:
            raise self._problem
        s = self.settings
        if not s.host:
            raise ChannelError("e-mail is not configured: set DISBURSE_SMTP_HOST")
        msg = self.message(m)
        context = ssl.create_default_context(cafile=s.ca_file)
        if s.ssl:
            conn = smtplib.SMTP_SSL(s.host, s.port, local_hostname=s.helo, timeout=s.timeout, context=context)
        else:
            conn = smtplib.SMTP(s.host, s.port, local_hostname=s.helo, timeout=s.timeout)
        with conn:
            if s.starttls:
                conn.ehlo()
                if not conn.has_extn("starttls"):
                    raise ChannelError(f"the SMTP server {s.host}:{s.port} does not offer STARTTLS "
                                       "(DISBURSE_SMTP_STARTTLS=true): nothing was sent")
                conn.starttls(context=context)
                conn.ehlo()
            if s.user:
                conn.login(s.user, s.password)
            refused = conn.send_message(msg, from_addr=s.sender_addr, to_addrs=[m.target])
            if refused:
                raise ChannelError(f"the SMTP server refused {m.target}: {refused[m.target]!r}")


# ---------------------------------------------------------------------------------- webhooks
def _sign(key: bytes, msg: bytes) -> str:
    return base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode("ascii")


def dingtalk_signed(url: str, secret: str, now_ms: Optional[int] = None) -> str:
    """DingTalk's 加签: `&timestamp={ms}&sign={urlencode(base64(HmacSHA256(secret, "{ms}\\n{secret}")))}`."""
    ts = str(now_ms if now_ms is not None else int(time.time() * 1000))
    sign = _sign(secret.encode("utf-8"), f"{ts}\n{secret}".encode("utf-8"))
    parts = urlsplit(url)
    signed = urlencode([("timestamp", ts), ("sign", sign)])          # the sign URL-encoded, as documented
    return urlunsplit(parts._replace(query=f"{parts.query}&{signed}" if parts.query else signed))


def feishu_signature(secret: str, now_s: Optional[int] = None) -> dict[str, str]:
    """Feishu's 签名校验: `timestamp` (seconds) and `sign` = base64(HmacSHA256(key="{ts}\\n{secret}", ""))
    in the request body."""
    ts = str(now_s if now_s is not None else int(time.time()))
    return {"timestamp": ts, "sign": _sign(f"{ts}\n{secret}".encode("utf-8"), b"")}


def redact_url(url: str) -> str:
    """A webhook URL as it may be shown: every query value and every long path segment (where
    Feishu keeps its token) masked."""
    try:
        parts = urlsplit(url)
        path = "/".join(seg if len(seg) < 16 else seg[:4] + "***" for seg in parts.path.split("/"))
        query = "&".join(f"{k}=***" for k, _ in parse_qsl(parts.query, keep_blank_values=True))
        netloc = parts.hostname or ""
        if ":" in netloc:
            netloc = f"[{netloc}]"
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, path, query, ""))
    except ValueError:
        return "(webhook)"


class WebhookChannel:
    """POSTs the message as a robot's plain-text message (JSON, UTF-8): `{"msgtype": "text", "text":
    {"content": ...}}` for DingTalk and WeCom, `{"msg_type": "text", "content": {"text": ...}}` for
    Feishu. A non-2xx answer, or a robot's own refusal in a 200 (`errcode`/`code` other than 0), is
    a failure. Redirects are not followed; HTTP(S)_PROXY and SSL_CERT_FILE are honoured (httpx)."""
    name = "webhook"

    def __init__(self, settings: Optional[_settings.WebhookSettings] = None,
                 transport: Optional[httpx.BaseTransport] = None):
        if settings is None:
            settings, self._problem = _load(_settings.load_webhook)
        else:
            self._problem = None
        self.settings = settings
        self._transport = transport

    def target(self, contact: Contact) -> Optional[str]:
        return contact.webhook_url

    def shown(self, target: str) -> str:
        return redact_url(target)

    @staticmethod
    def kind_for(contact: Contact, default: str = "dingtalk") -> str:
        """The contact's `webhook_kind`, else the robot the URL's host belongs to, else `default`."""
        if contact.webhook_kind:
            return contact.webhook_kind
        host = (urlsplit(contact.webhook_url or "").hostname or "").lower()
        return ROBOT_HOSTS.get(host, default)

    def payload(self, m: Outgoing, kind: str) -> dict:
        # the body begins with the title and the application id: a robot shows no subject
        text = paragraph(m.body or m.subject, BODY_LIMIT, max_lines=40)
        text = clip_bytes(text, ROBOT_BYTES[kind])
        if kind == "feishu":
            body = {"msg_type": "text", "content": {"text": text}}
            if m.contact.webhook_secret is not None:
                body.update(feishu_signature(m.contact.webhook_secret.get_secret_value()))
            return body
        return {"msgtype": "text", "text": {"content": text}}

    def send(self, m: Outgoing) -> None:
        if self._problem is not None:
            raise self._problem
        kind = self.kind_for(m.contact, self.settings.kind)
        url = m.target
        if kind == "dingtalk" and m.contact.webhook_secret is not None:
            url = dingtalk_signed(url, m.contact.webhook_secret.get_secret_value())
        data = json.dumps(self.payload(m, kind), ensure_ascii=False).encode("utf-8")
        shown = self.shown(m.target)
        try:
            with httpx.Client(timeout=self.settings.timeout, follow_redirects=False,
                              transport=self._transport) as client:
                r = client.post(url, content=data, headers={"Content-Type": "application/json; charset=utf-8"})
        except httpx.HTTPError as e:
            raise ChannelError(f"{kind} robot {shown}: {type(e).__name__}: "
                               f"{str(e).replace(url, shown).replace(m.target, shown)}") from None
        answer = one_line(r.text, ANSWER_LIMIT)
        if not 200 <= r.status_code < 300:
            raise ChannelError(f"{kind} robot {shown}: HTTP {r.status_code}: {answer}")
        try:
            reply = r.json()
        except ValueError:
            return                           # a gateway that answers 2xx without JSON: taken as delivered
        if isinstance(reply, dict):
            for field in ("errcode", "code", "StatusCode"):
                if reply.get(field) not in (None, 0):
                    raise ChannelError(f"{kind} robot {shown}: refused, {field} {reply.get(field)}: {answer}")


def default_channels() -> list[Channel]:
    """The channels from the environment's settings: e-mail, then webhooks."""
    return [SmtpChannel(), WebhookChannel()]
