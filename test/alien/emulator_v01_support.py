"""Helpers shared by the test_emulator_v01_* modules: the rc release mark, the telemetry envelope, the edge.

Everything runs against a real nats-server: the permissions are nats-server's own, derived from
API-key scopes the way the real server derives them (alien_testing.emulator.edge_auth).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import nats
import pytest
import pytest_asyncio
from nats.aio.client import Client as NATS

from alien_testing.deployment import V01Deployment

RC = pytest.mark.parametrize("v01_deployment", [{"release": "rc"}], indirect=True)


def envelope(org_id: str, entity_id: str, **overrides: Any) -> dict[str, Any]:
    """The example of docs/contract.md#telemetry-envelope-v1, for one org/entity."""
    message: dict[str, Any] = {
        "schema_version": "1.0.0",
        "message_uid": uuid.uuid4().hex,
        "org_id": org_id,
        "entity_id": entity_id,
        "message_id": 33,
        "message_type": "GLOBAL_POSITION_INT",
        "system_id": 1,
        "component_id": 1,
        "data": {
            "lat": 329488100,
            "lon": -968013200,
            "alt": 152400,
            "relative_alt": 30480,
            "hdg": 9000,
            "vx": 123,
            "vy": -45,
            "vz": 6,
        },
        "timestamp": "2026-07-21T20:00:00Z",
    }
    message.update(overrides)
    return message


@pytest.fixture
def edge_errors() -> list[str]:
    """What nats-server told the edge connection (permission violations), lower-cased."""
    return []


@pytest_asyncio.fixture
async def edge_nc(v01_deployment: V01Deployment, edge_errors: list[str]) -> AsyncIterator[NATS]:
    async def record(exc: Exception) -> None:
        edge_errors.append(str(exc).lower())

    nc = await nats.connect(**v01_deployment.edge_options(), error_cb=record, allow_reconnect=False)
    try:
        yield nc
    finally:
        await nc.close()


async def register(deployment: V01Deployment, name: str = "hawk-1") -> str:
    """Create an entity over REST with the edge key (the REST side also writes its KV entry)."""
    url = f"{deployment.emulator.url}/api/v1/organizations/{deployment.edge.org_id}/entities"
    async with aiohttp.ClientSession() as session:
        body = {"name": name, "entity_type": "aircraft_multirotor"}
        async with session.post(url, json=body, headers={"X-API-Key": deployment.edge.api_key}) as resp:
            assert resp.status == 201, await resp.text()
            return str((await resp.json())["entity_id"])
