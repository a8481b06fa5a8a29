"""The v0.1.x telemetry workers against a real nats-server: rc's strict worker and operator map, v0.1.1's decoding."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import nats
import pytest
import pytest_asyncio
from emulator_v01_support import RC, envelope, register
from nats.aio.client import Client as NATS

from alien_testing.deployment import V01Deployment
from alien_testing.emulator import KV_BUCKET, QUARANTINE_STREAM
from alien_testing.emulator.gojson import GoTime

pytestmark = pytest.mark.timeout(60)

V011 = pytest.mark.parametrize("v01_deployment", [{"release": "v0.1.1"}], indirect=True)


@pytest_asyncio.fixture
async def admin_nc(v01_deployment: V01Deployment) -> AsyncIterator[NATS]:
    nc = await nats.connect(**v01_deployment.admin_options(), allow_reconnect=False)
    try:
        yield nc
    finally:
        await nc.close()


async def boot(deployment: V01Deployment, nc: NATS, entity_id: str, event_type: str = "bootsequence") -> None:
    """The lifecycle event the server reads (docs/contract.md#lifecycle-events), published as the edge would."""
    org = deployment.edge.org_id
    event = {"event_type": event_type, "entity_id": entity_id, "device_id": entity_id, "timestamp": _now()}
    await nc.jetstream().publish(f"constellation.events.{org}.{event_type}", json.dumps(event).encode())
    admitted = event_type == "bootsequence"
    await deployment.emulator.wait_for_async(
        lambda: (entity_id in deployment.emulator.admitted()) is admitted, what=f"{event_type} processed"
    )


def _now() -> str:
    return GoTime.now().format()


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 5.0) -> None:
    """Bounded poll of server state that notifies nobody (consumer info)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)  # poll interval, not a synchronisation guess


async def publish(nc: NATS, subject: str, message: Any) -> int:
    body = message if isinstance(message, bytes) else json.dumps(message).encode()
    return int((await nc.jetstream().publish(subject, body)).seq)


# -- rc: the strict telemetry worker and the operator map --------------------------------------


@pytest.mark.asyncio
@RC
async def test_rc_accepts_the_contract_example_into_the_operator_map(
    v01_deployment: V01Deployment, edge_nc: NATS
) -> None:
    em, org = v01_deployment.emulator, v01_deployment.edge.org_id
    entity_id = await register(v01_deployment)
    await boot(v01_deployment, edge_nc, entity_id)
    message = envelope(org, entity_id)
    seq = await publish(edge_nc, f"constellation.telemetry.{org}.{entity_id}", message)
    await em.wait_for_async(lambda: len(em.telemetry_accepted()) == 1, what="accepted")
    verdict = em.telemetry_accepted()[0]
    assert (verdict.stream_seq, verdict.message_type, verdict.entity_id) == (seq, "GLOBAL_POSITION_INT", entity_id)
    state = em.entity_state(entity_id)
    assert state is not None and em.operator_map()[entity_id] == state
    assert (state["entity_id"], state["org_id"], state["name"]) == (entity_id, org, "hawk-1")
    assert state["position"]["global"] == {  # degrees and metres, from degE7 and mm
        "latitude": 32.94881,
        "longitude": -96.80132,
        "altitude_msl": 152.4,
        "altitude_relative": 30.48,
        "accuracy_h": 0,
        "accuracy_v": 0,
        "timestamp": "2026-07-21T20:00:00Z",
    }
    assert isinstance(state["position"]["global"]["accuracy_h"], int)  # Go writes float64 0 as 0
    assert state["position"]["local"]["vx"] == 1.23  # cm/s -> m/s; hdg is not read
    assert state["is_live"] is True and state["last_seen"] == "2026-07-21T20:00:00Z"
    assert (state["system_id"], state["component_id"]) == (1, 1)
    cursor = state["telemetry_cursors"]["GLOBAL_POSITION_INT"]
    assert cursor == {"message_uid": message["message_uid"], "timestamp": "2026-07-21T20:00:00Z"}

    # Older (and equal) timestamps of the same type are acked and ignored; other types are separate.
    older = envelope(org, entity_id, timestamp="2026-07-21T19:59:59Z", data={"lat": 0, "lon": 0})
    await publish(edge_nc, f"constellation.telemetry.{org}.{entity_id}", older)
    battery = envelope(
        org,
        entity_id,
        message_type="BATTERY_STATUS",
        message_id=147,
        timestamp="2026-07-21T19:00:00+00:00",
        data={"battery_remaining": 200, "current_battery": 1250, "voltages": [4100, 4120]},
    )
    await publish(edge_nc, f"constellation.telemetry.{org}.{entity_id}", battery)
    await em.wait_for_async(lambda: len(em.telemetry_accepted()) == 2, what="battery accepted")
    assert [v.reason for v in em.telemetry_ignored()] == ["duplicate or stale telemetry"]
    state = em.entity_state(entity_id)
    assert state is not None and state["position"]["global"]["latitude"] == 32.94881
    assert state["power"]["current"] == 12.5 and state["power"]["cells"] == [4100, 4120]
    assert state["power"]["battery_remaining"] == 0  # 200 is out of -1..100: dropped, not applied
    assert em.telemetry_accepted()[1].warnings == (
        "Rejected out-of-range MAVLink integer battery_remaining=200 (allowed -1..100)",
    )
    assert state["last_seen"] == "2026-07-21T20:00:00Z"  # never moves backwards
    assert em.telemetry_rejected() == [] and em.quarantined() == []


def _bad(org: str, entity_id: str) -> dict[str, tuple[str, Any, str]]:
    """name -> (subject entity, payload, expected reason)."""
    naive = envelope(org, entity_id, timestamp="2026-07-21T20:00:00")
    return {
        "unknown field": (entity_id, envelope(org, entity_id, battery_level=80), 'unknown field "battery_level"'),
        "zone-less timestamp": (entity_id, naive, "not RFC 3339"),
        "mismatched entity": (entity_id, envelope(org, "someone-else"), "does not match envelope"),
        "unsupported type": (entity_id, envelope(org, entity_id, message_type="GPS_STATUS"), "unsupported"),
        "float message_id": (entity_id, envelope(org, entity_id, message_id=33.0), "uint32"),
        "bad schema": (entity_id, envelope(org, entity_id, schema_version="1.0"), "schema_version"),
        "not json": (entity_id, b"not json", "decode telemetry envelope"),
        "not admitted": ("stranger-1", envelope(org, "stranger-1"), "is not registered"),
    }


@pytest.mark.asyncio
@RC
@pytest.mark.parametrize("case", list(_bad("o", "e")))
async def test_rc_rejects_and_quarantines_after_three_deliveries(
    v01_deployment: V01Deployment, edge_nc: NATS, admin_nc: NATS, case: str
) -> None:
    em, org = v01_deployment.emulator, v01_deployment.edge.org_id
    entity_id = await register(v01_deployment)
    await boot(v01_deployment, edge_nc, entity_id)
    subject_entity, payload, reason = _bad(org, entity_id)[case]
    seq = await publish(edge_nc, f"constellation.telemetry.{org}.{subject_entity}", payload)
    await em.wait_for_async(lambda: len(em.quarantined()) == 1, what="quarantined")
    rejected = em.telemetry_rejected()
    assert [v.delivery for v in rejected] == [1, 2, 3]  # a NAK redelivers at once
    assert all(reason in (v.reason or "") and v.stream_seq == seq for v in rejected)
    assert [v.quarantined for v in rejected] == [False, False, True]
    record = em.quarantined()[0]
    assert record.subject == "constellation.quarantine.telemetryworker"
    assert (record.original_subject, record.num_delivered, record.stream_sequence) == (
        f"constellation.telemetry.{org}.{subject_entity}",
        3,
        seq,
    )
    assert record.original_data == (payload if isinstance(payload, bytes) else json.dumps(payload).encode())
    stored = await admin_nc.jetstream().get_last_msg(QUARANTINE_STREAM, record.subject)  # really on the stream
    assert json.loads(stored.data or b"")["error"] == record.error
    assert em.telemetry_accepted() == []
    state = em.entity_state(entity_id)
    assert state is not None and "position" not in state  # the REST side's entry, untouched


@pytest.mark.asyncio
@RC
async def test_rc_lat_out_of_range_is_applied_as_the_real_worker_does(
    v01_deployment: V01Deployment, edge_nc: NATS
) -> None:
    # pkg/services/workers/telemetry.go has no range check on lat/lon (only on narrow integers).
    em, org = v01_deployment.emulator, v01_deployment.edge.org_id
    entity_id = await register(v01_deployment)
    await boot(v01_deployment, edge_nc, entity_id)
    data = {**envelope(org, entity_id)["data"], "lat": 1_000_000_000}
    await publish(edge_nc, f"constellation.telemetry.{org}.{entity_id}", envelope(org, entity_id, data=data))
    await em.wait_for_async(lambda: len(em.telemetry_accepted()) == 1, what="accepted")
    state = em.entity_state(entity_id)
    assert state is not None and state["position"]["global"]["latitude"] == 100.0


@pytest.mark.asyncio
@RC
async def test_rc_shutdown_withdraws_admission(v01_deployment: V01Deployment, edge_nc: NATS) -> None:
    em, org = v01_deployment.emulator, v01_deployment.edge.org_id
    entity_id = await register(v01_deployment)
    await boot(v01_deployment, edge_nc, entity_id)
    assert em.admitted() == {entity_id}
    await boot(v01_deployment, edge_nc, entity_id, event_type="shutdown")
    await publish(edge_nc, f"constellation.telemetry.{org}.{entity_id}", envelope(org, entity_id))
    await em.wait_for_async(lambda: len(em.quarantined()) == 1, what="quarantined")
    assert "is not registered" in em.quarantined()[0].error
    em.admit(entity_id)  # as if the server rebooted with the entity in its database
    await publish(edge_nc, f"constellation.telemetry.{org}.{entity_id}", envelope(org, entity_id))
    await em.wait_for_async(lambda: len(em.telemetry_accepted()) == 1, what="accepted after admit")


@pytest.mark.asyncio
@RC
async def test_rc_keeps_other_writers_fields_and_drops_unknown_ones(
    v01_deployment: V01Deployment, edge_nc: NATS, admin_nc: NATS
) -> None:
    em, org = v01_deployment.emulator, v01_deployment.edge.org_id
    entity_id = await register(v01_deployment)
    kv = await admin_nc.jetstream().key_value(KV_BUCKET)
    entry = await kv.get(entity_id)
    state = json.loads(entry.value or b"")
    state.update(detections={"frame_count": 7}, my_extension=True)
    await kv.update(entity_id, json.dumps(state).encode(), last=entry.revision)
    await boot(v01_deployment, edge_nc, entity_id)
    await publish(edge_nc, f"constellation.telemetry.{org}.{entity_id}", envelope(org, entity_id))
    await em.wait_for_async(lambda: len(em.telemetry_accepted()) == 1, what="accepted")
    merged = em.entity_state(entity_id)
    assert merged is not None and merged["detections"] == {"frame_count": 7}
    assert "my_extension" not in merged  # the server rewrites shared.EntityState: unknown keys go


@pytest.mark.asyncio
@RC
async def test_rc_a_float_in_an_integer_state_field_poisons_the_entity(
    v01_deployment: V01Deployment, edge_nc: NATS, admin_nc: NATS
) -> None:
    em, org = v01_deployment.emulator, v01_deployment.edge.org_id
    entity_id = await register(v01_deployment)
    kv = await admin_nc.jetstream().key_value(KV_BUCKET)
    entry = await kv.get(entity_id)
    state = json.loads(entry.value or b"")
    state["power"] = {"battery_remaining": 55.0}  # Go's int8 refuses 55.0
    await kv.update(entity_id, json.dumps(state).encode(), last=entry.revision)
    await boot(v01_deployment, edge_nc, entity_id)
    await publish(edge_nc, f"constellation.telemetry.{org}.{entity_id}", envelope(org, entity_id))
    await em.wait_for_async(lambda: len(em.quarantined()) == 1, what="quarantined")
    assert "cannot unmarshal number 55.0" in em.quarantined()[0].error


# -- v0.1.1: MAVLink-style decoding, edges own the KV state ------------------------------------


@pytest.mark.asyncio
@V011
async def test_v011_decodes_mavlink_style_and_ignores_free_form_keys(
    v01_deployment: V01Deployment, edge_nc: NATS, admin_nc: NATS
) -> None:
    em, org = v01_deployment.emulator, v01_deployment.edge.org_id
    entity_id = await register(v01_deployment)
    subject = f"constellation.telemetry.{org}.{entity_id}"
    heartbeat = {
        "message_type": "HEARTBEAT",
        "message_id": 0,
        "system_id": 1,
        "component_id": 1,
        "data": {"base_mode": 128, "custom_mode": 4},
        "timestamp": "2026-07-21T20:00:00+02:00",
        "battery_level": 80,  # ignored, not an error
    }
    await publish(edge_nc, subject, heartbeat)  # not admitted: v0.1.1 does not check
    await em.wait_for_async(lambda: len(em.telemetry_accepted()) == 1, what="accepted")
    assert em.telemetry_accepted()[0].timestamp == "2026-07-21T20:00:00+02:00"
    naive = {**heartbeat, "timestamp": "2026-07-21T20:00:00"}
    seq = await publish(edge_nc, subject, naive)
    await em.wait_for_async(lambda: len(em.telemetry_rejected()) == 3, what="three deliveries")
    assert all("not RFC 3339" in (v.reason or "") and v.stream_seq == seq for v in em.telemetry_rejected())

    async def settled() -> bool:
        info = await admin_nc.jetstream().consumer_info("CONSTELLATION_TELEMETRY", "telemetry-processor")
        return info.num_ack_pending == 0 and info.config.max_deliver == 3

    await eventually(settled, "the server gives up after MaxDeliver 3 (no quarantine on v0.1.1)")
    assert em.quarantined() == [] and len(em.telemetry_rejected()) == 3
    state = em.entity_state(entity_id)
    assert state is not None and "vehicle_status" not in state  # v0.1.1 writes no telemetry to KV


async def test_v011_reads_gps_raw_int_as_the_position_and_only_acks_global_position_int(
    v01_deployment: V01Deployment, edge_nc: NATS
) -> None:
    em, org = v01_deployment.emulator, v01_deployment.edge.org_id
    entity_id = await register(v01_deployment)
    subject = f"constellation.telemetry.{org}.{entity_id}"
    common = {"system_id": 1, "component_id": 1, "timestamp": "2026-07-21T20:00:00Z"}
    newest_only = {**common, "message_type": "GLOBAL_POSITION_INT", "message_id": 33, "data": {"lat": 1, "lon": 2}}
    await publish(edge_nc, subject, newest_only)
    await em.wait_for_async(lambda: len(em.telemetry_ignored()) == 1, what="GLOBAL_POSITION_INT acked, not read")
    assert "does not decode GLOBAL_POSITION_INT" in (em.telemetry_ignored()[0].reason or "")
    assert em.worker_state(org) is None  # v0.1.1 keys by the subject's third token: here the org
    raw = {"lat": 329488100, "lon": -968013200, "alt": 152400, "eph": 177, "epv": 300, "fix_type": 3}
    await publish(edge_nc, subject, {**common, "message_type": "GPS_RAW_INT", "message_id": 24, "data": raw})
    await em.wait_for_async(lambda: len(em.telemetry_accepted()) == 1, what="GPS_RAW_INT read")
    point = (em.worker_state(org) or {})["position"]["global"]
    assert {k: point[k] for k in ("latitude", "longitude", "altitude_msl", "accuracy_h", "fix_type")} == pytest.approx(
        {"latitude": 32.94881, "longitude": -96.80132, "altitude_msl": 152.4, "accuracy_h": 1.77, "fix_type": 3}
    )
