"""structlog JSON logging; every activity log line carries workflow_id, application_id, clause_id."""
from __future__ import annotations

import logging
import sys

import structlog
from temporalio import activity

_configured = False


def configure() -> None:
    global _configured
    if _configured:
        return
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    _configured = True


def bind(application_id: str | None = None, clause_id: str | None = None, **extra):
    """Bind the activity's identity to the structlog context and return a logger."""
    configure()
    info = activity.info()
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(
        workflow_id=info.workflow_id, application_id=application_id or info.workflow_id,
        clause_id=clause_id, activity=info.activity_type, attempt=info.attempt, **extra)
    return structlog.get_logger("disburse")
