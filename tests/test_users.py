"""People and how they prove who they are (models/users.py, cli/identity.py): argon2 password
hashes, lock-out after repeated failures, a CLI token per user, roles and bureaus checked."""
from __future__ import annotations

import subprocess
from datetime import datetime, timedelta, timezone

import pytest

from models import users
from models.db import session
from models.tables import UserRow
from tests.cli_env import DISBURSE, PASSWORD


def test_passwords_are_hashed_and_checked(db):
    users.add_user("kj-wang", role="reviewer", bureau="杭州市科技局", password=PASSWORD)
    with session() as s:
        row = s.get(UserRow, "kj-wang")
        assert PASSWORD not in row.password_hash and row.password_hash.startswith("$argon2")
    assert users.authenticate("kj-wang", PASSWORD) == users.Actor(user="kj-wang", role="reviewer",
                                                                   bureau="杭州市科技局")
    with pytest.raises(users.UserError, match="wrong user or password"):
        users.authenticate("kj-wang", "not-the-password")
    with pytest.raises(users.UserError, match="wrong user or password"):          # the same answer
        users.authenticate("nobody", PASSWORD)


def test_five_failures_lock_the_account(db):
    users.add_user("op-1", role="operator", password=PASSWORD)
    now = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
    for _ in range(users.MAX_FAILURES):
        with pytest.raises(users.UserError, match="wrong"):
            users.authenticate("op-1", "guess", now=now)
    with pytest.raises(users.UserError, match="locked"):                          # even the right password
        users.authenticate("op-1", PASSWORD, now=now + timedelta(minutes=1))
    assert users.authenticate("op-1", PASSWORD, now=now + users.LOCK_FOR + timedelta(seconds=1)).user == "op-1"


def test_roles_and_bureaus_are_checked(db):
    with pytest.raises(users.UserError, match="role"):
        users.add_user("x", role="admin", password=PASSWORD)
    with pytest.raises(users.UserError, match="bureau"):
        users.add_user("x", role="reviewer", bureau="不存在的局", password=PASSWORD)
    with pytest.raises(users.UserError, match="财政局"):
        users.add_user("x", role="finance", bureau="杭州市科技局", password=PASSWORD)
    with pytest.raises(users.UserError, match="at least 10"):
        users.add_user("x", role="operator", password="short")
    with pytest.raises(users.UserError, match="letters, digits"):
        users.add_user("x\x1b[2J", role="operator", password=PASSWORD)


def test_a_token_names_its_user_and_a_new_login_replaces_it(db):
    first = users.add_user("cz-li", role="finance", bureau="杭州市财政局", password=PASSWORD)
    assert users.actor_for_token(first).user == "cz-li"
    second = users.new_token("cz-li", PASSWORD)
    assert users.actor_for_token(second).bureau == "杭州市财政局"
    with pytest.raises(users.UserError, match="not valid"):
        users.actor_for_token(first)
    with session() as s:
        assert first not in (s.get(UserRow, "cz-li").token_hash or "")


def test_the_cli_acts_only_as_a_logged_in_user(db, tmp_path):
    import os
    env = {**os.environ, "DISBURSE_CONFIG_DIR": str(tmp_path / "cfg")}
    env.pop("DISBURSE_TOKEN", None)

    def cli(*args, stdin=""):
        return subprocess.run([DISBURSE, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60)
    r = cli("whoami")
    assert r.returncode == 2 and "log in first" in r.stderr
    assert cli("users", "add", "kj-wang", "--role", "reviewer", "--bureau", "杭州市科技局", "--password-stdin",
               stdin=PASSWORD + "\n").returncode == 0
    r = cli("login", "kj-wang", "--password-stdin", stdin="wrong\n")
    assert r.returncode == 1 and "wrong user or password" in r.stderr
    assert cli("login", "kj-wang", "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    assert oct((tmp_path / "cfg" / "tokens" / "kj-wang").stat().st_mode & 0o777) == "0o600"
    assert "kj-wang (reviewer, 杭州市科技局)" in cli("whoami").stdout
    r = cli("approve", "app-x", "--reviewer", "cz-li")
    assert r.returncode == 2 and "cz-li is not logged in" in r.stderr
    r = subprocess.run([DISBURSE, "approve", "app-x", "--reviewer", "cz-li"], input="", capture_output=True,
                       text=True, timeout=60, env={**env, "DISBURSE_TOKEN": (tmp_path / "cfg" / "tokens" / "kj-wang")
                                                   .read_text()})
    assert r.returncode == 2 and "your token is kj-wang's, not cz-li's" in r.stderr


@pytest.mark.parametrize("field,value,rule", [
    ("email", "a@b.cn, c@d.cn", "one address"), ("email", "no-at-sign", "one address"),
    ("webhook_url", "javascript:alert(1)", "http(s)"), ("webhook_url", "https://x/ y", "http(s)"),
])
def test_contact_details_are_checked(db, field, value, rule):
    from models.users import UserError, add_user
    with pytest.raises(UserError, match=rule.replace("(", r"\(").replace(")", r"\)")):
        add_user("op-x", role="operator", password="long enough pw", **{field: value})
    add_user("op-y", role="operator", password="long enough pw", email="li@czj.example.cn",
             webhook_url="https://oapi.dingtalk.com/robot/send?access_token=t")
