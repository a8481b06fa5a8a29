"""Faults on a 3-node NATS cluster (streams and KV with 3 replicas): nothing lost, nothing doubled.

Each test publishes telemetry at 100 Hz while a node (or two, or all in turn) goes away, then reads
the telemetry stream itself (not the client's counters): every id sent is there exactly once.
See docs/delivery.md#on-a-nats-cluster.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import nats
import pytest
from nats.aio.client import Client as NATS

from alien import AlienClient, AlienConfig, AlienFleet
from alien.wire import command_subject, telemetry_subject
from alien_testing import MothershipEmulator
from alien_testing.nats_cluster import NatsCluster
from alien_testing.stream_contents import StoredMessage, lost_and_doubled, read_stream

pytestmark = pytest.mark.timeout(120)

TELEMETRY = "CONSTELLATION_TELEMETRY"
RATE_HZ = 100
# These producers run above the default flood limits (50 readings/s per key) on purpose.
NO_FLOOD_LIMITS = {"telemetry_rate_limit_hz": 0, "telemetry_rate_limit_per_key_hz": 0}
TERMINAL = ("command_completed", "command_failed")
FLEET = ("ROVER-1", "ROVER-2", "ROVER-3")


@asynccontextmanager
async def producing(client: AlienClient, sent: list[str], rate_hz: float = RATE_HZ) -> AsyncIterator[None]:
    """Position readings at `rate_hz` on an absolute schedule; publish_telemetry never waits for the link."""
    loop = asyncio.get_running_loop()

    async def produce() -> None:
        start, n = loop.time(), 0
        while True:
            reading = {"position": {"latitude": 47.0, "longitude": 8.0, "altitude": float(n)}}
            sent.append(await client.publish_telemetry(reading))
            n += 1
            await asyncio.sleep(max(0.0, start + n / rate_hz - loop.time()))  # paces the load

    task = asyncio.create_task(produce())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Bounded poll of client-side state that has no event of its own."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.02)


async def stored_telemetry(cluster: NatsCluster, client: AlienClient) -> list[StoredMessage]:
    """What the telemetry stream holds for this entity, read over a connection of the test's own."""
    nc = await nats.connect(cluster.urls)
    try:
        org_id, entity_id = str(client.config.org_id), str(client.config.entity_id)
        return await read_stream(nc.jetstream(), TELEMETRY, telemetry_subject(org_id, entity_id))
    finally:
        await nc.close()


async def assert_each_stored_once(cluster: NatsCluster, client: AlienClient, sent: list[str]) -> None:
    assert await client.flush(60), f"not everything acknowledged: {client.stats()}"
    stored = await stored_telemetry(cluster, client)
    lost, doubled = lost_and_doubled(sent, stored)
    print(f"\n{len(sent)} readings sent, {len(stored)} messages stored, {len(lost)} lost, {len(doubled)} doubled")
    assert not lost, f"{len(lost)} of {len(sent)} lost, e.g. {lost[:3]}"
    assert not doubled, f"stored more than once: {list(doubled.items())[:3]}"
    others = {json.loads(m.data)["message_type"] for m in stored if m.msg_id not in set(sent)}
    assert others <= {"HEARTBEAT"}, others  # the client's own heartbeat, nothing else
    stats = client.stats()
    assert (stats.rejected, stats.parked, stats.dropped) == (0, 0, {}), stats


def node_of(cluster: NatsCluster, client: AlienClient) -> Any:
    url = client.nc.connected_url
    assert url is not None and url.port is not None
    return cluster.node_on_port(url.port)


async def recovers_on_its_own(client: AlienClient, emulator: MothershipEmulator, nc: NATS, command_id: str) -> None:
    """After the fault the operator map follows the robot again and a new command is carried out."""
    entity_id = str(client.config.entity_id)
    altitude = 100_000.0 + time.time() % 1000  # a position sent only now
    await client.update_position(47.0, 8.0, altitude)

    def on_the_map() -> bool:
        state = emulator.entity_state(entity_id) or {}
        return bool(state.get("position", {}).get("global", {}).get("altitude_msl") == altitude)

    await until(on_the_map, 30, "the KV entity state shows the position sent after the fault")
    subject = command_subject(str(client.config.org_id), entity_id)
    await nc.publish(subject, json.dumps({"type": "ping", "command_id": command_id}).encode())
    await emulator.wait_for_async(lambda: bool(terminal_events(emulator, command_id)), 30, f"{command_id} completed")


def command_events(emulator: MothershipEmulator, command_id: str) -> list[dict[str, Any]]:
    """The events stream's messages about `command_id`, once per stream sequence (redeliveries collapse)."""
    by_seq = {m.stream_seq: m.json() for m in emulator.events()}
    return [e for _, e in sorted(by_seq.items()) if (e.get("data") or {}).get("command_id") == command_id]


def terminal_events(emulator: MothershipEmulator, command_id: str) -> list[dict[str, Any]]:
    return [e for e in command_events(emulator, command_id) if e["event_type"] in TERMINAL]


@pytest.fixture
def cluster_config(
    cluster_emulator: MothershipEmulator, nats_cluster: NatsCluster, make_config: Callable[..., AlienConfig]
) -> Callable[..., AlienConfig]:
    def build(**overrides: Any) -> AlienConfig:
        return make_config(cluster_emulator, nats_cluster, **NO_FLOOD_LIMITS, **overrides)

    return build


async def test_the_node_the_client_is_connected_to_is_killed_mid_stream(
    nats_cluster: NatsCluster,
    cluster_emulator: MothershipEmulator,
    cluster_config: Callable[..., AlienConfig],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """NATS_URL names one node; the client learns the others from the cluster and moves to one of them."""
    caplog.set_level(logging.INFO, logger="alien.link")
    sent: list[str] = []
    client = AlienClient(cluster_config(nats_url=nats_cluster.urls[0]))
    client.register_command_handler("ping", lambda command: "pong")
    async with client:
        assert {u.port for u in client.nc.discovered_servers} == {n.port for n in nats_cluster.nodes[1:]}
        async with producing(client, sent):
            await until(lambda: len(sent) >= RATE_HZ, 5, "a second of readings")
            victim = node_of(nats_cluster, client)
            assert victim is nats_cluster.nodes[0]
            victim.kill()
            await until(lambda: client.link.reconnects >= 1, 10, "reconnected to a surviving node")
            assert node_of(nats_cluster, client) is not victim
            await until(lambda: client.stats().published > len(sent) // 2, 20, "publishing again")
            await asyncio.sleep(0.5)  # traffic after the fault (the scenario's pace)
        await assert_each_stored_once(nats_cluster, client, sent)
        nc = await nats.connect(nats_cluster.urls[1:])
        try:
            await recovers_on_its_own(client, cluster_emulator, nc, "after-kill")
        finally:
            await nc.close()
    assert client.link.reconnects == 1
    said = [
        (r.levelname, r.getMessage()) for r in caplog.records if r.name == "alien.link" and r.levelno >= logging.INFO
    ]
    print("\n" + "\n".join(f"{level} {text}" for level, text in said))
    # one line when the node went away, with why, and one when the client is on another
    assert [level for level, _ in said[1:]] == ["WARNING", "INFO"], said
    assert re.match(
        rf"disconnected from NATS at {victim.url} \((nats: unexpected EOF|.*reset by peer)\); reconnecting", said[1][1]
    )
    assert said[2][1].startswith("reconnected to NATS at nats://127.0.0.1:") and " after " in said[2][1]


async def test_the_telemetry_stream_leader_is_killed_mid_stream(
    nats_cluster: NatsCluster,
    cluster_emulator: MothershipEmulator,
    cluster_config: Callable[..., AlienConfig],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The stream elects a new leader (seconds without one); a fleet on another node retries with the same ids.

    Three entities share the fleet's connection: the outage is said once, not once per entity.
    """
    leader = nats_cluster.stream_leader(TELEMETRY)
    others = [node for node in nats_cluster.nodes if node is not leader]
    fleet = AlienFleet(cluster_config(nats_url=",".join(node.url for node in others), org_name="Cluster Fleet"))
    for name in FLEET:
        fleet.add(entity_name=name).register_command_handler("ping", lambda command: "pong")
    sent: dict[str, list[str]] = {name: [] for name in FLEET}
    caplog.set_level(logging.INFO, logger="alien")
    async with fleet, AsyncExitStack() as producers:
        for name, client in fleet.clients.items():
            await producers.enter_async_context(producing(client, sent[name], RATE_HZ / len(FLEET)))

        def published() -> int:
            return sum(client.stats().published for client in fleet.clients.values())

        await until(lambda: published() >= RATE_HZ, 5, "a second of readings")
        killed_at = published()
        leader.kill()
        assert await asyncio.to_thread(nats_cluster.stream_leader, TELEMETRY) is not leader  # elected (bounded)
        await until(lambda: published() > killed_at + RATE_HZ, 30, "publishing again")
        await producers.aclose()
        for name, client in fleet.clients.items():
            await assert_each_stored_once(nats_cluster, client, sent[name])
        nc = await nats.connect([node.url for node in others])
        try:
            await recovers_on_its_own(fleet.clients[FLEET[0]], cluster_emulator, nc, "after-leader-kill")
        finally:
            await nc.close()
        assert fleet.link.disconnects == 0  # its own node never went away
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name.startswith("alien")]
    telemetry_lines = [line for line in lines if "on constellation.telemetry.>" in line[1]]
    print("\n" + "\n".join(f"{level} {text}" for level, text in telemetry_lines))
    # one line when the stream stopped taking messages and one when it took them again: not one per
    # message, nor one per entity
    assert [level for level, _ in telemetry_lines] == ["WARNING", "INFO"]
    assert "not taking messages" in telemetry_lines[0][1] and "again after" in telemetry_lines[1][1]
    assert not [line for line in lines if line[0] == "ERROR" or "no JetStream stream captures" in line[1]]


async def test_without_quorum_for_10_s_the_outbox_holds_everything_and_drains_it(
    nats_cluster: NatsCluster, cluster_emulator: MothershipEmulator, cluster_config: Callable[..., AlienConfig]
) -> None:
    """Two of three nodes stopped: no stream can store anything; the readings wait in the outbox."""
    sent: list[str] = []
    async with AlienClient(cluster_config()) as client:
        survivor = node_of(nats_cluster, client)
        stopped = [node for node in nats_cluster.nodes if node is not survivor]
        async with producing(client, sent):
            await until(lambda: len(sent) >= RATE_HZ, 5, "a second of readings")
            for node in stopped:
                await asyncio.to_thread(node.stop)
            await asyncio.sleep(1.0)  # what was in flight when quorum went is answered or not by now
            published_at, sent_at = client.stats().published, len(sent)
            await asyncio.sleep(9.0)  # the outage: 10 s without quorum in all
            held = client.stats()
            sent_in_outage = len(sent) - sent_at
            for node in stopped:
                await asyncio.to_thread(node.start)
            await asyncio.sleep(0.5)  # traffic after the outage
        print(f"\nwithout quorum: {sent_in_outage} readings sent, {held.published - published_at} acknowledged, {held}")
        assert held.published == published_at  # nothing was stored without quorum...
        assert held.depth + held.in_flight >= sent_in_outage  # ...and everything waited in the outbox
        await assert_each_stored_once(nats_cluster, client, sent)
        assert client.stats().depth == 0


async def test_a_rolling_restart_during_a_command_gives_it_exactly_one_terminal_event(
    nats_cluster: NatsCluster, cluster_emulator: MothershipEmulator, cluster_config: Callable[..., AlienConfig]
) -> None:
    """Every node restarted in turn while a command runs: one command_received, one command_completed."""
    sent: list[str] = []
    running, release = asyncio.Event(), asyncio.Event()

    async def survey(command: dict[str, Any]) -> dict[str, Any]:
        running.set()
        await release.wait()
        return {"surveyed": True}

    client = AlienClient(cluster_config())
    client.register_command_handler("survey", survey)
    async with client:
        subject = command_subject(str(client.config.org_id), str(client.config.entity_id))
        async with producing(client, sent):
            operator = await nats.connect(nats_cluster.urls)
            try:
                await operator.publish(subject, b'{"type": "survey", "command_id": "survey-1"}')
                await operator.flush()
            finally:
                await operator.close()
            await asyncio.wait_for(running.wait(), 10)
            for node in nats_cluster.nodes:
                await asyncio.to_thread(node.restart)
                await asyncio.to_thread(nats_cluster.wait_healthy, 60)
            release.set()
            await cluster_emulator.wait_for_async(
                lambda: bool(terminal_events(cluster_emulator, "survey-1")), 60, "the command's terminal event"
            )
        await assert_each_stored_once(nats_cluster, client, sent)
        assert client.link.reconnects >= 1
    events = command_events(cluster_emulator, "survey-1")
    print("\n" + ", ".join(e["event_type"] for e in events))
    assert [e["event_type"] for e in events] == ["command_received", "command_completed"]
    assert events[-1]["data"]["result"] == {"surveyed": True}
