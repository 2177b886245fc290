"""The status query over Temporal's HTTP API, with the standard library alone: what `disburse
status` asks first, so that it never imports the Temporal SDK (whose `import temporalio` alone
takes most of the command's time, bench/cli.py): TEMPORAL_HTTP_ADDRESS, or when that is not set
Temporal's default pair (gRPC on 7233, its HTTP API on 7243 of the same host: `make run`'s dev
server); TEMPORAL_HTTP_ADDRESS=off (or empty) never asks it.

The HTTP API is the frontend's grpc-gateway: the same QueryWorkflow handler, the same
authorization, as the gRPC call `workflows.client.quick_status` makes:

    POST {base}/api/v1/namespaces/{namespace}/workflows/{workflow_id}/query/status
    Accept: application/json+no-payload-shorthand          body: {}

answered with the QueryWorkflowResponse as protobuf JSON. With that Accept header each payload
comes back as it is stored, `{"metadata": {"encoding": base64}, "data": base64}`, so the answer
is read from the very bytes the gRPC call reads (the default "shorthand" re-renders a JSON
payload as a JSON value, with its keys re-ordered: not what the gRPC path prints).

`query_status` returns the answer (a dict), or None whenever it cannot say exactly what the gRPC
path would: the caller then asks as it always did. None when the setting is off, or names
another host than TEMPORAL_ADDRESS (localhost, 127.0.0.1 and ::1 count as one), when the
connection is anything but plaintext with no credentials (TLS, API key, mTLS, gRPC headers, a
profile or a profile file: those are the SDK's to apply, and TLS is not reimplemented here), when
the server cannot be reached or does not answer in time, on an answer that is not one json/plain
payload (DISBURSE_PAYLOAD_KEYS: encrypted, for the client's data converter to decrypt), a
rejected or failed query, or any status or shape not listed below. It raises ServerError for the
two errors the gRPC path would report as they are, so they are not asked twice: an unknown
workflow or namespace (gRPC NOT_FOUND, with Temporal's error details: a 404 of the gateway's
router, e.g. for an id holding `/`, carries none and goes to the gRPC path), and
FAILED_PRECONDITION (no worker polls the task queue: the server says so after ~30 s).

Imports only the standard library (tests/test_cli_imports.py)."""
from __future__ import annotations

import os
from typing import Callable, Optional

SETTING = "TEMPORAL_HTTP_ADDRESS"
CONNECT_TIMEOUT = 3.0         # seconds to open the connection (a closed port is refused at once)
ANSWER_TIMEOUT = 90.0         # seconds for the answer: the server gives up on a query after ~30 s
ACCEPT = "application/json+no-payload-shorthand"

# settings under which the SDK's connection is not plain (workflows/connection.py): left to it
_SDK_ONLY = ("TEMPORAL_API_KEY", "TEMPORAL_PROFILE")
_SDK_ONLY_PREFIXES = ("TEMPORAL_TLS", "TEMPORAL_GRPC_META_")
_NOT_FOUND_DETAILS = ("temporal.api.errordetails.v1.NotFoundFailure",
                      "temporal.api.errordetails.v1.NamespaceNotFoundFailure")
NOT_FOUND, FAILED_PRECONDITION = 5, 9        # gRPC status codes


class ServerError(Exception):
    """An error the Temporal server answered, with its gRPC status code: reported as the gRPC
    path reports an RPCError of that code (cli/errors.py)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _profile_file() -> Optional[str]:
    """The TOML profile file the SDK would read, if there is one (TEMPORAL_CONFIG_FILE, else
    $XDG_CONFIG_HOME or ~/.config, /temporalio/temporal.toml; a missing file is no file)."""
    path = os.environ.get("TEMPORAL_CONFIG_FILE", "")
    if not path:
        base = os.environ.get("XDG_CONFIG_HOME", "")
        if not os.path.isabs(base):
            base = os.path.join(os.path.expanduser("~"), ".config")
        path = os.path.join(base, "temporalio", "temporal.toml")
    return path if path != os.devnull and os.path.exists(path) else None


DEFAULT_GRPC_PORT, DEFAULT_HTTP_PORT = 7233, 7243   # Temporal's frontend defaults (and `disburse up`'s)
OFF = ("", "off", "none")


def default_address(grpc_address: str) -> Optional[str]:
    """The HTTP API asked when TEMPORAL_HTTP_ADDRESS is not set: Temporal's default pair, a
    frontend on gRPC port 7233 has its HTTP API on 7243 of the same host (the server's defaults,
    and what `disburse up` gives its dev server); None for any other gRPC port."""
    from urllib.parse import urlsplit
    try:
        url = urlsplit("//" + grpc_address)
        host, port = url.hostname, url.port
    except ValueError:
        return None
    if not host or port != DEFAULT_GRPC_PORT:
        return None
    return f"[{host}]:{DEFAULT_HTTP_PORT}" if ":" in host else f"{host}:{DEFAULT_HTTP_PORT}"


def endpoint() -> Optional[tuple[str, int, str, str]]:
    """(host, port, path prefix, namespace) of the HTTP API to ask, or None: ask over gRPC."""
    value = os.environ.get(SETTING)
    if value is None:                          # unset: the default pair (set it empty or `off`: never)
        value = default_address(os.environ.get("TEMPORAL_ADDRESS") or "localhost:7233")
    value = (value or "").strip()
    if value.lower() in OFF:
        return None
    if any(k in os.environ for k in _SDK_ONLY) or any(k.startswith(_SDK_ONLY_PREFIXES) for k in os.environ):
        return None
    if _profile_file() is not None:            # it may set the address, TLS, a key: not guessed here
        return None
    namespace = os.environ.get("TEMPORAL_NAMESPACE", "default")
    if not namespace:
        return None
    from urllib.parse import urlsplit
    try:
        url = urlsplit(value if "://" in value else "http://" + value)
        host, port = url.hostname, url.port or 80
    except ValueError:                         # a port that is not a number, out of range
        return None
    if url.scheme != "http" or not host or url.query or url.fragment or url.username or url.password:
        return None                            # https: TLS is the SDK's
    if _same_host(host, os.environ.get("TEMPORAL_ADDRESS") or "localhost:7233") is not True:
        return None
    return host, port, url.path.rstrip("/"), namespace


_LOOPBACK = ("localhost", "127.0.0.1", "::1")


def _same_host(http_host: str, grpc_address: str) -> Optional[bool]:
    """Whether the HTTP API is on TEMPORAL_ADDRESS's host (the loopback names count as one), so it
    is that frontend's: a shell that still exports `disburse up`'s local TEMPORAL_HTTP_ADDRESS
    must not answer for the cluster TEMPORAL_ADDRESS names. None: that address does not parse."""
    from urllib.parse import urlsplit
    try:
        grpc_host = urlsplit("//" + grpc_address).hostname
    except ValueError:
        return None
    if not grpc_host:
        return None
    a, b = http_host.lower(), grpc_host.lower()
    return a == b or (a in _LOOPBACK and b in _LOOPBACK)


def _segment(text: str) -> str:
    """`text` as one path segment: every reserved character escaped, and the dots too, so no id
    reads as `.` or `..` to a server or proxy that tidies paths (the gateway decodes %2E)."""
    from urllib.parse import quote
    return quote(text, safe="").replace(".", "%2E")


def query_status(app_id: str, meanwhile: Optional[Callable[[], None]] = None) -> Optional[dict]:
    """The application's `status` query answer, or None (see the module's docstring); raises
    ServerError. `meanwhile()` runs once the request is sent, while the server answers."""
    where = endpoint()
    if where is None:
        return None
    host, port, prefix, namespace = where
    import http.client
    path = f"{prefix}/api/v1/namespaces/{_segment(namespace)}/workflows/{_segment(app_id)}/query/status"
    conn = http.client.HTTPConnection(host, port, timeout=CONNECT_TIMEOUT)
    try:
        try:
            conn.connect()
            conn.sock.settimeout(ANSWER_TIMEOUT)
            conn.request("POST", path, body=b"{}", headers={"Accept": ACCEPT, "Content-Type": "application/json"})
        except (OSError, http.client.HTTPException):
            return None                        # not listening, unreachable: the gRPC path says so
        if meanwhile is not None:
            meanwhile()
        try:
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            return None
    finally:
        conn.close()
    return read_answer(response.status, body)


def read_answer(status: int, body: bytes) -> Optional[dict]:
    """The answer of a QueryWorkflow response (HTTP status, body), None, or ServerError."""
    import json
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    if status != 200:
        _raise_server_error(status, doc)
        return None
    result = doc.get("queryResult")
    if doc.get("queryRejected") or not isinstance(result, dict):
        return None
    payloads = result.get("payloads")
    if not isinstance(payloads, list) or len(payloads) != 1 or not isinstance(payloads[0], dict):
        return None
    metadata = payloads[0].get("metadata")
    if not isinstance(metadata, dict) or _bytes(metadata.get("encoding")) != b"json/plain":
        return None
    data = _bytes(payloads[0].get("data", ""))
    try:
        answer = json.loads(data) if data is not None else None
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def _bytes(value) -> Optional[bytes]:
    """A protobuf JSON `bytes` field (standard base64), or None."""
    import base64
    import binascii
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _raise_server_error(status: int, doc: dict) -> None:
    """ServerError for the errors reported as they are (module docstring); else nothing."""
    code, message, details = doc.get("code"), doc.get("message"), doc.get("details")
    if type(code) is not int or not isinstance(message, str):
        return
    types = [d.get("@type", "") for d in details if isinstance(d, dict)] if isinstance(details, list) else []
    if status == 404 and code == NOT_FOUND and any(t.endswith("/" + name) for t in types for name in _NOT_FOUND_DETAILS):
        raise ServerError(code, message)
    if status == 400 and code == FAILED_PRECONDITION:
        raise ServerError(code, message)
