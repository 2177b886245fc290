"""Replay: the recorded histories in tests/histories/ (tests/record_histories.py) must replay
without non-determinism under today's ApplicationWorkflow, so that a code change cannot break
applications that are already running, for years."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from models.application import ApplicationRun
from models.legacy import WorkflowInput
from workflows.application import ApplicationWorkflow
from workflows.codec import data_converter
from workflows.legacy import LegacyApplicationWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def _history(path: Path) -> WorkflowHistory:
    """The recorded history under its real workflow id (the current workflow checks that its id is
    the one its claim derives), read from the claim in the first event's input."""
    import base64
    import json

    from models.application import workflow_id_for
    text = path.read_text()
    started = json.loads(text)["events"][0]["workflowExecutionStartedEventAttributes"]
    arg = json.loads(base64.b64decode(started["input"]["payloads"][0]["data"]))
    claim = arg.get("claim") if isinstance(arg, dict) else None
    wid = workflow_id_for(claim["enterprise_code"], claim["clause_id"], claim["year"]) if claim else path.stem
    if claim is None and isinstance(arg, dict) and "order" in arg:       # a Recovery: recovery-<application id>
        from workflows.recovery import recovery_id
        wid = recovery_id(arg["application_id"])
    return WorkflowHistory.from_json(wid, text)


def _replay(workflow_cls, path: Path):
    from workflows.recovery import RecoveryWorkflow
    replayer = Replayer(workflows=[workflow_cls] if workflow_cls else [ApplicationWorkflow, LegacyApplicationWorkflow,
                                                                       RecoveryWorkflow],
                        data_converter=data_converter())   # the codec's too when DISBURSE_PAYLOAD_KEYS is set
    return asyncio.run(replayer.replay_workflow(_history(path), raise_on_replay_failure=False))


def test_histories_are_kept():
    names = {p.stem for p in HISTORIES}
    assert {"lifecycle_info_sla-v1", "programme_two_years-run1-v1", "programme_two_years-run2-v1", "rejected-v1",
            "withdrawn_awaiting_evidence-v1"} <= names
    assert {"lifecycle_info_sla-v2", "programme_two_years-run1-v2", "programme_two_years-run2-v2", "rejected-v2",
            "withdrawn_awaiting_evidence-v2", "revoked_during_payout-v2", "blacklisted_during_payout-v2",
            "attention_withdrawn-v2"} <= names
    assert {"clawback_during_payout-v3-clawback", "barred_before_tranche-v3-clawback",
            "amendments_during_payout-v3-clawback", "amendment_of_paid_award-v3-clawback",
            "recovery_of_completed-v3-clawback"} <= names
    # provisional calculation and 公示 (patch "provisional-and-publicity")
    assert {"publicity_objection_upheld-v3-publicity", "publicity_objection_dismissed-v3-publicity",
            "lifecycle_info_sla-v3-publicity", "programme_two_years-run1-v3-publicity"} <= names
    # fewer events and workflow tasks (patch "lean-history", issue 11)
    assert {"lifecycle_info_sla-v4-lean", "programme_two_years-run1-v4-lean", "programme_two_years-run2-v4-lean",
            "rejected-v4-lean", "withdrawn_awaiting_evidence-v4-lean", "revoked_during_payout-v4-lean",
            "blacklisted_during_payout-v4-lean", "attention_withdrawn-v4-lean", "budget_topped_up-v4-lean",
            "publicity_objection_upheld-v4-lean", "clawback_during_payout-v4-lean-clawback",
            "recovery_of_completed-v4-lean-clawback"} <= names
    # five events fewer again (patch "lean-history-2", issue 11)
    assert {"lifecycle_info_sla-v5-lean2", "programme_two_years-run1-v5-lean2", "programme_two_years-run2-v5-lean2",
            "rejected-v5-lean2", "withdrawn_awaiting_evidence-v5-lean2", "revoked_during_payout-v5-lean2",
            "blacklisted_during_payout-v5-lean2", "attention_withdrawn-v5-lean2", "budget_topped_up-v5-lean2",
            "budget_rejected-v5-lean2", "publicity_objection_upheld-v5-lean2", "publicity_objection_dismissed-v5-lean2",
            "clawback_during_payout-v5-lean2-clawback", "barred_before_tranche-v5-lean2-clawback",
            "recovery_of_completed-v5-lean2-clawback"} <= names
    # an application opened before lean-history whose 公示 ended by its timer (patch
    # "publicity-ends-by-its-timer", asked when the timer fires; tests/record_publicity_timer.py)
    assert "publicity_ends_by_its_timer-v3-publicity-timer" in names


def test_the_publicity_timer_recording_has_its_patch_and_not_lean():
    import base64
    import json
    events = json.loads((Path(__file__).parent / "histories" /
                         "publicity_ends_by_its_timer-v3-publicity-timer.json").read_text())["events"]
    patches = [json.loads(base64.b64decode(e["markerRecordedEventAttributes"]["details"]["patch-data"]["payloads"][0]
                                           ["data"]))["id"]
               for e in events if e.get("markerRecordedEventAttributes", {}).get("markerName") == "core_patch"]
    assert "publicity-ends-by-its-timer" in patches and "lean-history" not in patches, patches


def _patches(path: Path) -> list[str]:
    import base64
    import json
    events = json.loads(path.read_text())["events"]
    return [json.loads(base64.b64decode(e["markerRecordedEventAttributes"]["details"]["patch-data"]["payloads"][0]
                                        ["data"]))["id"]
            for e in events if e.get("markerRecordedEventAttributes", {}).get("markerName") == "core_patch"]


def test_the_lean2_recordings_have_one_patch_marker():
    """Applications opened under lean-history-2 ask for no patch before it (one marker, one
    TemporalChangeVersion upsert); and the payment's credit check stopped a payment in one of them."""
    import json
    lean2 = [p for p in HISTORIES if "-v5-lean2" in p.stem and not p.stem.startswith("recovery_")]
    assert len(lean2) >= 14, lean2
    for path in lean2:
        assert _patches(path) == ["lean-history-2"], (path.name, _patches(path))
    blacklisted = (Path(__file__).parent / "histories" / "blacklisted_during_payout-v5-lean2.json").read_text()
    events = json.loads(blacklisted)["events"]
    scheduled = {e["eventId"]: e["activityTaskScheduledEventAttributes"]["activityType"]["name"]
                 for e in events if "activityTaskScheduledEventAttributes" in e}
    paid_listed = [e for e in events if "activityTaskCompletedEventAttributes" in e
                   and scheduled.get(e["activityTaskCompletedEventAttributes"]["scheduledEventId"]) == "pay_tranche"
                   and '"listed":true' in _result_json(e["activityTaskCompletedEventAttributes"]["result"])]
    assert len(paid_listed) == 1, [scheduled[k] for k in scheduled]


def _result_json(result: dict) -> str:
    import base64
    return "".join(base64.b64decode(p["data"]).decode() for p in result.get("payloads", []))


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
    result = _replay(_ReorderedWorkflow, next(p for p in HISTORIES if p.stem == "lifecycle_info_sla-v1"))
    assert result.replay_failure is not None
    assert "nondetermin" in str(result.replay_failure).lower()


def test_the_recordings_are_of_both_versions():
    """-v1 files are histories of the first version (type ApplicationWorkflow), -v2 of the current."""
    for path in HISTORIES:
        first = _history(path).events[0].workflow_execution_started_event_attributes.workflow_type.name
        expected = ("ApplicationWorkflow" if path.stem.endswith("-v1")
                    else "Recovery" if path.stem.startswith("recovery_") else "Application")
        assert first == expected, path.name


@workflow.defn(name="Application", sandboxed=False)
class _PaysBeforeTheCreditCheck(ApplicationWorkflow):
    """A careless change to the current workflow: the credit check moved after the calculation."""

    @workflow.run
    async def run(self, inp: ApplicationRun) -> dict:
        return await super().run(inp)

    async def _year_one(self) -> None:
        await self._wait_with_sla(lambda: self._rejected() or self._all_approved())
        await self._calculate()
        await self._credit_ok()
        await self._pay_and_go_on()


def test_an_incompatible_change_to_the_current_workflow_is_caught():
    path = next(p for p in HISTORIES if p.stem == "lifecycle_info_sla-v2")
    result = _replay(_PaysBeforeTheCreditCheck, path)
    assert result.replay_failure is not None
    assert "nondetermin" in str(result.replay_failure).lower()
