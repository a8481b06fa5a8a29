"""AlienClient end to end, publishing: real nats-server, the mothership emulator, real HTTP.

Telemetry and events as the server stores them in both dialects, lifecycle events
(docs/contract.md#lifecycle-events), duplicate ids (docs/contract.md#message-ids-and-duplicate-windows),
status updates, the telemetry flood limits (docs/delivery.md#flood-protection), a NATS without the
mothership's streams, and no operator-map state where it is never written
(docs/contract.md#operator-map-kv).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import pytest
from client_support import DIALECTS

from alien import AlienClient, AlienConfig
from alien.delivery.outbox import Lane, OutgoingMessage

LIFECYCLE = ("bootsequence", "shutdown")  # docs/contract.md#lifecycle-events
RFC3339_WITH_ZONE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


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
