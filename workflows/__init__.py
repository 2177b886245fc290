"""Temporal workflows of disburse."""
from workflows.application import ApplicationWorkflow

__all__ = ["ApplicationWorkflow"]
