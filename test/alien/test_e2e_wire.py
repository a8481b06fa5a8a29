"""Encrypted telemetry and events against a real nats-server and the emulator, in every wire format.

What the server side sees (the emulator's records, a raw NATS subscriber on everything) holds the
chosen keys and events as sealed values only, and everything else as before: the envelope,
position and battery, which every server version still decodes (docs/encryption.md#what-stays-readable).
The operators' keys open what was sealed; the robot's own disk never held it in clear. The same
holds for readings queued in batches (publish_telemetry_batch, client.batch()) and for readings
with their own timestamp, which keep it.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import nats
import pytest

from alien import AlienClient, AlienConfig, Reading
from alien.e2e import Opener, context, generate_keypair, is_sealed
from alien.e2e.keys import private_key
from alien.wire import utc_timestamp

OPERATORS = (generate_keypair(), generate_keypair())
NOBODY = generate_keypair()
_TAG = os.urandom(4).hex()
CAMERA = {"faces": 2, "label": f"camera-plaintext-{_TAG}"}
DOOR = {"door": 7, "who": f"door-plaintext-{_TAG}"}
SECRETS = (CAMERA["label"].encode(), DOOR["who"].encode())
FIX = {"latitude": 32.94881, "longitude": -96.80132, "altitude": 152.4}
FORMATS = {  # telemetry format -> the emulator that reads it (docs/contract.md#telemetry-payloads)
    "seed": {"dialect": "v0.0.1"},
    "mavlink": {"dialect": "v0.1"},
    "envelope_v1": {"dialect": "v0.1", "release": "rc"},
}


@pytest.fixture
async def everything(nats_server: Any) -> AsyncIterator[list[Any]]:
    """Every message on constellation.> as a raw NATS subscriber sees it."""
    seen: list[Any] = []
    nc = await nats.connect(nats_server.url)

    async def keep(msg: Any) -> None:
        seen.append(msg)

    await nc.subscribe("constellation.>", cb=keep)
    await nc.flush()
    yield seen
    await nc.close()


def opener(pair: Any) -> Opener:
    return Opener([private_key(pair.seed)])


async def until(predicate: Callable[[], bool], what: str, timeout: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, f"never saw {what}"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("fmt", list(FORMATS))
async def test_the_server_side_sees_ciphertext_for_sensitive_keys_and_plaintext_for_the_rest(
    fmt: str,
    make_emulator: Any,
    nats_server: Any,
    make_config: Callable[..., AlienConfig],
    everything: list[Any],
    tmp_path: Path,
) -> None:
    emulator = make_emulator(**FORMATS[fmt])
    config = make_config(
        emulator,
        nats_server,
        entity_type="rover",
        telemetry_format=fmt,
        heartbeat_period_s=0,
        e2e_telemetry_keys=["camera"],
        e2e_events=["door_opened"],
        e2e_recipients=[pair.public_key for pair in OPERATORS],
    )

    def recorded() -> list[dict[str, Any]]:
        return [json.loads(m.data) for m in [*emulator.telemetry(), *emulator.events()]]

    async with AlienClient(config) as client:
        await client.publish_telemetry({"position": FIX, "battery_level": 81, "camera": CAMERA, "speed": 3.5})
        await client.publish_event("door_opened", DOOR)
        await client.publish_event("door_closed", {"door": 7})
        assert await client.flush(15)
        entity_id = client.config.entity_id
        assert entity_id is not None
        # the strict server forgets the entity on shutdown: its worker decides while the robot runs
        await until(lambda: any(r.get("event_type") == "door_closed" for r in recorded()), "the last event recorded")
        if fmt != "seed":
            await emulator.wait_for_async(lambda: len(emulator.telemetry_accepted()) >= 3, 15, "position, power")
    await until(lambda: any(m.subject.endswith(".door_closed") for m in everything), "the last event on the wire")
    # nothing on the wire or in the server's records holds the sealed values in clear
    for raw in [m.data for m in everything] + [m.data for m in [*emulator.telemetry(), *emulator.events()]]:
        assert not any(secret in raw for secret in SECRETS), raw[:200]

    events = {r["event_type"]: r for r in recorded() if "event_type" in r}
    door = events["door_opened"]
    assert (door["entity_id"], set(door)) == (entity_id, {"entity_id", "event_type", "timestamp", "data"})
    assert is_sealed(door["data"]) and events["door_closed"]["data"] == {"door": 7}
    for pair in OPERATORS:  # each reader opens it
        assert opener(pair).open(door["data"], context("event", entity_id, "door_opened")) == DOOR

    telemetry = [json.loads(m.data) for m in emulator.telemetry()]
    if fmt == "seed":
        (reading,) = telemetry
        data = reading["data"]
        assert (reading["entity_id"], data["position"], data["battery_level"]) == (entity_id, FIX, 81)
    else:  # position and battery as MAVLink messages, the free-form keys in a telemetry event
        types = {t["message_type"] for t in telemetry}
        assert {"GPS_RAW_INT" if fmt == "mavlink" else "GLOBAL_POSITION_INT", "BATTERY_STATUS"} <= types
        position = next(t for t in telemetry if t["message_type"].endswith(("GPS_RAW_INT", "POSITION_INT")))
        assert position["data"]["lat"] == round(FIX["latitude"] * 1e7)
        data = events["telemetry"]["data"]
        assert {v.message_type for v in emulator.telemetry_accepted()} >= {position["message_type"], "BATTERY_STATUS"}
        assert emulator.telemetry_rejected() == [] and emulator.quarantined() == []
    assert data["speed"] == 3.5 and is_sealed(data["camera"])
    assert [entry["kid"] for entry in data["camera"]["to"]] == [pair.public_key for pair in OPERATORS]
    camera = context("telemetry", entity_id, "camera")
    assert opener(OPERATORS[1]).open(data["camera"], camera) == CAMERA
    with pytest.raises(Exception, match="encrypted for another key"):
        opener(NOBODY).open(data["camera"], camera)
    # the robot's disk (outbox, identity) only ever held the sealed form
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert not any(secret in path.read_bytes() for secret in SECRETS), path


LOGGED = datetime.now(timezone.utc) - timedelta(hours=3)  # readings logged offline, replayed later


def frame(number: int) -> dict[str, Any]:
    return {"frame": number, "label": f"frame-{number}-plaintext-{_TAG}"}


@pytest.mark.parametrize("fmt", list(FORMATS))
async def test_readings_in_batches_and_with_their_own_timestamp_are_encrypted_and_keep_it(
    fmt: str,
    make_emulator: Any,
    nats_server: Any,
    make_config: Callable[..., AlienConfig],
    everything: list[Any],
    tmp_path: Path,
) -> None:
    emulator = make_emulator(**FORMATS[fmt])
    config = make_config(
        emulator,
        nats_server,
        entity_type="rover",
        telemetry_format=fmt,
        heartbeat_period_s=0,
        telemetry_rate_limit_hz=0,
        telemetry_rate_limit_per_key_hz=0,
        e2e_telemetry_keys=["camera"],
        e2e_events=["door_opened"],
        e2e_recipients=[OPERATORS[0].public_key],
    )
    fix = {"position": FIX}
    # frame: the time the reading says it was read (None: when it was queued)
    expected: dict[int, datetime | None] = {0: LOGGED, 1: LOGGED + timedelta(seconds=1), 2: None}
    expected |= {3: LOGGED + timedelta(seconds=2, microseconds=7), 4: None}

    def carriers() -> list[dict[str, Any]]:
        """Where each format carries the camera: the reading's data (seed), a `telemetry` event (MAVLink)."""
        records = [json.loads(m.data) for m in (emulator.telemetry() if fmt == "seed" else emulator.events())]
        return [r for r in records if "camera" in r.get("data", {})]

    client = AlienClient(config)
    try:
        await client.publish_telemetry({**fix, "camera": frame(0)}, timestamp=LOGGED)  # held until registered
        await asyncio.wait_for(client.initialize(), 20)
        entity_id = client.config.entity_id
        assert entity_id is not None
        await client.publish_telemetry_batch(
            [Reading({**fix, "camera": frame(1)}, expected[1]), {**fix, "camera": frame(2), "speed": 1.5}]
        )
        async with client.batch():
            await client.publish_telemetry({**fix, "camera": frame(3)}, timestamp=expected[3].timestamp())
            await client.publish_telemetry({"camera": frame(4)})
            await client.publish_event("door_opened", DOOR)
        await client.publish_event("door_closed", {"door": 7})
        assert await client.flush(15)
        await until(lambda: any(m.subject.endswith(".door_closed") for m in everything), "the last event on the wire")
        await emulator.wait_for_async(lambda: len(carriers()) >= len(expected), 15, "every reading's camera")
        await emulator.wait_for_async(lambda: len(emulator.events()) >= 3, 15, "the lifecycle and door events")
    finally:
        await client.close()

    secrets = [frame(n)["label"].encode() for n in expected] + [DOOR["who"].encode()]
    for raw in [m.data for m in everything] + [m.data for m in [*emulator.telemetry(), *emulator.events()]]:
        assert not any(secret in raw for secret in secrets), raw[:200]
    camera = context("telemetry", entity_id, "camera")
    opened = {}
    for record in carriers():
        assert is_sealed(record["data"]["camera"]), record
        value = opener(OPERATORS[0]).open(record["data"]["camera"], camera)
        opened[value["frame"]] = (value, record["timestamp"])
    assert sorted(opened) == sorted(expected)  # every reading once, each sealed
    for number, at in expected.items():
        value, timestamp = opened[number]
        assert value == frame(number)
        if at is not None:
            assert timestamp == utc_timestamp(at), number  # its own time, exactly
        else:
            assert timestamp > utc_timestamp(LOGGED + timedelta(seconds=3)), number  # read now
    events = {r["event_type"]: r for r in (json.loads(m.data) for m in emulator.events())}
    assert opener(OPERATORS[0]).open(events["door_opened"]["data"], context("event", entity_id, "door_opened")) == DOOR
    # sealed before the outbox stored them: only the reading held until registration was ever on disk in clear
    on_disk = b"".join(path.read_bytes() for path in tmp_path.rglob("*") if path.is_file())
    assert not any(frame(n)["label"].encode() in on_disk for n in (1, 2, 3, 4))
    assert DOOR["who"].encode() not in on_disk
