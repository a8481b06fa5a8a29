"""AlienFleet: several entities over one NATS connection (real nats-server, emulator, real HTTP)."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
import pytest

from alien import AlienConfig, AlienFleet, ConfigError, IdentityFileError
from alien.fleet import entity_dir_name

NAMES = ["SIM-000", "SIM-001", "SIM-002"]


def _connections(server: Any, name: str) -> int:
    """Client connections named `name`, as nats-server's monitoring endpoint lists them."""
    url = f"http://127.0.0.1:{server.monitor_port}/connz?limit=1024"
    with urllib.request.urlopen(url, timeout=5) as response:
        return sum(1 for c in json.load(response)["connections"] if c.get("name") == name)


def _fleet(config: AlienConfig, handled: dict[str, list[str]]) -> AlienFleet:
    fleet = AlienFleet(config)
    for name in NAMES:
        fleet.add(entity_name=name).register_command_handler("ping", _ping_handler(name, handled[name]))
    return fleet


def _ping_handler(name: str, handled: list[str]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def ping(command: dict[str, Any]) -> dict[str, Any]:
        handled.append(command["command_id"])
        return {"answered_by": name}

    return ping


@pytest.mark.parametrize("dialect", ["v0.0.1", "v0.1"])
async def test_entities_share_one_connection_with_their_own_identity_subjects_and_handlers(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], tmp_path: Path, dialect: str
) -> None:
    emulator = make_emulator(dialect=dialect)
    config = make_config(emulator, nats_server, org_name="Fleet Org")
    handled: dict[str, list[str]] = {name: [] for name in NAMES}
    async with _fleet(config, handled) as fleet:
        assert _connections(nats_server, "alien-fleet") == 1
        ids = {name: (c.config.org_id, c.config.entity_id) for name, c in fleet.clients.items()}
        assert len({org for org, _ in ids.values()}) == 1  # one organization, found by name after the first
        assert len({entity for _, entity in ids.values()}) == len(NAMES)
        for name, client in fleet.clients.items():
            saved = json.loads((tmp_path / "data" / "fleet" / name / "identity.json").read_text())
            assert saved["entity_id"] == client.config.entity_id
            await client.publish_telemetry({"battery_level": 50.0 + NAMES.index(name)})
        assert await fleet.flush(10)

        org_id, target = ids["SIM-001"]
        nc = await nats.connect(nats_server.url)
        try:
            await nc.publish(f"constellation.commands.{org_id}.{target}", b'{"type": "ping", "command_id": "p-1"}')
            await nc.flush()
        finally:
            await nc.close()
        await emulator.wait_for_async(
            lambda: any(m.json().get("event_type") == "command_completed" for m in emulator.events()), 10, "the reply"
        )
        assert handled == {"SIM-000": [], "SIM-001": ["p-1"], "SIM-002": []}
        completed = [m.json() for m in emulator.events() if m.json().get("event_type") == "command_completed"]
        assert completed[0]["entity_id"] == target and completed[0]["data"]["result"] == {"answered_by": "SIM-001"}

    assert {e["entity_id"] for e in emulator.entities()} == {entity for _, entity in ids.values()}
    telemetry_entities = {m.subject.split(".")[3] for m in emulator.telemetry()}
    assert {entity for _, entity in ids.values()} <= telemetry_entities
    # closed with the fleet (the server drops it from /connz once it has read the socket's end)
    await emulator.wait_for_async(lambda: _connections(nats_server, "alien-fleet") == 0, 5, "the fleet's connection")

    posts = sum(1 for r in emulator.requests() if r.method == "POST")
    async with _fleet(make_config(emulator, nats_server, org_name="Fleet Org"), handled) as again:
        assert {name: (c.config.org_id, c.config.entity_id) for name, c in again.clients.items()} == ids
    assert sum(1 for r in emulator.requests() if r.method == "POST") == posts  # nothing registered twice


async def test_an_outage_is_survived_by_every_entity_with_nothing_lost(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig]
) -> None:
    emulator = make_emulator(dialect="v0.1")
    fleet = _fleet(make_config(emulator, nats_server), {name: [] for name in NAMES})
    await fleet.initialize()
    try:
        nats_server.kill()  # the JetStream store stays for restart(): the streams are the server's
        await asyncio.wait_for(_disconnected(fleet), 10)
        sent = {
            name: [await c.publish_telemetry({"battery_level": float(i)}) for i in range(5)]
            for name, c in fleet.clients.items()
        }
        assert all(stats.depth >= 5 for stats in fleet.stats().values())  # each entity's own outbox holds them
        nats_server.restart()
        assert await fleet.flush(20)
        assert fleet.link.reconnects >= 1
    finally:
        await fleet.close()
    every_id = {msg_id for ids in sent.values() for msg_id in ids}

    def received() -> set[str | None]:
        return {m.headers.get("Nats-Msg-Id") for m in emulator.telemetry()}

    await emulator.wait_for_async(lambda: every_id <= received(), 15, "every entity's telemetry in the stream")

    def boots() -> list[str]:
        return [m.json()["entity_id"] for m in emulator.events() if m.json().get("event_type") == "bootsequence"]

    entity_ids = sorted(str(c.config.entity_id) for c in fleet.clients.values())
    # one bootsequence per entity at start and one after the shared connection came back
    await emulator.wait_for_async(lambda: sorted(boots()) == sorted(entity_ids * 2), 10, "two bootsequences each")


async def _disconnected(fleet: AlienFleet) -> None:
    while fleet.link.connected.is_set():  # bounded poll (wait_for): the link has no "disconnected" event
        await asyncio.sleep(0.01)


def test_bad_fleets_are_refused_with_the_reason(make_config: Callable[..., AlienConfig]) -> None:
    with pytest.raises(ConfigError, match="ALIEN_ENTITY_ID"):
        AlienFleet(make_config(entity_id="pinned"))
    fleet = AlienFleet(make_config())
    fleet.add(entity_name="A/B")
    with pytest.raises(ConfigError, match="already has an entity named 'A/B'"):
        fleet.add(entity_name="A/B")
    with pytest.raises(ConfigError, match="same directory"):
        fleet.add(entity_name="A:B")
    with pytest.raises(ConfigError, match="ENTITY_TYPE"):
        fleet.add(entity_name="C", entity_type="spaceship")


@pytest.mark.parametrize(
    ("name", "directory"),
    [("SIM-001", "SIM-001"), ("robot 7/arm", "robot_7_arm"), ("../../etc", "etc"), ("..", "entity"), ("é", "entity")],
)
def test_entity_directories_stay_inside_the_fleet_directory(name: str, directory: str) -> None:
    assert entity_dir_name(name) == directory


async def test_an_entity_added_during_an_outage_joins_the_same_connection(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig]
) -> None:
    emulator = make_emulator(dialect="v0.1")
    fleet = AlienFleet(make_config(emulator, nats_server))
    fleet.add(entity_name="A")
    await fleet.initialize()
    try:
        nats_server.kill()
        await asyncio.wait_for(_disconnected(fleet), 10)
        late = fleet.add(entity_name="B")
        joining = asyncio.create_task(fleet.initialize())  # registers over REST, then waits for the link
        await emulator.wait_for_async(lambda: len(emulator.entities()) == 2, 10, "B registered")
        nats_server.restart()
        await asyncio.wait_for(joining, 20)
        await late.publish_telemetry({"battery_level": 3.0})
        assert await fleet.flush(10)
        assert _connections(nats_server, "alien-fleet") == 1
    finally:
        await fleet.close()


async def test_a_fleet_that_fails_to_start_leaves_nothing_running(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], tmp_path: Path
) -> None:
    emulator = make_emulator(dialect="v0.1")
    fleet = AlienFleet(make_config(emulator, nats_server))
    first = fleet.add(entity_name="A")
    fleet.add(entity_name="B")
    broken = tmp_path / "data" / "fleet" / "B" / "identity.json"
    broken.parent.mkdir(parents=True)
    broken.write_text("{not json")
    with pytest.raises(IdentityFileError, match=r"identity\.json"):
        async with fleet:
            pytest.fail("the fleet must not start with a corrupt identity file")
    assert first.publisher._task is None or first.publisher._task.done()
    await emulator.wait_for_async(lambda: _connections(nats_server, "alien-fleet") == 0, 5, "the connection closed")
    assert broken.read_text() == "{not json"  # named, never silently replaced
