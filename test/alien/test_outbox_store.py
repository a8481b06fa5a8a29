"""The durable outbox: SQLite rows survive a restart (and a SIGKILL), with their ids."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from alien import AlienClient, AlienConfig
from alien.delivery.outbox import Lane, Outbox, OutgoingMessage
from alien.delivery.outbox_store import OutboxStoreError, SqliteStore
from alien.wire import new_message_id


def _telemetry(emulator: Any) -> list[Any]:
    """The telemetry the test published: the HEARTBEATs the client sends on its own on v0.1 left out."""
    return [m for m in emulator.telemetry() if m.json().get("message_type") != "HEARTBEAT"]


def _ids_in_stream(emulator: Any) -> Counter[str]:
    """Message ids by stream sequence: a consumer redelivery after a server crash (same sequence)
    is not a duplicate in the stream; a second sequence with the same id is."""
    by_sequence = {m.stream_seq: m.headers["Nats-Msg-Id"] for m in _telemetry(emulator)}
    return Counter(by_sequence.values())


def _fix(n: int) -> dict[str, Any]:
    """Reading number n as a position v0.1 carries as telemetry (GPS_RAW_INT lon = n * 1000 degE7);
    free-form keys such as {"n": n} would go out as a `telemetry` event there
    (docs/contract.md#mavlink-style-telemetry)."""
    return {"position": {"latitude": 47.0, "longitude": n / 10_000}}


def _msg(msg_id: str, lane: Lane = Lane.TELEMETRY) -> OutgoingMessage:
    return OutgoingMessage(msg_id, f"constellation.telemetry.o.e{msg_id}", f"payload-{msg_id}".encode(), lane)


async def test_queued_messages_survive_a_reopen_in_order_with_their_ids(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    first = Outbox(100, SqliteStore(path))
    for name in ("t1", "t2", "t3"):
        first.put(_msg(name))
    first.put(_msg("c1", Lane.CONTROL))
    batch = await first.take(2)  # c1, t1 in flight...
    first.ack(batch[0], duplicate=False)  # ...c1 acknowledged, t1 not: it must come back
    (t2,) = [m for m in await first.take(1)]
    first.reject(t2, "message size exceeds maximum allowed")
    first.close()  # as a killed process would leave it: rows on disk

    second = Outbox(100, SqliteStore(path))
    assert second.restored == 2 and second.parked == 1
    again = await second.take(10)
    assert [(m.msg_id, m.payload, m.lane) for m in again] == [
        ("t1", b"payload-t1", Lane.TELEMETRY),
        ("t3", b"payload-t3", Lane.TELEMETRY),
    ]
    store = second.store
    assert isinstance(store, SqliteStore)
    assert store.parked() == [("t2", "constellation.telemetry.o.et2", "message size exceeds maximum allowed")]
    second.close()


def test_a_second_process_cannot_share_an_outbox(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    holder = SqliteStore(path)
    with pytest.raises(OutboxStoreError, match="in use by another process"):
        SqliteStore(path)
    holder.close()
    SqliteStore(path).close()  # free again once the holder is gone


def test_a_corrupt_outbox_is_named_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(OutboxStoreError, match=f"{path}.*not a usable SQLite database"):
        SqliteStore(path)
    assert path.read_bytes() == b"this is not a database" * 100


def test_each_identity_gets_its_own_outbox(tmp_path: Path) -> None:
    a = AlienConfig(config_file=str(tmp_path / "sim-000.json"), data_dir=tmp_path / "d")
    b = AlienConfig(config_file=str(tmp_path / "sim-001.json"), data_dir=tmp_path / "d")
    assert a.outbox_path != b.outbox_path
    assert AlienConfig().outbox_path == Path(".alien/outbox.alien_config.sqlite3")


async def test_nats_killed_and_restarted_ten_times_while_publishing_loses_nothing(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig]
) -> None:
    """Fault suite 1: SIGKILL + restart of nats-server x10 at 200 msg/s; every message once.

    Dialect v0.1 keeps telemetry in the stream (limits retention), so a restarted server rebuilds
    its duplicate window from it. On v0.0.1 (interest retention: consumed messages are deleted) a
    message consumed just before a server crash and replayed after it arrives twice, with the same
    id: at least once (docs/delivery.md).
    """
    emulator = make_emulator(dialect="v0.1")
    sent: list[str] = []
    # a load above the default flood limits (50/s per key): they are off here
    config = make_config(emulator, nats_server, telemetry_rate_limit_hz=0, telemetry_rate_limit_per_key_hz=0)
    async with AlienClient(config) as client:

        async def publish_at_200_hz() -> None:
            loop = asyncio.get_running_loop()
            start = loop.time()
            while True:
                sent.append(await client.publish_telemetry(_fix(len(sent))))
                await asyncio.sleep(max(0.0, start + len(sent) / 200 - loop.time()))

        publisher = asyncio.create_task(publish_at_200_hz())
        for _ in range(10):
            await asyncio.sleep(0.3)  # let some traffic through between faults (the fault's pace)
            nats_server.kill()
            await asyncio.sleep(0.3)  # an outage of 0.3 s
            nats_server.restart()
        publisher.cancel()
        await asyncio.gather(publisher, return_exceptions=True)
        assert await client.flush(60)
        reconnects = client.link.reconnects
    await emulator.wait_for_async(lambda: set(_ids_in_stream(emulator)) >= set(sent), 60, "every message in the stream")
    ids = _ids_in_stream(emulator)
    assert set(ids) == set(sent)
    assert max(ids.values()) == 1  # exactly once
    assert reconnects >= 10
    assert len(sent) >= 1000


ROBOT = textwrap.dedent(
    """
    import asyncio, sys
    from alien import AlienClient, AlienConfig

    async def main():
        client = AlienClient(AlienConfig())
        await client.initialize()
        n = 0
        while True:
            # v0.1 carries a position as telemetry (GPS_RAW_INT, lon = n * 1000 degE7)
            msg_id = await client.publish_telemetry({"position": {"latitude": 47.0, "longitude": n / 10_000}})
            print(msg_id, flush=True)  # printed only after it is on disk
            n += 1
            await asyncio.sleep(1 / 200)

    asyncio.run(main())
    """
)


def test_a_killed_client_process_loses_nothing_it_accepted(
    make_emulator: Any, nats_server: Any, tmp_path: Path
) -> None:
    """Fault suite 2: SIGKILL of the client mid-stream (NATS down meanwhile); a restart sends it all.

    v0.1 (limits retention) so the restarted server still knows the ids it stored (see above).
    """
    emulator = make_emulator(dialect="v0.1")
    api_key = next(iter(emulator.api_keys))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIEN_")}
    env.update(
        MOTHERSHIP_URL=emulator.url,
        NATS_URL=nats_server.url,
        ALIEN_CONFIG_FILE=str(tmp_path / "identity.json"),
        ALIEN_DATA_DIR=str(tmp_path / "data"),
        ALIEN_API_KEY=api_key,
        # 200 readings/s of one key: above the default flood limits, which are off here
        ALIEN_TELEMETRY_RATE_LIMIT_HZ="0",
        ALIEN_TELEMETRY_RATE_LIMIT_PER_KEY_HZ="0",
    )
    robot = subprocess.Popen(
        [sys.executable, "-c", ROBOT],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert robot.stdout is not None
    printed = [robot.stdout.readline().strip() for _ in range(200)]  # ~1 s of traffic
    nats_server.kill()  # the link goes down: from now on everything waits in the outbox
    printed += [robot.stdout.readline().strip() for _ in range(200)]
    robot.send_signal(signal.SIGKILL)
    robot.wait(10)
    printed = [p for p in printed if p]
    nats_server.restart()

    async def restart_and_flush() -> tuple[int, bool]:
        config = AlienConfig(
            mothership_url=emulator.url,
            nats_url=nats_server.url,
            config_file=str(tmp_path / "identity.json"),
            data_dir=tmp_path / "data",
            api_key=api_key,
        )
        async with AlienClient(config) as again:
            return again.outbox.restored, await again.flush(30)

    restored, flushed = asyncio.run(restart_and_flush())
    assert flushed and restored > 0
    emulator.wait_for(lambda: set(printed) <= set(_ids_in_stream(emulator)), 30, "all")
    ids = _ids_in_stream(emulator)
    assert max(ids.values()) == 1
    first = json.loads(_telemetry(emulator)[0].data)
    assert (first["message_type"], first["data"]["lon"]) == ("GPS_RAW_INT", 0)  # reading 0 came first


def test_a_transaction_sqlite_rolled_back_on_a_full_disk_ends_without_raising(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Disk full inside transaction(): each failing write is told, and its end neither raises nor hides it."""
    store = SqliteStore(tmp_path / "outbox.sqlite3")
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count={pages + 3}")  # room for a few rows only: then SQLITE_FULL
    refused = 0
    with caplog.at_level(logging.WARNING, logger="alien.outbox"), store.transaction():
        for _ in range(20):
            try:
                store.insert(OutgoingMessage(new_message_id(), "t", b"x" * 3000, Lane.TELEMETRY))
            except OutboxStoreError as exc:
                assert "cannot be written" in str(exc)
                refused += 1
    assert refused > 0
    assert [r.getMessage() for r in caplog.records] == [
        f"outbox {store.path}: a batch of writes was rolled back by SQLite; until sent, it is in memory only"
    ]
    assert not store._db.in_transaction
    store.close()


UNREGISTERED_ROBOT = textwrap.dedent(
    """
    import asyncio, json
    from alien import AlienClient, AlienConfig

    async def main():
        client = AlienClient(AlienConfig())
        starting = asyncio.create_task(client.initialize())  # keeps retrying: the mothership is down
        await asyncio.sleep(0)  # initialize() attaches the durable outbox before its first wait
        assert client.outbox.store is not None and not client.is_registered
        text = {"note": "@org_id@ / @entity_id@"}
        for n in range(3):
            print(json.dumps(["telemetry", await client.publish_telemetry({**text, "n": n})]), flush=True)
        print(json.dumps(["event", await client.publish_event("note", text)]), flush=True)
        await starting

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("telemetry_format", ["seed", "auto"])
def test_what_a_client_killed_before_registration_accepted_goes_out_encoded_once_after_the_restart(
    make_emulator: Any, nats_server: Any, tmp_path: Path, telemetry_format: str
) -> None:
    """Pending (not yet encoded) messages are rows like any other: SIGKILL, restart, registered, sent as given."""
    emulator = make_emulator(dialect="v0.0.1")
    emulator.set_unavailable(True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIEN_")}
    env.update(
        MOTHERSHIP_URL=emulator.url,
        NATS_URL=nats_server.url,
        ALIEN_CONFIG_FILE=str(tmp_path / "identity.json"),
        ALIEN_DATA_DIR=str(tmp_path / "data"),
        ALIEN_TELEMETRY_FORMAT=telemetry_format,
        ALIEN_RETRY_BACKOFF_S="0.05",
    )
    robot = subprocess.Popen(
        [sys.executable, "-c", UNREGISTERED_ROBOT], env=env, cwd=tmp_path, stdout=subprocess.PIPE, text=True
    )
    assert robot.stdout is not None
    printed = [json.loads(robot.stdout.readline()) for _ in range(4)]  # each printed once stored
    robot.send_signal(signal.SIGKILL)
    robot.wait(10)
    emulator.set_unavailable(False)

    async def restart_and_flush() -> tuple[str | None, str | None, bool]:
        config = AlienConfig(
            mothership_url=emulator.url,
            nats_url=nats_server.url,
            config_file=str(tmp_path / "identity.json"),
            data_dir=tmp_path / "data",
            telemetry_format=telemetry_format,
        )
        async with AlienClient(config) as again:
            return again.config.org_id, again.config.entity_id, await again.flush(10)

    org_id, entity_id, flushed = asyncio.run(restart_and_flush())
    assert flushed and org_id and entity_id
    emulator.wait_for(lambda: len(emulator.telemetry()) >= 3 and len(emulator.events()) >= 2, 10, "what was accepted")
    telemetry = {m.headers["Nats-Msg-Id"]: m for m in emulator.telemetry()}
    events = {m.headers["Nats-Msg-Id"]: m for m in emulator.events()}
    readings = [telemetry[msg_id] for kind, msg_id in printed if kind == "telemetry"]
    assert [m.json()["data"] for m in readings] == [{"note": "@org_id@ / @entity_id@", "n": n} for n in range(3)]
    assert {m.subject for m in readings} == {f"constellation.telemetry.{org_id}.{entity_id}"}
    assert all(m.json()["entity_id"] == entity_id for m in readings)
    (event,) = [events[msg_id] for kind, msg_id in printed if kind == "event"]
    assert event.subject == f"constellation.events.{org_id}.note" and event.json()["entity_id"] == entity_id
    assert event.json()["data"] == {"note": "@org_id@ / @entity_id@"}
