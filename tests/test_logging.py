"""Every log line is one JSON object carrying workflow_id, application_id and clause_id, from the
activities (structlog) and from the workflow (workflow.logger) alike."""
import io
import json

from activities import logs
from tests.backend_helpers import approve_both, result, submit_new
from tests.temporal_env import PREMIUM_CLAUSE


def test_log_lines_carry_workflow_application_and_clause(harness, db):
    buf = io.StringIO()
    logs.configure(stream=buf)
    try:
        async def go():
            app_id = await submit_new(harness, db)
            await approve_both(harness, app_id)
            await result(harness, app_id)
            return app_id
        app_id = harness.run(go())
    finally:
        logs.configure()
    lines = [json.loads(x) for x in buf.getvalue().splitlines() if app_id in x]
    events = {x["event"] for x in lines}
    assert {"status", "decision", "tranche_paid", "payout_recorded", "blacklist_checked", "committed"} <= events
    for x in lines:
        assert x["workflow_id"] == app_id and x["application_id"] == app_id, x
        assert x["clause_id"] == PREMIUM_CLAUSE, x
        assert x["level"] and x["timestamp"]
    paid = next(x for x in lines if x["event"] == "tranche_paid")
    assert paid["amount"] == "400000.00" and paid["seq"] == 1
