"""deploy/grafana/disburse-dashboard.json: valid JSON, every panel queries Prometheus, and every
business metric it names is one the worker exports (activities/metrics.py, workflows/application.py)."""
from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "deploy" / "grafana" / "disburse-dashboard.json"


def _exported() -> set[str]:
    text = (ROOT / "activities" / "metrics.py").read_text() + (ROOT / "workflows" / "application.py").read_text()
    return set(re.findall(r'"(disburse_[a-z_]+)"', text))


def test_the_dashboard_queries_metrics_that_exist():
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dash["uid"] == "disburse" and dash["panels"]
    exported = _exported()
    assert {"disburse_awards_paid_fen", "disburse_applications", "disburse_sla_breaches"} <= exported
    named = set()
    for p in dash["panels"]:
        assert p["targets"] and p["datasource"]["type"] == "prometheus", p["title"]
        for t in p["targets"]:
            for name in re.findall(r"\b(disburse_[a-z_]+)", t["expr"]):
                named.add(name)
                assert name.removesuffix("_total") in exported, (p["title"], name)
    assert {n.removesuffix("_total") for n in named} == exported      # and every business metric is shown
