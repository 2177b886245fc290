"""`disburse status` over Temporal's HTTP API (TEMPORAL_HTTP_ADDRESS, workflows/http_status.py),
against a small local stand-in for the server's gateway: the answer it can read exactly as the gRPC
path reads it, and None — ask over gRPC as before — for everything else; an unknown application
is the same one-line error as over gRPC. tests/test_http_status_devserver.py runs it against the
real server."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cli.errors import describe
from workflows import http_status as hs

ROOT = Path(__file__).resolve().parent.parent
STATUS = {"application_id": "app-1", "status": "review", "clause_id": "hz2025-04-tech-insurance-premium",
          "enterprise_code": "91330106MA2KX0A01W", "enterprise_name": "杭州云栖智能科技有限公司", "year": 2026,
          "awarded": "0", "decisions": [], "tranches": [], "required_bureaus": ["杭州市科技局"]}


def payload(value, encoding: bytes = b"json/plain", **meta: bytes) -> dict:
    data = value if isinstance(value, bytes) else json.dumps(value, ensure_ascii=False).encode()
    return {"metadata": {k: base64.b64encode(v).decode() for k, v in {"encoding": encoding, **meta}.items()},
            "data": base64.b64encode(data).decode()}


def answered(*payloads: dict) -> tuple[int, dict]:
    return 200, {"queryResult": {"payloads": list(payloads)}}


NOT_FOUND = (404, {"code": 5, "message": "workflow not found for ID: app-none",
                   "details": [{"@type": "type.googleapis.com/temporal.api.errordetails.v1.NotFoundFailure"}]})


class Stub:
    """An HTTP server answering every request with (status, body); records what it was asked."""

    def __init__(self, status: int = 200, body=None, delay: float = 0.0):
        self.status, self.body, self.delay = status, body, delay
        self.requests: list[dict] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                stub.requests.append({"path": self.path, "accept": self.headers.get("Accept"),
                                      "body": self.rfile.read(length), "at": time.monotonic()})
                time.sleep(stub.delay)
                raw = stub.body if isinstance(stub.body, bytes) else json.dumps(stub.body).encode()
                self.send_response(stub.status)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub(monkeypatch):
    for name in list(os.environ):
        if name.startswith(("TEMPORAL_TLS", "TEMPORAL_GRPC_META_")) or name in (
                "TEMPORAL_API_KEY", "TEMPORAL_PROFILE", "TEMPORAL_NAMESPACE"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:7233")
    s = Stub(*answered(payload(STATUS)))
    monkeypatch.setenv("TEMPORAL_HTTP_ADDRESS", s.address)
    yield s
    s.close()


def test_a_json_answer_is_the_status(stub):
    assert hs.query_status("app-1") == STATUS
    [asked] = stub.requests
    assert asked["path"] == "/api/v1/namespaces/default/workflows/app-1/query/status"
    assert asked["accept"] == "application/json+no-payload-shorthand" and json.loads(asked["body"]) == {}


def test_the_setting_takes_a_url_and_the_namespace(stub, monkeypatch):
    monkeypatch.setenv("TEMPORAL_HTTP_ADDRESS", f"http://{stub.address}/temporal/")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "disburse-prod")
    assert hs.query_status("app-1") == STATUS
    assert stub.requests[-1]["path"] == "/temporal/api/v1/namespaces/disburse-prod/workflows/app-1/query/status"


@pytest.mark.parametrize("app_id", ["a/b?c..d", "..", "../../../api/v1/namespaces", "x#y", "百分 %2F"])
def test_a_hostile_id_is_one_path_segment(stub, app_id):
    """The id is percent-encoded, dots too: never a path of its own, a query string or a `..`."""
    hs.query_status(app_id)
    path = stub.requests[-1]["path"]
    prefix, suffix = "/api/v1/namespaces/default/workflows/", "/query/status"
    assert path.startswith(prefix) and path.endswith(suffix)
    segment = path[len(prefix):-len(suffix)]
    assert "/" not in segment and "?" not in segment and "#" not in segment and "." not in segment
    from urllib.parse import unquote
    assert unquote(segment) == app_id


@pytest.mark.parametrize("status,body", [
    answered(payload(STATUS, b"binary/encrypted", **{"encryption-key-id": b"k1"})),   # DISBURSE_PAYLOAD_KEYS
    answered(payload(b"\x00\x01", b"binary/plain")),
    answered(payload(STATUS), payload(STATUS)),                                        # two payloads
    answered(),                                                                        # none
    answered(payload(b"not json")),
    answered(payload(["a", "list"])),
    answered({"metadata": {"encoding": "not base64!"}, "data": ""}),
    (200, {"queryRejected": {"status": "WORKFLOW_EXECUTION_STATUS_COMPLETED"}}),
    (200, {"queryResult": [STATUS]}),                                                  # the shorthand form
    (200, b"<html>not json</html>"),
    (200, [1, 2]),
    (400, {"code": 3, "message": "Query handler for 'status' failed",
           "details": [{"@type": "type.googleapis.com/temporal.api.errordetails.v1.QueryFailedFailure"}]}),
    (404, {"code": 5, "message": "Not Found"}),                   # the gateway's router: no such route
    (405, {"code": 12, "message": "Method Not Allowed"}),
    (500, {"code": 13, "message": "internal"}),
    (503, {"code": 14, "message": "unavailable"}),
    (302, b""),
])
def test_what_it_cannot_read_exactly_goes_to_grpc(stub, status, body):
    stub.status, stub.body = status, body
    assert hs.query_status("app-1") is None
    assert len(stub.requests) == 1


def test_an_unknown_application_is_the_grpc_paths_error(stub):
    stub.status, stub.body = NOT_FOUND
    with pytest.raises(hs.ServerError) as e:
        hs.query_status("app-none")
    assert describe(e.value) == ("not found: workflow not found for ID: app-none", 1)
    stub.body = {"code": 5, "message": "Namespace nons is not found.", "details": [
        {"@type": "type.googleapis.com/temporal.api.errordetails.v1.NamespaceNotFoundFailure", "namespace": "nons"}]}
    with pytest.raises(hs.ServerError) as e:
        hs.query_status("app-none")
    assert describe(e.value) == ("not found: Namespace nons is not found.", 1)


def test_no_worker_is_the_grpc_paths_error_not_asked_twice(stub):
    stub.status, stub.body = 400, {"code": 9, "message": "no poller seen for task queue recently, worker may be down"}
    with pytest.raises(hs.ServerError) as e:
        hs.query_status("app-1")
    assert describe(e.value) == ("Temporal: no poller seen for task queue recently, worker may be down", 1)


def test_unreachable_or_slow_goes_to_grpc(stub, monkeypatch):
    from deploy.devserver import free_port
    monkeypatch.setenv("TEMPORAL_HTTP_ADDRESS", f"127.0.0.1:{free_port()}")       # nothing listens
    assert hs.query_status("app-1") is None
    monkeypatch.setenv("TEMPORAL_HTTP_ADDRESS", stub.address)
    monkeypatch.setattr(hs, "ANSWER_TIMEOUT", 0.3)
    stub.delay = 1.0
    assert hs.query_status("app-1") is None


@pytest.mark.parametrize("setting", [
    {"TEMPORAL_HTTP_ADDRESS": ""}, {"TEMPORAL_TLS": "true"}, {"TEMPORAL_TLS_SERVER_CA_CERT_PATH": "/ca.pem"},
    {"TEMPORAL_API_KEY": "k"}, {"TEMPORAL_GRPC_META_AUTHORIZATION": "Bearer x"}, {"TEMPORAL_PROFILE": "prod"},
    {"TEMPORAL_NAMESPACE": ""},
])
def test_settings_only_the_sdk_applies_go_to_grpc_unasked(stub, monkeypatch, setting):
    for name, value in setting.items():
        monkeypatch.setenv(name, value)
    assert hs.query_status("app-1") is None and stub.requests == []


@pytest.mark.parametrize("url", ["https://{a}", "ftp://{a}", "{a}?x=1", "http://user:pw@{a}", "127.0.0.1:notaport"])
def test_an_address_it_does_not_speak_goes_to_grpc_unasked(stub, monkeypatch, url):
    monkeypatch.setenv("TEMPORAL_HTTP_ADDRESS", url.format(a=stub.address))
    assert hs.query_status("app-1") is None and stub.requests == []


@pytest.mark.parametrize("grpc", ["temporal.prod.example:7233", "10.0.0.5:7233", "127.0.0.2:7233"])
def test_an_http_api_on_another_host_than_temporal_address_goes_to_grpc_unasked(stub, monkeypatch, grpc):
    """The HTTP API stands in for TEMPORAL_ADDRESS's frontend only on the same host: a shell that
    still exports `disburse up`'s local setting does not answer for another cluster."""
    monkeypatch.setenv("TEMPORAL_ADDRESS", grpc)
    assert hs.query_status("app-1") is None and stub.requests == []


@pytest.mark.parametrize("grpc", [None, "localhost:7233", "127.0.0.1:17233", "[::1]:7233", "LOCALHOST:7233"])
def test_the_loopback_names_are_one_host(stub, monkeypatch, grpc):
    if grpc is None:
        monkeypatch.delenv("TEMPORAL_ADDRESS", raising=False)           # localhost:7233
    else:
        monkeypatch.setenv("TEMPORAL_ADDRESS", grpc)
    assert hs.query_status("app-1") == STATUS


@pytest.mark.parametrize("grpc, http", [
    (None, "localhost:7243"), ("127.0.0.1:7233", "127.0.0.1:7243"), ("[::1]:7233", "[::1]:7243"),
    ("temporal.example:7233", "temporal.example:7243"), ("127.0.0.1:17233", None), ("127.0.0.1", None),
])
def test_unset_it_is_temporals_default_pair(monkeypatch, grpc, http):
    """TEMPORAL_HTTP_ADDRESS not set: gRPC on 7233 has its HTTP API on 7243 of the same host (the
    server's defaults; `make run`'s dev server), and no other port is guessed."""
    assert hs.default_address(grpc or "localhost:7233") == http


@pytest.mark.parametrize("http, found", [
    ("127.0.0.1:7243", True), ("localhost:7243", True), ("127.0.0.1:17243", False), ("0.0.0.0:7243", False),
    ("temporal.example:7243", False), ("::1:7243", False), ("[::1]:7243", False),
])
def test_up_prints_no_export_line_for_the_default_pair(http, found):
    """`disburse up` asks no export of TEMPORAL_HTTP_ADDRESS when a shell with nothing set finds its
    HTTP API by itself (cli/up.py `_default_pair`: default_address's pair, a loopback name, IPv4)."""
    from cli.up import _default_pair
    assert _default_pair(http) is found


def test_unset_the_default_pair_is_asked_and_off_turns_it_off(stub, monkeypatch):
    host, port = stub.address.split(":")
    monkeypatch.setattr(hs, "DEFAULT_GRPC_PORT", 17233)
    monkeypatch.setattr(hs, "DEFAULT_HTTP_PORT", int(port))
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"{host}:17233")
    monkeypatch.delenv("TEMPORAL_HTTP_ADDRESS")
    assert hs.query_status("app-1") == STATUS and len(stub.requests) == 1
    for off in ("off", "OFF", "none", "", "  "):
        monkeypatch.setenv("TEMPORAL_HTTP_ADDRESS", off)
        assert hs.query_status("app-1") is None
    monkeypatch.delenv("TEMPORAL_HTTP_ADDRESS")
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"{host}:17234")            # not the default pair: not guessed
    assert hs.query_status("app-1") is None
    assert len(stub.requests) == 1


def test_a_profile_file_goes_to_grpc_unasked(stub, monkeypatch, tmp_path):
    """A TOML profile may set the address, TLS or a key: not guessed."""
    profile = tmp_path / "temporal.toml"
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(profile))
    assert hs.query_status("app-1") == STATUS                 # no such file: no profile
    profile.write_text('[profile.default]\naddress = "elsewhere:7233"\n')
    assert hs.query_status("app-1") is None
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", "")           # the default place
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "temporalio").mkdir()
    assert hs.query_status("app-1") == STATUS
    (tmp_path / "temporalio" / "temporal.toml").write_text("")
    assert hs.query_status("app-1") is None
    assert len(stub.requests) == 2


def test_meanwhile_runs_once_the_request_is_sent(stub):
    stub.delay = 0.5
    ran = []

    def meanwhile():
        time.sleep(0.2)             # the request needs no help from us to arrive
        ran.append(len(stub.requests))
    assert hs.query_status("app-1", meanwhile=meanwhile) == STATUS
    assert ran == [1]               # the server had the request while it ran


def _script(args: list[str], env: dict) -> subprocess.CompletedProcess:
    """The `disburse` console script's code, as the shell runs it, reporting whether it loaded the SDK."""
    code = ("import sys, atexit\n"
            "from cli import entry\n"
            "code = entry.quick(sys.argv[1:])\n"
            "print('temporalio loaded' if 'temporalio' in sys.modules else 'no temporalio', file=sys.stderr)\n"
            "entry.leave(code)\n")
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_command_answers_without_the_sdk(stub):
    """`disburse status ID` (table and --json) and an unknown id, through the HTTP API alone; the gRPC
    address goes nowhere, so an answer can only have come from the stub."""
    env = {**os.environ, "TEMPORAL_ADDRESS": "127.0.0.1:1", "DISBURSE_PAYLOAD_KEYS": ""}
    env.pop("DISBURSE_DEBUG", None)
    r = _script(["status", "app-1"], env)
    assert r.returncode == 0 and "杭州云栖智能科技有限公司" in r.stdout and "review" in r.stdout, r.stderr
    assert r.stderr == "no temporalio\n"
    r = _script(["status", "--json", "app-1"], env)
    assert r.returncode == 0 and json.loads(r.stdout) == STATUS and r.stderr == "no temporalio\n"
    stub.status, stub.body = NOT_FOUND
    r = _script(["status", "app-none"], env)
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "error: not found: workflow not found for ID: app-none\n"
                                                          "no temporalio\n")
    stub.status, stub.body = answered(payload(STATUS, b"binary/encrypted"))     # then gRPC: unreachable here
    r = _script(["status", "app-1"], env)
    assert r.returncode == 3 and r.stderr.startswith("error: cannot reach the Temporal server at 127.0.0.1:1")
    assert r.stderr.endswith("temporalio loaded\n")
