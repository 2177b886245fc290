"""`disburse status` over the REAL dev server's HTTP API (TEMPORAL_HTTP_ADDRESS, as `disburse up`
sets it; workflows/http_status.py): the console script prints what it prints over gRPC — the same
bytes, streams and exit code — for an application, its JSON, an unknown id and ids that are no
plain path segment, without loading the Temporal SDK where the HTTP API answers, and over gRPC
where it cannot (a closed HTTP port). Which way it went is read off the interpreter's own import
log (PYTHONPROFILEIMPORTTIME), never off a switch of the program's."""
from __future__ import annotations

import subprocess

import pytest

from tests.cli_env import DISBURSE, TOUR, people
from tests.test_devserver import EXAMPLE, ROOT, disburse, stack  # noqa: F401 - the fixture

pytestmark = pytest.mark.devserver


def status(env, cwd, *args) -> tuple[tuple[int, str, str], set[str]]:
    """((exit code, stdout, stderr), the modules it imported) of `disburse status ARGS`."""
    plain = subprocess.run([DISBURSE, "status", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    traced = subprocess.run([DISBURSE, "status", *args], cwd=cwd, env={**env, "PYTHONPROFILEIMPORTTIME": "1"},
                            capture_output=True, text=True, timeout=120)
    imported = {line.rsplit("|", 1)[1].strip() for line in traced.stderr.splitlines()
                if line.startswith("import time:") and "|" in line}
    assert "cli.entry" in imported and "cli.status" in imported, traced.stderr[-2000:]   # the log is there
    assert (traced.returncode, traced.stdout) == (plain.returncode, plain.stdout)
    return (plain.returncode, plain.stdout, plain.stderr), imported


def over_grpc(env) -> dict:
    return {**env, "TEMPORAL_HTTP_ADDRESS": "off"}


def test_status_over_the_http_api_is_the_status_over_grpc(stack):
    from deploy.devserver import free_port

    env, tmp = stack
    assert env["TEMPORAL_HTTP_ADDRESS"]
    people(env, tmp, *TOUR)
    disburse(env, tmp, "enterprises", "import", ROOT / "examples" / "enterprises.csv")
    app_id = disburse(env, tmp, "submit", EXAMPLE, "--operator", "op-1").stdout.split("submitted", 1)[1].split()[0]

    for args in ([app_id], ["--json", app_id], ["app-no-such-application"], ["app.with.dots"], [".."]):
        by_http, loaded = status(env, tmp, *args)
        by_grpc, loaded_grpc = status(over_grpc(env), tmp, *args)
        assert by_http == by_grpc, args
        assert "temporalio" in loaded_grpc                       # what the probe would see
        assert not any(m == "temporalio" or m.startswith("temporalio.") for m in loaded), (args, "asked over gRPC")
    shown, _ = status(env, tmp, app_id)
    assert shown[0] == 0 and app_id in shown[1] and "review" in shown[1] and shown[2] == ""
    unknown, _ = status(env, tmp, "app-no-such-application")
    assert unknown == (1, "", "error: not found: workflow not found for ID: app-no-such-application\n")

    # an id the gateway's router cannot take as one segment: over gRPC, with gRPC's answer
    for hostile in ("a/b?c..d", "../../x", "a%2Fb"):
        by_http, _ = status(env, tmp, hostile)
        by_grpc, _ = status(over_grpc(env), tmp, hostile)
        assert by_http == by_grpc and by_http[0] == 1 and by_http[2].startswith("error: not found: "), hostile

    # nothing listens on the HTTP port: answered over gRPC, silently
    closed = {**env, "TEMPORAL_HTTP_ADDRESS": f"127.0.0.1:{free_port()}"}
    for args in ([app_id], ["--json", app_id], ["app-no-such-application"]):
        by_closed, loaded = status(closed, tmp, *args)
        assert by_closed == status(over_grpc(env), tmp, *args)[0]
        assert "temporalio" in loaded
