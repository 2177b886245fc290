"""Documents in the web console (console/app.py): files attached at submission, with the answer to
an information request and with a programme year's evidence; listed on the application page and
served to those who may see the application; refused files (type, size) refused before anything is
sent to the workflow. And the codec endpoint for the Temporal Web UI (/codec/decode, /codec/encode).

Workflows are never awaited for a result they may not reach: statuses are polled (wait_status)."""
from __future__ import annotations

import base64
import hashlib
import json
from urllib.parse import quote

import pytest
from temporalio.api.common.v1 import Payload

import documents
from models import users
from tests.backend_helpers import app_input, approve_both, register, wait_status
from tests.cli_env import PASSWORD
from tests.temporal_env import LOAN_CLAUSE, fresh_code, loan
from tests.test_console import _console, _csrf, _login, people  # noqa: F401 - `people` is a fixture
from tests.test_documents import pdf, png
from workflows import client as wc

EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200 + b"This program cannot be run"


@pytest.fixture
def store_dir(tmp_path, monkeypatch):
    path = tmp_path / "documents"
    monkeypatch.setenv("DISBURSE_DOCUMENTS_DIR", str(path))
    monkeypatch.delenv("DISBURSE_DOCUMENTS_S3_BUCKET", raising=False)
    monkeypatch.delenv("DISBURSE_DOCUMENTS_MAX_BYTES", raising=False)
    return path


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _claim(code: str, **kw) -> str:
    return json.dumps(app_input(code, operator="op-c1", **kw).model_dump(mode="json", exclude_none=True))


async def _is_started(harness, app_id: str) -> bool:
    try:
        await wc.status(harness.client, app_id)
        return True
    except Exception:  # noqa: BLE001 - no such workflow
        return False


def test_files_attached_at_submission_are_listed_and_served(harness, people, store_dir):
    async def go():
        code = register(people, fresh_code())
        a, b = pdf(), png()
        async with _console(harness) as op:
            await _login(op, "op-c1")
            form = await op.get("/submit")
            assert 'type="file"' in form.text and 'name="documents"' in form.text and "multiple" in form.text
            r = await op.post("/submit", data={"csrf": _csrf(form.text)},
                              files=[("claim", ("claim.json", _claim(code))),
                                     ("documents", ("保单.pdf", a, "application/pdf")),
                                     ("documents", ("../../发票 扫描.png", b, "image/png"))])
            assert r.status_code == 303, r.text
            app_id = r.headers["location"].rsplit("/", 1)[1]
            docs = documents.documents_of(app_id)
            assert [(d["filename"], d["purpose"], d["year"], d["uploaded_by"], d["media_type"], d["sha256"])
                    for d in docs] == [("保单.pdf", "submission", 2026, "op-c1", "application/pdf", _sha(a)),
                                       ("发票 扫描.png", "submission", 2026, "op-c1", "image/png", _sha(b))]
            assert (store_dir / _sha(a)[:2] / _sha(a)[2:4] / _sha(a)).is_file()

            page = await op.get(f"/applications/{app_id}")
            assert page.status_code == 200
            assert "保单.pdf" in page.text and "发票 扫描.png" in page.text
            assert f'title="{_sha(a)}"' in page.text and _sha(a)[:12] in page.text
            assert f'href="/applications/{app_id}/documents/{_sha(a)}"' in page.text
            assert "op-c1" in page.text and "application/pdf" in page.text

            r = await op.get(f"/applications/{app_id}/documents/{_sha(a)}")
            assert r.status_code == 200 and r.content == a
            assert r.headers["content-type"] == "application/pdf"
            assert r.headers["x-content-type-options"] == "nosniff"
            cd = r.headers["content-disposition"]
            assert cd.startswith("attachment;") and f"filename*=UTF-8''{quote('保单.pdf')}" in cd
            assert cd.isascii()
            r = await op.get(f"/applications/{app_id}/documents/{_sha(b)}")
            assert r.status_code == 200 and r.content == b and r.headers["content-type"] == "image/png"

            # another application (same operator): its own documents only, even for bytes in the store
            other = await wc.submit(harness.client, app_input(register(people, fresh_code()), operator="op-c1"))
            assert (await op.get(f"/applications/{other}/documents/{_sha(a)}")).status_code == 404
            stray = documents.put(pdf() + b"\n% stray\n", filename="x.pdf")            # stored, attached to none
            assert (await op.get(f"/applications/{app_id}/documents/{stray.sha256}")).status_code == 404
            assert (await op.get(f"/applications/{app_id}/documents/not-a-hash")).status_code == 404
            assert (await op.get(f"/applications/{app_id}/documents/{'0' * 64}")).status_code == 404

        async with _console(harness) as kj, _console(harness) as sj, _console(harness) as op2, \
                _console(harness) as anon:
            await _login(kj, "kj-c")                                     # a reviewer of a bureau on it
            r = await kj.get(f"/applications/{app_id}/documents/{_sha(a)}")
            assert r.status_code == 200 and r.content == a
            assert "保单.pdf" in (await kj.get(f"/applications/{app_id}")).text
            await _login(sj, "sj-c")                                     # a bureau not on it
            assert (await sj.get(f"/applications/{app_id}/documents/{_sha(a)}")).status_code == 403
            await _login(op2, "op-c2")                                   # another operator
            assert (await op2.get(f"/applications/{app_id}/documents/{_sha(a)}")).status_code == 403
            r = await anon.get(f"/applications/{app_id}/documents/{_sha(a)}")
            assert r.status_code == 303 and r.headers["location"].startswith("/login")
        for wid in (app_id, other):
            await wc.withdraw(harness.client, wid, operator="op-c1", comment="test over")
    harness.run(go())


def test_a_refused_file_starts_no_workflow(harness, people, store_dir, monkeypatch):
    async def go():
        code = register(people, fresh_code())
        app_id = app_input(code).application_id
        async with _console(harness) as op:
            await _login(op, "op-c1")
            token = _csrf((await op.get("/submit")).text)
            r = await op.post("/submit", data={"csrf": token},
                              files=[("claim", ("claim.json", _claim(code))),
                                     ("documents", ("ok.pdf", pdf(), "application/pdf")),
                                     ("documents", ("合同.pdf", EXE, "application/pdf"))])
            assert r.status_code == 400
            assert "合同.pdf" in r.text and "Windows executable" in r.text
            assert r.text.count('role="alert"') == 1
            assert not await _is_started(harness, app_id)
            assert documents.documents_of(app_id) == []

            monkeypatch.setenv("DISBURSE_DOCUMENTS_MAX_BYTES", "200")
            big = pdf().replace(b"%%EOF", b"%" + b"x" * 300 + b"\n%%EOF")
            r = await op.post("/submit", data={"csrf": token},
                              files=[("claim", ("claim.json", _claim(code))),
                                     ("documents", ("大文件.pdf", big, "application/pdf"))])
            assert r.status_code == 400 and "大文件.pdf" in r.text and "200 bytes" in r.text
            assert not await _is_started(harness, app_id)
            assert documents.documents_of(app_id) == []
            monkeypatch.delenv("DISBURSE_DOCUMENTS_MAX_BYTES")

            r = await op.post("/submit", data={"csrf": token}, files=[("claim", ("claim.json", _claim(code)))])
            assert r.status_code == 303                                  # no files: fine, the id was kept free
            assert documents.documents_of(app_id) == []
        await wc.withdraw(harness.client, app_id, operator="op-c1", comment="test over")
    harness.run(go())


def test_files_with_the_answer_to_an_information_request(harness, people, store_dir):
    async def go():
        code = register(people, fresh_code())
        app_id = await wc.submit(harness.client, app_input(code, operator="op-c1"))
        await wc.request_info(harness.client, app_id, reviewer="hz-kjj", comment="请补充保单")
        await wait_status(harness, app_id, "info_requested")
        a = pdf() + b"% info\n"
        async with _console(harness) as op, _console(harness) as op2:
            await _login(op2, "op-c2")
            page2 = await op2.get("/")
            r = await op2.post(f"/applications/{app_id}/provide_info", data={"csrf": _csrf(page2.text)},
                               files=[("documents", ("x.pdf", a, "application/pdf"))])
            assert r.status_code == 403 and documents.documents_of(app_id) == []

            await _login(op, "op-c1")
            page = await op.get(f"/applications/{app_id}")
            assert 'id="provide_info"' in page.text and 'enctype="multipart/form-data"' in page.text
            token = _csrf(page.text)
            r = await op.post(f"/applications/{app_id}/provide_info",
                              data={"csrf": token, "facts": "", "comment": "见附件"},
                              files=[("documents", ("保单.exe.pdf", EXE, "application/pdf"))])
            assert r.status_code == 400 and "Windows executable" in r.text
            assert (await wc.status(harness.client, app_id))["status"] == "info_requested"   # nothing sent
            assert documents.documents_of(app_id) == []

            r = await op.post(f"/applications/{app_id}/provide_info",
                              data={"csrf": token, "facts": "", "comment": "见附件"},
                              files=[("documents", ("保单.pdf", a, "application/pdf"))])
            assert r.status_code == 303, r.text
            await wait_status(harness, app_id, "review")
            docs = documents.documents_of(app_id)
            assert [(d["purpose"], d["year"], d["uploaded_by"], d["sha256"]) for d in docs] == \
                [("information", 2026, "op-c1", _sha(a))]
            page = await op.get(f"/applications/{app_id}")
            assert "保单.pdf" in page.text and "补充材料" in page.text
        await wc.withdraw(harness.client, app_id, operator="op-c1", comment="test over")
    harness.run(go())


def test_programme_year_evidence_with_files(harness, people, store_dir):
    async def go():
        code = register(people, fresh_code())
        app_id = await wc.submit(harness.client, app_input(code, clause=LOAN_CLAUSE, year=2026, operator="op-c1",
                                                           facts={"loans": [loan(2026)]}))
        await approve_both(harness, app_id, lead="hz-jxj")
        await wait_status(harness, app_id, "awaiting_evidence")
        a = pdf() + b"% interest statement 2027\n"
        async with _console(harness) as op:
            await _login(op, "op-c1")
            page = await op.get(f"/applications/{app_id}")
            assert 'id="evidence"' in page.text
            r = await op.post(f"/applications/{app_id}/evidence",
                              data={"csrf": _csrf(page.text), "facts": json.dumps({"loans": [loan(2027)]})},
                              files=[("documents", ("2027年付息凭证.pdf", a, "application/pdf"))])
            assert r.status_code == 303, r.text
            docs = documents.documents_of(app_id)
            assert [(d["purpose"], d["year"], d["filename"]) for d in docs] == \
                [("evidence", 2027, "2027年付息凭证.pdf")]
            await wait_status(harness, app_id, ("confirming", "completed"))
            r = await op.get(f"/applications/{app_id}/documents/{_sha(a)}")
            assert r.status_code == 200 and r.content == a
        await wc.withdraw(harness.client, app_id, operator="op-c1", comment="test over")
    harness.run(go())


# ------------------------------------------------------------------------------------ codec endpoint

UI = "http://localhost:8233"


@pytest.fixture
def codec_keys(tmp_path, monkeypatch):
    from workflows.codec import EncryptionCodec
    key = bytes(range(32))
    path = tmp_path / "payload-keys"
    path.write_text(f"k1={base64.b64encode(key).decode()}\n")
    monkeypatch.setenv("DISBURSE_PAYLOAD_KEYS", str(path))
    monkeypatch.delenv("DISBURSE_WEB_UI_ORIGIN", raising=False)
    return EncryptionCodec([("k1", key)])


def _body(payloads) -> str:
    return json.dumps({"payloads": [{"metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                                     "data": base64.b64encode(p.data).decode()} for p in payloads]})


def test_the_codec_endpoint_decodes_for_ops_and_finance_only(harness, people, codec_keys):
    async def go():
        ops_token = users.add_user("ops-c", role="ops", password=PASSWORD)
        op_token = users.add_user("op-c3", role="operator", password=PASSWORD)
        plain = Payload(metadata={"encoding": b"json/plain"}, data=json.dumps({"enterprise": "某科技公司"}).encode())
        body = _body(codec_keys.encode_sync([plain]))
        headers = {"content-type": "application/json", "origin": UI, "x-namespace": "default"}
        async with _console(harness) as anon, _console(harness) as op, _console(harness) as ops, \
                _console(harness) as cz:
            r = await anon.post("/codec/decode", content=body, headers=headers)
            assert r.status_code == 401 and r.headers["access-control-allow-origin"] == UI
            await _login(op, "op-c1")
            assert (await op.post("/codec/decode", content=body, headers=headers)).status_code == 403
            for client, who in ((ops, "ops-c"), (cz, "cz-c")):
                await _login(client, who)
                r = await client.post("/codec/decode", content=body, headers=headers)
                assert r.status_code == 200, r.text
                assert r.headers["access-control-allow-origin"] == UI
                assert r.headers["access-control-allow-credentials"] == "true"
                got = r.json()["payloads"][0]
                assert base64.b64decode(got["data"]) == plain.data
                assert base64.b64decode(got["metadata"]["encoding"]) == b"json/plain"
            r = await ops.post("/codec/encode", content=_body([plain]), headers=headers)
            assert r.status_code == 200
            enc = r.json()["payloads"][0]
            assert base64.b64decode(enc["metadata"]["encoding"]) == b"binary/encrypted"
            assert b"enterprise" not in base64.b64decode(enc["data"])
            r = await ops.post("/codec/decode", content='{"payloads": [{"data": "%%%"}]}', headers=headers)
            assert r.status_code == 400
            # `temporal workflow show --codec-endpoint ... --codec-auth "Bearer TOKEN"`: the CLI token
            r = await anon.post("/codec/decode", content=body, headers={**headers, "authorization": f"Bearer {ops_token}"})
            assert r.status_code == 200 and base64.b64decode(r.json()["payloads"][0]["data"]) == plain.data
            r = await anon.post("/codec/decode", content=body, headers={**headers, "authorization": f"Bearer {op_token}"})
            assert r.status_code == 403
            r = await anon.post("/codec/decode", content=body, headers={**headers, "authorization": "Bearer nope"})
            assert r.status_code == 401
            # another origin gets no CORS grant (the browser keeps the answer from it)
            r = await ops.post("/codec/decode", content=body, headers={**headers, "origin": "http://evil.test"})
            assert "access-control-allow-origin" not in r.headers
    harness.run(go())


def test_the_codec_endpoint_answers_the_cors_preflight(harness, people, codec_keys, monkeypatch):
    async def go():
        async with _console(harness) as anon:
            pre = {"origin": UI, "access-control-request-method": "POST",
                   "access-control-request-headers": "content-type,x-namespace,authorization"}
            for path in ("/codec/decode", "/codec/encode"):
                r = await anon.options(path, headers=pre)
                assert r.status_code in (200, 204)
                assert r.headers["access-control-allow-origin"] == UI
                assert r.headers["access-control-allow-credentials"] == "true"
                assert "POST" in r.headers["access-control-allow-methods"]
                allowed = r.headers["access-control-allow-headers"].lower()
                assert "content-type" in allowed and "x-namespace" in allowed and "authorization" in allowed
                assert "origin" in r.headers.get("vary", "").lower()
            r = await anon.options("/codec/decode", headers={**pre, "origin": "http://evil.test"})
            assert "access-control-allow-origin" not in r.headers
            monkeypatch.setenv("DISBURSE_WEB_UI_ORIGIN", "https://temporal.example.org")
            r = await anon.options("/codec/decode", headers={**pre, "origin": "https://temporal.example.org"})
            assert r.headers["access-control-allow-origin"] == "https://temporal.example.org"
            r = await anon.options("/codec/decode", headers=pre)
            assert "access-control-allow-origin" not in r.headers
    harness.run(go())
