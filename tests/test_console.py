"""The web console (console/app.py) in-process, against the time-skipping server and the real
worker: sessions, CSRF, lock-out, the reviewer's inbox and application page, decisions signed for
the logged-in user, bureaus kept apart."""
from __future__ import annotations

import re

import httpx
import pytest

from models import users
from tests.backend_helpers import app_input, register, result
from tests.cli_env import PASSWORD
from tests.temporal_env import fresh_code
from workflows import client as wc


def _console(harness):
    from console.app import create_app
    app = create_app(temporal_client=harness.client)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console.test",
                             follow_redirects=False)


async def _login(c: httpx.AsyncClient, user: str, password: str = PASSWORD) -> httpx.Response:
    return await c.post("/login", data={"user": user, "password": password, "next": "/"})


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


@pytest.fixture
def people(db):
    users.add_user("op-c1", role="operator", password=PASSWORD)
    users.add_user("op-c2", role="operator", password=PASSWORD)
    users.add_user("kj-c", role="reviewer", bureau="杭州市科技局", password=PASSWORD)
    users.add_user("cz-c", role="finance", bureau="杭州市财政局", password=PASSWORD)
    users.add_user("sj-c", role="reviewer", bureau="杭州市市场监管局", password=PASSWORD)
    return db


def test_login_logout_and_lock_out(harness, people):
    async def go():
        async with _console(harness) as c:
            assert (await c.get("/")).headers["location"].startswith("/login")
            r = await _login(c, "kj-c", "wrong-password")
            assert r.status_code == 401 and "wrong user or password" in r.text
            r = await _login(c, "kj-c")
            assert r.status_code == 303
            cookie = r.headers["set-cookie"]
            assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
            home = await c.get("/")
            assert home.status_code == 200 and "待我审核" in home.text
            assert (await c.post("/logout", data={})).status_code == 403          # no CSRF token
            assert (await c.post("/logout", data={"csrf": _csrf(home.text)})).status_code == 303
            assert (await c.get("/")).status_code == 303
            for _ in range(users.MAX_FAILURES):
                await _login(c, "sj-c", "guess-guess")
            r = await _login(c, "sj-c")
            assert r.status_code == 401 and "locked" in r.text
    harness.run(go())


def test_review_through_the_console(harness, people):
    async def go():
        code = register(people, fresh_code())
        inp = app_input(code, operator="op-c1")
        app_id = await wc.submit(harness.client, inp)
        async with _console(harness) as kj, _console(harness) as cz, _console(harness) as sj, \
                _console(harness) as op2:
            await _login(kj, "kj-c")
            inbox = await kj.get("/")
            assert app_id in inbox.text
            page = await kj.get(f"/applications/{app_id}")
            assert page.status_code == 200
            assert "400,000.00" in page.text and "测算金额" in page.text                # provisional amount
            assert "按不超过实际保险费50%的标准给予补助" in page.text                      # the cited sentence
            assert f"/namespaces/default/workflows/{app_id}" in page.text               # Temporal Web UI link
            assert 'id="approve"' in page.text
            token = _csrf(page.text)
            r = await kj.post(f"/applications/{app_id}/approve", data={"comment": "保单真实"})
            assert r.status_code == 403                                                 # no CSRF token
            r = await kj.post(f"/applications/{app_id}/approve", data={"comment": "保单真实", "csrf": token})
            assert r.status_code == 303
            # a reviewer of a bureau that is not responsible: no buttons, and a hand-made POST is refused
            await _login(sj, "sj-c")
            page = await sj.get(f"/applications/{app_id}")
            assert 'id="approve"' not in page.text
            r = await sj.post(f"/applications/{app_id}/approve", data={"comment": "me too", "csrf": _csrf(page.text)})
            assert r.status_code == 409 and "not responsible" in r.text
            # another operator cannot see it
            await _login(op2, "op-c2")
            assert (await op2.get(f"/applications/{app_id}")).status_code == 403
            await _login(cz, "cz-c")
            page = await cz.get(f"/applications/{app_id}")
            r = await cz.post(f"/applications/{app_id}/approve", data={"comment": "ok", "csrf": _csrf(page.text)})
            assert r.status_code == 303
        res = await result(harness, app_id)
        assert res["status"] == "completed"
        assert [(d["who"], d["bureau"]) for d in res["decisions"]] == [("kj-c", "杭州市科技局"), ("cz-c", "杭州市财政局")]
        async with _console(harness) as op:
            await _login(op, "op-c1")
            page = await op.get(f"/applications/{app_id}")
            assert "已完成" in page.text and "已付" in page.text and "400,000.00" in page.text
    harness.run(go())


def test_an_operator_submits_through_the_console(harness, people):
    async def go():
        import json
        code = register(people, fresh_code())
        claim = app_input(code, operator="op-c1").model_dump(mode="json", exclude_none=True)
        async with _console(harness) as op:
            await _login(op, "op-c1")
            form = await op.get("/submit")
            r = await op.post("/submit", data={"csrf": _csrf(form.text)},
                              files={"claim": ("claim.json", json.dumps({**claim, "operator": "someone-else"}))})
            assert r.status_code == 303                          # the operator is the logged-in user
            app_id = r.headers["location"].rsplit("/", 1)[1]
            st = await wc.status(harness.client, app_id)
            assert st["status"] == "review"
            r = await op.post("/submit", data={"csrf": _csrf(form.text)},
                              files={"claim": ("claim.json", json.dumps(claim))})
            assert r.status_code == 400 and "already" in r.text.lower()
            page = await op.get(f"/applications/{app_id}")
            r = await op.post(f"/applications/{app_id}/withdraw", data={"comment": "test", "csrf": _csrf(page.text)})
            assert r.status_code == 303
        assert (await result(harness, app_id))["status"] == "withdrawn"
    harness.run(go())


@pytest.mark.real_calendar
def test_publicity_on_the_application_page_objection_and_ruling(harness, people):
    from tests.test_publicity import skip_unless_the_calendar_covers_the_weeks_ahead
    skip_unless_the_calendar_covers_the_weeks_ahead()
    """公示 in the console: the period on the page, an objection recorded for the objector by staff,
    decided by the lead bureau only; the provisional amount is the workflow's."""
    from tests.backend_helpers import past_publicity, wait_status
    async def go():
        code = register(people, fresh_code())
        app_id = await wc.submit(harness.client, app_input(code, operator="op-c1"))
        await wait_status(harness, app_id, "review")
        for _ in range(100):
            if (await wc.status(harness.client, app_id)).get("provisional"):
                break
        async with _console(harness) as kj, _console(harness) as cz:
            await _login(kj, "kj-c")
            page = await kj.get(f"/applications/{app_id}")
            assert "400,000.00" in page.text and "测算金额" in page.text
            await wc.approve(harness.client, app_id, reviewer="hz-kjj", comment="ok")
            await wc.approve(harness.client, app_id, reviewer="hz-czj", comment="ok")
            st = await wait_status(harness, app_id, "publicity")
            period = st["publicity"]["period"]
            await _login(cz, "cz-c")
            page = await cz.get(f"/applications/{app_id}")
            assert "公示中" in page.text and f"{period['first_day']} 至 {period['last_day']}" in page.text
            assert 'id="object"' in page.text and 'id="rule-1"' not in page.text
            r = await cz.post(f"/applications/{app_id}/object", data={
                "csrf": _csrf(page.text), "objector_name": "王五", "objector_contact": "0571-0000",
                "reason": "<script>x</script>实为关联交易"})
            assert r.status_code == 303
            page = await cz.get(f"/applications/{app_id}")
            assert "<script>x</script>" not in page.text and "&lt;script&gt;" in page.text
            r = await cz.post(f"/applications/{app_id}/uphold_objection",
                              data={"csrf": _csrf(page.text), "objection": "1", "reason": "成立"})
            assert r.status_code == 409 and "only the lead bureau" in r.text
            page = await kj.get(f"/applications/{app_id}")
            assert 'id="rule-1"' in page.text
            r = await kj.post(f"/applications/{app_id}/dismiss_objection",
                              data={"csrf": _csrf(page.text), "objection": "1", "reason": "经核实不属关联交易"})
            assert r.status_code == 303
        await past_publicity(harness, app_id)
        res = await result(harness, app_id)
        assert res["status"] == "completed"
        assert res["publicity"]["objections"][0]["recorded_by"] == "cz-c"
    harness.run(go())
