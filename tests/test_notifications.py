"""Notifications people actually receive (notifications/): e-mail through a real SMTP server
(aiosmtpd, started here on a free port) and group-chat robot webhooks (a local HTTP receiver),
each delivery reported, a failing channel never stopping the others, nothing sent twice under one
idempotency key, and hostile text delivered bounded and inert."""
from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import hmac
import json
import os
import re
import socket
import ssl
import threading
import time
import unicodedata
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from pydantic import ValidationError

from models.application import Notification
from notifications import settings as notify_settings
from notifications.channels import Outgoing, SmtpChannel, WebhookChannel
from notifications.dispatch import Contact, Delivery, dispatch, render

ROOT = Path(__file__).resolve().parent.parent
APP = "app-91330106MA2KX0A01W-hz2025-04-tech-insurance-premium-2026"
ESCALATION = Notification(
    application_id=APP, kind="escalation",
    message="review overdue (> 15 days); waiting for 杭州市科技局、杭州市财政局",
    recipients=["杭州市科技局", "杭州市财政局"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------- SMTP server
class _Mailbox:
    def __init__(self):
        self.envelopes: list[dict] = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append({"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos),
                               "raw": envelope.original_content or envelope.content,
                               "auth": session.authenticated})
        return "250 OK"

    def messages(self):
        return [(e, email.message_from_bytes(e["raw"], policy=email.policy.default)) for e in self.envelopes]


@pytest.fixture()
def smtp(monkeypatch):
    """A local SMTP server on a free port; the DISBURSE_SMTP_* settings point at it."""
    box = _Mailbox()
    port = _free_port()
    ctl = Controller(box, hostname="127.0.0.1", port=port)
    ctl.start()
    monkeypatch.setenv("DISBURSE_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("DISBURSE_SMTP_PORT", str(port))
    monkeypatch.setenv("DISBURSE_SMTP_FROM", "disburse@localhost")
    monkeypatch.setenv("DISBURSE_SMTP_TIMEOUT", "5")
    box.port = port
    yield box
    ctl.stop()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in [n for n in os.environ if n.startswith(("DISBURSE_SMTP_", "DISBURSE_WEBHOOK_"))]:
        monkeypatch.delenv(name)
    monkeypatch.delenv("DISBURSE_CONSOLE_URL", raising=False)
    for name in ("no_proxy", "NO_PROXY"):             # the local receivers, even where a proxy is set
        monkeypatch.setenv(name, "127.0.0.1,localhost")


# ---------------------------------------------------------------------------- HTTP receiver
class _Receiver:
    """Captures every POST; answers per path (status, JSON body), 200 {"errcode": 0} by default."""

    def __init__(self):
        self.requests: list[dict] = []
        self.answers: dict[str, tuple[int, bytes]] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = urlsplit(self.path)
                receiver.requests.append({"path": parts.path, "query": parse_qs(parts.query),
                                          "headers": dict(self.headers), "body": body})
                status, answer = receiver.answers.get(parts.path, (200, b'{"errcode":0,"errmsg":"ok"}'))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str, query: str = "") -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}" + (f"?{query}" if query else "")

    def at(self, path: str) -> list[dict]:
        return [r for r in self.requests if r["path"] == path]


@pytest.fixture()
def hook():
    r = _Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


def _json(req: dict):
    return json.loads(req["body"].decode("utf-8"))


# ---------------------------------------------------------------------------------- e-mail
def test_an_escalation_reaches_two_contacts_by_email(smtp, monkeypatch):
    monkeypatch.setenv("DISBURSE_CONSOLE_URL", "https://disburse.example.cn/console/")
    contacts = [Contact(user_id="cz-li", name="李财", email="li@czj.example.cn"),
                Contact(user_id="kj-wang", name="王科", email="wang@kjj.example.cn")]
    result = dispatch(ESCALATION, contacts)

    assert [(d.user_id, d.channel, d.target, d.ok, d.error) for d in result] == [
        ("cz-li", "email", "li@czj.example.cn", True, None),
        ("kj-wang", "email", "wang@kjj.example.cn", True, None)]
    got = smtp.messages()
    assert [e["rcpt_tos"] for e, _ in got] == [["li@czj.example.cn"], ["wang@kjj.example.cn"]]
    for (env, msg), (name, addr) in zip(got, [("李财", "li@czj.example.cn"), ("王科", "wang@kjj.example.cn")]):
        assert env["mail_from"] == "disburse@localhost"
        assert msg["From"].addresses[0].addr_spec == "disburse@localhost"
        to = msg["To"].addresses
        assert [(a.display_name, a.addr_spec) for a in to] == [(name, addr)]
        assert "超期提醒" in msg["Subject"] and APP in msg["Subject"]
        assert msg.get_content_type() == "text/plain" and msg.get_content_charset() == "utf-8"
        body = msg.get_content()
        assert "超期提醒" in body and APP in body and "杭州市科技局、杭州市财政局" in body
        assert f"https://disburse.example.cn/console/applications/{APP}" in body
        assert msg["Date"] and msg["Message-ID"]
        # on the wire the Chinese subject is RFC 2047 encoded UTF-8, never raw 8-bit bytes in a header
        raw_headers = env["raw"].split(b"\r\n\r\n", 1)[0]
        assert all(b < 0x80 for b in raw_headers)
        assert b"=?utf-8?" in raw_headers.lower()


def test_every_kind_has_its_chinese_text_and_the_link_only_when_configured(monkeypatch):
    expected = {"awaiting_review": "待审核", "info_requested": "需补充材料", "escalation": "超期提醒",
                "tranche_paid": "资金已拨付", "programme_ended": "扶持期结束", "publicity": "公示中",
                "objection": "公示异议", "something_new": "通知"}
    for kind, text in expected.items():
        subject, body = render(Notification(application_id=APP, kind=kind, message="备注"))
        assert text in subject and APP in subject, (kind, subject)
        assert text in body and APP in body and "备注" in body, (kind, body)
        assert "http" not in body
    monkeypatch.setenv("DISBURSE_CONSOLE_URL", "https://c.example.cn")
    _, body = render({"application_id": "app-x y/z", "kind": "tranche_paid", "message": ""})
    assert "https://c.example.cn/applications/app-x%20y%2Fz" in body


def test_starttls_and_login_with_a_private_ca(tmp_path, monkeypatch):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"robot", b"pw-1")
        logins.append(ok)
        return AuthResult(success=ok)

    box = _Mailbox()
    port = _free_port()
    ctl = Controller(box, hostname="127.0.0.1", port=port, tls_context=server_ctx, require_starttls=True,
                     authenticator=authenticator, auth_require_tls=True)
    ctl.start()
    try:
        for k, v in {"HOST": "127.0.0.1", "PORT": str(port), "STARTTLS": "true", "USER": "robot",
                     "PASSWORD": "pw-1", "CA_FILE": str(ca_file), "FROM": "通知 <disburse@czj.example.cn>"}.items():
            monkeypatch.setenv(f"DISBURSE_SMTP_{k}", v)
        [d] = dispatch(ESCALATION, [Contact(user_id="cz-li", name="李财", email="li@czj.example.cn")])
        assert d.ok, d.error
        assert logins == [True] and box.envelopes[0]["auth"]
        assert box.messages()[0][1]["From"].addresses[0].display_name == "通知"
        # without the private CA the server's certificate is refused: nothing is sent
        monkeypatch.delenv("DISBURSE_SMTP_CA_FILE")
        [d] = dispatch(ESCALATION, [Contact(user_id="cz-li", name="李财", email="li@czj.example.cn")])
        assert not d.ok and "certificate" in d.error.lower()
        assert len(box.envelopes) == 1
    finally:
        ctl.stop()


def test_starttls_required_but_not_offered_sends_nothing_in_clear(smtp, monkeypatch):
    monkeypatch.setenv("DISBURSE_SMTP_STARTTLS", "true")
    [d] = dispatch(ESCALATION, [Contact(user_id="cz-li", email="li@czj.example.cn")])
    assert not d.ok and "STARTTLS" in d.error
    assert smtp.envelopes == []


def test_a_password_is_never_sent_without_tls_to_a_remote_server(monkeypatch):
    for k, v in {"HOST": "smtp.example.cn", "USER": "robot", "PASSWORD": "pw"}.items():
        monkeypatch.setenv(f"DISBURSE_SMTP_{k}", v)
    with pytest.raises(notify_settings.SettingsError, match="STARTTLS"):
        notify_settings.load()
    [d] = dispatch(ESCALATION, [Contact(user_id="cz-li", email="li@czj.example.cn")])
    assert not d.ok and "DISBURSE_SMTP_STARTTLS" in d.error


def test_settings_problems_are_reported_not_raised(monkeypatch):
    contact = Contact(user_id="cz-li", email="li@czj.example.cn")
    [d] = dispatch(ESCALATION, [contact])              # no DISBURSE_SMTP_HOST
    assert not d.ok and "DISBURSE_SMTP_HOST" in d.error
    monkeypatch.setenv("DISBURSE_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("DISBURSE_SMTP_PORT", "twenty-five")
    [d] = dispatch(ESCALATION, [contact])
    assert not d.ok and "DISBURSE_SMTP_PORT" in d.error
    with pytest.raises(notify_settings.SettingsError, match="DISBURSE_SMTP_PORT"):
        notify_settings.load()
    monkeypatch.setenv("DISBURSE_SMTP_PORT", "25")
    monkeypatch.setenv("DISBURSE_SMTP_USER", "robot")
    monkeypatch.setenv("DISBURSE_SMTP_PASSWORD", "密码")            # smtplib sends credentials as ASCII
    with pytest.raises(notify_settings.SettingsError, match="DISBURSE_SMTP_PASSWORD"):
        notify_settings.load()
    monkeypatch.setenv("DISBURSE_SMTP_PASSWORD", "pw")
    monkeypatch.setenv("DISBURSE_SMTP_FROM", "disburse@localhost\r\nBcc: x@evil.example")
    with pytest.raises(notify_settings.SettingsError, match="DISBURSE_SMTP_FROM"):
        notify_settings.load()
    monkeypatch.setenv("DISBURSE_SMTP_FROM", "disburse@localhost")
    assert notify_settings.load().smtp.port == 25                 # loopback: a password without TLS is allowed
    monkeypatch.setenv("DISBURSE_CONSOLE_URL", "javascript:alert(1)")
    with pytest.raises(notify_settings.SettingsError, match="DISBURSE_CONSOLE_URL"):
        notify_settings.load()
    assert "javascript" not in render(ESCALATION)[1]              # dispatch leaves a bad link out


def test_every_setting_read_is_documented():
    read = set()
    for f in (ROOT / "notifications").glob("*.py"):
        read |= set(re.findall(r"DISBURSE_[A-Z_]+[A-Z]", f.read_text()))
    documented = {s.name for s in notify_settings.SETTINGS}
    assert read <= documented | {"DISBURSE_"}, read - documented
    readme = (ROOT / "README.md").read_text()
    assert [n for n in sorted(documented) if n not in readme] == []


# --------------------------------------------------------------------------------- webhooks
@pytest.mark.parametrize("kind", ["dingtalk", "wecom"])
def test_dingtalk_and_wecom_robots_get_msgtype_text(hook, kind):
    c = Contact(user_id="czj", name="杭州市财政局", webhook_url=hook.url(f"/{kind}", "access_token=tok123"),
                webhook_kind=kind)
    [d] = dispatch(ESCALATION, [c])
    assert (d.user_id, d.channel, d.ok, d.error) == ("czj", "webhook", True, None)
    [req] = hook.at(f"/{kind}")
    assert req["query"] == {"access_token": ["tok123"]}
    assert req["headers"]["Content-Type"].lower().replace(" ", "") == "application/json;charset=utf-8"
    assert "超期提醒".encode("utf-8") in req["body"]        # UTF-8 on the wire, not \u escapes
    payload = _json(req)
    assert set(payload) == {"msgtype", "text"} and payload["msgtype"] == "text"
    assert set(payload["text"]) == {"content"}
    content = payload["text"]["content"]
    assert "超期提醒" in content and APP in content and "杭州市科技局、杭州市财政局" in content


def test_feishu_robots_get_msg_type_text(hook):
    hook.answers["/feishu"] = (200, b'{"code":0,"msg":"success","data":{}}')
    c = Contact(user_id="czj", webhook_url=hook.url("/feishu"), webhook_kind="feishu")
    [d] = dispatch(ESCALATION, [c])
    assert d.ok, d.error
    payload = _json(hook.at("/feishu")[0])
    assert set(payload) == {"msg_type", "content"} and payload["msg_type"] == "text"
    assert "超期提醒" in payload["content"]["text"] and APP in payload["content"]["text"]


def test_the_robot_kind_comes_from_the_contact_the_url_or_the_setting(hook, monkeypatch):
    kind_of = WebhookChannel.kind_for
    assert kind_of(Contact(user_id="a", webhook_url="https://oapi.dingtalk.com/robot/send?access_token=x")) == "dingtalk"
    assert kind_of(Contact(user_id="a", webhook_url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=x")) == "wecom"
    assert kind_of(Contact(user_id="a", webhook_url="https://open.feishu.cn/open-apis/bot/v2/hook/x")) == "feishu"
    assert kind_of(Contact(user_id="a", webhook_url="https://open.larksuite.com/open-apis/bot/v2/hook/x")) == "feishu"
    assert kind_of(Contact(user_id="a", webhook_url="https://open.feishu.cn/x", webhook_kind="wecom")) == "wecom"
    assert kind_of(Contact(user_id="a", webhook_url="https://robot.gov.example/x")) == "dingtalk"
    assert kind_of(Contact(user_id="a", webhook_url="https://robot.gov.example/x"), default="feishu") == "feishu"
    monkeypatch.setenv("DISBURSE_WEBHOOK_KIND", "feishu")
    hook.answers["/gw"] = (200, b'{"code":0}')
    [d] = dispatch(ESCALATION, [Contact(user_id="a", webhook_url=hook.url("/gw"))])
    assert d.ok and _json(hook.at("/gw")[0])["msg_type"] == "text"
    monkeypatch.setenv("DISBURSE_WEBHOOK_KIND", "slack")
    with pytest.raises(notify_settings.SettingsError, match="DISBURSE_WEBHOOK_KIND"):
        notify_settings.load()
    with pytest.raises(ValidationError):
        Contact(user_id="a", webhook_url="https://x.example/", webhook_kind="slack")


def test_a_dingtalk_secret_signs_the_url_as_dingtalk_documents(hook):
    secret = "SEC0123456789abcdef+/="
    c = Contact(user_id="czj", webhook_url=hook.url("/robot/send", "access_token=tok123"),
                webhook_kind="dingtalk", webhook_secret=secret)
    before = int(time.time() * 1000)
    [d] = dispatch(ESCALATION, [c])
    after = int(time.time() * 1000)
    assert d.ok, d.error
    [req] = hook.at("/robot/send")
    q = req["query"]
    assert set(q) == {"access_token", "timestamp", "sign"} and q["access_token"] == ["tok123"]
    timestamp = q["timestamp"][0]
    assert before <= int(timestamp) <= after                 # milliseconds; DingTalk refuses > 1 h off
    # DingTalk: sign = urlEncode(base64(HmacSHA256(key=secret, "timestamp\nsecret")))
    expected = base64.b64encode(hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(),
                                         hashlib.sha256).digest()).decode()
    assert q["sign"] == [expected]
    assert secret not in json.dumps(req["query"]) and secret.encode() not in req["body"]
    assert secret not in repr(c) and "tok123" not in (d.target + repr(d))


def test_a_feishu_secret_signs_the_body_as_feishu_documents(hook):
    secret = "feishu-secret"
    hook.answers["/hook"] = (200, b'{"code":0,"msg":"success"}')
    c = Contact(user_id="czj", webhook_url=hook.url("/hook"), webhook_kind="feishu", webhook_secret=secret)
    [d] = dispatch(ESCALATION, [c])
    assert d.ok, d.error
    payload = _json(hook.at("/hook")[0])
    ts = payload["timestamp"]
    assert abs(int(ts) - time.time()) < 60                    # seconds
    expected = base64.b64encode(hmac.new(f"{ts}\n{secret}".encode(), b"", hashlib.sha256).digest()).decode()
    assert payload["sign"] == expected and payload["msg_type"] == "text"


def test_a_robot_refusal_inside_a_200_is_reported(hook):
    hook.answers["/robot/send"] = (200, '{"errcode":310000,"errmsg":"sign not match，签名不匹配"}'.encode())
    hook.answers["/feishu"] = (200, b'{"code":19021,"msg":"sign match fail or timestamp is not within one hour"}')
    ds = dispatch(ESCALATION, [
        Contact(user_id="a", webhook_url=hook.url("/robot/send", "access_token=t"), webhook_kind="dingtalk"),
        Contact(user_id="b", webhook_url=hook.url("/feishu"), webhook_kind="feishu")])
    assert [d.ok for d in ds] == [False, False]
    assert "310000" in ds[0].error and "签名不匹配" in ds[0].error
    assert "19021" in ds[1].error


def test_webhook_targets_and_errors_never_show_the_token(hook):
    hook.answers["/fail"] = (500, b"internal error")
    [d] = dispatch(ESCALATION, [Contact(user_id="a", webhook_url=hook.url("/fail", "access_token=SECRET-TOKEN-42"))])
    assert not d.ok and "500" in d.error
    assert "SECRET-TOKEN-42" not in d.target + (d.error or "")
    assert d.target.startswith(f"http://127.0.0.1:{hook.server.server_port}/fail?access_token=")
    feishu = "https://open.feishu.cn/open-apis/bot/v2/hook/2f7a7d9e-1f53-4c9e-9a55-7d0e6f4b1c2a"
    shown = WebhookChannel().shown(feishu)
    assert "2f7a7d9e-1f53-4c9e-9a55-7d0e6f4b1c2a" not in shown and shown.startswith("https://open.feishu.cn/open-apis/bot/v2/hook/")


# ------------------------------------------------------------------------ failure isolation
def test_smtp_down_the_webhook_is_still_delivered(hook, monkeypatch):
    monkeypatch.setenv("DISBURSE_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("DISBURSE_SMTP_PORT", str(_free_port()))      # nothing listens there
    monkeypatch.setenv("DISBURSE_SMTP_TIMEOUT", "3")
    c = Contact(user_id="cz-li", name="李财", email="li@czj.example.cn", webhook_url=hook.url("/robot"))
    mail, robot = dispatch(ESCALATION, [c])
    assert (mail.channel, mail.ok) == ("email", False) and mail.error
    assert (robot.channel, robot.ok, robot.error) == ("webhook", True, None)
    assert len(hook.at("/robot")) == 1


def test_a_webhook_500_is_reported_and_the_others_still_go(hook, smtp):
    hook.answers["/down"] = (500, b'{"errcode":-1,"errmsg":"system busy"}')
    contacts = [Contact(user_id="a", email="a@example.cn", webhook_url=hook.url("/down")),
                Contact(user_id="b", webhook_url=hook.url("/up"))]
    ds = dispatch(ESCALATION, contacts)
    assert [(d.user_id, d.channel, d.ok) for d in ds] == [("a", "email", True), ("a", "webhook", False),
                                                          ("b", "webhook", True)]
    assert "500" in ds[1].error
    assert len(smtp.envelopes) == 1 and len(hook.at("/up")) == 1


def test_a_channel_failing_in_any_way_is_reported_never_raised(hook):
    class Broken:
        name = "sms"

        def target(self, contact):
            return contact.user_id

        def shown(self, target):
            return target

        def send(self, message: Outgoing) -> None:
            raise KeyError("no such thing")

    class Exploding(Broken):
        name = "pager"

        def target(self, contact):
            raise RuntimeError("target lookup broke")

    ds = dispatch(ESCALATION, [Contact(user_id="a", webhook_url=hook.url("/x"))],
                  channels=[Broken(), Exploding(), WebhookChannel()])
    assert [(d.channel, d.ok) for d in ds] == [("sms", False), ("pager", False), ("webhook", True)]
    assert "KeyError" in ds[0].error and "target lookup broke" in ds[1].error


def test_one_robot_shared_by_two_contacts_posts_once(hook):
    url = hook.url("/group", "access_token=t")
    ds = dispatch(ESCALATION, [Contact(user_id="a", webhook_url=url), Contact(user_id="b", webhook_url=url),
                               Contact(user_id="a", webhook_url=hook.url("/other"))])
    assert len(hook.at("/group")) == 1 and hook.at("/other") == []      # the same user id once
    assert [(d.user_id, d.ok, d.skipped) for d in ds] == [("a", True, False), ("b", True, True)]


# ------------------------------------------------------------------------------ idempotency
def test_dispatching_twice_with_one_key_delivers_once(db_any, smtp, hook):
    contacts = [Contact(user_id="cz-li", email="li@czj.example.cn", webhook_url=hook.url("/robot")),
                Contact(user_id="kj-wang", email="wang@kjj.example.cn")]
    first = dispatch(ESCALATION, contacts, idempotency_key="run-1/7")
    again = dispatch(ESCALATION, contacts, idempotency_key="run-1/7")
    assert [(d.ok, d.skipped) for d in first] == [(True, False)] * 3
    assert [(d.ok, d.skipped) for d in again] == [(True, True)] * 3
    assert [d.target for d in again] == [d.target for d in first]
    assert len(smtp.envelopes) == 2 and len(hook.at("/robot")) == 1
    other = dispatch(ESCALATION, contacts, idempotency_key="run-1/8")       # another notice: sent
    assert [d.skipped for d in other] == [False] * 3 and len(smtp.envelopes) == 4

    from sqlmodel import select
    from models.db import session
    from models.tables import NotificationDelivery
    with session() as s:
        rows = s.exec(select(NotificationDelivery).where(NotificationDelivery.idempotency_key == "run-1/7")).all()
    assert sorted((r.user_id, r.channel, r.target, r.ok, r.error) for r in rows) == [
        ("cz-li", "email", "li@czj.example.cn", True, None), ("cz-li", "webhook", hook.url("/robot"), True, None),
        ("kj-wang", "email", "wang@kjj.example.cn", True, None)]


def test_a_retry_sends_only_what_failed(db, smtp, hook):
    hook.answers["/robot"] = (500, b"busy")
    contacts = [Contact(user_id="cz-li", email="li@czj.example.cn", webhook_url=hook.url("/robot"))]
    first = dispatch(ESCALATION, contacts, idempotency_key="k")
    assert [d.ok for d in first] == [True, False]
    hook.answers.pop("/robot")
    second = dispatch(ESCALATION, contacts, idempotency_key="k")
    assert [(d.channel, d.ok, d.skipped) for d in second] == [("email", True, True), ("webhook", True, False)]
    third = dispatch(ESCALATION, contacts, idempotency_key="k")
    assert all(d.skipped for d in third)
    assert len(smtp.envelopes) == 1 and len(hook.at("/robot")) == 2

    from sqlmodel import select
    from models.db import session
    from models.tables import NotificationDelivery
    with session() as s:
        rows = s.exec(select(NotificationDelivery)).all()
    assert sorted((r.channel, r.ok, r.error) for r in rows) == [("email", True, None), ("webhook", True, None)]


def test_no_database_still_delivers_and_says_it_was_not_recorded(smtp, monkeypatch, tmp_path):
    (tmp_path / "dir.db").mkdir()                                   # a "database" that cannot be opened
    monkeypatch.setenv("DISBURSE_DB_URL", f"sqlite:///{tmp_path / 'dir.db'}")
    [d] = dispatch(ESCALATION, [Contact(user_id="a", email="a@example.cn")], idempotency_key="k")
    assert d.ok and "not recorded" in d.error
    assert len(smtp.envelopes) == 1


# ---------------------------------------------------------------------------- hostile text
HOSTILE = ("请补充\x1b[31m材料\x00\r\nBcc: victim@evil.example\r\n\r\n<b>**加粗**</b>\u202e反转\x85\u2028"
           + "长" * 100_000)


def _clean(text: str, newline_ok: bool) -> bool:
    return not any((unicodedata.category(ch) in ("Cc", "Zl", "Zp") and not (newline_ok and ch == "\n"))
                   or ch in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069" for ch in text)


def test_hostile_text_by_email_is_bounded_and_cannot_inject_headers(smtp):
    n = Notification(application_id=APP + "\r\nBcc: victim@evil.example", kind="escalation\r\nX-Injected: 1",
                     message=HOSTILE)
    contact = Contact(user_id="cz-li", name="李财\r\nBcc: victim@evil.example", email="li@czj.example.cn")
    [d] = dispatch(n, [contact])
    assert d.ok, d.error
    [(env, msg)] = smtp.messages()
    assert env["rcpt_tos"] == ["li@czj.example.cn"]
    assert msg["Bcc"] is None and msg["X-Injected"] is None
    assert sorted(msg.keys()) == sorted(["From", "To", "Subject", "Date", "Message-ID", "MIME-Version",
                                         "Content-Type", "Content-Transfer-Encoding"])
    for name, value in msg.items():
        assert _clean(str(value), newline_ok=False), (name, value)
    assert len(str(msg["Subject"])) <= 200
    body = msg.get_content().replace("\r\n", "\n")          # MIME text has CRLF line breaks; no other CR
    assert _clean(body, newline_ok=True)
    assert len(body) < 5_000 and "请补充" in body and "材料" in body and "截断" in body
    assert "\\x1b" in body                                          # shown, not executed
    assert len(env["raw"]) < 30_000


def test_hostile_text_to_a_robot_is_bounded_and_plain(hook):
    n = Notification(application_id=APP, kind="info_requested", message=HOSTILE)
    ds = dispatch(n, [Contact(user_id="a", webhook_url=hook.url("/dingtalk"), webhook_kind="dingtalk"),
                      Contact(user_id="b", webhook_url=hook.url("/wecom"), webhook_kind="wecom")])
    assert all(d.ok for d in ds), ds
    ding = _json(hook.at("/dingtalk")[0])["text"]["content"]
    wecom = _json(hook.at("/wecom")[0])["text"]["content"]
    for content in (ding, wecom):
        assert _clean(content, newline_ok=True) and "需补充材料" in content and "请补充" in content
        assert len(content) < 5_000
    assert len(wecom.encode("utf-8")) <= 2048                       # WeCom's limit for a text message
    assert ding.count("\n") < 30


def test_contacts_refuse_addresses_that_could_smuggle_headers_or_schemes():
    for bad in ["li@czj.example.cn\r\nBcc: x@evil.example", "a@b.cn, c@d.cn", "李财 <li@czj.example.cn>", "nobody",
                "a@b.cn\x00"]:
        with pytest.raises(ValidationError):
            Contact(user_id="a", email=bad)
    for bad in ["file:///etc/passwd", "ftp://x.example/", "javascript:alert(1)", "https://", "https://x.example/\r\n"]:
        with pytest.raises(ValidationError):
            Contact(user_id="a", webhook_url=bad)
    with pytest.raises(ValidationError):
        Contact(user_id="", email="a@b.cn")
    c = Contact(user_id="a", name="  王科 ", email="Wang@KJJ.example.cn")
    assert c.email == "Wang@KJJ.example.cn" and isinstance(Delivery(user_id="a", channel="email", target="t", ok=True),
                                                           Delivery)


def test_smtp_channel_used_directly_refuses_a_crlf_subject(smtp):
    """Even a caller that builds its own Outgoing cannot put a line break into a header."""
    contact = Contact(user_id="a", email="a@example.cn")
    SmtpChannel(notify_settings.load().smtp).send(Outgoing(contact=contact, target="a@example.cn", subject="hi\r\nBcc: v@evil.example",
                                 body="x", application_id=APP, kind="escalation"))
    [(env, msg)] = smtp.messages()
    assert msg["Bcc"] is None and "\n" not in str(msg["Subject"]) and env["rcpt_tos"] == ["a@example.cn"]


def test_a_bad_contact_row_is_reported_and_the_others_still_get_it(smtp):
    ds = dispatch(ESCALATION, [{"user_id": "bad", "email": "li@czj.example.cn\r\nBcc: x@evil.example"},
                               {"user_id": "good", "name": "王科", "email": "wang@kjj.example.cn"}])
    assert [(d.user_id, d.channel, d.ok) for d in ds] == [("bad", "contact", False), ("good", "email", True)]
    assert "email" in ds[0].error
    assert [e["rcpt_tos"] for e in smtp.envelopes] == [["wang@kjj.example.cn"]]


def test_a_long_idempotency_key_stays_distinct(db, smtp):
    c = [Contact(user_id="a", email="a@example.cn")]
    k1, k2 = "k" * 600 + "1", "k" * 600 + "2"
    assert not dispatch(ESCALATION, c, idempotency_key=k1)[0].skipped
    assert not dispatch(ESCALATION, c, idempotency_key=k2)[0].skipped
    assert dispatch(ESCALATION, c, idempotency_key=k1)[0].skipped
    assert len(smtp.envelopes) == 2


def test_a_contact_without_any_address_is_reported(smtp):
    ds = dispatch(ESCALATION, [Contact(user_id="kj-wang", name="王科"), Contact(user_id="a", email="a@example.cn")])
    assert [(d.user_id, d.channel, d.ok) for d in ds] == [("kj-wang", "none", False), ("a", "email", True)]
    assert "email, webhook" in ds[0].error


def test_a_users_table_row_with_blank_channels_is_a_contact_without_them(smtp):
    row = {"user_id": "cz-li", "name": "李财", "email": "li@czj.example.cn", "webhook_url": "", "webhook_kind": "",
           "webhook_secret": ""}
    c = Contact.model_validate(row)
    assert (c.webhook_url, c.webhook_kind, c.webhook_secret) == (None, None, None)
    [d] = dispatch(ESCALATION, [row, {"user_id": "kj-wang", "email": " ", "webhook_url": ""}])[:1]
    assert (d.channel, d.ok) == ("email", True)
    assert dispatch(ESCALATION, [{"user_id": "kj-wang", "email": "", "webhook_url": ""}])[0].channel == "none"
