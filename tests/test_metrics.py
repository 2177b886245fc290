"""The worker's Prometheus endpoint (DISBURSE_METRICS_PORT): the SDK's runtime metrics and the
business metrics (activities/metrics.py) — scraped before and after an application is paid."""
from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.request

import pytest

from tests.test_devserver import DISBURSE, EXAMPLE, ROOT, disburse

from tests.cli_env import TOUR, devserver, people, service_env, stop_process

pytestmark = pytest.mark.devserver


def scrape(port: int) -> dict[str, float]:
    """{'name{labels}': value} of every sample on the endpoint."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def total(samples: dict[str, float], name: str, **labels: str) -> float:
    """Sum of a metric's samples whose labels include `labels` (counters may carry a _total suffix)."""
    found = 0.0
    for key, value in samples.items():
        m = re.match(r"([a-zA-Z_:][\w:]*)(\{.*\})?$", key)
        if not m or m.group(1) not in (name, f"{name}_total"):
            continue
        if all(f'{k}="{v}"' in (m.group(2) or "") for k, v in labels.items()):
            found += value
    return found


@pytest.fixture
def metered_stack(tmp_path):
    from deploy.devserver import free_port
    metrics = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "DISBURSE_DB_URL": f"sqlite:///{tmp_path / 'disburse.db'}", "DISBURSE_METRICS_PORT": str(metrics),
           "DISBURSE_METRICS_INTERVAL": "0.5", **service_env(tmp_path)}
    with devserver(tmp_path, env) as server:
        env = server.env
        worker = subprocess.Popen([DISBURSE, "worker"], cwd=tmp_path, env=env,
                                  stdout=open(tmp_path / "worker.log", "w"), stderr=subprocess.STDOUT)
        try:
            cli_env = {k: v for k, v in env.items() if k != "DISBURSE_METRICS_PORT"}
            yield cli_env, tmp_path, metrics
        finally:
            stop_process(worker)


def test_business_metrics_move_when_an_application_is_paid(metered_stack):
    env, tmp, port = metered_stack
    people(env, tmp, *TOUR)
    disburse(env, tmp, "enterprises", "import", ROOT / "examples" / "enterprises.csv")
    before = {}
    for _ in range(60):                              # the endpoint comes up with the worker
        try:
            before = scrape(port)
            break
        except OSError:
            time.sleep(0.5)
    assert before, "no metrics endpoint"
    out = disburse(env, tmp, "submit", EXAMPLE, "--operator", "op-1").stdout
    app_id = out.split("submitted", 1)[1].split()[0].strip()
    disburse(env, tmp, "approve", app_id, "--reviewer", "kj-wang")
    disburse(env, tmp, "approve", app_id, "--reviewer", "cz-li")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if json.loads(disburse(env, tmp, "status", app_id, "--json").stdout).get("status") == "completed":
            break
        time.sleep(0.5)
    after = {}
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:               # the database gauges refresh every 0.5 s
        after = scrape(port)
        if total(after, "disburse_applications", status="completed") >= 1:
            break
        time.sleep(0.5)
    clause = "hz2025-04-tech-insurance-premium"
    assert total(after, "disburse_applications_opened", clause_id=clause) \
        - total(before, "disburse_applications_opened", clause_id=clause) == 1
    assert total(after, "disburse_awards_committed_fen", clause_id=clause) == 40_000_000     # 400,000.00 yuan
    assert total(after, "disburse_awards_paid_fen", clause_id=clause) == 40_000_000
    assert total(after, "disburse_status_changes", status="completed") >= 1
    assert total(after, "disburse_applications", status="completed") == 1
    assert total(after, "disburse_book_fen", state="paid") == 40_000_000
    assert any(k.startswith("temporal_") for k in after), "the SDK's own metrics are there too"
