"""The durable-outbox fault suite against a real nats-server: bounds, refusals and a cut link.

Items 1 and 2 (nats-server SIGKILLed while publishing, client SIGKILLed) are in
test_outbox_store.py; this file has the outage longer than the bound (4), the message the server
refuses for good (5) and the network path cut without killing the server (6).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import urllib.request
from collections import Counter
from collections.abc import Callable
from typing import Any

from alien import AlienClient, AlienConfig
from alien.delivery.outbox_store import SqliteStore
from alien_testing import MothershipEmulator, NatsServer

KIB = 1024
MIB = 1024 * KIB
# These producers run far above the default flood limits (50 readings/s per key) on purpose.
NO_FLOOD_LIMITS = {"telemetry_rate_limit_hz": 0, "telemetry_rate_limit_per_key_hz": 0}


def _rss_bytes() -> int:
    """Resident set size now (not the high-water mark ru_maxrss reports)."""
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def _stream_ids(emulator: MothershipEmulator) -> Counter[str]:
    """Nats-Msg-Id of every telemetry message the server stored, counted once per stream sequence.

    A consumer redelivery (same stream sequence) is not a duplicate in the stream; a second
    sequence for one id is.
    """
    seqs = {(m.stream_seq, m.headers["Nats-Msg-Id"]) for m in emulator.telemetry()}
    return Counter(msg_id for _, msg_id in seqs)


def _server_in_bytes(server: NatsServer) -> int:
    """Bytes nats-server has received from all clients (monitoring endpoint /varz)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{server.monitor_port}/varz", timeout=5) as response:
        return int(json.load(response)["in_bytes"])


async def _until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Bounded poll of client-side state that has no event of its own."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.01)


async def test_an_outage_longer_than_the_bound_drops_the_oldest_telemetry_in_bounded_memory(
    make_emulator: Any, nats_server: NatsServer, make_config: Callable[..., AlienConfig]
) -> None:
    """Fault suite 4: 20,000 x 1 KB while nats-server is down; 500 kept, the rest dropped and counted."""
    emulator = make_emulator(dialect="v0.0.1")
    total, bound = 20_000, 500
    # 500 x ~1.1 KB is well under the byte bound: here the message bound is the one that binds
    # no bootsequence (at connect and again after the restart): `published` counts the telemetry only
    config = make_config(
        emulator,
        nats_server,
        outbox_max_messages=bound,
        outbox_max_bytes=2 * MIB,
        lifecycle_events=False,
        **NO_FLOOD_LIMITS,
    )
    sent: list[str] = []
    async with AlienClient(config) as client:
        loop = asyncio.get_running_loop()
        nats_server.kill()
        await _until(lambda: not client.link.connected.is_set(), 5, "the client notices the server is gone")
        gc.collect()
        rss_before = _rss_bytes()
        began = loop.time()
        for n in range(total):
            # ~1 KB of incompressible text per message; 20 MB in all, 0.5 MB of it may be kept
            sent.append(await client.publish_telemetry({"n": n, "blob": os.urandom(512).hex()}))
            if n % 100 == 99:
                await asyncio.sleep(0)  # a producer yields to the loop now and then, as a real one does
        enqueue_s = loop.time() - began
        gc.collect()
        rss_growth = _rss_bytes() - rss_before
        stats = client.stats()
        print(
            f"\noutage: {total} messages queued in {enqueue_s:.2f}s, depth {stats.depth} "
            f"(+{stats.in_flight} in flight), {stats.depth_bytes} bytes, dropped {stats.dropped}, "
            f"RSS grew {rss_growth / MIB:.2f} MiB"
        )
        assert stats.depth + stats.in_flight <= bound
        assert stats.depth <= bound
        assert stats.dropped.get("full_telemetry", 0) == total - bound
        assert rss_growth < 15 * MIB  # an unbounded queue would hold the whole 20 MB

        nats_server.restart()
        assert await client.flush(30)
        published = client.stats().published
    assert published == bound
    await emulator.wait_for_async(lambda: len(_stream_ids(emulator)) >= bound, 15, f"{bound} messages")
    ids = _stream_ids(emulator)
    kept = [n for n, msg_id in enumerate(sent) if msg_id in ids]
    # the newest 500: the oldest were the ones dropped
    assert set(ids) == set(sent[-bound:]), f"kept message numbers {kept[:3]}..{kept[-3:]}, not {total - bound}.."
    assert max(ids.values()) == 1


async def test_the_byte_bound_holds_during_an_outage_too(
    make_emulator: Any, nats_server: NatsServer, make_config: Callable[..., AlienConfig]
) -> None:
    """Fault suite 4b: with room for many messages but only 256 KiB, bytes bind; drops counted, the newest kept."""
    emulator = make_emulator(dialect="v0.0.1")
    total, max_bytes = 2_000, 256 * KIB
    config = make_config(
        emulator, nats_server, outbox_max_messages=10_000, outbox_max_bytes=max_bytes, **NO_FLOOD_LIMITS
    )
    async with AlienClient(config) as client:
        nats_server.kill()
        await _until(lambda: not client.link.connected.is_set(), 5, "the client notices the server is gone")
        sent = [await client.publish_telemetry({"n": n, "blob": os.urandom(512).hex()}) for n in range(total)]
        stats = client.stats()
        print(f"\nbyte bound: depth {stats.depth} ({stats.depth_bytes} bytes), dropped {stats.dropped}")
        assert stats.depth_bytes <= max_bytes
        assert stats.depth < total // 2  # ~1.1 KB each: about 230 fit
        assert stats.dropped.get("full_telemetry", 0) == total - stats.depth - stats.in_flight
        nats_server.restart()
        assert await client.flush(15)
        kept = stats.depth + stats.in_flight
    await emulator.wait_for_async(lambda: len(_stream_ids(emulator)) >= kept, 10, f"{kept} messages")
    ids = _stream_ids(emulator)
    assert set(ids) == set(sent[-kept:])
    assert max(ids.values()) == 1


async def test_a_message_the_stream_refuses_is_parked_and_the_rest_keep_flowing(
    make_emulator: Any, nats_server: NatsServer, make_config: Callable[..., AlienConfig]
) -> None:
    """Fault suite 5: ~100 KB telemetry on v0.0.1 (stream max_msg_size 64 KiB) is parked; its neighbours arrive."""
    emulator = make_emulator(dialect="v0.0.1")
    # no bootsequence: the counters are the three messages' only
    async with AlienClient(make_config(emulator, nats_server, lifecycle_events=False)) as client:
        first = await client.publish_telemetry({"n": 1})
        too_big = await client.publish_telemetry({"n": 2, "blob": "x" * (100 * KIB)})
        last = await client.publish_telemetry({"n": 3})
        await emulator.wait_for_async(lambda: {first, last} <= set(_stream_ids(emulator)), 10, "both small messages")
        # One PubAck round trip settles the refused one too; 5 s is more than twice publish_timeout_s.
        flushed = await client.flush(5)
        stats = client.stats()
        store = client.outbox.store
        assert isinstance(store, SqliteStore)
        parked = store.parked()
        print(f"\nflushed={flushed}, {stats.parked} parked, {stats.rejected} rejected, {stats.published} published")
        print(f"parked rows: {parked}")
    assert flushed
    assert (stats.parked, stats.rejected, stats.published) == (1, 1, 2)
    ((parked_id, subject, reason),) = parked
    assert parked_id == too_big
    assert subject.startswith("constellation.telemetry.")
    assert "10054" in reason and "message size exceeds maximum allowed" in reason
    ids = _stream_ids(emulator)
    assert set(ids) == {first, last}
    assert max(ids.values()) == 1


async def test_a_message_over_max_payload_is_parked_without_reaching_the_server(
    make_emulator: Any, nats_server: NatsServer, make_config: Callable[..., AlienConfig]
) -> None:
    """Fault suite 5b: ~1.2 MB (the server's max_payload is 1 MB) is parked by the client itself."""
    emulator = make_emulator(dialect="v0.0.1")
    # no bootsequence: the counters are the three messages' only
    async with AlienClient(make_config(emulator, nats_server, lifecycle_events=False)) as client:
        assert client.nc.max_payload == MIB
        received_before = await asyncio.to_thread(_server_in_bytes, nats_server)
        first = await client.publish_telemetry({"n": 1})
        too_big = await client.publish_telemetry({"n": 2, "blob": "x" * (1200 * KIB)})
        last = await client.publish_telemetry({"n": 3})
        assert await client.flush(10)
        received = await asyncio.to_thread(_server_in_bytes, nats_server) - received_before
        stats = client.stats()
        store = client.outbox.store
        assert isinstance(store, SqliteStore)
        ((parked_id, _, reason),) = store.parked()
        print(f"\nparked {parked_id}: {reason}; the server received {received} bytes meanwhile")
    assert (stats.parked, stats.rejected, stats.published) == (1, 1, 2)
    assert parked_id == too_big
    assert "max_payload" in reason
    assert received < 100 * KIB  # the small ones and the protocol chatter, not the 1.2 MB
    await emulator.wait_for_async(lambda: {first, last} <= set(_stream_ids(emulator)), 10, "both small messages")
    assert set(_stream_ids(emulator)) == {first, last}


async def test_a_cut_network_path_is_noticed_by_pings_and_nothing_is_lost_or_doubled(
    make_emulator: Any, nats_server: NatsServer, make_config: Callable[..., AlienConfig]
) -> None:
    """Fault suite 6: nats-server SIGSTOPped (connections open, nothing answered) while publishing."""
    # The emulator's connection is cut too. Its consumers probe with nc.flush(timeout=1); a PONG
    # arriving after that timeout makes nats-py's read loop die (InvalidStateError in
    # _process_pong), leaving a deaf connection until the ping timer calls it stale. Fast pings
    # make that (and the cut itself) short for the emulator as they do for the client.
    emulator = make_emulator(dialect="v0.0.1", nats_options={"ping_interval": 0.5, "max_outstanding_pings": 2})
    config = make_config(
        emulator, nats_server, nats_ping_interval_s=0.5, nats_max_outstanding_pings=2, **NO_FLOOD_LIMITS
    )
    sent: dict[str, list[str]] = {"before": [], "during": [], "after": []}
    phase = "before"
    async with AlienClient(config) as client:
        loop = asyncio.get_running_loop()

        async def publish_at_100_hz() -> None:
            start, n = loop.time(), 0
            while True:
                sent[phase].append(await client.publish_telemetry({"n": n, "phase": phase}))
                n += 1
                await asyncio.sleep(max(0.0, start + n / 100 - loop.time()))  # paces the load

        producer = asyncio.create_task(publish_at_100_hz())
        try:
            await asyncio.sleep(0.5)  # traffic before the cut (the scenario's pace)
            nats_server.pause()
            phase = "during"
            cut_at = loop.time()
            await _until(lambda: not client.link.connected.is_set(), 5, "the client notices the cut")
            detected_s = loop.time() - cut_at
            await asyncio.sleep(1.0)  # the cut lasts another second after it was noticed
            nats_server.resume()
            resumed_at = loop.time()
            await asyncio.wait_for(client.link.connected.wait(), 10)
            reconnect_s = loop.time() - resumed_at
            phase = "after"
            await asyncio.sleep(0.5)  # traffic after the cut
        finally:
            producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)
        assert await client.flush(15)
        drained_s = loop.time() - resumed_at
        stats = client.stats()
    print(
        f"\ncut noticed after {detected_s:.2f}s (ping 0.5 s x 2 outstanding), reconnected {reconnect_s:.2f}s "
        f"after resume, all acknowledged {drained_s:.2f}s after resume; sent {[len(v) for v in sent.values()]} "
        f"before/during/after, {stats.duplicates} duplicate acks"
    )
    assert 0.5 <= detected_s <= 3.0
    assert all(sent.values())
    # publish_telemetry never waited for the dead link: the producer kept its 100 Hz through the cut
    assert len(sent["during"]) >= 0.8 * 100 * (resumed_at - cut_at)
    everything = [msg_id for ids in sent.values() for msg_id in ids]
    await emulator.wait_for_async(lambda: set(everything) <= set(_stream_ids(emulator)), 15, "every message")
    ids = _stream_ids(emulator)
    assert set(ids) == set(everything)
    assert max(ids.values()) == 1
