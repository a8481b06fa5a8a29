"""AlienClient against v0.1.x deployments (docs/contract.md), with the edge key's rights only.

Each deployment is a real nats-server whose users have the NATS permissions a real v0.1 server
derives from the API key's scopes, plus the emulator (REST, streams, workers, KV bucket).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import nats
import pytest

from alien import AlienClient, AlienConfig
from alien.errors import AuthenticationError, NatsAuthError
from alien.telemetry.encoders import TelemetryEncodeError
from alien_testing.deployment import V01Deployment
from alien_testing.nats_server import generate_nkey_user

RC = {"release": "rc"}
FIX = {"position": {"latitude": 32.94881, "longitude": -96.80132, "altitude": 152.4, "heading": 90.0}}
BATTERY = {"power": {"voltage": 12.6, "current": -1.5, "percentage": 87.0}}


def edge_config(deployment: V01Deployment, tmp_path: Path, name: str = "edge", **overrides: Any) -> AlienConfig:
    """What an integrator sets for a v0.1 server: URLs, the API key and the key's NKey seed."""
    values: dict[str, Any] = {
        **deployment.edge_settings(name),
        "entity_type": "drone",
        "entity_name": f"rover-{name}",
        "config_file": str(tmp_path / f"{name}.json"),
        "data_dir": tmp_path / "data",
        "publish_timeout_s": 2.0,
        "nats_reconnect_wait_s": 0.1,
        "request_attempts": 2,
        "retry_backoff_s": 0.01,
        "entity_state_period_s": 0.1,
        "heartbeat_period_s": 0.2,
    }
    values.update(overrides)
    return AlienConfig(**values)


@pytest.fixture
async def clients() -> AsyncIterator[list[AlienClient]]:
    started: list[AlienClient] = []
    yield started
    for client in started:
        await client.close(timeout=3)


async def _start(clients: list[AlienClient], config: AlienConfig) -> AlienClient:
    client = AlienClient(config)
    clients.append(client)
    await asyncio.wait_for(client.initialize(), 20)
    return client


def _state_shows(deployment: V01Deployment, entity_id: str, predicate: Callable[[dict[str, Any]], bool]) -> bool:
    state = deployment.emulator.entity_state(entity_id)
    return state is not None and predicate(state)


async def test_v011_robot_appears_on_the_operator_map_with_position_and_battery(
    v01_deployment: V01Deployment, clients: list[AlienClient], tmp_path: Path
) -> None:
    client = await _start(clients, edge_config(v01_deployment, tmp_path))
    # detected v0.1 -> MAVLink-style (docs/contract.md#mavlink-style-telemetry)
    assert client.telemetry_format == "mavlink"
    await client.publish_telemetry({**FIX, **BATTERY})
    entity_id = client.config.entity_id
    assert entity_id is not None

    def on_map(state: dict[str, Any]) -> bool:
        point = state.get("position", {}).get("global", {})
        battery = state.get("power", {}).get("battery_remaining")
        return point.get("latitude") == pytest.approx(32.94881) and battery == 87

    await v01_deployment.emulator.wait_for_async(lambda: _state_shows(v01_deployment, entity_id, on_map), 15, "map")
    state = v01_deployment.emulator.entity_state(entity_id)
    assert state is not None
    assert state["is_live"] is True and state["name"] == "rover-edge"
    assert state["entity_type"] == "aircraft_multirotor"
    assert state["last_seen"].endswith("Z")
    # the server's own fields in the entry survive Alien's merge
    assert state["org_id"] == client.config.org_id
    telemetry = [m.json() for m in v01_deployment.emulator.telemetry()]
    types = {m["message_type"] for m in telemetry}
    assert {"GPS_RAW_INT", "BATTERY_STATUS", "SYS_STATUS"} <= types and "GLOBAL_POSITION_INT" not in types
    position = next(m for m in telemetry if m["message_type"] == "GPS_RAW_INT")
    assert position["data"]["lat"] == 329488100 and position["data"]["alt"] == 152400
    # and v0.1.1's worker read it as the position (it ignores GLOBAL_POSITION_INT); it keys its
    # state by the subject's third token, which on the four-token subject is the organization
    worker_key = client.config.org_id
    assert worker_key is not None
    await v01_deployment.emulator.wait_for_async(
        lambda: "position" in (v01_deployment.emulator.worker_state(worker_key) or {}), 10, "the worker's position"
    )
    point = (v01_deployment.emulator.worker_state(worker_key) or {})["position"]["global"]
    assert (point["latitude"], point["longitude"], point["altitude_msl"]) == pytest.approx((32.94881, -96.80132, 152.4))
    assert v01_deployment.emulator.telemetry_ignored() == []


async def test_lifecycle_events_on_connect_reconnect_and_close(
    v01_deployment: V01Deployment, clients: list[AlienClient], tmp_path: Path
) -> None:
    emulator = v01_deployment.emulator
    client = await _start(clients, edge_config(v01_deployment, tmp_path, device_id="unit-7"))
    entity_id = client.config.entity_id

    def lifecycle(kind: str) -> list[dict[str, Any]]:
        return [e.json() for e in emulator.events() if e.subject.endswith(f".{kind}")]

    await emulator.wait_for_async(lambda: len(lifecycle("bootsequence")) == 1, 10, "bootsequence")
    boot = lifecycle("bootsequence")[0]
    assert set(boot) == {"event_type", "entity_id", "device_id", "timestamp"}
    assert boot["event_type"] == "bootsequence" and boot["entity_id"] == entity_id and boot["device_id"] == "unit-7"
    await emulator.wait_for_async(lambda: entity_id in emulator.admitted(), 10, "admission")

    v01_deployment.nats_server.restart()
    await emulator.wait_for_async(lambda: len(lifecycle("bootsequence")) == 2, 20, "bootsequence after reconnect")

    await client.close(timeout=5)
    await emulator.wait_for_async(lambda: len(lifecycle("shutdown")) == 1, 10, "shutdown")
    await emulator.wait_for_async(lambda: entity_id not in emulator.admitted(), 10, "removal")
    assert emulator.entity_state(entity_id)["is_live"] is False  # type: ignore[index]


async def test_free_form_telemetry_goes_out_as_an_event_on_mavlink_servers(
    v01_deployment: V01Deployment, clients: list[AlienClient], tmp_path: Path
) -> None:
    client = await _start(clients, edge_config(v01_deployment, tmp_path))
    await client.publish_telemetry({"battery_level": 80.0, "speed": 7.5, "payload": {"door": "open"}})
    emulator = v01_deployment.emulator

    def diverted() -> list[dict[str, Any]]:
        return [e.json() for e in emulator.events() if e.subject.endswith(".telemetry")]

    await emulator.wait_for_async(lambda: len(diverted()) == 1, 10, "the telemetry event")
    assert diverted()[0]["data"] == {"speed": 7.5, "payload": {"door": "open"}}
    # the battery level is MAVLink material and went out as telemetry
    await emulator.wait_for_async(
        lambda: any(m.json()["data"].get("battery_remaining") == 80 for m in emulator.telemetry()), 10, "battery"
    )


async def test_a_value_the_format_cannot_carry_is_an_error_and_nothing_is_queued(
    v01_deployment: V01Deployment, clients: list[AlienClient], tmp_path: Path
) -> None:
    client = await _start(clients, edge_config(v01_deployment, tmp_path))
    before = client.stats().enqueued
    with pytest.raises(TelemetryEncodeError, match=r"battery_remaining 102 is outside -1\.\.100"):
        await client.publish_telemetry({"power": {"voltage": 12.0, "percentage": 102.0}})
    assert client.stats().enqueued == before


@pytest.mark.parametrize("v01_deployment", [RC], indirect=True)
async def test_envelope_v1_passes_strict_validation_and_a_tampered_one_is_quarantined(
    v01_deployment: V01Deployment, clients: list[AlienClient], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    emulator = v01_deployment.emulator
    with caplog.at_level(logging.INFO, logger="alien"):
        client = await _start(clients, edge_config(v01_deployment, tmp_path, telemetry_format="envelope_v1"))
        for step in range(3):
            await client.publish_telemetry({"position": {**FIX["position"], "latitude": 32.9 + step / 100}, **BATTERY})
        assert await client.flush(10)
        entity_id = client.config.entity_id
        assert entity_id is not None
        await emulator.wait_for_async(
            lambda: _state_shows(v01_deployment, entity_id, lambda s: "position" in s and "power" in s), 15, "map"
        )
    wanted = {"GLOBAL_POSITION_INT", "BATTERY_STATUS", "SYS_STATUS", "HEARTBEAT"}
    await emulator.wait_for_async(
        lambda: wanted <= {v.message_type for v in emulator.telemetry_accepted()}, 10, "every message type accepted"
    )
    assert emulator.telemetry_rejected() == []
    # Newest servers deny edge keys KV access: Alien switched its own writer off, once.
    assert client.entity_state.disabled is not None
    assert caplog.text.count("entity state in CONSTELLATION_GLOBAL_STATE switched off") == 1

    # The same envelope with one unknown field: the strict server must refuse and quarantine it.
    sample = json.loads(emulator.telemetry_accepted()[0].data)
    tampered = {**sample, "message_uid": "tampered-1", "battery_level": 50}
    nc = await nats.connect(**v01_deployment.edge_options())
    try:
        await nc.jetstream().publish(
            f"constellation.telemetry.{client.config.org_id}.{entity_id}", json.dumps(tampered).encode()
        )
    finally:
        await nc.close()
    await emulator.wait_for_async(lambda: len(emulator.quarantined()) == 1, 20, "quarantine")
    assert json.loads(emulator.quarantined()[0].original_data)["message_uid"] == "tampered-1"


TELEMETRY_ONLY = ["organizations:read", "entities:read", "entities:write", "nats:telemetry"]


@pytest.mark.parametrize("v01_deployment", [{"scopes": TELEMETRY_ONLY}], indirect=True)
async def test_narrower_permissions_degrade_features_with_one_log_line_each(
    v01_deployment: V01Deployment, clients: list[AlienClient], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A v0.1.1 key with nats:telemetry only: no events (so no bootsequence), no commands, no KV writes.
    emulator = v01_deployment.emulator
    with caplog.at_level(logging.INFO, logger="alien"):
        client = await _start(clients, edge_config(v01_deployment, tmp_path))
        await client.publish_telemetry(FIX)
        await emulator.wait_for_async(lambda: len(emulator.telemetry()) >= 1, 10, "telemetry still flowing")
        await client.publish_event("door_opened", {"door": 1})
        assert await client.flush(10)  # a denied event is dropped and counted, not retried forever
    assert client.stats().dropped.get("denied", 0) >= 2  # bootsequence and door_opened
    assert client.stats().parked == 0  # nothing piles up on disk
    assert client.entity_state.disabled == "the server denies this key access to it"
    denied = [r.getMessage() for r in caplog.records if "nats-server denied" in r.getMessage()]
    org, entity = client.config.org_id, client.config.entity_id
    assert any(f'"constellation.commands.{org}.{entity}"' in line and "nats:commands" in line for line in denied)
    assert any(f'"constellation.events.{org}.bootsequence"' in line and "nats:all" in line for line in denied)
    assert len(denied) == len(set(denied))  # each refusal said once
    assert emulator.events() == []


@pytest.mark.parametrize("v01_deployment", [{"tls": True}], indirect=True)
async def test_nkey_over_tls_verified_with_the_servers_ca(
    v01_deployment: V01Deployment, clients: list[AlienClient], tmp_path: Path
) -> None:
    assert v01_deployment.nats_server.url.startswith("tls://")
    client = await _start(clients, edge_config(v01_deployment, tmp_path))
    assert client.link.nc.connected_url.scheme == "tls"
    await client.publish_telemetry(FIX)
    emulator = v01_deployment.emulator
    await emulator.wait_for_async(lambda: len(emulator.telemetry()) >= 1, 10, "telemetry over TLS")


async def test_wrong_credentials_fail_fast_with_a_clear_error_and_no_secret(
    v01_deployment: V01Deployment, clients: list[AlienClient], tmp_path: Path
) -> None:
    stranger_seed, _ = generate_nkey_user()  # a valid seed the server has never heard of
    with pytest.raises(NatsAuthError, match="refused the credentials") as refused:
        await _start(clients, edge_config(v01_deployment, tmp_path, nats_nkey_seed=stranger_seed))
    assert stranger_seed not in str(refused.value)
    await clients.pop().close()  # releases its outbox for the next attempt
    with pytest.raises(AuthenticationError, match="401") as unauthorized:
        await _start(clients, edge_config(v01_deployment, tmp_path, "edge", api_key="c4_test_not_a_key"))
    assert "c4_test_not_a_key" not in str(unauthorized.value)


async def test_api_key_as_bearer_header(
    v01_deployment: V01Deployment, clients: list[AlienClient], tmp_path: Path
) -> None:
    await _start(clients, edge_config(v01_deployment, tmp_path, api_key_header="bearer"))
    requests = [r for r in v01_deployment.emulator.requests() if r.path.startswith("/api/v1/organizations")]
    assert requests and all(r.status < 400 for r in requests)
    assert all("Authorization" in r.header_names and "X-API-Key" not in r.header_names for r in requests)


async def test_server_unreachable_at_boot_readings_wait_for_its_format(
    v01_deployment: V01Deployment, clients: list[AlienClient], tmp_path: Path
) -> None:
    """Saved ids from a version that did not save the dialect, and the REST API down at boot."""
    emulator = v01_deployment.emulator
    config = edge_config(v01_deployment, tmp_path, heartbeat_period_s=0, retry_backoff_s=0.05)
    first = await _start(clients, config)
    await first.close()
    identity = json.loads(config.identity_path.read_text())
    assert identity["dialect"] == "v0.1"  # saved now; an older identity file has none
    config.identity_path.write_text(json.dumps({k: v for k, v in identity.items() if k != "dialect"}))
    before = len(emulator.telemetry())

    emulator.set_unavailable(True)
    client = await _start(clients, edge_config(v01_deployment, tmp_path, heartbeat_period_s=0, retry_backoff_s=0.05))
    ids = [await client.publish_telemetry({"position": {**FIX["position"], "latitude": 10.0 + n}}) for n in range(5)]
    assert all(ids) and client.outbox.telemetry_held  # queued durably, in no format yet
    emulator.set_unavailable(False)
    await emulator.wait_for_async(lambda: len(emulator.telemetry()) - before == 5, 15, "the held readings")
    sent = [m.json() for m in emulator.telemetry()[before:]]
    assert [m["message_type"] for m in sent] == ["GPS_RAW_INT"] * 5  # in order, as v0.1.1 reads positions
    assert [m["data"]["lat"] for m in sent] == [(10 + n) * 10_000_000 for n in range(5)]
    assert json.loads(config.identity_path.read_text())["dialect"] == "v0.1"
    entity_id = client.config.entity_id
    assert entity_id is not None
    await emulator.wait_for_async(
        lambda: _state_shows(
            v01_deployment, entity_id, lambda s: s.get("position", {}).get("global", {}).get("latitude") == 14.0
        ),
        10,
        "the operator map written once the server answered",
    )
