"""The Recovery workflow (type "Recovery", id `recovery-<application id>`): a recovery (追回) of an
application that has ended, ordered by finance (`disburse clawback`). A running application takes
the order itself (its `clawback` update); one that has ended cannot, so this workflow carries it out.

Its input is a claim: the worker verifies the credential and that it is the clause's finance bureau
(`verify_recovery`, an activity: the result is recorded, so replay never depends on today's keys),
then `recover_award` reads what was paid from the worker's own ledger and writes the recovery
entries and the bar (models/recovery.py), exactly once. A refusal is the workflow's result
(`refused`), not a failure.
"""
from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from models.application import china_today
    from models.clawback import (RecoverRequest, RecoveryCheck, RecoveryClearance, RecoveryResult, RecoveryRun,
                                 recovery_id)
    from workflows.application import RETRY

TIMEOUT = timedelta(seconds=60)


@workflow.defn(name="Recovery")
class RecoveryWorkflow:
    @workflow.run
    async def run(self, inp: RecoveryRun) -> dict:
        info = workflow.info()
        if info.workflow_id != recovery_id(inp.application_id):
            raise ApplicationError(f"a recovery's id is {recovery_id(inp.application_id)}, not {info.workflow_id!r}",
                                   type="InvalidClaim", non_retryable=True)
        clear: RecoveryClearance = await workflow.execute_activity(
            "verify_recovery", RecoveryCheck(application_id=inp.application_id, order=inp.order),
            result_type=RecoveryClearance, start_to_close_timeout=TIMEOUT, retry_policy=RETRY)
        if clear.refused is not None:
            return RecoveryResult(refused=clear.refused).model_dump(mode="json")
        res: RecoveryResult = await workflow.execute_activity(
            "recover_award", RecoverRequest(
                application_id=inp.application_id, order=inp.order.model_copy(update={"credential": None}),
                who=clear.who, bureau=clear.bureau, day=china_today(workflow.now()).isoformat(),
                source=f"{info.workflow_id}/{info.run_id}"),
            result_type=RecoveryResult, start_to_close_timeout=TIMEOUT, retry_policy=RETRY)
        workflow.logger.info("recovery", extra={"application_id": inp.application_id, "amount": str(res.amount),
                                                "refused": res.refused, "order": res.order_id})
        return res.model_dump(mode="json")
