"""A real PostgreSQL server for the tests, started once per test session on this machine and
stopped at its end (tests/conftest.py: fixtures `postgres_server`, `pg_db`, `db_any`).

Where the server comes from, the first that runs:

1. the system's PostgreSQL (Debian's `/usr/lib/postgresql/<version>/bin`, the newest, or an
   `initdb` on PATH): a cluster is made with initdb in a temporary directory, run as the
   `postgres` system user when the tests run as root (PostgreSQL refuses to run as root),
   listening on 127.0.0.1 on a free port with password authentication, its unix socket in the same
   temporary directory, fsync off (the data is thrown away);
2. the `pgserver` wheel (a PostgreSQL build from PyPI; the `test` extra installs it), listening on
   a unix socket only (trust authentication);
3. neither: the PostgreSQL tests are skipped, and pytest's summary (-ra) says why.

DISBURSE_TEST_POSTGRES=system or =pgserver picks one of them (to try the other by hand);
DISBURSE_TEST_POSTGRES_REQUIRED=1 turns a missing server into a failure instead of a skip.

Each test gets a database of its own (`create_database`), owned by the role `disburse` (not a
superuser: what the application needs, nothing more).
"""
from __future__ import annotations

import glob
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

APP_ROLE = "disburse"
TMP_PREFIX = "disburse-pg-"


class Unavailable(RuntimeError):
    """No PostgreSQL server can be started on this machine; the message says why."""


@dataclass
class Server:
    source: str                        # where the server came from, e.g. "system PostgreSQL 15"
    host: str                          # 127.0.0.1, or the directory of its unix socket
    port: int
    admin_user: str
    admin_password: str
    app_password: str
    _stop: Callable[[], None] = field(repr=False)
    log: Optional[Path] = None

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of `database` for the application's role (DISBURSE_DB_URL)."""
        if self.host.startswith("/"):
            return f"postgresql+psycopg://{APP_ROLE}:{self.app_password}@/{database}?host={self.host}&port={self.port}"
        return f"postgresql+psycopg://{APP_ROLE}:{self.app_password}@{self.host}:{self.port}/{database}"

    def admin(self):
        import psycopg
        return psycopg.connect(host=self.host, port=self.port, user=self.admin_user, password=self.admin_password,
                               dbname="postgres", autocommit=True, connect_timeout=10)

    def create_database(self) -> str:
        name = f"test_{uuid.uuid4().hex[:16]}"
        with self.admin() as c:
            c.execute(f'CREATE DATABASE "{name}" OWNER {APP_ROLE}')
        return name

    def drop_database(self, name: str) -> None:
        with self.admin() as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        self._stop()


def requested() -> str:
    return os.environ.get("DISBURSE_TEST_POSTGRES", "").strip().lower()


def required() -> bool:
    return os.environ.get("DISBURSE_TEST_POSTGRES_REQUIRED", "") not in ("", "0")


def start() -> Server:
    """A running server (see the module's doc), or Unavailable with every reason tried."""
    want = requested()
    tried: list[str] = []
    for name, starter in (("system", _start_system), ("pgserver", _start_pgserver)):
        if want and want != name:
            continue
        try:
            server = starter()
        except Unavailable as e:
            tried.append(f"{name}: {e}")
            continue
        _create_app_role(server)
        return server
    raise Unavailable("no PostgreSQL server could be started (" + "; ".join(tried) + ")")


def _create_app_role(server: Server) -> None:
    with server.admin() as c:
        c.execute(f"CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{server.app_password}'")


# ------------------------------------------------------------------------------ system PostgreSQL

def system_bindir() -> Optional[Path]:
    """Debian's newest /usr/lib/postgresql/<version>/bin, else the directory of `initdb` on PATH."""
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if found:
        def version(p: str) -> tuple:
            return tuple(int(x) for x in re.findall(r"\d+", Path(p).parent.parent.name))
        return Path(max(found, key=version)).parent
    on_path = shutil.which("initdb")
    return Path(on_path).resolve().parent if on_path else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clear_leftovers(bindir: Path) -> None:
    """Servers of earlier test runs whose pytest died without stopping them (SIGKILL): stopped,
    their directories removed."""
    for d in Path(tempfile.gettempdir()).glob(f"{TMP_PREFIX}*"):
        try:
            owner = int((d / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        if _alive(owner):
            continue
        if (d / "data" / "postmaster.pid").exists():
            subprocess.run([str(bindir / "pg_ctl"), "stop", "-D", str(d / "data"), "-m", "immediate"],
                           capture_output=True, timeout=60, cwd=d, **_user_kwargs(d))
        shutil.rmtree(d, ignore_errors=True)


def _user_kwargs(d: Path) -> dict:
    """Run as the owner of `d` (the postgres user) when we are root; as ourselves otherwise."""
    if os.geteuid() != 0:
        return {}
    st = d.stat()
    return {"user": st.st_uid, "group": st.st_gid, "extra_groups": []}


def _start_system() -> Server:
    bindir = system_bindir()
    if bindir is None or not (bindir / "pg_ctl").exists() or not (bindir / "postgres").exists():
        raise Unavailable("PostgreSQL's server programs are not installed (/usr/lib/postgresql/*/bin/initdb: "
                          "Debian package postgresql)")
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            raise Unavailable("running as root and there is no `postgres` system user to run the server as") from None
        uid, gid = pw.pw_uid, pw.pw_gid
    else:
        uid, gid = os.geteuid(), os.getegid()
    _clear_leftovers(bindir)
    version = (bindir.parent.name if bindir.parent.parent.name == "postgresql" else "")
    last_error = ""
    for _attempt in range(3):                       # a free port may be taken between finding and binding it
        tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX))
        (tmp / "owner.pid").write_text(str(os.getpid()))
        os.chown(tmp, uid, gid)
        run = _user_kwargs(tmp)
        admin_password, app_password = secrets.token_hex(16), secrets.token_hex(16)
        pwfile = tmp / "pwfile"
        pwfile.write_text(admin_password + "\n")
        os.chown(pwfile, uid, gid)
        pwfile.chmod(0o600)
        data, log, port = tmp / "data", tmp / "server.log", _free_port()
        init = subprocess.run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", f"--pwfile={pwfile}",
                               "-A", "scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync"],
                              capture_output=True, text=True, timeout=120, cwd=tmp, **run)
        pwfile.unlink()
        if init.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise Unavailable(f"initdb failed: {(init.stderr or init.stdout).strip()[-500:]}")
        options = (f"-k {tmp} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
                   f"-c full_page_writes=off -c max_connections=200")
        started = subprocess.run([str(bindir / "pg_ctl"), "start", "-D", str(data), "-l", str(log), "-w", "-t", "60",
                                  "-o", options], capture_output=True, text=True, timeout=90, cwd=tmp, **run)
        if started.returncode == 0:
            def stop(tmp=tmp, run=run, data=data) -> None:
                subprocess.run([str(bindir / "pg_ctl"), "stop", "-D", str(data), "-m", "fast", "-w", "-t", "60"],
                               capture_output=True, timeout=90, cwd=tmp, **run)
                shutil.rmtree(tmp, ignore_errors=True)
            server = Server(source=f"system PostgreSQL {version}".strip(), host="127.0.0.1", port=port,
                            admin_user="postgres", admin_password=admin_password, app_password=app_password,
                            _stop=stop, log=log)
            return _ready(server)
        last_error = (log.read_text(errors="replace") if log.exists() else started.stderr).strip()[-800:]
        subprocess.run([str(bindir / "pg_ctl"), "stop", "-D", str(data), "-m", "immediate"],
                       capture_output=True, timeout=60, cwd=tmp, **run)
        shutil.rmtree(tmp, ignore_errors=True)
    raise Unavailable(f"pg_ctl start failed three times; last server log: {last_error}")


def _ready(server: "Server") -> "Server":
    """The server once it answers; stopped (and Unavailable raised) if it never does."""
    try:
        _wait_ready(server)
    except Unavailable:
        server.stop()
        raise
    return server


def _wait_ready(server: Server, timeout: float = 30) -> None:
    import psycopg
    deadline = time.monotonic() + timeout
    while True:
        try:
            with server.admin() as c:
                c.execute("SELECT 1")
            return
        except psycopg.OperationalError as e:
            if time.monotonic() > deadline:
                raise Unavailable(f"the server did not accept connections within {timeout:.0f}s: {e}") from None
            time.sleep(0.1)


# ------------------------------------------------------------------------------ pgserver (PyPI)

def _start_pgserver() -> Server:
    try:
        import pgserver
    except ImportError:
        raise Unavailable("the pgserver package is not installed (pip install pgserver)") from None
    tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX))
    (tmp / "owner.pid").write_text(str(os.getpid()))
    try:
        srv = pgserver.get_server(tmp / "data", cleanup_mode="delete")   # as root it runs as the user `pgserver`
    except Exception as e:  # noqa: BLE001 - whatever it is, the reason is shown in the skip
        shutil.rmtree(tmp, ignore_errors=True)
        raise Unavailable(f"pgserver could not start a server: {type(e).__name__}: {e}") from None
    info = srv.get_postmaster_info()

    def stop() -> None:
        try:
            srv.cleanup()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    server = Server(source="pgserver (PyPI)", host=str(info.socket_dir), port=int(info.port or 5432),
                    admin_user="postgres", admin_password="", app_password=secrets.token_hex(16), _stop=stop,
                    log=tmp / "data" / "log")
    return _ready(server)
