"""Notifications people actually receive, end to end: the workflow queues them, the notify
activity sends them through each person's channels (notifications/), e-mail arriving at a local
SMTP server and robot messages at a local HTTP receiver; the console shows each user theirs."""
from __future__ import annotations

import asyncio
import email
import email.policy
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from aiosmtpd.controller import Controller

from models import users
from tests.backend_helpers import app_input, register, result, wait_status
from tests.cli_env import PASSWORD
from tests.temporal_env import fresh_code
from workflows import client as wc


class _Mailbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos),
                              email.message_from_bytes(envelope.original_content or envelope.content,
                                                       policy=email.policy.default)))
        return "250 OK"


@pytest.fixture
def inboxes(monkeypatch):
    from deploy.devserver import free_port
    box = _Mailbox()
    port = free_port()
    ctl = Controller(box, hostname="127.0.0.1", port=port)
    ctl.start()
    posts: list[dict] = []

    class Robot(BaseHTTPRequestHandler):
        def do_POST(self):
            posts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            body = b'{"errcode": 0}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass
    http = ThreadingHTTPServer(("127.0.0.1", 0), Robot)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    for k, v in {"DISBURSE_SMTP_HOST": "127.0.0.1", "DISBURSE_SMTP_PORT": str(port),
                 "DISBURSE_SMTP_FROM": "disburse@localhost", "DISBURSE_CONSOLE_URL": "http://console.test",
                 "no_proxy": "127.0.0.1,localhost", "NO_PROXY": "127.0.0.1,localhost"}.items():
        monkeypatch.setenv(k, v)
    yield box, posts, f"http://127.0.0.1:{http.server_address[1]}/robot/send?access_token=t0k"
    ctl.stop()
    http.shutdown()


def test_reviewers_and_the_operator_hear_of_their_turn(harness, db, inboxes):
    box, posts, robot = inboxes
    users.add_user("kj-n", role="reviewer", bureau="杭州市科技局", password=PASSWORD, email="kj@example.gov.cn")
    users.add_user("cz-n", role="finance", bureau="杭州市财政局", password=PASSWORD, webhook_url=robot)
    users.add_user("op-n", role="operator", password=PASSWORD, email="op@example.com")

    async def until(cond, what):
        for _ in range(200):
            if cond():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"never: {what}; mail {[(t, m['subject']) for t, m in box.messages]}, posts {posts}")

    async def go():
        code = register(db, fresh_code())
        app_id = await wc.submit(harness.client, app_input(code, operator="op-n"))
        await until(lambda: any("kj@example.gov.cn" in t for t, _ in box.messages), "the reviewer's e-mail")
        await until(lambda: posts, "the finance robot message")
        to, msg = next((t, m) for t, m in box.messages if "kj@example.gov.cn" in t)
        assert "待审核" in msg["subject"] and app_id in msg.get_content()
        assert f"http://console.test/applications/{app_id}" in msg.get_content()
        assert posts[0]["msgtype"] == "text" and "待审核" in posts[0]["text"]["content"]
        await wc.request_info(harness.client, app_id, reviewer="kj-n", comment="请补充保单扫描件")
        await until(lambda: any("op@example.com" in t for t, _ in box.messages), "the operator's e-mail")
        _, msg = next((t, m) for t, m in box.messages if "op@example.com" in t)
        assert "需补充材料" in msg["subject"] and "请补充保单扫描件" in msg.get_content()
        await wc.provide_info(harness.client, app_id, {"premium": "800000"}, operator="op-n")
        await wc.approve(harness.client, app_id, reviewer="kj-n", comment="ok")
        await wc.approve(harness.client, app_id, reviewer="cz-n", comment="ok")
        assert (await result(harness, app_id))["status"] == "completed"
        paid = [m for t, m in box.messages if "op@example.com" in t and "资金已拨付" in m["subject"]]
        assert len(paid) == 1
        # the console shows each user their own notifications
        from console.app import create_app
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(temporal_client=harness.client)),
                                     base_url="http://console.test") as c:
            await c.post("/login", data={"user": "op-n", "password": PASSWORD, "next": "/"})
            page = await c.get("/notifications")
            assert page.status_code == 200
            assert "需补充材料" in page.text and "资金已拨付" in page.text and "待审核" not in page.text
    harness.run(go())
