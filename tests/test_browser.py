"""The web console in a real browser: Debian's chromium driven by Playwright, against a real
Temporal dev server, a worker process and the console process (`disburse console --port`), with
people registered and the application submitted through the `disburse` CLI.

A reviewer of 杭州市科技局 logs in through the form, finds the application in 待我审核, reads the
amount and the calculation trace with the cited policy sentence, and approves; a reviewer of a
bureau that is not responsible cannot open it (403) and a hand-made POST is refused (by the workflow
with its session and CSRF token, with 403 without the token); a forged update sent straight to
Temporal without a credential is refused by the validator; finance approves; the operator sees the
application completed and the tranche paid.

Needs /usr/bin/chromium (scripts/env.sh installs it with apt-get) and the `playwright` package
(the `test` extra); `playwright install` is never run. Without either the test is skipped, saying
why. Screenshots of the main pages go to var/test-artifacts/browser/*.png (DISBURSE_TEST_ARTIFACTS
moves var/test-artifacts), and on a failure what each person's page showed (failure-USER.png).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import os
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.cli_env import PASSWORD, devserver, people, service_env, stop_process

pytestmark = pytest.mark.devserver

ROOT = Path(__file__).resolve().parent.parent
DISBURSE = str(Path(sys.executable).parent / "disburse")
EXAMPLE = ROOT / "examples" / "hz2025-04-tech-insurance-premium.json"
CHROMIUM = os.environ.get("DISBURSE_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("DISBURSE_TEST_ARTIFACTS") or ROOT / "var" / "test-artifacts") / "browser"
# Playwright adds --headless and a fresh --user-data-dir itself; these keep Chromium off the network
# (this machine's closed network refuses its background connections) and run it as root.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

OPERATOR, KJ, CZ, SJ = "op-1", "kj-wang", "cz-li", "sj-zhao"
PEOPLE = ((OPERATOR, "operator", None), (KJ, "reviewer", "杭州市科技局"), (CZ, "finance", "杭州市财政局"),
          (SJ, "reviewer", "杭州市市场监管局"))
CITED = "按不超过实际保险费50%的标准给予补助"

if not os.access(CHROMIUM, os.X_OK):
    pytest.skip(f"browser tests: no {CHROMIUM} (Debian's chromium: scripts/env.sh installs it with apt-get as root)",
                allow_module_level=True)
try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:
    pytest.skip("browser tests: the playwright package is missing (pip install -e '.[test]')", allow_module_level=True)


def disburse(env, cwd, *args) -> str:
    r = subprocess.run([DISBURSE, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"disburse {' '.join(map(str, args))}: {r.stderr}"
    return r.stdout


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args[1:]} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if urllib.request.urlopen(url, timeout=2).status == 200:
                return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} never answered:\n{log.read_text()[-3000:]}")


@pytest.fixture
def console_stack(tmp_path):
    """Dev server, worker and console processes on free ports; people registered and logged in
    with the CLI, the registry imported, the example application submitted by the operator.
    Yields (console URL, Temporal address, application id)."""
    from deploy.devserver import free_port

    ui_port, console_port = free_port(), free_port()
    env = {**os.environ,
           "DISBURSE_DB_URL": f"sqlite:///{tmp_path / 'disburse.db'}", "PYTHONUNBUFFERED": "1",
           "DISBURSE_TEMPORAL_UI": f"http://127.0.0.1:{ui_port}", **service_env(tmp_path),
           "DISBURSE_CONSOLE_SECRET": "browser-test-console-secret"}
    env.pop("DISBURSE_DEBUG", None)
    procs: list[subprocess.Popen] = []
    with devserver(tmp_path, env, ui_port=ui_port) as server, ExitStack() as stopping:
        env = server.env
        stopping.callback(lambda: [stop_process(proc) for proc in reversed(procs)])   # exit codes not asserted
        procs.append(subprocess.Popen([DISBURSE, "worker"], cwd=tmp_path, env=env,
                                      stdout=open(tmp_path / "worker.log", "w"), stderr=subprocess.STDOUT))
        console_log = tmp_path / "console.log"
        console = subprocess.Popen([DISBURSE, "console", "--port", str(console_port)], cwd=tmp_path, env=env,
                                   stdout=open(console_log, "w"), stderr=subprocess.STDOUT)
        procs.append(console)
        url = f"http://127.0.0.1:{console_port}"
        _wait_http(f"{url}/healthz", console, console_log)

        people(env, tmp_path, *PEOPLE)
        disburse(env, tmp_path, "enterprises", "import", ROOT / "examples" / "enterprises.csv")
        out = disburse(env, tmp_path, "submit", EXAMPLE, "--operator", OPERATOR)
        app_id = out.split("submitted", 1)[1].split()[0].strip()
        assert app_id.startswith("app-"), out
        yield url, env["TEMPORAL_ADDRESS"], app_id


@pytest.fixture
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class Person:
    """One user's browser context (their own cookies), logged in through the form."""

    def __init__(self, browser: Browser, url: str, user: str):
        self.user = user
        self.context = browser.new_context(base_url=url, locale="zh-CN", viewport={"width": 1280, "height": 860})
        self.page: Page = self.context.new_page()
        self.page.set_default_timeout(20_000)

    def login(self, shot: str | None = None) -> Page:
        page = self.page
        page.goto("/")                                           # not logged in: sent to the form
        page.wait_for_url("**/login?next=/")
        expect(page.locator("h1")).to_have_text("登录")
        page.fill("input[name=user]", self.user)
        page.fill("input[name=password]", PASSWORD)
        if shot:
            snap(page, shot)
        page.get_by_role("button", name="登录").click()
        page.wait_for_url("**/")
        expect(page.locator("header .who")).to_contain_text(self.user)
        return page

    def csrf(self) -> str:
        return self.page.locator("form.who input[name=csrf]").get_attribute("value")

    def close(self) -> None:
        self.context.close()


def snap(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def reload_until(page: Page, done, what: str, timeout: float = 60) -> None:
    """Reload the page until done() holds (the status mirror and the workflow move on their own)."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s; the page says:\n{page.inner_text('main')}")
        time.sleep(0.5)
        page.reload()


def forged_update(address: str, app_id: str) -> str:
    """What Temporal answers a bare Python client (no key, no credential) sending an approval."""
    async def go():
        from temporalio.client import Client, WorkflowUpdateFailedError
        client = await Client.connect(address)
        try:
            await client.get_workflow_handle(app_id).execute_update(
                "approve", {"reviewer": KJ, "comment": "forged"})
        except WorkflowUpdateFailedError as e:
            return getattr(e.cause, "message", str(e.cause))
        return "ACCEPTED"
    # in a thread of its own: Playwright's sync API keeps an event loop in this one
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, go()).result(timeout=60)


def test_review_in_a_real_browser(console_stack, browser):
    url, address, app_id = console_stack
    opened: list[Person] = []

    def person(user: str) -> Person:
        p = Person(browser, url, user)
        opened.append(p)
        return p

    try:
        # ---- the reviewer of 杭州市科技局: login form, inbox, the application with its trace, approve
        kj = person(KJ)
        page = kj.login(shot="01-login")
        expect(page.locator("h1")).to_have_text("待我审核")
        reload_until(page, lambda: page.get_by_role("link", name=app_id).count() > 0,
                     "the application in the reviewer's inbox")
        snap(page, "02-inbox-reviewer")
        page.get_by_role("link", name=app_id).click()
        page.wait_for_url(f"**/applications/{app_id}")
        expect(page.locator("#status")).to_have_text("审核中")
        expect(page.locator("#amount")).to_contain_text("400,000.00")
        expect(page.locator("#trace")).to_be_visible()
        expect(page.locator("#trace")).to_contain_text(CITED)
        expect(page.locator("#approve")).to_be_visible()
        snap(page, "03-application-trace")
        page.set_viewport_size({"width": 420, "height": 860})           # a phone: the cards stack
        snap(page, "03-application-narrow")
        page.set_viewport_size({"width": 1280, "height": 860})
        page.locator("#approve input[name=comment]").fill("保单真实")
        page.locator("#approve").get_by_role("button", name="同意").click()
        page.wait_for_url(f"**/applications/{app_id}")
        expect(page.locator(".flash")).to_have_text("已提交")
        expect(page.locator("#decisions")).to_contain_text("保单真实")
        expect(page.locator("#decisions")).to_contain_text("同意")
        expect(page.locator("#decisions")).to_contain_text("杭州市科技局")
        expect(page.locator("#approve")).to_have_count(0)               # decided: no second decision offered

        # ---- a reviewer of a bureau that is not responsible: the page refused; hand-made POSTs refused
        sj = person(SJ)
        page = sj.login()
        expect(page.get_by_role("link", name=app_id)).to_have_count(0)   # not in their inbox
        shown = page.goto(f"/applications/{app_id}")
        assert shown.status == 403                                        # not theirs to read ...
        expect(page.locator(".flash.error")).to_contain_text("本单位不审核这个申请")
        expect(page.locator("section.actions")).to_have_count(0)          # ... nor to decide
        for form in ("approve", "reject", "request_info", "revoke"):
            expect(page.locator(f"#{form}")).to_have_count(0)
        token = sj.csrf()
        assert token
        # with the session and its CSRF token: the console sends it, the workflow refuses it
        r = page.request.post(f"/applications/{app_id}/approve", form={"comment": "me too", "csrf": token},
                              max_redirects=0)
        assert r.status == 409 and "not responsible" in r.text(), (r.status, r.text()[:2000])
        # the same, posted by the page itself: the refusal is shown on the application page
        page.evaluate("""([action, token]) => {
            const f = document.createElement('form');
            f.method = 'post'; f.action = action;
            for (const [k, v] of [['csrf', token], ['comment', 'me too']]) {
                const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i);
            }
            document.body.appendChild(f); f.submit();
        }""", [f"/applications/{app_id}/approve", token])
        page.wait_for_load_state()
        expect(page.locator(".flash.error")).to_contain_text("未能完成")    # shown as an error
        expect(page.locator(".flash")).to_contain_text("not responsible")
        snap(page, "04-other-bureau-refused")
        # without the CSRF token: 403 before anything reaches Temporal
        r = page.request.post(f"/applications/{app_id}/approve", form={"comment": "me too"}, max_redirects=0)
        assert r.status == 403 and "CSRF" in r.text(), (r.status, r.text()[:2000])

        # ---- a forged update straight to Temporal, without a credential: refused by the validator
        refusal = forged_update(address, app_id)
        assert refusal != "ACCEPTED"
        assert "credential" in refusal, refusal

        # nothing of the above was recorded: one decision so far (as 杭州市科技局's reviewer sees it)
        page = kj.page
        page.goto(f"/applications/{app_id}")
        expect(page.locator("#decisions tbody tr")).to_have_count(1)
        expect(page.locator("#decisions")).not_to_contain_text(SJ)
        expect(page.locator("#decisions")).not_to_contain_text("forged")

        # ---- finance approves
        cz = person(CZ)
        page = cz.login()
        reload_until(page, lambda: page.get_by_role("link", name=app_id).count() > 0,
                     "the application in finance's inbox")
        page.get_by_role("link", name=app_id).click()
        page.wait_for_url(f"**/applications/{app_id}")
        page.locator("#approve input[name=comment]").fill("同意拨付")
        page.locator("#approve").get_by_role("button", name="同意").click()
        page.wait_for_url(f"**/applications/{app_id}")
        expect(page.locator(".flash")).to_have_text("已提交")
        expect(page.locator("#decisions")).to_contain_text("杭州市财政局")

        # ---- the operator: completed, the tranche paid
        op = person(OPERATOR)
        page = op.login()
        expect(page.locator("h1")).to_have_text("我的申请")
        reload_until(page, lambda: page.get_by_role("link", name=app_id).count() > 0,
                     "the application in the operator's list")
        page.get_by_role("link", name=app_id).click()
        page.wait_for_url(f"**/applications/{app_id}")
        reload_until(page, lambda: page.locator("#status").inner_text() == "已完成"
                     and "已付" in (page.locator("#tranches").inner_text() if page.locator("#tranches").count() else ""),
                     "completed with the tranche paid")
        expect(page.locator("#amount")).to_contain_text("400,000.00")
        expect(page.locator("#tranches")).to_contain_text("400,000.00")
        decisions = page.locator("#decisions").inner_text()
        assert KJ in decisions and CZ in decisions and SJ not in decisions
        expect(page.locator("section.actions")).to_have_count(0)          # nothing left to do
        snap(page, "05-operator-completed")
        page.goto("/")
        reload_until(page, lambda: "已完成" in page.locator("table.list").inner_text(),
                     "completed in the operator's list")
        snap(page, "06-operator-list")
    except BaseException:
        for p in opened:                         # what each person saw when it failed
            try:
                snap(p.page, f"failure-{p.user}")
            except Exception:  # noqa: BLE001 - best effort
                pass
        raise
    finally:
        for p in opened:
            p.close()
