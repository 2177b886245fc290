"""Connection settings the way Temporal users expect (workflows/connection.py: the SDK's envconfig):
a worker and the CLI reach a Temporal frontend over mutual TLS with nothing but TEMPORAL_* variables.

The dev server speaks plaintext only, so the test puts a TLS-terminating proxy in front of it
(certificates from `trustme`, a CA made for the test; the proxy requires a client certificate
signed by it and offers HTTP/2, as a TLS frontend does). An application then goes through the
worker and the CLI, both connected over mTLS; a client without a certificate is turned away.
"""
from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.test_devserver import DISBURSE, EXAMPLE, ROOT, disburse

from tests.cli_env import TOUR, devserver, people, service_env, stop_process

pytestmark = pytest.mark.devserver


class TlsProxy:
    """TLS (client certificate required) on `port` -> plaintext on `target_port`, in a thread."""

    def __init__(self, ctx: ssl.SSLContext, port: int, target_port: int) -> None:
        self.ctx, self.port, self.target_port = ctx, port, target_port
        self.loop = asyncio.new_event_loop()
        self.handshakes_refused = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", self.port, ssl=self.ctx))
        self.loop.run_forever()

    async def _serve(self, reader, writer) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return

        async def pipe(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
                pass
            finally:
                dst.close()
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def start(self) -> "TlsProxy":
        self.thread.start()
        for _ in range(100):
            try:
                socket_ok = __import__("socket").create_connection(("127.0.0.1", self.port), 0.2)
                socket_ok.close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("TLS proxy did not start")

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture
def mtls_stack(tmp_path):
    import trustme

    from deploy.devserver import free_port

    ca = trustme.CA()
    server_cert = ca.issue_cert("localhost", "127.0.0.1")
    client_cert = ca.issue_cert("disburse-worker")
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    client_cert.cert_chain_pems[0].write_to_path(str(tmp_path / "client.pem"))
    client_cert.private_key_pem.write_to_path(str(tmp_path / "client.key"))

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(ctx)
    ca.configure_trust(ctx)
    ctx.verify_mode = ssl.CERT_REQUIRED                 # mutual TLS
    ctx.set_alpn_protocols(["h2"])                      # gRPC is HTTP/2

    tls_port = free_port()
    base = {**os.environ, "DISBURSE_DB_URL": f"sqlite:///{tmp_path / 'disburse.db'}", "PYTHONUNBUFFERED": "1",
            **service_env(tmp_path)}
    for key in [k for k in base if k.startswith("TEMPORAL_")]:
        base.pop(key)
    with devserver(tmp_path, base) as server, ExitStack() as stopping:
        proxy = TlsProxy(ctx, tls_port, server.port).start()
        stopping.callback(proxy.stop)
        env = {**base, "TEMPORAL_ADDRESS": f"localhost:{tls_port}", "TEMPORAL_TLS": "true",
               "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(tmp_path / "ca.pem"),
               "TEMPORAL_TLS_CLIENT_CERT_PATH": str(tmp_path / "client.pem"),
               "TEMPORAL_TLS_CLIENT_KEY_PATH": str(tmp_path / "client.key"),
               "TEMPORAL_TLS_SERVER_NAME": "localhost"}
        worker = subprocess.Popen([DISBURSE, "worker"], cwd=tmp_path, env=env,
                                  stdout=open(tmp_path / "worker.log", "w"), stderr=subprocess.STDOUT)
        stopping.callback(stop_process, worker)
        yield env, tmp_path, base


def test_worker_and_cli_over_mutual_tls(mtls_stack):
    env, tmp, plain = mtls_stack
    people(env, tmp, *TOUR)
    disburse(env, tmp, "enterprises", "import", ROOT / "examples" / "enterprises.csv")
    out = disburse(env, tmp, "submit", EXAMPLE, "--operator", "op-1").stdout
    app_id = out.split("submitted", 1)[1].split()[0].strip()
    disburse(env, tmp, "approve", app_id, "--reviewer", "kj-wang")
    disburse(env, tmp, "approve", app_id, "--reviewer", "cz-li")
    state = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = json.loads(disburse(env, tmp, "status", app_id, "--json").stdout)
        if state.get("status") == "completed":
            break
        time.sleep(0.5)
    assert state.get("status") == "completed", (state, (tmp / "worker.log").read_text()[-2000:])
    assert "mTLS" in (tmp / "worker.log").read_text()              # the worker says how it is connected

    # the same address without a client certificate: the frontend turns the client away
    no_cert = {k: v for k, v in env.items() if not k.startswith("TEMPORAL_TLS_CLIENT")}
    r = disburse(no_cert, tmp, "status", app_id, ok=False)
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    # and plaintext to the TLS port is no better
    r = disburse({**plain, "TEMPORAL_ADDRESS": env["TEMPORAL_ADDRESS"]}, tmp, "status", app_id, ok=False)
    assert r.returncode != 0


def test_the_settings_reach_the_client(tmp_path, monkeypatch):
    """Namespace, API key and TLS from the environment, and from a profile file."""
    from workflows.connection import connect_config, describe
    for key in [k for k in os.environ if k.startswith("TEMPORAL_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(tmp_path / "none.toml"))
    assert connect_config()["target_host"] == "localhost:7233"
    monkeypatch.setenv("TEMPORAL_ADDRESS", "ns.acct.tmprl.cloud:7233")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "ns.acct")
    monkeypatch.setenv("TEMPORAL_API_KEY", "secret-key")
    cfg = connect_config()
    assert (cfg["target_host"], cfg["namespace"], cfg["api_key"], bool(cfg["tls"])) == (
        "ns.acct.tmprl.cloud:7233", "ns.acct", "secret-key", True)
    assert "secret-key" not in describe(cfg) and "API key" in describe(cfg)
    for key in ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY"):
        monkeypatch.delenv(key)
    (tmp_path / "temporal.toml").write_text(
        '[profile.prod]\naddress = "temporal.internal:7233"\nnamespace = "disburse"\n'
        '[profile.prod.tls]\nserver_name = "temporal.internal"\n')
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(tmp_path / "temporal.toml"))
    monkeypatch.setenv("TEMPORAL_PROFILE", "prod")
    cfg = connect_config()
    assert (cfg["target_host"], cfg["namespace"], cfg["tls"].domain) == (
        "temporal.internal:7233", "disburse", "temporal.internal")
