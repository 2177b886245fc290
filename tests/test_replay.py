"""Replay: the recorded histories in tests/histories/ (tests/record_histories.py) must replay
without non-determinism under today's ApplicationWorkflow, so that a code change cannot break
applications that are already running, for years."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from models.legacy import WorkflowInput
from workflows.application import ApplicationWorkflow
from workflows.legacy import LegacyApplicationWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def _history(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text())


def _replay(workflow_cls, path: Path):
    replayer = Replayer(workflows=[workflow_cls] if workflow_cls else [ApplicationWorkflow, LegacyApplicationWorkflow],
                        data_converter=pydantic_data_converter)
    return asyncio.run(replayer.replay_workflow(_history(path), raise_on_replay_failure=False))


def test_histories_are_kept():
    names = {p.stem for p in HISTORIES}
    assert {"lifecycle_info_sla-v1", "programme_two_years-run1-v1", "programme_two_years-run2-v1", "rejected-v1",
            "withdrawn_awaiting_evidence-v1"} <= names


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
def test_recorded_history_replays(path):
    """Every recording replays on the worker's workflows: -v1 recordings on the first version
    (type ApplicationWorkflow), later ones on the current one (type Application)."""
    result = _replay(None, path)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"


@workflow.defn(name="ApplicationWorkflow", sandboxed=False)   # this module reads files at import
class _ReorderedWorkflow(LegacyApplicationWorkflow):
    """What a careless change looks like: the credit check moved before the review."""

    @workflow.run
    async def run(self, inp: WorkflowInput) -> dict:
        await self._blacklisted()
        return await super().run(inp)


def test_an_incompatible_change_is_caught():
    result = _replay(_ReorderedWorkflow, HISTORIES[0])
    assert result.replay_failure is not None
    assert "nondetermin" in str(result.replay_failure).lower()
