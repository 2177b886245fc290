"""`disburse status` asks on the SDK's service layer alone (workflows.client.quick_status: no
high-level client, no data converter, a fraction of the start-up time). It must be the same
question with the same answer and the same errors as `status()` through the client, and step
aside (None: the CLI then asks through the client) when the answer is encrypted."""
from __future__ import annotations

import asyncio

import pytest
from temporalio.service import RPCError
from typer.testing import CliRunner

from tests.backend_helpers import submit_new
from tests.test_codec import CODEC_QUEUE, K1, _run_application, _worker_and_client
from workflows import client as wc
from workflows import codec as wcodec
from workflows.codec import EncryptionCodec


def _where(h) -> dict:
    return {"address": h.client.service_client.config.target_host, "namespace": h.client.namespace}


def test_the_quick_status_is_the_status_query(harness, db):
    plain = wcodec.codec_from_settings() is None        # the session may encrypt (DISBURSE_PAYLOAD_KEYS)

    async def go():
        app_id = await submit_new(harness, db)
        full = await wc.status(harness.client, app_id)
        assert full["status"] == "review" and full["application_id"] == app_id
        assert await wc.quick_status(app_id, **_where(harness)) == (full if plain else None)
        ran = []                       # what the caller does while the query is on its way
        assert await wc.quick_status(app_id, **_where(harness), meanwhile=lambda: ran.append(1)) == \
            (full if plain else None)
        assert ran == [1]

        with pytest.raises(RPCError) as by_client:
            await wc.status(harness.client, "app-no-such-application")
        with pytest.raises(RPCError) as quick:
            await wc.quick_status("app-no-such-application", **_where(harness))
        assert (quick.value.status, quick.value.message) == (by_client.value.status, by_client.value.message)
    harness.run(go())


def test_an_encrypted_answer_goes_through_the_client(harness, db):
    """With DISBURSE_PAYLOAD_KEYS the answer is ciphertext: quick_status leaves it to the client,
    whose data converter decrypts it."""
    for client in _worker_and_client(harness, wcodec.data_converter(EncryptionCodec([("e2e", K1)])), CODEC_QUEUE):
        async def go():
            app_id = await _run_application(harness, client, db, task_queue=CODEC_QUEUE, name="加密有限公司")
            assert await wc.quick_status(app_id, **_where(harness)) is None
            assert (await wc.status(client, app_id))["status"] == "completed"
        harness.run(go())


def test_the_command_shows_the_same_either_way(harness, db, monkeypatch):
    """`disburse status ID` (and --json) print the same through the quick path and through the client."""
    from cli import backend
    from cli.main import app
    monkeypatch.setenv("TEMPORAL_ADDRESS", _where(harness)["address"])
    monkeypatch.setenv("TEMPORAL_NAMESPACE", _where(harness)["namespace"])
    monkeypatch.delenv("DISBURSE_DEBUG", raising=False)
    app_id = harness.run(submit_new(harness, db))
    runner = CliRunner()

    def shown(*args):        # the CLI in a thread while the harness's loop runs the worker
        r = harness.run(asyncio.to_thread(runner.invoke, app, ["status", *args], catch_exceptions=False))
        return r.exit_code, r.stdout, r.stderr

    quick = [shown(app_id), shown(app_id, "--json"), shown("app-no-such-application")]
    asked = []

    async def never(app_id, meanwhile=None):
        asked.append(app_id)
        return None
    monkeypatch.setattr(backend, "quick_status", never)
    by_client = [shown(app_id), shown(app_id, "--json"), shown("app-no-such-application")]
    assert asked == [app_id, app_id, "app-no-such-application"]
    assert quick == by_client
    assert quick[0][0] == 0 and app_id in quick[0][1] and "review" in quick[0][1]
    assert quick[2][0] == 1 and quick[2][2].startswith("error: not found")
