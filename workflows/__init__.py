"""Temporal workflows of disburse.

`from workflows import ApplicationWorkflow` still works; the workflow module (and with it the
activities, the database and the calculation core) is loaded only when asked for, so the client
side (workflows.client, workflows.codec, workflows.connection) imports without it."""
from __future__ import annotations

from typing import Any

__all__ = ["ApplicationWorkflow"]


def __getattr__(name: str) -> Any:
    if name == "ApplicationWorkflow":
        from workflows.application import ApplicationWorkflow
        return ApplicationWorkflow
    raise AttributeError(f"module 'workflows' has no attribute {name!r}")
