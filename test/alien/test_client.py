"""AlienClient end to end: real nats-server, the mothership emulator, real HTTP."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
import pytest

from alien import AlienClient, AlienConfig, IdentityFileError, NatsAuthError, NotFoundError
from alien.delivery.outbox import Lane, OutgoingMessage

DIALECTS = ["v0.0.1", "v0.1"]
LIFECYCLE = ("bootsequence", "shutdown")  # docs/contract.md#lifecycle-events
RFC3339_WITH_ZONE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def _registrations(emulator: Any) -> list[Any]:
    return [r for r in emulator.requests() if r.method == "POST"]


async def _send_command(nats_url: str, subject: str, payload: bytes) -> None:
    nc = await nats.connect(nats_url)
    try:
        await nc.publish(subject, payload)
        await nc.flush()
    finally:
        await nc.close()


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_registers_once_and_reuses_ids_across_restarts(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], identity_file: Path, dialect: str
) -> None:
    emulator = make_emulator(dialect=dialect)
    async with AlienClient(make_config(emulator, nats_server, entity_name="HAWK-1")) as first:
        org_id, entity_id = first.config.org_id, first.config.entity_id
    assert org_id and entity_id
    saved = json.loads(identity_file.read_text())
    assert (saved["org_id"], saved["entity_id"]) == (org_id, entity_id)
    posts = len(_registrations(emulator))
    assert posts == 2  # one organization, one entity

    async with AlienClient(make_config(emulator, nats_server, entity_name="HAWK-1")) as second:
        assert (second.config.org_id, second.config.entity_id) == (org_id, entity_id)
    assert len(_registrations(emulator)) == posts  # nothing created again
    assert len(emulator.entities()) == 1


async def test_existing_organization_is_matched_by_name(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], tmp_path: Path
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    async with AlienClient(make_config(emulator, nats_server, org_name="Fleet A")) as one:
        org_id = one.config.org_id
    other = make_config(emulator, nats_server, org_name="Fleet A", config_file=str(tmp_path / "second.json"))
    async with AlienClient(other) as two:
        assert two.config.org_id == org_id
        assert two.config.entity_id != one.config.entity_id
    assert len([o for o in emulator.organizations() if o["name"] == "Fleet A"]) == 1


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_deleted_entity_is_registered_again(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], identity_file: Path, dialect: str
) -> None:
    emulator = make_emulator(dialect=dialect)
    async with AlienClient(make_config(emulator, nats_server)) as first:
        org_id, old_entity = first.config.org_id, first.config.entity_id
    emulator.delete_entity(org_id, old_entity)
    async with AlienClient(make_config(emulator, nats_server)) as second:
        assert second.config.org_id == org_id
        assert second.config.entity_id not in (None, old_entity)
    assert json.loads(identity_file.read_text())["entity_id"] == second.config.entity_id


async def test_reregistration_can_be_switched_off(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig]
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    async with AlienClient(make_config(emulator, nats_server)) as first:
        org_id, entity_id = first.config.org_id, first.config.entity_id
    emulator.delete_entity(org_id, entity_id)
    client = AlienClient(make_config(emulator, nats_server, reregister_deleted_entity=False))
    with pytest.raises(NotFoundError):
        await client.initialize()
    await client.close()


async def test_corrupt_identity_file_stops_before_any_registration(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], identity_file: Path
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    identity_file.write_text("{broken")
    client = AlienClient(make_config(emulator, nats_server))
    with pytest.raises(IdentityFileError, match=re.escape(str(identity_file))):
        await client.initialize()
    await client.close()
    assert _registrations(emulator) == []
    assert identity_file.read_text() == "{broken"


async def test_mothership_down_at_first_boot_telemetry_waits_and_goes_out_after_registration(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig]
) -> None:
    """Fault suite 3: REST down at first boot; registered when it returns; buffered telemetry delivered."""
    emulator = make_emulator(dialect="v0.0.1")
    emulator.set_unavailable(True)
    client = AlienClient(make_config(emulator, nats_server, retry_backoff_s=0.05, retry_backoff_max_s=0.2))
    queued = [await client.publish_telemetry({"n": n}) for n in range(50)]  # produced before registration
    queued.append(await client.publish_event("boot_note", {"early": True}))
    starting = asyncio.create_task(client.initialize())
    await emulator.wait_for_async(lambda: sum(r.status == 503 for r in emulator.requests()) >= 3, 10, "retries")
    assert not starting.done() and client.config.entity_id is None
    emulator.set_unavailable(False)
    await asyncio.wait_for(starting, 20)
    assert await client.flush(10)
    org_id, entity_id = client.config.org_id, client.config.entity_id
    await client.close()
    await emulator.wait_for_async(
        lambda: len(emulator.telemetry()) >= 50 and emulator.events(), 10, "buffered messages"
    )
    assert {m.headers["Nats-Msg-Id"] for m in emulator.telemetry()} == set(queued[:50])
    assert {m.subject for m in emulator.telemetry()} == {f"constellation.telemetry.{org_id}.{entity_id}"}
    assert all(m.json()["entity_id"] == entity_id for m in emulator.telemetry())
    (early,) = [m for m in emulator.events() if m.subject.endswith(".boot_note")]
    assert early.subject == f"constellation.events.{org_id}.boot_note" and early.json()["entity_id"] == entity_id


# User text that an earlier version took for its id placeholders and rewrote inside the payload.
LOOKS_LIKE_IDS = {"note": "@org_id@ / @entity_id@", "@org_id@": ["@entity_id@", "x@org_id@y"]}


@pytest.mark.parametrize("telemetry_format", ["seed", "auto"])
async def test_user_data_that_looks_like_id_placeholders_arrives_unchanged(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], telemetry_format: str
) -> None:
    """Before registration (REST down at first boot) and after: the data as given, the envelope's ids right."""
    emulator = make_emulator(dialect="v0.0.1")
    emulator.set_unavailable(True)
    config = make_config(
        emulator, nats_server, telemetry_format=telemetry_format, retry_backoff_s=0.05, retry_backoff_max_s=0.2
    )
    client = AlienClient(config)
    sent: dict[str, tuple[str, str]] = {}
    sent["before"] = (
        await client.publish_telemetry({**LOOKS_LIKE_IDS, "when": "before"}),
        await client.publish_event("note", {**LOOKS_LIKE_IDS, "when": "before"}),
    )
    starting = asyncio.create_task(client.initialize())
    await emulator.wait_for_async(lambda: any(r.status == 503 for r in emulator.requests()), 10, "a refusal")
    assert not starting.done() and client.config.entity_id is None
    emulator.set_unavailable(False)
    await asyncio.wait_for(starting, 20)
    sent["after"] = (
        await client.publish_telemetry({**LOOKS_LIKE_IDS, "when": "after"}),
        await client.publish_event("note", {**LOOKS_LIKE_IDS, "when": "after"}),
    )
    assert await client.flush(10)
    org_id, entity_id = client.config.org_id, client.config.entity_id
    await client.close()
    await emulator.wait_for_async(
        lambda: (
            len(emulator.telemetry()) >= 2 and len([m for m in emulator.events() if m.subject.endswith(".note")]) >= 2
        ),
        10,
        "both readings and both events",
    )
    telemetry = {m.headers["Nats-Msg-Id"]: m for m in emulator.telemetry()}
    events = {m.headers["Nats-Msg-Id"]: m for m in emulator.events()}
    for when, (reading_id, event_id) in sent.items():
        reading, event = telemetry[reading_id], events[event_id]
        assert reading.subject == f"constellation.telemetry.{org_id}.{entity_id}", when
        assert event.subject == f"constellation.events.{org_id}.note", when
        assert reading.json()["entity_id"] == entity_id and event.json()["entity_id"] == entity_id, when
        assert reading.json()["data"] == {**LOOKS_LIKE_IDS, "when": when}, when
        assert event.json()["data"] == {**LOOKS_LIKE_IDS, "when": when}, when


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_telemetry_and_events_reach_their_streams(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], dialect: str
) -> None:
    """Default settings, everything the client sends, as the server stores it.

    Both dialects: bootsequence on connect and shutdown on close (docs/contract.md#lifecycle-events). v0.0.1: the seed
    document's telemetry shape. v0.1: MAVLink-style messages the server accepts, HEARTBEATs, and the
    keys MAVLink cannot carry as a `telemetry` event (docs/contract.md#mavlink-style-telemetry).
    """
    emulator = make_emulator(dialect=dialect)
    async with AlienClient(make_config(emulator, nats_server, device_id="unit-1")) as client:
        org_id, entity_id = client.config.org_id, client.config.entity_id
        position_id = await client.update_position(40.7128, -74.0060, 100.5)
        telemetry_id = await client.publish_telemetry({"battery_level": 85.0, "sensors": {"temperature": float("nan")}})
        event_id = await client.publish_event("payload_dropped", {"bay": 2})
        assert await client.flush(10)
    stats = client.stats()  # after close: the shutdown event was flushed too
    assert (stats.duplicates, stats.depth, stats.in_flight, stats.parked) == (0, 0, 0, 0)

    # every acknowledged message is stored once, so this waits for all of them
    await emulator.wait_for_async(
        lambda: len(emulator.telemetry()) + len(emulator.events()) >= stats.published, 10, "messages"
    )
    telemetry = {m.headers["Nats-Msg-Id"]: m for m in emulator.telemetry()}
    assert {m.subject for m in telemetry.values()} == {f"constellation.telemetry.{org_id}.{entity_id}"}
    events: dict[str, list[Any]] = defaultdict(list)
    for message in emulator.events():
        events[message.json()["event_type"]].append(message)

    for kind in LIFECYCLE:
        (lifecycle,) = events[kind]
        assert lifecycle.subject == f"constellation.events.{org_id}.{kind}"
        body = lifecycle.json()
        # no "data" (docs/contract.md#lifecycle-events)
        assert set(body) == {"event_type", "entity_id", "device_id", "timestamp"}
        assert (body["event_type"], body["entity_id"], body["device_id"]) == (kind, entity_id, "unit-1")
        assert RFC3339_WITH_ZONE.match(body["timestamp"]), body["timestamp"]

    (event,) = events["payload_dropped"]
    assert event.headers["Nats-Msg-Id"] == event_id
    assert event.subject == f"constellation.events.{org_id}.payload_dropped"
    assert event.json()["event_type"] == "payload_dropped"
    assert event.json()["data"] == {"bay": 2}
    assert RFC3339_WITH_ZONE.match(event.json()["timestamp"])

    if dialect == "v0.0.1":
        assert set(events) == {"bootsequence", "payload_dropped", "shutdown"}
        assert set(telemetry) == {position_id, telemetry_id}
        assert stats.published == 5  # bootsequence, 2 telemetry, 1 event, shutdown
        position = telemetry[position_id]
        body = position.json()
        assert body["entity_id"] == entity_id
        assert RFC3339_WITH_ZONE.match(body["timestamp"]), body["timestamp"]
        assert body["data"] == {"position": {"latitude": 40.7128, "longitude": -74.006, "altitude": 100.5}}
        assert telemetry[telemetry_id].json()["data"]["sensors"] == {"temperature": None}  # never NaN on the wire
        return

    bodies = [m.json() for m in telemetry.values()]
    for body in bodies:
        assert set(body) == {"message_type", "message_id", "system_id", "component_id", "data", "timestamp"}
        assert (body["system_id"], body["component_id"]) == (1, 1)
        assert RFC3339_WITH_ZONE.match(body["timestamp"]), body["timestamp"]
    heartbeats = [b for b in bodies if b["message_type"] == "HEARTBEAT"]
    assert heartbeats  # one at connect, then one a second
    assert Counter(b["message_type"] for b in bodies) == {
        "GPS_RAW_INT": 1,
        "BATTERY_STATUS": 1,
        "SYS_STATUS": 1,
        "HEARTBEAT": len(heartbeats),
    }
    position = telemetry[position_id].json()
    assert (position["message_type"], position["message_id"]) == ("GPS_RAW_INT", 24)  # what v0.1.1 reads
    # degE7 and mm; what a plain position does not say, as common.xml's "unknown" values (alien.telemetry.mavlink)
    assert position["data"] == {
        "fix_type": 3,
        "lat": 407128000,
        "lon": -740060000,
        "alt": 100500,
        "eph": 65535,
        "epv": 65535,
        "vel": 65535,
        "cog": 65535,
        "satellites_visible": 255,
        "yaw": 0,
    }
    # the battery level is both messages' battery_remaining; publish_telemetry returned the first one's id
    (battery,) = [(i, m.json()) for i, m in telemetry.items() if m.json()["message_type"] == "BATTERY_STATUS"]
    (status,) = [(i, m.json()) for i, m in telemetry.items() if m.json()["message_type"] == "SYS_STATUS"]
    assert telemetry_id in (battery[0], status[0])
    assert battery[1]["message_id"] == 147
    assert battery[1]["data"] == {"id": 0, "battery_function": 0, "type": 0, "battery_remaining": 85}
    assert status[1]["message_id"] == 1
    assert status[1]["data"] == {"battery_remaining": 85}
    for beat in heartbeats:  # a drone (aircraft_multirotor: QUADROTOR), no autopilot, status active
        assert beat["message_id"] == 0
        assert beat["data"] == {"type": 2, "autopilot": 8, "base_mode": 0, "system_status": 4, "mavlink_version": 3}

    # "sensors" has no MAVLink message: it went out as a `telemetry` event, NaN as null
    assert set(events) == {"bootsequence", "telemetry", "payload_dropped", "shutdown"}
    (diverted,) = events["telemetry"]
    assert diverted.subject == f"constellation.events.{org_id}.telemetry"
    body = diverted.json()
    assert (body["entity_id"], body["event_type"]) == (entity_id, "telemetry")
    assert body["data"] == {"sensors": {"temperature": None}}
    assert RFC3339_WITH_ZONE.match(body["timestamp"]), body["timestamp"]
    # 4 events (bootsequence, telemetry, payload_dropped, shutdown) and 3 + the heartbeats as telemetry
    assert stats.published == 4 + 3 + len(heartbeats)

    # and the v0.1.1 server decodes every one of them
    def judged() -> int:
        return sum(
            len(v) for v in (emulator.telemetry_accepted(), emulator.telemetry_ignored(), emulator.telemetry_rejected())
        )

    await emulator.wait_for_async(lambda: judged() >= len(telemetry), 10, "the server's verdicts")
    assert (emulator.telemetry_rejected(), emulator.telemetry_ignored()) == ([], [])


async def test_invalid_event_type_and_position_fail_before_queueing(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig]
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    # no bootsequence: nothing is queued but what the test itself tries to queue
    async with AlienClient(make_config(emulator, nats_server, lifecycle_events=False)) as client:
        with pytest.raises(ValueError, match=r"event type 'bad.type'"):
            await client.publish_event("bad.type", {})
        with pytest.raises(ValueError, match="latitude 91"):
            await client.update_position(91, 0)
        assert client.stats().enqueued == 0


async def test_a_repeated_message_id_is_acknowledged_as_duplicate(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig]
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    # no bootsequence: the counters are the two puts' only
    async with AlienClient(make_config(emulator, nats_server, lifecycle_events=False)) as client:
        subject = f"constellation.telemetry.{client.config.org_id}.{client.config.entity_id}"
        payload = b'{"entity_id":"x","timestamp":"2026-01-01T00:00:00Z","data":{}}'
        for _ in range(2):  # what a retry after a lost PubAck looks like: same id, same payload
            client.outbox.put(OutgoingMessage("fixed-id-1", subject, payload, Lane.TELEMETRY))
            assert await client.flush(10)
        stats = client.stats()
        ack = await client.js.publish(subject, payload, headers={"Nats-Msg-Id": "fixed-id-1"})
    assert ack.duplicate is True
    assert (stats.published, stats.duplicates) == (2, 1)
    await emulator.wait_for_async(lambda: len(emulator.telemetry()) >= 1, 10, "telemetry")
    assert [m.headers["Nats-Msg-Id"] for m in emulator.telemetry()] == ["fixed-id-1"]


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_update_status_maps_for_server_and_keeps_exact_status_in_event(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], dialect: str
) -> None:
    emulator = make_emulator(dialect=dialect)
    async with AlienClient(make_config(emulator, nats_server)) as client:
        await client.update_status("returning")
        entity_id = client.config.entity_id
    (entity,) = [e for e in emulator.entities() if e["entity_id"] == entity_id]
    assert entity["status"] == "active"
    await emulator.wait_for_async(lambda: any("status_changed" in m.subject for m in emulator.events()), 10, "event")
    (event,) = [m.json() for m in emulator.events() if m.subject.endswith(".status_changed")]
    assert event["data"] == {"status": "returning", "server_status": "active"}


# --- commands ---


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_auto_intake_falls_back_to_core_on_a_real_server_layout(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], dialect: str
) -> None:
    emulator = make_emulator(dialect=dialect, command_processor=True)
    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    client = AlienClient(make_config(emulator, nats_server))

    async def on_return(data: dict[str, Any]) -> None:
        await received.put(data)

    client.register_command_handler("return_to_base", on_return)
    async with client:
        assert client.command_intake == "core"  # err 10100: the server's command-processor owns the queue
        subject = f"constellation.commands.{client.config.org_id}.{client.config.entity_id}"
        await _send_command(nats_server.url, subject, b'{"type": "return_to_base", "speed": 3}')
        await _send_command(nats_server.url, subject, b'{"command_type": "return_to_base", "speed": 4}')
        first = await asyncio.wait_for(received.get(), 10)
        second = await asyncio.wait_for(received.get(), 10)
    assert (first["speed"], second["speed"]) == (3, 4)


async def test_jetstream_intake_uses_a_durable_consumer_where_allowed(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig]
) -> None:
    emulator = make_emulator(dialect="v0.0.1", command_processor=False)
    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    config = make_config(emulator, nats_server, command_intake="jetstream")
    async with AlienClient(config) as client:
        client.register_command_handler("stop", received.put)
        assert client.command_intake == "jetstream"
        subject = f"constellation.commands.{client.config.org_id}.{client.config.entity_id}"
        info = await client.js.consumer_info("CONSTELLATION_COMMANDS", f"alien-{client.config.entity_id}")
        assert info.config.durable_name == f"alien-{client.config.entity_id}"
        await _send_command(nats_server.url, subject, b'{"type": "stop"}')
        assert (await asyncio.wait_for(received.get(), 10))["type"] == "stop"

    # a command sent while the device is away waits in the stream for the durable consumer
    await _send_command(nats_server.url, subject, b'{"type": "stop", "while": "away"}')
    async with AlienClient(make_config(emulator, nats_server, command_intake="jetstream")) as again:
        again.register_command_handler("stop", received.put)
        assert (await asyncio.wait_for(received.get(), 10)).get("while") == "away"


async def test_explicit_jetstream_intake_on_a_real_server_layout_fails_clearly(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig]
) -> None:
    emulator = make_emulator(dialect="v0.0.1", command_processor=True)
    client = AlienClient(make_config(emulator, nats_server, command_intake="jetstream"))
    with pytest.raises(Exception, match=r"10100|not unique"):
        await client.initialize()
    await client.close()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "malformed_json"),
        (b"\xff\xfe", "malformed_json"),
        (b"[1, 2, 3]", "not_an_object"),
        (b'{"params": {}}', "missing_type"),
        (b'{"type": "self_destruct", "command_id": "c-9"}', "unknown_type"),
        (b'{"type": "stop", "pad": "' + b"x" * 40_000 + b'"}', "too_large"),
    ],
)
async def test_bad_commands_are_rejected_and_reported(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], payload: bytes, reason: str
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    handled: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    async with AlienClient(make_config(emulator, nats_server, command_intake="core")) as client:
        client.register_command_handler("stop", handled.put)
        subject = f"constellation.commands.{client.config.org_id}.{client.config.entity_id}"
        await _send_command(nats_server.url, subject, payload)
        await emulator.wait_for_async(
            lambda: any(m.subject.endswith(".command_rejected") for m in emulator.events()), 10, "rejection"
        )
        # the intake is still alive after the bad command
        await _send_command(nats_server.url, subject, b'{"type": "stop"}')
        assert (await asyncio.wait_for(handled.get(), 10))["type"] == "stop"
    (event,) = [m.json() for m in emulator.events() if m.subject.endswith(".command_rejected")]
    assert event["data"]["reason"] == reason
    assert event["data"]["detail"]
    if reason == "unknown_type":
        assert event["data"]["command_id"] == "c-9" and event["data"]["type"] == "self_destruct"


async def test_a_failing_handler_is_reported_and_does_not_stop_the_intake(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig]
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    handled: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def explode(data: dict[str, Any]) -> None:
        raise RuntimeError("gripper jammed")

    async with AlienClient(make_config(emulator, nats_server)) as client:
        client.register_command_handler("grab", explode)
        client.register_command_handler("stop", handled.put)
        subject = f"constellation.commands.{client.config.org_id}.{client.config.entity_id}"
        await _send_command(nats_server.url, subject, b'{"type": "grab", "command_id": "g-1"}')
        await _send_command(nats_server.url, subject, b'{"type": "stop"}')
        assert (await asyncio.wait_for(handled.get(), 10))["type"] == "stop"
        await emulator.wait_for_async(
            lambda: any(m.subject.endswith(".command_failed") for m in emulator.events()), 10, "failure event"
        )
    (event,) = [m.json() for m in emulator.events() if m.subject.endswith(".command_failed")]
    assert event["data"] == {
        "command_id": "g-1",
        "type": "grab",
        "error": "gripper jammed",
        "error_type": "RuntimeError",
    }


# --- the link ---


async def test_subscriptions_and_publishing_survive_a_server_restart(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig]
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    async with AlienClient(make_config(emulator, nats_server, command_intake="core")) as client:
        client.register_command_handler("ping", received.put)
        subject = f"constellation.commands.{client.config.org_id}.{client.config.entity_id}"
        nats_server.kill()
        await asyncio.wait_for(_until(lambda: not client.link.connected.is_set()), 10)
        queued = await client.publish_telemetry({"during": "outage"})
        nats_server.restart()
        await asyncio.wait_for(client.link.connected.wait(), 20)
        assert client.link.reconnects >= 1
        assert await client.flush(20)
        await _send_command(nats_server.url, subject, b'{"type": "ping"}')
        assert (await asyncio.wait_for(received.get(), 10))["type"] == "ping"
    await emulator.wait_for_async(
        lambda: any(m.headers.get("Nats-Msg-Id") == queued for m in emulator.telemetry()), 20, "outage telemetry"
    )


async def test_first_connect_waits_for_a_late_nats_server(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig]
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    async with AlienClient(make_config(emulator, nats_server)):
        pass  # registered; the ids are saved
    nats_server.stop()
    checks_before = len([r for r in emulator.requests() if r.method == "GET"])
    client = AlienClient(make_config(emulator, nats_server))
    starting = asyncio.create_task(client.initialize())
    # the saved entity is verified over REST, then the client waits for NATS instead of failing
    await asyncio.wait_for(
        _until(lambda: len([r for r in emulator.requests() if r.method == "GET"]) > checks_before), 10
    )
    await asyncio.sleep(0.5)  # give a wrong implementation time to fail; nothing to wait for here
    assert not starting.done()
    nats_server.restart()
    await asyncio.wait_for(starting, 20)
    assert client.link.is_connected
    await client.close()


async def test_wrong_nats_credentials_fail_fast(make_emulator: Any, make_config: Callable[..., AlienConfig]) -> None:
    from alien_testing import NatsServer

    with NatsServer(token="right-token") as secured:
        emulator = make_emulator(dialect="v0.0.1", nats_url=secured.url, nats_options={"token": "right-token"})
        client = AlienClient(make_config(emulator, secured, nats_token="wrong-token"))
        with pytest.raises(NatsAuthError) as info:
            await asyncio.wait_for(client.initialize(), 15)
        await client.close()
        assert "wrong-token" not in str(info.value)
        good = AlienClient(make_config(emulator, secured, nats_token="right-token"))
        async with good:
            assert good.link.is_connected
        emulator.stop()  # before its nats-server goes away


async def _until(predicate: Callable[[], bool]) -> None:
    """Bounded by the caller's wait_for; checks on each loop turn of a short tick."""
    while not predicate():
        await asyncio.sleep(0.02)


async def test_outbox_counters_are_logged_while_non_zero(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], caplog: pytest.LogCaptureFixture
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    caplog.set_level("INFO", logger="alien")
    async with AlienClient(make_config(emulator, nats_server, stats_log_interval_s=0.1)) as client:
        nats_server.kill()
        await asyncio.wait_for(_until(lambda: not client.link.connected.is_set()), 10)
        for n in range(3):
            await client.publish_telemetry({"n": n})
        await asyncio.wait_for(_until(lambda: any("outbox: 3 waiting" in r.message for r in caplog.records)), 10)
        nats_server.restart()
        assert await client.flush(20)


async def test_a_telemetry_flood_is_rate_limited_and_counted_but_events_never_are(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], caplog: pytest.LogCaptureFixture
) -> None:
    """Default limits: 50 readings/s per key (burst 100) and 200/s in all (burst 400)."""
    emulator = make_emulator(dialect="v0.0.1")  # seed format: one message per reading, no heartbeat
    caplog.set_level("WARNING", logger="alien")
    async with AlienClient(make_config(emulator, nats_server, outbox_durability="memory")) as client:
        cfg = client.config
        before = client.stats().enqueued

        # one key flooding: its own bucket limits it
        began = time.monotonic()
        ids = [client.queue_telemetry({"imu": {"n": n}}) for n in range(5000)]
        elapsed = time.monotonic() - began
        one_key = sum(1 for i in ids if i)
        assert (
            cfg.telemetry_burst_per_key
            <= one_key
            <= cfg.telemetry_burst_per_key + cfg.telemetry_rate_limit_per_key_hz * elapsed
        )
        assert client.stats().dropped["rate_limited"] == 5000 - one_key

        # many keys, each within its own limit: the overall bucket limits them together
        began = time.monotonic()
        ids = [client.queue_telemetry({f"sensor{n % 100}": n}) for n in range(5000)]
        elapsed = time.monotonic() - began
        many_keys = sum(1 for i in ids if i)
        assert many_keys <= cfg.telemetry_burst + cfg.telemetry_rate_limit_hz * (elapsed + 0.001)

        # events (and command results, which are events) are never limited
        event_ids = [client.queue_event("payload_status", {"n": n}) for n in range(2000)]
        assert all(event_ids) and len(set(event_ids)) == 2000

        stats = client.stats()
        assert stats.enqueued - before == one_key + many_keys + 2000
        assert stats.dropped == {"rate_limited": 10_000 - one_key - many_keys}
        assert await client.flush(20)

    counted = {"events": 0, "payload_status": 0}

    def stored_events() -> int:
        # re-checked on every message the emulator records: parse each event once, not each time
        events = emulator.events()
        fresh = events[counted["events"] :]
        counted["events"] = len(events)
        counted["payload_status"] += sum(1 for e in fresh if e.json()["event_type"] == "payload_status")
        return counted["payload_status"]

    await emulator.wait_for_async(lambda: len(emulator.telemetry()) >= one_key + many_keys, 10, "telemetry")
    await emulator.wait_for_async(lambda: stored_events() >= 2000, 10, "events")
    assert (len(emulator.telemetry()), stored_events()) == (one_key + many_keys, 2000)
    # said once per limit at WARNING (the rest at DEBUG)
    warnings = [r.getMessage() for r in caplog.records if "arrives faster than" in r.getMessage()]
    assert len(warnings) == 2, warnings
    assert "'imu' arrives faster than 50 readings/s (burst 100)" in warnings[0]
    assert "faster than 200 readings/s (burst 400) in all" in warnings[1]


async def test_no_stream_for_the_subject_is_said_once_and_nothing_is_lost(
    make_emulator: Any, make_config: Callable[..., AlienConfig], caplog: pytest.LogCaptureFixture
) -> None:
    """NATS_URL pointing at a NATS server without the mothership's streams: one WARNING naming the subject."""
    from alien_testing import NatsServer

    emulator = make_emulator(dialect="v0.0.1")
    with NatsServer() as bare, caplog.at_level(logging.DEBUG, logger="alien.publisher"):
        async with AlienClient(make_config(emulator, bare, lifecycle_events=False)) as client:
            await client.publish_telemetry({"battery_level": 1.0})
            await client.publish_telemetry({"battery_level": 2.0})

            def retries() -> int:
                return sum(1 for r in caplog.records if "no stream captures" in r.getMessage())

            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while retries() < 2 and loop.time() < deadline:  # bounded poll: the publisher's backoff
                await asyncio.sleep(0.05)
            warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            subject = f"constellation.telemetry.{client.config.org_id}.{client.config.entity_id}"
            assert [w for w in warnings if "no JetStream stream" in w] == [
                f"no JetStream stream captures {subject}: messages wait in the outbox and are retried with their "
                "ids (is NATS_URL the mothership's NATS, has it created its streams, is ALIEN_JETSTREAM_DOMAIN right?)"
            ]
            assert retries() >= 2  # retried, quietly
            assert client.stats().depth + client.stats().in_flight == 2 and not client.stats().dropped


@pytest.mark.parametrize(("dialect", "setting"), [("v0.0.1", "auto"), ("v0.1", "off")])
async def test_no_entity_state_is_kept_where_it_is_never_written(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], dialect: str, setting: str
) -> None:
    emulator = make_emulator(dialect=dialect)
    async with AlienClient(make_config(emulator, nats_server, entity_state=setting)) as client:
        assert client.entity_state.disabled == f"not written (ALIEN_ENTITY_STATE={setting}, a {dialect} server)"
        await client.update_position(47.0, 8.0, 500)
        await client.publish_telemetry({"battery_level": 50.0})
        assert client.entity_state._owned == {}
        assert client.entity_state.writes == 0
