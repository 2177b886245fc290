"""Who the command-line user is: a CLI token per user (`disburse login USER` asks for the password
and keeps the token under DISBURSE_CONFIG_DIR, default ~/.config/disburse, readable only by you;
or DISBURSE_TOKEN). Every state-changing command acts as the token's user, whose role and bureau
the database knows; the request is signed for that user (models/credentials.py). A --reviewer /
--operator / --who option picks which of your logged-in users acts, and must match its token."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from cli.errors import BAD_INPUT, CliError


def config_dir() -> Path:
    return Path(os.environ.get("DISBURSE_CONFIG_DIR") or "~/.config/disburse").expanduser()


def save_token(user: str, token: str) -> Path:
    tokens = config_dir() / "tokens"
    tokens.mkdir(parents=True, exist_ok=True)
    os.chmod(config_dir(), 0o700)
    path = tokens / user
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token)
    (config_dir() / "current").write_text(user)
    return path


def forget(user: Optional[str] = None) -> Optional[str]:
    user = user or current_user()
    if user:
        (config_dir() / "tokens" / user).unlink(missing_ok=True)
        cur = config_dir() / "current"
        if cur.exists() and cur.read_text().strip() == user:
            cur.unlink()
    return user


def current_user() -> Optional[str]:
    cur = config_dir() / "current"
    return cur.read_text().strip() if cur.exists() else None


def _token(user: Optional[str]) -> str:
    if os.environ.get("DISBURSE_TOKEN"):
        return os.environ["DISBURSE_TOKEN"]
    who = user or current_user()
    if not who:
        raise CliError("who are you? log in first: `disburse login USER`", BAD_INPUT)
    path = config_dir() / "tokens" / who
    if not path.exists():
        raise CliError(f"{who} is not logged in on this machine: `disburse login {who}`", BAD_INPUT)
    return path.read_text().strip()


def acting(user: Optional[str] = None):
    """The authenticated actor (models.credentials.Actor) for a command; `user` is the id the
    command names (--reviewer / --operator / --who), if any."""
    from models.users import UserError, actor_for_token
    try:
        actor = actor_for_token(_token(user))
    except UserError as e:
        raise CliError(str(e), BAD_INPUT) from None
    if user and actor.user != user:
        raise CliError(f"your token is {actor.user}'s, not {user}'s: `disburse login {user}` "
                       "(or unset DISBURSE_TOKEN)", BAD_INPUT)
    return actor
