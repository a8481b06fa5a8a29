"""Batches of readings (docs/library.md#batches-of-readings): one store transaction, each reading its own message.

Against a real nats-server and the emulator, and the real SQLite outbox (a subclass that notes
which transaction each row was written in).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import nats
import pytest

from alien import AlienClient, AlienConfig, Reading, TelemetryEncodeError
from alien.delivery.outbox import OutgoingMessage
from alien.delivery.outbox_store import SqliteStore
from alien.wire import utc_timestamp
from alien_testing.deployment import V01Deployment

NOW = datetime.now(timezone.utc)
LOGGED = NOW - timedelta(hours=3)  # readings logged offline, replayed later


def _position(step: int) -> dict[str, Any]:
    return {"position": {"latitude": 47.39 + step / 1e4, "longitude": 8.54, "altitude": 400.0}}


class TransactionNotingStore(SqliteStore):
    """The real store; each insert notes the transaction it was written in (None: its own autocommit)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.transactions = 0
        self._open: int | None = None
        self.inserted_in: dict[str, int | None] = {}

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        if self._open is not None:
            yield
            return
        self.transactions += 1
        self._open = self.transactions
        try:
            with super().batch():
                yield
        finally:
            self._open = None

    def insert(self, message: OutgoingMessage) -> None:
        self.inserted_in[message.msg_id] = self._open
        super().insert(message)


async def test_a_batch_is_one_store_transaction_and_each_reading_its_own_message(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig]
) -> None:
    emulator = make_emulator(dialect="v0.1")
    unlimited = {"telemetry_rate_limit_hz": 0, "telemetry_rate_limit_per_key_hz": 0}
    client = AlienClient(make_config(emulator, nats_server, heartbeat_period_s=0, **unlimited))
    store = TransactionNotingStore(client.config.outbox_path)
    client.outbox.attach(store)
    try:
        await asyncio.wait_for(client.initialize(), 20)
        singles = [await client.publish_telemetry(_position(step)) for step in range(3)]
        batched = await client.publish_telemetry_batch([_position(10 + step) for step in range(100)])
        assert await client.flush(10)
    finally:
        await client.close()
    assert len(set(batched)) == 100 and all(batched)
    assert [store.inserted_in[msg_id] for msg_id in singles] == [None] * 3  # one autocommit each
    assert len({store.inserted_in[msg_id] for msg_id in batched}) == 1  # all in one transaction
    assert store.inserted_in[batched[0]] is not None
    await emulator.wait_for_async(lambda: len(emulator.telemetry()) >= 103, 10, "every reading")
    by_id = {m.headers["Nats-Msg-Id"]: m.json() for m in emulator.telemetry()}
    assert set(singles + batched) <= set(by_id)  # each its own message, with the id it was given
    assert [by_id[msg_id]["data"]["alt"] for msg_id in batched] == [400_000] * 100
    lats = [by_id[msg_id]["data"]["lat"] for msg_id in batched]
    assert lats == sorted(lats) and len(set(lats)) == 100  # in the order given


async def test_a_batch_with_a_bad_reading_queues_nothing_and_names_the_reading(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig]
) -> None:
    client = AlienClient(make_config(make_emulator(dialect="v0.1"), nats_server, heartbeat_period_s=0))
    try:
        await asyncio.wait_for(client.initialize(), 20)
        assert await client.flush(10)
        before = client.stats()
        bad = {"power": {"voltage": 12.0, "percentage": 102.0}}  # beyond what MAVLink carries
        named = r"^reading 3: power\.percentage 102\.0 -> battery_remaining 102 is outside -1\.\.100"
        with pytest.raises(TelemetryEncodeError, match=named):
            await client.publish_telemetry_batch([_position(0), _position(1), _position(2), bad])
        with pytest.raises(ValueError, match=r"^reading 1: timestamp .* has no time zone"):
            await client.publish_telemetry_batch([_position(0), Reading(_position(1), datetime(2026, 1, 1))])
        with pytest.raises(RuntimeError, match="the log ended early"):
            async with client.batch():
                await client.publish_telemetry(_position(5))
                await client.publish_event("replay_started", {})
                raise RuntimeError("the log ended early")
        assert client.stats().enqueued == before.enqueued  # none of them
        assert await client.flush(10)
        assert client.stats().published == before.published
    finally:
        await client.close()


async def test_a_batch_holds_its_own_messages_only_and_nests(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig]
) -> None:
    """Another task's messages (a command's events) go out while a batch is open; the batch's wait for its end."""
    emulator = make_emulator(dialect="v0.0.1")
    client = AlienClient(make_config(emulator, nats_server, heartbeat_period_s=0))
    client.register_command_handler("ping", lambda command: {"pong": True})
    try:
        await asyncio.wait_for(client.initialize(), 20)
        async with client.batch():
            held = await client.publish_telemetry({"step": 1})
            with client.batch():  # joins the outer one
                inner = await client.publish_telemetry({"step": 2})
            nc = await nats.connect(nats_server.url)
            subject = f"constellation.commands.{client.config.org_id}.{client.config.entity_id}"
            await nc.publish(subject, json.dumps({"type": "ping", "command_id": "p-1"}).encode())
            await nc.close()
            await emulator.wait_for_async(
                lambda: any(m.json()["event_type"] == "command_completed" for m in emulator.events()), 10, "pong"
            )
            assert emulator.telemetry() == []  # the batch's readings are still in it
        assert await client.flush(10)
        await emulator.wait_for_async(lambda: len(emulator.telemetry()) >= 2, 10, "the batch's readings")
        assert [m.headers["Nats-Msg-Id"] for m in emulator.telemetry()] == [held, inner]
    finally:
        await client.close()


@pytest.mark.parametrize(("dialect", "fmt"), [("v0.0.1", "seed"), ("v0.1", "mavlink")])
async def test_a_reading_keeps_its_own_timestamp(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], dialect: str, fmt: str
) -> None:
    emulator = make_emulator(dialect=dialect)
    client = AlienClient(make_config(emulator, nats_server, heartbeat_period_s=0, lifecycle_events=False))
    try:
        held = await client.publish_telemetry(_position(0), timestamp=LOGGED)  # before registration: held
        await asyncio.wait_for(client.initialize(), 20)
        assert client.telemetry_format == fmt
        live = await client.publish_telemetry(_position(1))  # now: later than every replayed one
        assert await client.flush(10)
        replayed = await client.publish_telemetry_batch(
            [
                Reading(_position(2), LOGGED + timedelta(seconds=1)),
                Reading({**_position(3), "note": "replayed"}, (LOGGED + timedelta(seconds=2)).timestamp()),
                Reading(_position(4), LOGGED + timedelta(seconds=3, microseconds=7)),
            ]
        )
        assert await client.flush(10)
    finally:
        await client.close()
    await emulator.wait_for_async(lambda: len(emulator.telemetry()) >= 5, 10, "every reading")
    stamps = {m.headers["Nats-Msg-Id"]: m.json()["timestamp"] for m in emulator.telemetry()}
    assert stamps[held] == utc_timestamp(LOGGED)
    assert stamps[live] > utc_timestamp(LOGGED + timedelta(seconds=3))
    assert [stamps[msg_id] for msg_id in replayed] == [
        utc_timestamp(LOGGED + timedelta(seconds=s, microseconds=us)) for s, us in ((1, 0), (2, 0), (3, 7))
    ]
    if fmt == "mavlink":  # what MAVLink cannot carry went out as a `telemetry` event: with the reading's time
        (event,) = [m.json() for m in emulator.events() if m.json()["event_type"] == "telemetry"]
        assert event["data"] == {"note": "replayed"}
        assert event["timestamp"] == utc_timestamp(LOGGED + timedelta(seconds=2))


@pytest.mark.parametrize("v01_deployment", [{"release": "rc"}], indirect=True)
async def test_a_reading_keeps_its_own_timestamp_in_the_strict_envelope(
    v01_deployment: V01Deployment, tmp_path: Path
) -> None:
    config = AlienConfig(
        **v01_deployment.edge_settings(),
        entity_name="replayer",
        config_file=str(tmp_path / "identity.json"),
        data_dir=tmp_path / "data",
        telemetry_format="envelope_v1",
        heartbeat_period_s=0,
        request_attempts=2,
        retry_backoff_s=0.01,
    )
    client = AlienClient(config)
    try:
        await asyncio.wait_for(client.initialize(), 20)
        live = await client.publish_telemetry(_position(0))
        replayed = await client.publish_telemetry_batch([Reading(_position(1 + step), LOGGED) for step in range(2)])
        assert await client.flush(10)
        emulator = v01_deployment.emulator

        def uids(verdicts: list[Any]) -> list[str]:
            return [json.loads(v.data)["message_uid"] for v in verdicts]

        # the worker took all three (before the shutdown event withdraws the entity's admission)
        await emulator.wait_for_async(
            lambda: len(emulator.telemetry_accepted()) + len(emulator.telemetry_ignored()) >= 3, 10, "verdicts"
        )
    finally:
        await client.close()
    stamps = {m.json()["message_uid"]: m.json()["timestamp"] for m in emulator.telemetry()}
    assert [stamps[msg_id] for msg_id in replayed] == [utc_timestamp(LOGGED)] * 2  # as given, not moved
    assert stamps[live] > utc_timestamp(LOGGED)
    # valid envelopes: the live one is the state, the older ones are stored and do not roll it back
    assert uids(emulator.telemetry_accepted()) == [live]
    assert sorted(uids(emulator.telemetry_ignored())) == sorted(replayed)
    assert emulator.telemetry_rejected() == []


@pytest.mark.parametrize(("policy", "kept"), [("drop_oldest", slice(15, 25)), ("drop_newest", slice(0, 10))])
async def test_a_batch_beyond_the_outbox_bound_follows_the_drop_policy(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], policy: str, kept: slice
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    config = make_config(
        emulator,
        nats_server,
        outbox_max_messages=10,
        outbox_full_policy=policy,
        heartbeat_period_s=0,
        lifecycle_events=False,  # no bootsequence after the outage to make room for
        telemetry_rate_limit_hz=0,
        telemetry_rate_limit_per_key_hz=0,
    )
    client = AlienClient(config)
    try:
        await asyncio.wait_for(client.initialize(), 20)
        nats_server.kill()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while client.link.is_connected or client.stats().in_flight:  # bounded poll: no event says so
            assert loop.time() < deadline, "the link never went down"
            await asyncio.sleep(0.02)
        ids = await client.publish_telemetry_batch([{"step": step} for step in range(25)])
        stats = client.stats()
        assert stats.dropped == {"full_telemetry": 15} and stats.depth == 10
        nats_server.restart()
        assert await client.flush(20)
    finally:
        await client.close()
    await emulator.wait_for_async(lambda: len(emulator.telemetry()) >= 10, 10, "what the outbox kept")
    assert [m.headers["Nats-Msg-Id"] for m in sorted(emulator.telemetry(), key=lambda m: m.stream_seq)] == ids[kept]


BATCHING_ROBOT = textwrap.dedent(
    """
    import asyncio
    from alien import AlienClient, AlienConfig

    def fix(n):
        return {"position": {"latitude": 47.0, "longitude": n / 10_000}}

    async def main():
        client = AlienClient(AlienConfig())
        await client.initialize()
        n = 0
        while True:  # each id printed only once its call (or its block) has returned
            print(await client.publish_telemetry(fix(n)), flush=True)
            ids = await client.publish_telemetry_batch([fix(n + k) for k in range(1, 11)])
            print(*ids, flush=True)
            async with client.batch():
                ids = [await client.publish_telemetry(fix(n + k)) for k in range(11, 16)]
            print(*ids, flush=True)
            n += 16
            await asyncio.sleep(0.005)

    asyncio.run(main())
    """
)


def test_a_killed_client_loses_no_batch_whose_call_returned(
    make_emulator: Any, nats_server: Any, tmp_path: Path
) -> None:
    """SIGKILL while batches and single readings flow, the link down meanwhile: a restart sends every one announced."""
    emulator = make_emulator(dialect="v0.1")  # limits retention: the restarted server knows the ids it stored
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIEN_")}
    env.update(
        MOTHERSHIP_URL=emulator.url,
        NATS_URL=nats_server.url,
        ALIEN_CONFIG_FILE=str(tmp_path / "identity.json"),
        ALIEN_DATA_DIR=str(tmp_path / "data"),
        ALIEN_API_KEY=next(iter(emulator.api_keys)),
        ALIEN_TELEMETRY_RATE_LIMIT_HZ="0",
        ALIEN_TELEMETRY_RATE_LIMIT_PER_KEY_HZ="0",
    )
    robot = subprocess.Popen(
        [sys.executable, "-c", BATCHING_ROBOT],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert robot.stdout is not None
    announced: list[str] = []
    try:
        while len(announced) < 500:  # acknowledged as they go
            announced += robot.stdout.readline().split()
        nats_server.kill()  # from now on everything waits in the outbox
        while len(announced) < 1500:
            line = robot.stdout.readline()
            assert line, f"the robot ended ({robot.wait(10)})"
            announced += line.split()
    finally:
        robot.send_signal(signal.SIGKILL)
        robot.wait(10)
    announced += robot.stdout.read().split()  # printed before the kill, not read yet
    nats_server.restart()

    async def restart_and_flush() -> bool:
        config = AlienConfig(
            mothership_url=emulator.url,
            nats_url=nats_server.url,
            config_file=str(tmp_path / "identity.json"),
            data_dir=tmp_path / "data",
            api_key=env["ALIEN_API_KEY"],
        )
        async with AlienClient(config) as again:
            return await again.flush(30)

    assert asyncio.run(restart_and_flush())
    emulator.wait_for(lambda: set(announced) <= _ids(emulator), 30, "every announced reading in the stream")
    by_sequence = {m.stream_seq: m.headers["Nats-Msg-Id"] for m in emulator.telemetry()}
    assert len(set(by_sequence.values())) == len(by_sequence)  # none twice


def _ids(emulator: Any) -> set[str]:
    return {m.headers["Nats-Msg-Id"] for m in emulator.telemetry()}
