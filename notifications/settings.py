"""The notification settings (environment), every one described in SETTINGS (README "Notifications"
prints the same table; a test keeps them in step).

`load()` reads them all and raises SettingsError naming the first bad one: call it where a process
starts to refuse a bad configuration early. `dispatch` never raises: it reads them at each call,
the e-mail and webhook parts separately (`load_smtp`, `load_webhook`), and a problem in one shows
as an error on that channel's deliveries while the other channel still delivers.
"""
from __future__ import annotations

import email.policy
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional
from urllib.parse import urlsplit

ROBOT_KINDS = ("dingtalk", "wecom", "feishu")


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    meaning: str


SETTINGS: list[Setting] = [
    Setting("DISBURSE_SMTP_HOST", "(unset: e-mail deliveries fail, \"not configured\")",
            "the SMTP server (a relay or the mail provider's submission server)"),
    Setting("DISBURSE_SMTP_PORT", "25 (465 with SSL)", "its port (587 is usual with STARTTLS)"),
    Setting("DISBURSE_SMTP_STARTTLS", "false",
            "upgrade the connection with STARTTLS; a server that does not offer it gets nothing"),
    Setting("DISBURSE_SMTP_SSL", "false", "TLS from the first byte (port 465); not with STARTTLS"),
    Setting("DISBURSE_SMTP_USER", "(unset: no login)",
            "login name; refused without STARTTLS or SSL unless the server is on this host"),
    Setting("DISBURSE_SMTP_PASSWORD", "", "its password (ASCII: Python's smtplib sends credentials as ASCII)"),
    Setting("DISBURSE_SMTP_FROM", "disburse@localhost",
            "the sender, `addr@domain` or `名称 <addr@domain>`; its domain also names the Message-ID"),
    Setting("DISBURSE_SMTP_TIMEOUT", "10", "seconds for each network step of one e-mail (connect, each command)"),
    Setting("DISBURSE_SMTP_CA_FILE", "(the system's trust store)",
            "PEM file of the CA(s) that sign the SMTP server's certificate (a private CA on an intranet)"),
    Setting("DISBURSE_SMTP_HELO", "(this host's FQDN)", "the name given in EHLO"),
    Setting("DISBURSE_WEBHOOK_KIND", "dingtalk",
            "the robot JSON shape for a webhook whose contact names no kind and whose host is not a known "
            "robot host: dingtalk, wecom or feishu"),
    Setting("DISBURSE_WEBHOOK_TIMEOUT", "10",
            "seconds for each step of one webhook POST (connect, send, wait for the answer)"),
    Setting("DISBURSE_CONSOLE_URL", "(unset: no link)",
            "base URL of a console; messages then link to `{DISBURSE_CONSOLE_URL}/applications/{id}`"),
]


class SettingsError(ValueError):
    """A notification setting has a value that cannot work; the message names it."""


@dataclass(frozen=True)
class SmtpSettings:
    host: Optional[str] = None
    port: int = 25
    starttls: bool = False
    ssl: bool = False
    user: Optional[str] = None
    password: str = field(default="", repr=False)
    sender: str = "disburse@localhost"        # as written in DISBURSE_SMTP_FROM (may have a display name)
    sender_addr: str = "disburse@localhost"   # the address alone: the envelope's MAIL FROM
    timeout: float = 10.0
    ca_file: Optional[str] = None
    helo: Optional[str] = None


@dataclass(frozen=True)
class WebhookSettings:
    kind: str = "dingtalk"
    timeout: float = 10.0


@dataclass(frozen=True)
class Settings:
    smtp: SmtpSettings
    webhook: WebhookSettings
    console_url: Optional[str]


def _env(environ: Optional[Mapping[str, str]]) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def _get(env: Mapping[str, str], name: str) -> Optional[str]:
    v = env.get(name)
    if v is None or not v.strip():
        return None
    v = v.strip()
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in v):
        raise SettingsError(f"{name}: control characters (CR, LF, ...) are not allowed")
    return v


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _bool(env, name: str, default: bool) -> bool:
    v = _get(env, name)
    if v is None:
        return default
    if v.lower() in _TRUE:
        return True
    if v.lower() in _FALSE:
        return False
    raise SettingsError(f"{name}: {v!r} is not true or false")


def _seconds(env, name: str, default: float) -> float:
    v = _get(env, name)
    if v is None:
        return default
    try:
        t = float(v)
    except ValueError:
        raise SettingsError(f"{name}: {v!r} is not a number of seconds") from None
    if not 0 < t <= 300:
        raise SettingsError(f"{name}: {v} must lie in (0, 300] seconds")
    return t


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_smtp(environ: Optional[Mapping[str, str]] = None) -> SmtpSettings:
    env = _env(environ)
    host = _get(env, "DISBURSE_SMTP_HOST")
    use_ssl = _bool(env, "DISBURSE_SMTP_SSL", False)
    starttls = _bool(env, "DISBURSE_SMTP_STARTTLS", False)
    if use_ssl and starttls:
        raise SettingsError("DISBURSE_SMTP_SSL and DISBURSE_SMTP_STARTTLS: choose one (SSL for port 465, "
                            "STARTTLS for 587 or 25)")
    port_text = _get(env, "DISBURSE_SMTP_PORT")
    port = 465 if use_ssl else 25
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise SettingsError(f"DISBURSE_SMTP_PORT: {port_text!r} is not a port (1-65535)")
        port = int(port_text)
    user = _get(env, "DISBURSE_SMTP_USER")
    password = env.get("DISBURSE_SMTP_PASSWORD") or ""
    for name, value in (("DISBURSE_SMTP_USER", user or ""), ("DISBURSE_SMTP_PASSWORD", password)):
        if not value.isascii():
            raise SettingsError(f"{name}: must be ASCII (Python's smtplib sends credentials as ASCII)")
        if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
            raise SettingsError(f"{name}: control characters are not allowed")
    if password and not user:
        raise SettingsError("DISBURSE_SMTP_PASSWORD is set but DISBURSE_SMTP_USER is not")
    if user and host and not (use_ssl or starttls) and not _loopback(host):
        raise SettingsError(f"DISBURSE_SMTP_USER: logging in to {host} without TLS would send the password in "
                            "clear; set DISBURSE_SMTP_STARTTLS=true or DISBURSE_SMTP_SSL=true")
    sender = _get(env, "DISBURSE_SMTP_FROM") or "disburse@localhost"
    addr = _one_address(sender)
    if addr is None:
        raise SettingsError(f"DISBURSE_SMTP_FROM: {sender!r} is not one e-mail address")
    ca_file = _get(env, "DISBURSE_SMTP_CA_FILE")
    if ca_file is not None and not Path(ca_file).is_file():
        raise SettingsError(f"DISBURSE_SMTP_CA_FILE: {ca_file} is not a file")
    return SmtpSettings(host=host, port=port, starttls=starttls, ssl=use_ssl, user=user, password=password,
                        sender=sender, sender_addr=addr, timeout=_seconds(env, "DISBURSE_SMTP_TIMEOUT", 10.0),
                        ca_file=ca_file, helo=_get(env, "DISBURSE_SMTP_HELO"))


def _one_address(text: str) -> Optional[str]:
    """The address of a From value holding exactly one well-formed mailbox, else None."""
    try:
        header = email.policy.default.header_factory("From", text)
        [mailbox] = header.addresses
    except (ValueError, IndexError, TypeError):
        return None
    if header.defects or not mailbox.username or not mailbox.domain:
        return None
    return mailbox.addr_spec


def load_webhook(environ: Optional[Mapping[str, str]] = None) -> WebhookSettings:
    env = _env(environ)
    kind = (_get(env, "DISBURSE_WEBHOOK_KIND") or "dingtalk").lower()
    if kind not in ROBOT_KINDS:
        raise SettingsError(f"DISBURSE_WEBHOOK_KIND: {kind!r} is not one of {', '.join(ROBOT_KINDS)}")
    return WebhookSettings(kind=kind, timeout=_seconds(env, "DISBURSE_WEBHOOK_TIMEOUT", 10.0))


def load_console_url(environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    url = _get(_env(environ), "DISBURSE_CONSOLE_URL")
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(ch.isspace() for ch in url):
        raise SettingsError(f"DISBURSE_CONSOLE_URL: {url!r} is not an http(s) URL")
    return url.rstrip("/")


def console_url_or_none(environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """DISBURSE_CONSOLE_URL, or None when it is unset or unusable (messages then carry no link)."""
    try:
        return load_console_url(environ)
    except SettingsError:
        return None


def load(environ: Optional[Mapping[str, str]] = None) -> Settings:
    """Every notification setting, checked; SettingsError names the first bad one."""
    return Settings(smtp=load_smtp(environ), webhook=load_webhook(environ), console_url=load_console_url(environ))
