"""The v0.1.1 operator map places an entity by the entity_id and org_id in its KV entry."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import nats
import pytest

from alien import AlienClient, AlienConfig
from alien.entity_state import BUCKET
from alien_testing.deployment import V01Deployment

FIX = {"position": {"latitude": 32.94881, "longitude": -96.80132, "altitude": 152.4, "heading": 90.0}}


async def test_an_entry_alien_creates_places_the_entity_under_its_organization(
    v01_deployment: V01Deployment, tmp_path: Path
) -> None:
    edge = v01_deployment.edge
    config = AlienConfig(
        **v01_deployment.edge_settings(),
        entity_type="drone",
        config_file=str(tmp_path / "identity.json"),
        data_dir=tmp_path / "data",
        entity_state_period_s=0.05,
        heartbeat_period_s=0,
    )
    client = AlienClient(config)
    try:
        await asyncio.wait_for(client.initialize(), 20)
        entity_id = client.config.entity_id
        assert entity_id is not None
        # An entry the REST side never wrote (an entity from before the map, a purged bucket):
        nc = await nats.connect(**v01_deployment.admin_options())
        try:
            kv = await nc.jetstream().key_value(BUCKET)
            await kv.purge(entity_id)
        finally:
            await nc.close()
        await client.publish_telemetry(FIX)

        def placed() -> dict[str, Any] | None:
            state = v01_deployment.emulator.entity_state(entity_id)
            return state if state and state.get("vfr", {}).get("heading") == 90 else None

        await v01_deployment.emulator.wait_for_async(lambda: placed() is not None, 15, "the entry with a heading")
        state = placed()
        assert state is not None
        assert (state["entity_id"], state["org_id"], state["priority"]) == (entity_id, edge.org_id, "normal")
        assert state["position"]["global"]["latitude"] == pytest.approx(32.94881)
    finally:
        await client.close(timeout=3)
