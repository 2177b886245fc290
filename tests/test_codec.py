"""Payload encryption (workflows/codec.py): every payload AES-256-GCM encrypted under the first key
of DISBURSE_PAYLOAD_KEYS, any listed key decrypting (rotation), tampering refused, payloads it did
not encrypt passed through (histories recorded before encryption replay); an application run on
the time-skipping server with the codec leaves neither the enterprise's name nor its facts in the
raw history; the codec server's JSON functions decode what the worker wrote."""
from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import pytest
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DefaultFailureConverterWithEncodedAttributes
from temporalio.worker import Replayer

from workflows import codec as wcodec
from workflows.codec import CodecRequestError, EncryptionCodec, PayloadKeyError

K1 = bytes(range(32))
K2 = bytes(range(32, 64))
NAME = "杭州密文测试科技有限公司"          # nowhere in a raw history once the codec is on
POLICY_NO = "P-SECRET-4711"
CODEC_QUEUE = "disburse-codec-test"
PLAIN_QUEUE = "disburse-plain-test"
LOCAL_ACTIVITY_MARKER = {"seq", "attempt", "activity_id", "activity_type", "complete_time", "backoff",
                         "original_schedule_time", "activation_index"}
HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def run(coro):
    return asyncio.run(coro)


def plain(value) -> Payload:
    return pydantic_data_converter.payload_converter.to_payloads([value])[0]


def keyfile(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "payload-keys"
    p.write_text(text)
    return p


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


# ------------------------------------------------------------------------------------------ codec

def test_round_trip():
    codec = EncryptionCodec([("k1", K1)])
    original = [plain({"enterprise_name": NAME, "policy_no": POLICY_NO}), plain(None), plain(b"\x00\x01")]
    encrypted = run(codec.encode(original))
    assert len(encrypted) == 3
    for p in encrypted:
        assert p.metadata["encoding"] == b"binary/encrypted"
        assert p.metadata["encryption-key-id"] == b"k1"
        assert NAME.encode() not in p.data and POLICY_NO.encode() not in p.data
    assert run(codec.decode(encrypted)) == original
    again = run(codec.encode(original))
    assert again[0].data != encrypted[0].data            # a fresh nonce every time


def test_an_old_key_still_decrypts_after_rotation():
    old = EncryptionCodec([("2025", K1)])
    written_before = run(old.encode([plain({"name": NAME})]))
    rotated = EncryptionCodec([("2026", K2), ("2025", K1)])
    assert run(rotated.decode(written_before)) == [plain({"name": NAME})]
    written_after = run(rotated.encode([plain({"name": NAME})]))
    assert written_after[0].metadata["encryption-key-id"] == b"2026"
    with pytest.raises(PayloadKeyError, match="2025"):               # that key was dropped too early
        run(EncryptionCodec([("2026", K2)]).decode(written_before))


def _tampered(p: Payload, **changes) -> Payload:
    q = Payload()
    q.CopyFrom(p)
    for k, v in changes.items():
        if k == "data":
            q.data = v
        else:
            q.metadata[k.replace("_", "-")] = v
    return q


def test_tampered_ciphertext_is_refused():
    codec = EncryptionCodec([("k1", K1), ("k2", K2)])
    [p] = run(codec.encode([plain({"name": NAME})]))
    flipped = bytearray(p.data)
    flipped[20] ^= 1
    for bad in (_tampered(p, data=bytes(flipped)), _tampered(p, data=p.data[:-1]), _tampered(p, data=p.data[:5]),
                _tampered(p, encryption_key_id=b"k2"),            # the same bytes claimed for another key
                _tampered(p, data=b"")):
        with pytest.raises(wcodec.PayloadDecryptionError) as e:
            run(codec.decode([bad]))
        assert "\n" not in str(e.value)


def test_payloads_it_did_not_encrypt_pass_through():
    codec = EncryptionCodec([("k1", K1)])
    others = [plain({"name": "x"}), plain(None), plain(b"raw"),
              Payload(metadata={"encoding": b"binary/zlib"}, data=b"\x78\x9c"), Payload()]
    assert run(codec.decode(others)) == others


# ----------------------------------------------------------------------------------- key settings

def test_keys_from_the_settings_file(tmp_path, monkeypatch):
    path = keyfile(tmp_path, f"# payload keys, newest first\n\n2026-q1={b64(K2)}\n 2025-q4 = {b64(K1)} \n")
    monkeypatch.setenv("DISBURSE_PAYLOAD_KEYS", str(path))
    codec = wcodec.codec_from_settings()
    assert codec.key_ids == ("2026-q1", "2025-q4") and codec.current_key_id == "2026-q1"
    dc = wcodec.data_converter()
    assert dc.payload_codec is not None and dc.payload_converter_class is pydantic_data_converter.payload_converter_class
    assert isinstance(dc.failure_converter, DefaultFailureConverterWithEncodedAttributes)   # messages encrypted too


def test_without_keys_the_converter_is_the_plain_pydantic_one(monkeypatch):
    monkeypatch.delenv("DISBURSE_PAYLOAD_KEYS", raising=False)
    assert wcodec.codec_from_settings() is None
    assert wcodec.data_converter() is pydantic_data_converter
    monkeypatch.setenv("DISBURSE_PAYLOAD_KEYS", "")
    assert wcodec.data_converter() is pydantic_data_converter


@pytest.mark.parametrize("text,fragment", [
    ("", "no key"),
    ("# only a comment\n", "no key"),
    ("k1\n", "line 1: expected KEY_ID=BASE64KEY"),
    (f"k1={b64(K1)}\nk1={b64(K2)}\n", "line 2: key id 'k1' twice"),
    ("k1=not base64!!\n", "line 1: key 'k1' is not base64"),
    (f"k1={b64(K1[:16])}\n", "line 1: key 'k1' is 16 bytes; AES-256 needs 32"),
    (f"bad id={b64(K1)}\n", "line 1: key id"),
    (f"={b64(K1)}\n", "line 1: key id"),
    (f"{'k' * 65}={b64(K1)}\n", "line 1: key id"),
])
def test_a_bad_key_file_is_refused_naming_the_line_but_never_the_key(tmp_path, monkeypatch, text, fragment):
    path = keyfile(tmp_path, text)
    monkeypatch.setenv("DISBURSE_PAYLOAD_KEYS", str(path))
    with pytest.raises(PayloadKeyError) as e:
        wcodec.data_converter()
    message = str(e.value)
    assert fragment in message and str(path) in message and "\n" not in message
    assert b64(K1) not in message and b64(K2) not in message and b64(K1[:16]) not in message
    assert e.value.exit_code == 78


def test_a_missing_key_file_is_an_error_not_plain_text(tmp_path, monkeypatch):
    monkeypatch.setenv("DISBURSE_PAYLOAD_KEYS", str(tmp_path / "nowhere"))
    with pytest.raises(PayloadKeyError, match="DISBURSE_PAYLOAD_KEYS"):
        wcodec.data_converter()


def test_connect_uses_the_codec_converter(tmp_path, monkeypatch):
    from workflows import client as wc
    seen = {}

    async def fake_connect(*args, **kwargs):
        seen.update(kwargs)
        return "client"
    monkeypatch.setattr(Client, "connect", staticmethod(fake_connect))
    monkeypatch.setenv("DISBURSE_PAYLOAD_KEYS", str(keyfile(tmp_path, f"k1={b64(K1)}\n")))
    assert run(wc.connect("localhost:1")) == "client"
    assert isinstance(seen["data_converter"].payload_codec, EncryptionCodec)
    monkeypatch.delenv("DISBURSE_PAYLOAD_KEYS")
    run(wc.connect("localhost:1"))
    assert seen["data_converter"] is pydantic_data_converter


# -------------------------------------------------------------------------------- the JSON protocol

def _body(payloads) -> bytes:
    return json.dumps({"payloads": [{"metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                                     "data": base64.b64encode(p.data).decode()} for p in payloads]}).encode()


def _payloads(body: bytes) -> list[Payload]:
    doc = json.loads(body)
    return [Payload(metadata={k: base64.b64decode(v) for k, v in p.get("metadata", {}).items()},
                    data=base64.b64decode(p.get("data", ""))) for p in doc["payloads"]]


def test_the_codec_server_functions_speak_the_protocol(tmp_path, monkeypatch):
    monkeypatch.setenv("DISBURSE_PAYLOAD_KEYS", str(keyfile(tmp_path, f"k2={b64(K2)}\nk1={b64(K1)}\n")))
    original = [plain({"name": NAME}), plain(None)]
    encoded = wcodec.encode_json(_body(original))
    encrypted = _payloads(encoded)
    assert [p.metadata["encoding"] for p in encrypted] == [b"binary/encrypted"] * 2
    assert json.loads(encoded)["payloads"][0]["metadata"]["encoding"] == base64.b64encode(b"binary/encrypted").decode()
    assert _payloads(wcodec.decode_json(encoded)) == original
    old = run(EncryptionCodec([("k1", K1)]).encode(original))
    assert _payloads(wcodec.decode_json(_body(old))) == original       # rotated: the old key still reads
    assert _payloads(wcodec.decode_json(_body(original))) == original  # plain payloads pass
    assert json.loads(wcodec.decode_json(b'{"payloads": []}')) == {"payloads": []}


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b'{"payloads": [{"data": "***"}]}',
                                  b'{"payloads": 5}', b"\xff\xfe"])
def test_a_malformed_codec_request_is_refused(tmp_path, monkeypatch, body):
    monkeypatch.setenv("DISBURSE_PAYLOAD_KEYS", str(keyfile(tmp_path, f"k1={b64(K1)}\n")))
    for fn in (wcodec.decode_json, wcodec.encode_json):
        with pytest.raises(CodecRequestError):
            fn(body)


def test_the_codec_server_refuses_what_it_cannot_decrypt(tmp_path, monkeypatch):
    monkeypatch.setenv("DISBURSE_PAYLOAD_KEYS", str(keyfile(tmp_path, f"k1={b64(K1)}\n")))
    foreign = run(EncryptionCodec([("k9", K2)]).encode([plain(1)]))
    with pytest.raises(CodecRequestError, match="k9"):
        wcodec.decode_json(_body(foreign))
    with pytest.raises(CodecRequestError, match="too large"):
        wcodec.decode_json(b" " * (wcodec.MAX_CODEC_BODY + 1))


def test_the_codec_server_functions_need_keys(monkeypatch):
    monkeypatch.delenv("DISBURSE_PAYLOAD_KEYS", raising=False)
    with pytest.raises(PayloadKeyError, match="DISBURSE_PAYLOAD_KEYS"):
        wcodec.decode_json(b'{"payloads": []}')


# --------------------------------------------------------------------------- replay with the codec

@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
def test_histories_recorded_before_encryption_replay_with_the_codec_on(path):
    from tests.test_replay import _history
    from workflows.application import ApplicationWorkflow
    from workflows.legacy import LegacyApplicationWorkflow
    from workflows.recovery import RecoveryWorkflow
    converter = wcodec.data_converter(EncryptionCodec([("k1", K1)]))
    replayer = Replayer(workflows=[ApplicationWorkflow, LegacyApplicationWorkflow, RecoveryWorkflow],
                        data_converter=converter)
    result = run(replayer.replay_workflow(_history(path), raise_on_replay_failure=False))
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"


# ------------------------------------------------------------------- end to end on the test server

def _worker_and_client(harness, converter, queue: str):
    """A client on the test's time-skipping server with this converter, and a worker of its own
    on `queue`; harness.client reads the same server (fetch_history gives the raw events)."""
    from worker import build_worker
    client = _untimed(harness, converter)

    async def start():
        w = build_worker(client, task_queue=queue, executor=harness._executor)   # needs the loop
        return w, asyncio.get_running_loop().create_task(w.run())
    worker, task = harness.run(start())
    yield client
    harness.run(asyncio.wait_for(worker.shutdown(), 20))
    task.cancel()


@pytest.fixture()
def codec_client(harness):
    yield from _worker_and_client(harness, wcodec.data_converter(EncryptionCodec([("e2e", K1)])), CODEC_QUEUE)


@pytest.fixture()
def plain_client(harness):
    """Without the codec, whatever DISBURSE_PAYLOAD_KEYS says for the rest of the session."""
    yield from _worker_and_client(harness, pydantic_data_converter, PLAIN_QUEUE)


def _untimed(harness, converter) -> Client:
    """A client on the session's test server that never unlocks time skipping: the harness's
    client does while it waits for a result, and the test server then jumps ten years ahead
    (the other tests' clock is shared, and the calculation refuses dates past 2100)."""
    return Client(**{**harness.client.config(), "data_converter": converter, "interceptors": []})


def _walk(msg: Message, path: tuple = ()):
    """Every Payload inside a protobuf message, with the field path that leads to it."""
    if isinstance(msg, Payload):
        yield path, msg
        return
    for fd, value in msg.ListFields():
        if fd.type != fd.TYPE_MESSAGE:
            continue
        if fd.message_type.GetOptions().map_entry:
            for k, v in value.items():
                if isinstance(v, Message):
                    yield from _walk(v, path + (fd.name, k))
        elif isinstance(value, Message):
            yield from _walk(value, path + (fd.name,))
        else:
            for i, v in enumerate(value):
                yield from _walk(v, path + (fd.name, i))


def _raw(history) -> bytes:
    return b"".join(e.SerializeToString() for e in history.events)


async def _run_application(h, client, db, *, task_queue: str, name: str) -> str:
    from tests.backend_helpers import app_input
    from tests.temporal_env import PREMIUM_FACTS, fresh_code
    from workflows import client as wc
    code = fresh_code()
    db.add_enterprise(code, name=name, qualifications="tech_enterprise:2020-01-01")
    inp = app_input(code, facts={**PREMIUM_FACTS, "policy_no": POLICY_NO}, enterprise_name=name)
    app_id = await wc.submit(client, inp, task_queue=task_queue)
    await wc.approve(client, app_id, reviewer="hz-kjj", comment=f"{name} 保单真实")
    await wc.approve(client, app_id, reviewer="hz-czj", comment="ok")
    from datetime import datetime, timedelta
    for _ in range(400):                                   # 公示: its timer passed on the test server's clock
        st = await wc.status(client, app_id)
        if st["status"] == "publicity":
            break
        await asyncio.sleep(0.05)
    ends = datetime.fromisoformat(st["publicity"]["period"]["ends_at"])
    await h.env.sleep(ends - await h.env.get_current_time() + timedelta(seconds=1))
    result = await asyncio.wait_for(client.get_workflow_handle(app_id).result(), 60)   # no timer left to skip
    assert result["status"] == "completed", result
    return app_id


def test_an_application_run_with_the_codec_leaves_no_personal_data_in_the_history(harness, db, codec_client, tmp_path,
                                                                                   monkeypatch):
    async def go():
        app_id = await _run_application(harness, codec_client, db, task_queue=CODEC_QUEUE, name=NAME)
        code = app_id.split("-")[1]
        raw_history = await harness.client.get_workflow_handle(app_id).fetch_history()     # no codec
        raw = _raw(raw_history)
        text = raw_history.to_json()
        for needle in (NAME, POLICY_NO, f"{NAME} 保单真实"):
            assert needle.encode() not in raw, needle
            assert needle not in text and json.dumps(needle)[1:-1] not in text, needle
        found = [(path, p) for e in raw_history.events for path, p in _walk(e)]
        outside_attributes = [(path, p) for path, p in found if "search_attributes" not in path
                              and "header" not in path]
        assert len(outside_attributes) > 10
        for path, p in outside_attributes:
            if path[:3] == ("marker_recorded_event_attributes", "details", "data"):
                # the SDK's own bookkeeping of a local activity (sequence, type, times), written in plain
                # JSON by the SDK core, not through the codec; its result is encrypted like the rest
                assert set(json.loads(p.data)) <= LOCAL_ACTIVITY_MARKER, path
                continue
            if path[:3] == ("marker_recorded_event_attributes", "details", "patch-data"):
                # a workflow.patched marker, written by the SDK core: the patch id and nothing else
                assert json.loads(p.data)["id"] in {"notify-people", "clawback-amend", "budget-lines",
                                                    "provisional-and-publicity", "lean-history", "lean-history-2"}, (path, p.data)
                continue
            assert p.metadata["encoding"] == b"binary/encrypted", path
            assert code.encode() not in p.data and code.encode() not in b"".join(p.metadata.values()), path
        # the codec's own client reads it all back, and the worker's ledger paid it
        decoded = await codec_client.data_converter.payload_codec.decode([p for _, p in outside_attributes])
        assert any(NAME.encode() in p.data for p in decoded) and any(POLICY_NO.encode() in p.data for p in decoded)
        assert [r["amount"] for r in db.ledger_rows(app_id)] and db.enterprise(code)
        return app_id, raw_history
    app_id, raw_history = harness.run(go())

    # the codec server's JSON functions decode what the worker wrote
    started = raw_history.events[0].workflow_execution_started_event_attributes
    body = json.dumps({"payloads": [json.loads(_json_payload(p)) for p in started.input.payloads]}).encode()
    monkeypatch.setenv("DISBURSE_PAYLOAD_KEYS", str(keyfile(tmp_path, f"e2e={b64(K1)}\n")))
    decoded = _payloads(wcodec.decode_json(body))
    assert decoded[0].metadata["encoding"] == b"json/plain"
    claim = json.loads(decoded[0].data)["claim"]
    assert (claim["enterprise_name"], claim["facts"]["policy_no"]) == (NAME, POLICY_NO)

    # and the encrypted history replays on today's workflow with the codec
    from workflows.application import ApplicationWorkflow
    from workflows.legacy import LegacyApplicationWorkflow
    replayer = Replayer(workflows=[ApplicationWorkflow, LegacyApplicationWorkflow],
                        data_converter=wcodec.data_converter(EncryptionCodec([("e2e", K1)])))
    result = harness.run(replayer.replay_workflow(raw_history, raise_on_replay_failure=False))
    assert result.replay_failure is None, result.replay_failure


def _json_payload(p: Payload) -> str:
    from google.protobuf import json_format
    return json_format.MessageToJson(p)


def test_without_the_codec_the_same_check_finds_the_name(harness, db, plain_client):
    """The control: the raw-history search above would see the name if it were there."""
    async def go():
        app_id = await _run_application(harness, plain_client, db, task_queue=PLAIN_QUEUE, name=NAME + "（对照）")
        raw = _raw(await harness.client.get_workflow_handle(app_id).fetch_history())
        assert NAME.encode() in raw and POLICY_NO.encode() in raw
    harness.run(go())


def test_a_refusal_reads_the_same_with_the_codec_and_its_message_is_encrypted(harness, db, codec_client):
    from tests.backend_helpers import app_input
    from tests.temporal_env import fresh_code
    from workflows import client as wc

    async def go():
        code = fresh_code()                                   # not in the registry: the worker refuses
        with pytest.raises(wc.RequestRefused) as e:
            await wc.submit(codec_client, app_input(code, enterprise_name=NAME), task_queue=CODEC_QUEUE)
        assert "not in the enterprise registry" in str(e.value)
        raw = await harness.client.get_workflow_handle(f"app-{code}-hz2025-04-tech-insurance-premium-2026").fetch_history()
        failed = [ev for ev in raw.events if ev.HasField("workflow_execution_failed_event_attributes")]
        assert failed and "not in the enterprise registry" not in failed[0].workflow_execution_failed_event_attributes.failure.message
        assert NAME.encode() not in _raw(raw)
    harness.run(go())
