"""200 devices lose their hub at the same instant: with the shipped defaults they come back spread out.

nats-py retries every reconnect_time_wait exactly, so a fleet disconnected together reconnects
together, attempt after attempt; the client adds a random 0..ALIEN_NATS_RECONNECT_JITTER_S to every
attempt (docs/capacity.md#reconnect-storms). Measured on the server's side: when nats-server
accepted each connection again (/connz) and when the events stream stored each device's new
bootsequence, the event by which the mothership admits a device again.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import urllib.request
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlparse

import nats
import pytest
from nats.aio.client import Server

from alien import AlienClient, AlienConfig
from alien.link import NatsLink
from alien.nats_options import ReconnectSchedule
from alien.settings import NatsSettings
from alien_testing import MothershipEmulator, NatsServer
from alien_testing.stream_contents import read_stream

pytestmark = pytest.mark.timeout(180)

CLIENTS = 200
CONTROL_LINKS = 50
WAIT_S = AlienConfig.model_fields["nats_reconnect_wait_s"].default  # the shipped defaults, on purpose
JITTER_S = AlienConfig.model_fields["nats_reconnect_jitter_s"].default
BIN_S = 0.25


def connection_starts(server: NatsServer) -> dict[str, datetime]:
    """When nats-server accepted each current client connection, by connection name."""
    url = f"http://127.0.0.1:{server.monitor_port}/connz?limit={4 * CLIENTS}"
    with urllib.request.urlopen(url, timeout=5) as response:
        connections = json.load(response)["connections"]
    return {c["name"]: _parse_time(c["start"]) for c in connections if c.get("name", "").startswith("alien-herd-")}


def _parse_time(text: str) -> datetime:
    # nats-server writes nanoseconds; Python reads microseconds
    head, _, rest = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(rest + '000000')[:6]}").replace(tzinfo=timezone.utc)


async def until_all_connected(server: NatsServer, timeout: float, count: int = CLIENTS) -> None:
    """Bounded poll of the monitoring endpoint, off the loop: the clients' timers must not wait for it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (connected := len(await asyncio.to_thread(connection_starts, server))) < count:
        assert loop.time() < deadline, f"{connected} of {count} connections"
        await asyncio.sleep(0.2)


def spread(times: list[datetime], since: datetime) -> dict[str, float]:
    """When they came (seconds after `since`): first, last, the 10-90 % span, and the largest share in any BIN_S."""
    offsets = sorted((t - since).total_seconds() for t in times)
    deciles = statistics.quantiles(offsets, n=10)
    densest, start = 0, 0
    for end, offset in enumerate(offsets):  # a window sliding over the sorted offsets
        while offset - offsets[start] > BIN_S:
            start += 1
        densest = max(densest, end - start + 1)
    return {
        "first_s": round(offsets[0], 3),
        "last_s": round(offsets[-1], 3),
        "p10_p90_s": round(deciles[-1] - deciles[0], 3),
        "densest_share": densest / len(offsets),
    }


async def test_200_clients_reconnect_and_announce_themselves_spread_over_the_jitter_window(
    make_emulator: Callable[..., MothershipEmulator],
    nats_server: NatsServer,
    make_config: Callable[..., AlienConfig],
    tmp_path: Path,
) -> None:
    # no server consumers: the bootsequences stay in the events stream (a work queue) to be read
    emulator = make_emulator(dialect="v0.0.1", consumers=False)

    def config(n: int) -> AlienConfig:
        return make_config(
            emulator,
            nats_server,
            entity_name=f"herd-{n}",  # the connection is named alien-<entity name>
            config_file=str(tmp_path / f"identity-{n}.json"),
            data_dir=tmp_path / f"data-{n}",
            nats_reconnect_wait_s=WAIT_S,
            nats_reconnect_jitter_s=JITTER_S,
            nats_ping_interval_s=10.0,
            command_intake="core",  # what real servers allow; skips a JetStream consumer attempt each
            outbox_durability="memory",  # reconnect timing does not need the SQLite outbox (faster setup)
        )

    clients = [AlienClient(config(n)) for n in range(CLIENTS)]
    began = time.monotonic()
    await clients[0].initialize()  # creates the organization; the others find it by name
    await asyncio.gather(*(client.initialize() for client in clients[1:]))
    print(f"\n{CLIENTS} clients registered and connected in {time.monotonic() - began:.1f}s")
    try:
        assert len(await asyncio.to_thread(connection_starts, nats_server)) == CLIENTS
        nats_server.kill()
        await asyncio.sleep(0.5)  # the hub is down for half a second (the scenario)
        back = datetime.now(timezone.utc)  # nothing can connect before the process starts
        await asyncio.to_thread(nats_server.restart)

        await until_all_connected(nats_server, 3 * (WAIT_S + JITTER_S) + 10)
        reconnected = await asyncio.to_thread(connection_starts, nats_server)
        assert all(t >= back for t in reconnected.values())

        assert all(await asyncio.gather(*(client.flush(30) for client in clients)))  # every bootsequence stored
        nc = await nats.connect(nats_server.url)
        try:
            stored = await read_stream(nc.jetstream(), "CONSTELLATION_EVENTS", "constellation.events.*.bootsequence")
        finally:
            await nc.close()
        announced = [m for m in stored if m.stored_at >= back]
        connects = spread(list(reconnected.values()), back)
        bootsequences = spread([m.stored_at for m in announced], back)
    finally:
        await asyncio.gather(*(client.close(timeout=2) for client in clients))
    print(f"\nreconnects after the hub came back: {connects}\nbootsequences stored: {bootsequences}")
    # one each: a reconnect announces the device once
    assert sorted(json.loads(m.data)["entity_id"] for m in announced) == sorted(
        str(c.config.entity_id) for c in clients
    )
    for measured in (connects, bootsequences):
        # Uniform over the jitter window would put 80 % of them in 0.8 x JITTER_S and about 12 % in
        # any 250 ms (a first attempt that found the hub still down adds a second wave); a herd puts
        # nearly all of them in 250 ms (the test below).
        assert measured["p10_p90_s"] >= 0.5 * JITTER_S, measured
        assert measured["densest_share"] <= 0.35, measured
        assert measured["last_s"] <= WAIT_S + JITTER_S + 2.0, measured  # and not stretched beyond it


async def test_without_jitter_links_come_back_as_a_herd(nats_server: NatsServer) -> None:
    """The control: nats-py's own schedule (a fixed wait, no jitter) brings the links back at one instant.

    50 links, not 200: one process takes about a millisecond per reconnect handshake, which would
    spread 200 of them over a fraction of a second whatever the schedule.
    """
    settings = NatsSettings(servers=(nats_server.url,), reconnect_wait_s=WAIT_S, reconnect_jitter_s=0.0)
    links = [NatsLink(settings, name=f"alien-herd-{n}") for n in range(CONTROL_LINKS)]
    await asyncio.gather(*(link.connect() for link in links))
    try:
        nats_server.kill()
        await asyncio.sleep(0.5)  # the hub is down for half a second, as above
        back = datetime.now(timezone.utc)
        await asyncio.to_thread(nats_server.restart)
        await asyncio.wait_for(asyncio.gather(*(link.connected.wait() for link in links)), 10 * WAIT_S)
        await until_all_connected(nats_server, 10, CONTROL_LINKS)
        connects = spread(list((await asyncio.to_thread(connection_starts, nats_server)).values()), back)
    finally:
        await asyncio.gather(*(link.close(1.0) for link in links))
    print(f"\nwithout jitter: {connects}")
    # what the test above refuses: most of them within 250 ms, 10-90 % of them within less than
    # half the jitter window (one process's handshakes alone spread them a little)
    assert connects["densest_share"] > 0.35, connects
    assert connects["p10_p90_s"] < 0.5 * JITTER_S, connects


def test_the_schedule_tries_the_least_failed_server_and_waits_only_after_a_failure() -> None:
    schedule = ReconnectSchedule(wait_s=1.0, jitter_s=2.0)
    fresh, failed, other = (
        Server(uri=urlparse(f"nats://127.0.0.1:{port}"), reconnects=n) for port, n in ((1, 0), (2, 3), (3, 0))
    )
    waits = []
    for _ in range(500):
        chosen, wait = schedule([failed, fresh, other], {})
        assert chosen is fresh  # the fewest failed attempts; the pool's (shuffled) order breaks ties
        assert 0.0 <= wait <= 2.0
        waits.append(wait)
        chosen, wait = schedule([failed], {})
        assert chosen is failed and 1.0 <= wait <= 3.0  # a server that failed: the wait, then the jitter
    assert max(waits) - min(waits) > 1.8  # the jitter uses its whole window
    assert ReconnectSchedule(wait_s=1.0, jitter_s=0.0)([fresh], {}) == (fresh, 0.0)
