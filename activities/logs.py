"""Structured JSON logs: one line per event, each with workflow_id, application_id and clause_id.

Two sources, one format:
- activities log with structlog (`bind(...)` puts the activity's identity in the context);
- the workflow logs through `workflow.logger` (stdlib; Temporal drops those lines during replay
  so nothing is logged twice) with `extra` = application id, clause and the event's fields.
Both, and the SDK's own warnings, go through structlog's ProcessorFormatter to JSON on stderr.
"""
from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog
from temporalio import activity

_handler: logging.Handler | None = None

_LOGGERS = ("disburse", "temporalio")


def _temporal_context(_logger, _name, event: dict[str, Any]) -> dict[str, Any]:
    """workflow_id from Temporal's `temporal_workflow` / `temporal_activity` extra; the
    application id defaults to it (the workflow id is the application id)."""
    for key in ("temporal_workflow", "temporal_activity"):
        info = event.pop(key, None)
        if isinstance(info, dict):
            event.setdefault("workflow_id", info.get("workflow_id"))
            event.setdefault("run_id", info.get("run_id"))
            if "update_name" in info:
                event.setdefault("update", info["update_name"])
    if event.get("workflow_id"):
        event.setdefault("application_id", event["workflow_id"])
    event.setdefault("clause_id", None)
    return event


def configure(stream: TextIO | None = None, level: int = logging.INFO) -> None:
    """Idempotent; `stream` (default stderr) replaces the previous destination."""
    global _handler
    shared = [structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso", utc=True)]
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, *shared,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[_temporal_context, structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, structlog.processors.JSONRenderer(ensure_ascii=False)]))
    for name in _LOGGERS:
        lg = logging.getLogger(name)
        if _handler is not None:
            lg.removeHandler(_handler)
        lg.addHandler(handler)
        lg.setLevel(level)
        lg.propagate = False
    _handler = handler
    from temporalio import workflow
    workflow.logger.workflow_info_on_message = False      # the JSON carries it; keep messages clean
    activity.logger.activity_info_on_message = False


def bind(application_id: str | None = None, clause_id: str | None = None, **extra):
    """Bind the activity's identity to the structlog context and return a logger."""
    if _handler is None:
        configure()
    info = activity.info()
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(
        workflow_id=info.workflow_id, application_id=application_id or info.workflow_id,
        clause_id=clause_id, activity=info.activity_type, attempt=info.attempt, **extra)
    return structlog.get_logger("disburse")
