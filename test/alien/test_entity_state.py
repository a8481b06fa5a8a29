"""Entity state in CONSTELLATION_GLOBAL_STATE (docs/contract.md#operator-map-kv): merge, compare-and-set,
switching off."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import nats
import pytest
from nats.js.api import KeyValueConfig

from alien.entity_state import BUCKET, EntityStateWriter, merge_owned, state_from_telemetry
from alien.link import NatsLink
from alien.settings import NatsSettings
from alien_testing import NatsServer

ENTITY = "entity-1"


def test_merge_replaces_owned_fields_and_keeps_everyone_elses() -> None:
    current = {
        "entity_id": ENTITY,
        "position": {"global": {"latitude": 1.0, "longitude": 2.0}, "local": {"x": 5}},
        "vehicle_status": {"armed": True},
        "power": {"voltage": 11.0},
    }
    owned = {"position": {"global": {"latitude": 3.0, "longitude": 4.0}}, "power": {"voltage": 12.5}}
    merged = merge_owned(current, owned)
    assert merged["position"] == {"global": {"latitude": 3.0, "longitude": 4.0}, "local": {"x": 5}}
    assert merged["vehicle_status"] == {"armed": True}
    assert merged["power"] == {"voltage": 12.5}
    assert current["power"] == {"voltage": 11.0}  # the input is not modified


def test_defaults_fill_only_what_is_missing_and_vfr_keeps_the_servers_keys() -> None:
    current = {"priority": "high", "vfr": {"airspeed": 4.0, "heading": 10}}
    merged = merge_owned(current, {"vfr": {"heading": 90}}, {"priority": "normal"})
    assert merged == {"priority": "high", "vfr": {"airspeed": 4.0, "heading": 90}}  # an operator's priority stays
    assert merge_owned({}, {}, {"priority": "normal"}) == {"priority": "normal"}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"position": {"latitude": 32.9, "longitude": -96.8, "altitude": 152.4, "relative_altitude": 30.5}},
            {
                "position": {
                    "global": {"latitude": 32.9, "longitude": -96.8, "altitude_msl": 152.4, "altitude_relative": 30.5}
                }
            },
        ),
        ({"position": {"latitude": None, "longitude": 1.0}}, {}),  # no fix: nothing to show
        (
            {"power": {"voltage": 12.6, "current": -1.5, "percentage": 87.4}},
            {"power": {"voltage": 12.6, "current": 1.5, "battery_remaining": 87}},  # MAVLink sign: drawn > 0
        ),
        (
            {"power": {"voltage": float("nan"), "percentage": None}},
            {"power": {"voltage": None, "current": None, "battery_remaining": -1}},
        ),
        ({"battery_level": 85.0}, {"power": {"voltage": None, "current": None, "battery_remaining": 85}}),
        ({"speed": 3.0}, {}),
        (
            {"position": {"latitude": 1.0, "longitude": 2.0, "heading": -90.4}},
            {"position": {"global": {"latitude": 1.0, "longitude": 2.0}}, "vfr": {"heading": 270}},
        ),
    ],
)
def test_state_from_telemetry(data: dict[str, Any], expected: dict[str, Any]) -> None:
    assert state_from_telemetry(data) == expected


@pytest.fixture
async def bucket(nats_server: NatsServer) -> AsyncIterator[Any]:
    """The bucket as the server creates it (the client never creates it)."""
    nc = await nats.connect(nats_server.url)
    kv = await nc.jetstream().create_key_value(KeyValueConfig(bucket=BUCKET, history=10))
    yield kv
    await nc.close()


@pytest.fixture
async def make_writer(nats_server: NatsServer) -> AsyncIterator[Callable[..., Any]]:
    links: list[NatsLink] = []
    writers: list[EntityStateWriter] = []

    async def make(**options: Any) -> EntityStateWriter:
        link = NatsLink(NatsSettings(servers=(nats_server.url,), publish_timeout_s=2.0))
        await link.connect()
        links.append(link)
        writer = EntityStateWriter(link, lambda: ENTITY, **options)
        writers.append(writer)
        return writer

    yield make
    for writer in writers:
        await writer.stop()
    for link in links:
        await link.close()


async def _value(kv: Any) -> dict[str, Any]:
    return json.loads((await kv.get(ENTITY)).value)  # type: ignore[no-any-return]


async def test_two_concurrent_writers_lose_no_fields(bucket: Any, make_writer: Callable[..., Any]) -> None:
    await bucket.put(ENTITY, json.dumps({"entity_id": ENTITY, "org_name": "Fleet"}).encode())
    navigator, gauge = await make_writer(), await make_writer()
    for round_ in range(20):
        navigator.update({"position": {"global": {"latitude": float(round_), "longitude": 1.0}}})
        gauge.update({"power": {"voltage": 10.0 + round_, "current": None, "battery_remaining": round_}})
        assert await asyncio.gather(navigator.write(), gauge.write()) == [True, True]
    state = await _value(bucket)
    assert state["position"]["global"]["latitude"] == 19.0
    assert state["power"]["battery_remaining"] == 19
    assert state["org_name"] == "Fleet"  # a field neither of them owns survives every write
    assert state["last_seen"].endswith("Z")
    # Both read the same revision before either wrote, so compare-and-set refused one each round.
    assert navigator.conflicts + gauge.conflicts >= 1
    assert navigator.writes == gauge.writes == 20


async def test_first_write_creates_the_entry(bucket: Any, make_writer: Callable[..., Any]) -> None:
    writer = await make_writer()
    writer.update({"is_live": True, "name": "rover"})
    assert await writer.write()
    assert {"is_live": True, "name": "rover"}.items() <= (await _value(bucket)).items()


async def test_background_loop_writes_the_latest_state(bucket: Any, make_writer: Callable[..., Any]) -> None:
    writer = await make_writer(period_s=0.05)
    writer.start()
    for level in range(5):
        writer.update({"power": {"battery_remaining": level}})
    # bounded poll of the KV entry, not a sleep
    for _ in range(200):
        try:
            if (await _value(bucket)).get("power", {}).get("battery_remaining") == 4:
                break
        except nats.js.errors.KeyNotFoundError:
            pass
        await asyncio.sleep(0.02)
    assert (await _value(bucket))["power"]["battery_remaining"] == 4
    assert writer.writes <= 2  # five updates coalesced into at most two writes


async def test_a_value_that_is_not_an_object_is_never_overwritten(
    bucket: Any, make_writer: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    await bucket.put(ENTITY, b"[1, 2, 3]")
    writer = await make_writer()
    writer.update({"is_live": True})
    with caplog.at_level(logging.ERROR, logger="alien.entity_state"):
        assert not await writer.write()
    assert (await bucket.get(ENTITY)).value == b"[1, 2, 3]"
    assert f"{BUCKET}[{ENTITY}] is not a JSON object" in caplog.text


async def test_switches_off_once_when_the_server_has_no_bucket(
    nats_server: NatsServer, make_writer: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    writer = await make_writer()
    writer.update({"is_live": True})
    with caplog.at_level(logging.INFO, logger="alien.entity_state"):
        assert not await writer.write()
        assert not await writer.write()
    assert writer.disabled == f"the server has no {BUCKET} KV bucket"
    assert caplog.text.count("switched off") == 1


def test_only_alien_fields_can_be_updated() -> None:
    link = NatsLink(NatsSettings())
    writer = EntityStateWriter(link, lambda: ENTITY)
    with pytest.raises(ValueError, match="vehicle_status"):
        writer.update({"vehicle_status": {}})
