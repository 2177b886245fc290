"""How the worker and the CLI reach Temporal, the way Temporal users expect: the SDK's environment
configuration (`temporalio.envconfig`), so the same worker runs against the dev server, a
self-hosted cluster with mTLS, or Temporal Cloud.

Settings, from the environment or a TOML profile file (TEMPORAL_CONFIG_FILE, default
~/.config/temporalio/temporal.toml; TEMPORAL_PROFILE picks a profile):

    TEMPORAL_ADDRESS                 host:port (default localhost:7233)
    TEMPORAL_NAMESPACE               default "default"
    TEMPORAL_API_KEY                 Temporal Cloud API key (turns TLS on)
    TEMPORAL_TLS                     true/false
    TEMPORAL_TLS_CLIENT_CERT_PATH    mTLS client certificate (PEM)
    TEMPORAL_TLS_CLIENT_KEY_PATH     its private key (PEM)
    TEMPORAL_TLS_SERVER_CA_CERT_PATH the CA that signed the server's certificate (PEM)
    TEMPORAL_TLS_SERVER_NAME         SNI / the name on the server's certificate
    TEMPORAL_GRPC_META_<NAME>        extra gRPC headers
    TEMPORAL_HTTP_ADDRESS            the same frontend's HTTP API, host:port or http://host:port
                                     (unset: for a gRPC address on port 7233, port 7243 of
                                     the same host, Temporal's default pair; `off`: none).
                                     `disburse status` only: asked first there,
                                     with the standard library, without loading the SDK
                                     (workflows/http_status.py). Used only on TEMPORAL_ADDRESS's
                                     host (localhost, 127.0.0.1, ::1 count as one), for a
                                     plaintext connection with none of the settings above but the
                                     address and namespace and no profile file; otherwise, or whenever
                                     its answer is not exactly the gRPC one, the status is asked
                                     over gRPC. `disburse up` starts its dev server with one
                                     (--http-port, default 7243).
"""
from __future__ import annotations

import os
from typing import Any, Optional

DEFAULT_ADDRESS = "localhost:7233"
DEFAULT_NAMESPACE = "default"


def connect_config(address: Optional[str] = None, namespace: Optional[str] = None) -> dict[str, Any]:
    """The keyword arguments of Client.connect from the environment / profile; an explicit
    `address` or `namespace` wins."""
    from temporalio.envconfig import ClientConfig
    config: dict[str, Any] = dict(ClientConfig.load_client_connect_config())
    if address:
        config["target_host"] = address
    config.setdefault("target_host", DEFAULT_ADDRESS)
    if namespace:
        config["namespace"] = namespace
    config.setdefault("namespace", DEFAULT_NAMESPACE)
    return config


def describe(config: dict[str, Any]) -> str:
    """One line for logs and errors: where, which namespace, TLS or not (never the key)."""
    tls = config.get("tls")
    mode = "mTLS" if getattr(tls, "client_cert", None) else ("TLS" if tls else "plaintext")
    return f"{config['target_host']} (namespace {config['namespace']}, {mode}" \
           f"{', API key' if config.get('api_key') else ''})"


def metrics_port() -> Optional[int]:
    """DISBURSE_METRICS_PORT: the worker's Prometheus endpoint (unset: no endpoint)."""
    value = os.environ.get("DISBURSE_METRICS_PORT", "").strip()
    return int(value) if value else None
