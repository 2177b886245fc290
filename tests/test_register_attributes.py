"""`disburse register-attributes` against a REAL dev server started WITHOUT disburse's search
attributes (as a cluster run by docker compose or the Helm chart is): it adds them, a second run
adds nothing, one registered with another type is refused by name, and an absent server is waited
for, then reported."""
from __future__ import annotations

import asyncio
import os
import time

import pytest

from tests.test_devserver import disburse

pytestmark = pytest.mark.devserver


@pytest.fixture(scope="module")
def bare_server():
    from deploy.devserver import DevServer, free_port
    server = DevServer(port=free_port(), ui_port=None, db_file=None, headless=True, attributes={},
                       namespace="other")        # start-dev creates "default" and "other"
    assert server.start()
    try:
        asyncio.run(server.connect(timeout=60))
        yield server
    finally:
        server.stop()


def _attributes(address: str, namespace: str) -> dict:
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
    from temporalio.client import Client

    async def go():
        client = await Client.connect(address, namespace=namespace)
        r = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
        return dict(r.custom_attributes)
    return asyncio.run(go())


def test_registers_them_once_then_finds_them_there(bare_server, tmp_path):
    from models.search_attributes import ALL

    env = {**os.environ, "TEMPORAL_ADDRESS": bare_server.address, "TEMPORAL_NAMESPACE": "default"}
    assert not set(k.name for k in ALL) & set(_attributes(bare_server.address, "default"))
    out = disburse(env, tmp_path, "register-attributes").stdout
    assert f"search attributes: {len(ALL)} added, 0 already there (namespace default at {bare_server.address})" in out
    assert "ClauseId           Keyword      added" in out and "Bureau             KeywordList  added" in out
    there = _attributes(bare_server.address, "default")
    assert {k.name: int(k.indexed_value_type) for k in ALL}.items() <= there.items()
    again = disburse(env, tmp_path, "register-attributes").stdout
    assert f"search attributes: 0 added, {len(ALL)} already there" in again


def test_one_there_with_another_type_is_refused_by_name_and_nothing_is_added(bare_server, tmp_path):
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
    from temporalio.client import Client

    async def squat():
        client = await Client.connect(bare_server.address, namespace="other")
        await client.operator_service.add_search_attributes(AddSearchAttributesRequest(
            namespace="other", search_attributes={"ClauseId": IndexedValueType.INDEXED_VALUE_TYPE_TEXT}))
    asyncio.run(squat())
    env = {**os.environ, "TEMPORAL_ADDRESS": bare_server.address, "TEMPORAL_NAMESPACE": "other"}
    r = disburse(env, tmp_path, "register-attributes", ok=False)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "ClauseId is a custom attribute of type Text there, disburse needs Keyword" in r.stderr
    assert set(_attributes(bare_server.address, "other")) == {"ClauseId"}


def test_an_absent_server_is_waited_for_then_reported(tmp_path):
    from deploy.devserver import free_port
    env = {**os.environ, "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}
    t0 = time.monotonic()
    r = disburse(env, tmp_path, "register-attributes", "--wait", "2", ok=False)
    assert r.returncode == 3 and "cannot reach the Temporal server" in r.stderr, r.stderr
    assert "waiting for the Temporal server" in r.stderr
    assert 1.5 < time.monotonic() - t0 < 30
