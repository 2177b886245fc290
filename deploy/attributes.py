"""Register disburse's custom search attributes (models/search_attributes.py) on a Temporal
cluster, through its operator service — what the dev server gets at start (deploy/devserver.py),
for a cluster someone else runs (docker compose, the Helm chart): `disburse register-attributes`,
run once per cluster and namespace, by the one-shot service of deploy/compose and the Job of
deploy/k8s.

Idempotent: an attribute already there with the same type is left alone; one there with another
type is an error that names it (the workflow would fail to upsert it), and nothing is added.
The shell equivalent, per attribute:

    temporal operator search-attribute create --namespace default --name ClauseId --type Keyword
"""
from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable


class AttributeConflict(RuntimeError):
    """A search attribute exists on the cluster with another type than disburse needs."""


def wanted() -> dict[str, int]:
    """Name -> IndexedValueType (the protobuf enum number) of every custom search attribute."""
    from models import search_attributes as sa
    return {k.name: int(k.indexed_value_type) for k in sa.ALL}


def type_name(value: int) -> str:
    from temporalio.api.enums.v1 import IndexedValueType
    return IndexedValueType.Name(value).removeprefix("INDEXED_VALUE_TYPE_").title().replace("_", "")


async def register(client, namespace: str, attributes: dict[str, int] | None = None) -> list[tuple[str, str, str]]:
    """Add the missing attributes in one call. Returns (name, type, "added" | "present") per
    attribute; raises AttributeConflict if one exists with another type (then adds nothing)."""
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest

    attributes = wanted() if attributes is None else attributes
    existing = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
    conflicts = []
    for name, typ in attributes.items():
        there = existing.custom_attributes.get(name, existing.system_attributes.get(name))
        if there is not None and there != typ:
            kind = "custom" if name in existing.custom_attributes else "system"
            conflicts.append(f"{name} is a {kind} attribute of type {type_name(there)} there, disburse needs {type_name(typ)}")
    if conflicts:
        raise AttributeConflict(f"namespace {namespace}: " + "; ".join(conflicts))
    missing = {k: v for k, v in attributes.items() if k not in existing.custom_attributes}
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing))
    return [(name, type_name(typ), "added" if name in missing else "present") for name, typ in attributes.items()]


def _retryable(e: BaseException) -> bool:
    """The server is not up yet, or its namespace not created yet: worth waiting for."""
    from temporalio.service import RPCError, RPCStatusCode
    if isinstance(e, RPCError):
        return e.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.NOT_FOUND, RPCStatusCode.DEADLINE_EXCEEDED)
    return isinstance(e, (OSError, RuntimeError, asyncio.TimeoutError)) and not isinstance(e, AttributeConflict)


async def register_when_ready(connect: Callable[[], Awaitable], namespace: str, *, wait: float = 120.0,
                              log: Callable[[str], None] = lambda _m: None) -> list[tuple[str, str, str]]:
    """`register`, retrying for up to `wait` seconds while the cluster is still coming up (a
    one-shot service may start before the server answers, or before its namespace exists)."""
    deadline = time.monotonic() + wait
    delay, said = 0.5, False
    while True:
        try:
            client = await connect()
            return await register(client, namespace)
        except Exception as e:  # noqa: BLE001
            if not _retryable(e) or time.monotonic() + delay > deadline:
                raise
            if not said:
                log(f"waiting for the Temporal server and namespace {namespace} ({type(e).__name__})…")
                said = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
