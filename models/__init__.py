"""disburse backend models: pydantic payloads (application), SQLModel tables, DB, registries.

`from models import ApplicationInput` (any name of models.application.__all__) still works, but
loads models/application.py — and with it the calculation core — only when such a name is asked
for: importing a light submodule (models.payloads, models.credentials, models.search_attributes)
must not pay for it (the command line's start-up time, tests/test_cli_imports.py)."""
from __future__ import annotations

from typing import Any

__all__ = [
    "Adjustment", "ApplicationInput", "OpenClaim", "Opened", "OpenRequest", "SettleRequest", "Settled", "ApplicationRun",
    "ApplicationState", "ApplicationStatus", "CHINA",
    "CalcResult", "ClauseInfo", "Closure", "CommitRequest", "CreditCheck", "CreditResult", "Decision",
    "DecisionRecord", "FINANCE_BUREAU", "Notification", "OperatorAction", "PayRequest", "PayoutRecord", "Pinned",
    "ReleaseRequest", "Resumption", "Revocation", "StatusUpdate", "TERMINAL", "Tranche", "TrancheState",
    "YearConfirmation", "china_midnight", "china_today", "qualify", "workflow_id_for",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from models import application
        return getattr(application, name)
    raise AttributeError(f"module 'models' has no attribute {name!r}")
