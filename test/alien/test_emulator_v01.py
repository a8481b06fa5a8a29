"""The emulator's v0.1.x behaviours: edge credentials, the strict telemetry worker, the operator map.

Everything runs against a real nats-server: the permissions are nats-server's own, derived from
API-key scopes the way the real server derives them (alien_testing.emulator.edge_auth).
"""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import nats
import nats.errors
import nats.js.errors
import pytest
import pytest_asyncio
from nats.aio.client import Client as NATS
from nats.js.api import ConsumerConfig, StreamConfig

from alien_testing import MothershipEmulator, NatsServer, edge_permissions, mint_edge_key
from alien_testing.deployment import V01Deployment
from alien_testing.emulator import KV_BUCKET, QUARANTINE_STREAM, stream_specs
from alien_testing.emulator.gojson import GoJSONError, GoTime
from alien_testing.emulator.telemetry_v01 import TelemetryError, decode_envelope, decode_v011

pytestmark = pytest.mark.timeout(60)

RC = pytest.mark.parametrize("v01_deployment", [{"release": "rc"}], indirect=True)
V011 = pytest.mark.parametrize("v01_deployment", [{"release": "v0.1.1"}], indirect=True)
RC_TELEMETRY_ONLY = ["entities:write", "nats:telemetry:write"]
V011_SCOPED = ["entities:write", "nats:telemetry", "nats:commands"]
JS_TIMEOUT = 0.5  # a denied JetStream request shows as a timeout (the server drops it)


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


async def _quiet(exc: Exception) -> None:
    """error_cb: expected permission violations stay out of the log."""


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


@pytest_asyncio.fixture
async def admin_nc(v01_deployment: V01Deployment) -> AsyncIterator[NATS]:
    nc = await nats.connect(**v01_deployment.admin_options(), allow_reconnect=False)
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


# -- edge permissions: derivation (pkg/services/embedded-nats/nats.go BuildNATSPermissions) ---------


def test_rc_permissions_are_least_privilege_as_the_real_server_derives_them() -> None:
    scopes = ["nats:telemetry:write", "nats:commands:read", "nats:events:write"]
    assert edge_permissions("org-a", scopes, release="rc") == {  # the server's own unit test case
        "publish": {
            "allow": [
                "constellation.telemetry.org-a.>",
                "constellation.events.org-a.>",
                "constellation.events.*.org-a.>",
            ]
        },
        "subscribe": {"allow": ["_INBOX.>", "constellation.commands.org-a.>"]},
    }
    for refused in (["nats:all"], ["nats:telemetry"], ["entities:write"]):
        assert edge_permissions("org-a", refused, release="rc") is None
    assert edge_permissions("", ["nats:telemetry:write"], release="rc") is None


def test_v011_permissions_include_the_whole_jetstream_api() -> None:
    perms = edge_permissions("org-a", ["nats:telemetry", "nats:commands", "nats:events"], release="v0.1.1")
    assert perms == {
        "publish": {"allow": ["$JS.API.>", "_INBOX.>", "constellation.telemetry.org-a.>"]},
        "subscribe": {
            "allow": [
                "$JS.API.>",
                "_INBOX.>",
                "constellation.telemetry.org-a.>",
                "constellation.commands.org-a.>",
                "constellation.events.>",
            ]
        },
    }
    assert edge_permissions("org-a", ["entities:read", "nats:all"]) == {
        "publish": {"allow": [">"]},
        "subscribe": {"allow": [">"]},
    }
    assert edge_permissions("org-a", ["entities:read"]) is None  # no NATS user at all


def test_kv_grant_and_minting() -> None:
    perms = edge_permissions("o", ["nats:telemetry:write"], release="rc", kv=True)
    assert perms is not None
    assert f"$KV.{KV_BUCKET}.>" in perms["publish"]["allow"]
    assert not any(s in ("$JS.API.>", ">") for s in perms["publish"]["allow"])
    key = mint_edge_key(["entities:write", "nats:telemetry:write"], release="rc")
    assert key.api_key.startswith("c4_test_") and key.nkey_seed.startswith("SU") and key.org_id == "default"
    assert key.api_key not in repr(key) and key.nkey_seed not in repr(key)
    with pytest.raises(ValueError, match="nats:all"):
        mint_edge_key(["nats:all"], release="rc")  # refused at key creation, as the real server does


# -- edge permissions bite (real nats-server) --------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("v01_deployment", [{"release": "rc", "scopes": RC_TELEMETRY_ONLY}], indirect=True)
async def test_rc_edge_publishes_only_its_org_and_has_no_jetstream_or_kv(
    v01_deployment: V01Deployment, edge_nc: NATS, edge_errors: list[str]
) -> None:
    js = edge_nc.jetstream(timeout=JS_TIMEOUT)
    ack = await js.publish("constellation.telemetry.default.e1", b"{}")  # PubAck comes back on _INBOX
    assert ack.stream == "CONSTELLATION_TELEMETRY"
    outcomes = await asyncio.gather(
        js.publish("constellation.telemetry.other-org.e1", b"{}"),
        js.publish("constellation.events.default.bootsequence", b"{}"),  # no nats:events:write
        js.add_stream(StreamConfig(name="ROGUE", subjects=["rogue.>"])),
        js.add_consumer("CONSTELLATION_TELEMETRY", ConsumerConfig(durable_name="rogue")),
        js.delete_stream("CONSTELLATION_TELEMETRY"),
        js.key_value(KV_BUCKET),  # docs/contract.md#operator-map-kv: newest servers give edge keys no KV rights
        return_exceptions=True,
    )
    assert all(isinstance(outcome, nats.errors.TimeoutError) for outcome in outcomes), outcomes
    for subject in (
        "constellation.telemetry.other-org.e1",
        "constellation.events.default.bootsequence",
        "$js.api.stream.create.rogue",
        "$js.api.consumer.",
        "$js.api.stream.delete.constellation_telemetry",
        f"$js.api.stream.info.kv_{KV_BUCKET.lower()}",
    ):
        assert any("permissions violation" in e and subject in e for e in edge_errors), (subject, edge_errors)


@pytest.mark.asyncio
@pytest.mark.parametrize("v01_deployment", [{"release": "v0.1.1", "scopes": V011_SCOPED}], indirect=True)
async def test_v011_scoped_edge_reads_kv_but_cannot_write_it(
    v01_deployment: V01Deployment, edge_nc: NATS, edge_errors: list[str]
) -> None:
    js = edge_nc.jetstream(timeout=JS_TIMEOUT)
    await js.publish("constellation.telemetry.default.e1", b"{}")
    entity_id = await register(v01_deployment)
    kv = await js.key_value(KV_BUCKET)
    entry = await kv.get(entity_id)  # $JS.API.> covers reads
    outcomes = await asyncio.gather(
        js.publish("constellation.telemetry.other-org.e1", b"{}"),
        kv.update(entity_id, b"{}", last=entry.revision),  # $KV.> is not granted
        return_exceptions=True,
    )
    assert all(isinstance(outcome, nats.errors.TimeoutError) for outcome in outcomes), outcomes
    assert any(f"$kv.{KV_BUCKET.lower()}.{entity_id}" in e for e in edge_errors), edge_errors
    # The real v0.1.1 grant is the whole JetStream API: a scoped key can even create streams.
    await js.add_stream(StreamConfig(name="ROGUE", subjects=["rogue.>"]))


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "v01_deployment",
    [{"release": "v0.1.1"}, {"release": "rc", "scopes": RC_TELEMETRY_ONLY, "kv": True}],
    ids=["v0.1.1-nats-all", "rc-kv-grant"],
    indirect=True,
)
async def test_kv_compare_and_set_where_granted(v01_deployment: V01Deployment, edge_nc: NATS) -> None:
    entity_id = await register(v01_deployment)
    kv = await edge_nc.jetstream(timeout=JS_TIMEOUT).key_value(KV_BUCKET)
    entry = await kv.get(entity_id)
    state = json.loads(entry.value or b"")
    state["position"] = {"global": {"latitude": 32.94881, "longitude": -96.80132, "altitude_msl": 152.4}}
    revision = await kv.update(entity_id, json.dumps(state).encode(), last=entry.revision)
    with pytest.raises(nats.js.errors.KeyWrongLastSequenceError):
        await kv.update(entity_id, b"{}", last=entry.revision)  # a stale revision loses
    assert revision > entry.revision
    await kv.create(f"{entity_id}-twin", b"{}")
    with pytest.raises(nats.js.errors.KeyWrongLastSequenceError):
        await kv.create(f"{entity_id}-twin", b"{}")
    em = v01_deployment.emulator

    def written() -> bool:  # a predicate may read the operator map (a KV read on the emulator's loop)
        shown = em.entity_state(entity_id) or {}
        return bool(shown.get("position", {}).get("global", {}).get("latitude") == 32.94881)

    await em.wait_for_async(written, what="the edge's own write on the operator map")
    if v01_deployment.release == "rc":  # the KV grant is KV only
        with pytest.raises(nats.errors.TimeoutError):
            await edge_nc.jetstream(timeout=JS_TIMEOUT).add_stream(StreamConfig(name="ROGUE", subjects=["r.>"]))


@pytest.mark.asyncio
@RC
async def test_wrong_credentials_are_refused(v01_deployment: V01Deployment) -> None:
    stranger = mint_edge_key(["nats:telemetry:write"], release="rc")  # never registered with the server
    rest_only = mint_edge_key(["entities:read"], release="rc")  # no NATS scope: no NATS user
    assert rest_only.nkey_user() is None
    for key in (stranger, rest_only):
        options = {**v01_deployment.edge_options(), **key.connect_options()}
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await nats.connect(**options, error_cb=_quiet, allow_reconnect=False, max_reconnect_attempts=0)


@pytest.mark.asyncio
@pytest.mark.parametrize("v01_deployment", [{"release": "rc", "tls": True}], indirect=True)
async def test_tls_deployment(v01_deployment: V01Deployment, edge_nc: NATS) -> None:
    assert v01_deployment.nats_server.url.startswith("tls://") and v01_deployment.ca_file is not None
    assert v01_deployment.emulator.nats_connected
    await edge_nc.jetstream().publish("constellation.telemetry.default.e1", b"{}")


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


# -- plumbing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("release", "streams"),
    [("v0.1.1", 4), ("rc", 5)],
)
def test_stream_specs_by_release(release: str, streams: int) -> None:
    specs = stream_specs("v0.1", release)  # type: ignore[arg-type]
    assert len(specs) == streams
    assert (QUARANTINE_STREAM in [s.name for s in specs]) is (release == "rc")


@pytest.mark.asyncio
async def test_rc_consumers_update_to_five_deliveries(nats_server: NatsServer) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        for release, max_deliver in (("v0.1.1", 3), ("rc", 5)):
            with MothershipEmulator(nats_server.url, dialect="v0.1", release=release):  # type: ignore[arg-type]
                info = await nc.jetstream().consumer_info("CONSTELLATION_TELEMETRY", "telemetry-processor")
                assert info.config.max_deliver == max_deliver
    finally:
        await nc.close()


def test_release_needs_the_v01_dialect(nats_server: NatsServer) -> None:
    with pytest.raises(ValueError, match="dialect"):
        MothershipEmulator(nats_server.url, release="rc")
    with pytest.raises(ValueError, match="release"):
        MothershipEmulator(nats_server.url, dialect="v0.1", release="v9")  # type: ignore[arg-type]


# -- decoders (no server) -----------------------------------------------------------------------


def test_envelope_decoder_accepts_the_contract_example_and_goes_by_go_rules() -> None:
    message = envelope("default", "ent-1")
    decoded = decode_envelope(json.dumps(message).encode())
    assert (decoded.message_type, decoded.message_id, decoded.timestamp.format()) == (
        "GLOBAL_POSITION_INT",
        33,
        "2026-07-21T20:00:00Z",
    )
    assert decoded.data is not None and decoded.data["lat"] == 329488100.0  # map[string]any: float64
    shouted = {k.upper(): v for k, v in copy.deepcopy(message).items()}  # Go matches keys case-insensitively
    assert decode_envelope(json.dumps(shouted).encode()).entity_id == "ent-1"
    for broken, reason in (
        ({**message, "message_type": "gps"}, "canonical"),
        ({**message, "message_uid": "a.b"}, "safe NATS subject token"),
        ({**message, "message_uid": "x" * 129}, "safe NATS subject token"),
        ({k: v for k, v in message.items() if k != "data"}, "data is required"),
        ({k: v for k, v in message.items() if k != "timestamp"}, "timestamp is required"),
        ({**message, "system_id": 256}, "uint8"),
    ):
        with pytest.raises(TelemetryError, match=reason):
            decode_envelope(json.dumps(broken).encode())
    with pytest.raises(TelemetryError, match="invalid JSON"):
        decode_envelope(json.dumps(message).encode() + b" {}")  # trailing value


def test_v011_decoder_is_lenient_except_for_types_and_zones() -> None:
    decoded = decode_v011(b'{"message_type":"X","data":{"timestamp":"2026-07-21T20:00:00Z"}}')
    assert decoded.timestamp.format() == "2026-07-21T20:00:00Z"  # data.timestamp fallback
    assert decode_v011(b"null").message_type == ""
    for broken in (b'{"timestamp":"2026-07-21T20:00:00"}', b'{"message_id":-1}', b"[]", b'{"data":[]}'):
        with pytest.raises(TelemetryError, match="failed to unmarshal"):
            decode_v011(broken)


def test_go_time_round_trip() -> None:
    assert GoTime.parse("2026-07-21T20:00:00.120000Z").format() == "2026-07-21T20:00:00.12Z"
    assert GoTime.parse("2026-07-21T22:00:00+02:00").ns == GoTime.parse("2026-07-21T20:00:00Z").ns
    assert GoTime.zero().format() == "0001-01-01T00:00:00Z" and GoTime.zero().is_zero()
    for bad in ("2026-07-21T20:00:00", "2026-07-21 20:00:00Z", "2026-13-01T00:00:00Z", "2026-07-21T20:00:00+24:00"):
        with pytest.raises(GoJSONError):
            GoTime.parse(bad)
