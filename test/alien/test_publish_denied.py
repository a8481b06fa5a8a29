"""A publish nats-server denies, and a message still waiting for its ack, against real permissions.

Each deployment is a real nats-server whose edge users get the NATS permissions a v0.1 server
derives from the API key's scopes (alien_testing.emulator.edge_auth), plus the v0.1 emulator. The
publish timeout is 30 s, so that a publisher waiting it out is unmistakable: everything here must
happen within a few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.subscription import Subscription

from alien import AlienClient, AlienConfig, AlienFleet
from alien.delivery.outbox_store import SqliteStore
from alien_testing.deployment import V01Deployment

PUBLISH_TIMEOUT_S = 30.0
PROMPTLY_S = 5.0  # well under the publish timeout: a stall behind a denial cannot pass
TELEMETRY_STREAM = "CONSTELLATION_TELEMETRY"
EVENTS_STREAM = "CONSTELLATION_EVENTS"
REST = ["organizations:read", "entities:read", "entities:write"]
# v0.1.1 scoped key: publish only to $JS.API.>, _INBOX.> and the org's telemetry; events are denied.
V011_TELEMETRY_AND_COMMANDS = {"scopes": [*REST, "nats:telemetry", "nats:commands"]}
# The newest (directional) scopes without events:write: telemetry out and commands in only.
RC_TELEMETRY_AND_COMMANDS = {"release": "rc", "scopes": [*REST, "nats:telemetry:write", "nats:commands:read"]}


def _reading(step: int) -> dict[str, Any]:
    return {"position": {"latitude": 32.9 + step / 1000, "longitude": -96.8, "altitude": 150.0, "heading": 90.0}}


def _config(deployment: V01Deployment, data_dir: Path, **overrides: Any) -> AlienConfig:
    values: dict[str, Any] = {
        **deployment.edge_settings(),
        "entity_type": "drone",
        "entity_name": "rover-denied",
        "config_file": str(data_dir / "identity.json"),
        "data_dir": data_dir,
        "publish_timeout_s": PUBLISH_TIMEOUT_S,
        "heartbeat_period_s": 0,  # nothing but the test's messages: batches are the test's to shape
        "nats_reconnect_wait_s": 0.1,
        "request_attempts": 2,
        "retry_backoff_s": 0.01,
        "entity_state_period_s": 0.1,
    }
    values.update(overrides)
    return AlienConfig(**values)


async def _settled(client: AlienClient, msg_ids: Iterable[str]) -> tuple[dict[str, bool], dict[str, float]]:
    """How each message settled (True: acknowledged) and when (loop time), within PROMPTLY_S.

    Ask right after queueing: a message settled before the call is not remembered.
    """
    loop = asyncio.get_running_loop()
    futures = {msg_id: client.outbox.settled(msg_id) for msg_id in msg_ids}
    when: dict[str, float] = {}
    for msg_id, future in futures.items():
        future.add_done_callback(lambda _, msg_id=msg_id: when.setdefault(msg_id, loop.time()))
    results = await asyncio.wait_for(asyncio.gather(*futures.values()), PROMPTLY_S)
    return dict(zip(futures, results, strict=True)), when


async def _until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Bounded poll of client-side state that has no event of its own."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.01)


async def _stream_ids(deployment: V01Deployment, stream: str = TELEMETRY_STREAM) -> Counter[str]:
    """Nats-Msg-Id of every message the stream holds, read from nats-server as the mothership."""
    nc = await nats.connect(**deployment.admin_options())
    try:
        js = nc.jetstream()
        state = (await js.stream_info(stream)).state
        ids: Counter[str] = Counter()
        if state.messages:
            for seq in range(state.first_seq, state.last_seq + 1):
                headers = (await js.get_msg(stream, seq)).headers or {}
                ids[headers["Nats-Msg-Id"]] += 1
        return ids
    finally:
        await nc.close()


def _stored(config: AlienConfig) -> tuple[set[str], int]:
    """What the durable outbox holds after close: queued message ids, and how many are parked."""
    store = SqliteStore(config.outbox_path)
    try:
        queued, parked = store.load()
    finally:
        store.close()
    return {m.msg_id for m in queued}, parked


async def _queue_round(client: AlienClient, event_type: str, readings: int) -> tuple[str, list[str]]:
    """An event and telemetry behind it, queued without yielding: one batch when the publisher is idle."""
    event = await client.publish_event(event_type, {"door": 1})
    telemetry = [await client.publish_telemetry(_reading(step)) for step in range(readings)]
    return event, telemetry


@pytest.mark.parametrize(
    "v01_deployment", [V011_TELEMETRY_AND_COMMANDS, RC_TELEMETRY_AND_COMMANDS], ids=["v0.1.1", "rc"], indirect=True
)
async def test_a_denied_event_holds_no_telemetry_back_and_leaves_nothing_behind(
    v01_deployment: V01Deployment, tmp_path: Path
) -> None:
    config = _config(v01_deployment, tmp_path / "data")
    client = AlienClient(config)
    loop = asyncio.get_running_loop()
    denied_at: dict[str, float] = {}
    sent: list[str] = []
    client.link.on_denied(lambda operation, subject: denied_at.setdefault(subject, loop.time()))
    try:
        await asyncio.wait_for(client.initialize(), 20)
        org = client.config.org_id
        # Right after connect: the denied bootsequence is ahead of these (a batch of its own, or this one).
        # Then, with the publisher idle, an event and telemetry behind it in one batch.
        for event_type in ("door_opened", "door_closed"):
            event, telemetry = await _queue_round(client, event_type, 5)
            began = loop.time()
            outcome, when = await _settled(client, [event, *telemetry])
            assert outcome == {event: False, **dict.fromkeys(telemetry, True)}
            assert max(when.values()) - began < PROMPTLY_S
            # The refusal itself ends the wait: the event settles as soon as nats-server's -ERR is in.
            assert when[event] - denied_at[f"constellation.events.{org}.{event_type}"] < 0.5
            sent += telemetry
        # Every event nats-server refused (bootsequence, door_opened, door_closed): dropped, counted.
        assert f"constellation.events.{org}.bootsequence" in denied_at
        assert client.stats().dropped.get("denied") == 3
        closing = loop.time()
    finally:
        await client.close(timeout=PUBLISH_TIMEOUT_S)
    assert loop.time() - closing < PROMPTLY_S  # the denied shutdown event did not hold close up either
    assert client.stats().dropped.get("denied") == 4
    assert _stored(config) == (set(), 0)  # nothing kept to be sent again, nothing parked
    in_stream = await _stream_ids(v01_deployment)
    assert set(sent) <= set(in_stream)
    assert max(in_stream.values()) == 1  # nothing stored twice


@contextlib.asynccontextmanager
async def _unanswered_events(deployment: V01Deployment, event_type: str) -> AsyncIterator[Subscription]:
    """Events of `event_type` reach nats-server but no stream: a plain subscriber swallows them unanswered."""
    admin = await nats.connect(**deployment.admin_options())
    try:
        js = admin.jetstream()
        events = (await js.stream_info(EVENTS_STREAM)).config
        await js.update_stream(events, subjects=["constellation.events.*.bootsequence"])  # not event_type
        yield await admin.subscribe(f"constellation.events.{deployment.edge.org_id}.{event_type}")
    finally:
        await admin.close()


async def test_a_stop_while_a_message_waits_keeps_nothing_the_stream_has_stored(
    v01_deployment: V01Deployment, tmp_path: Path
) -> None:
    """The message ahead of the telemetry is never answered. The server stores and acknowledges
    the telemetry behind it; the client is closed while the first message still waits: the
    acknowledged telemetry must be gone from the outbox, or the next start sends it again (a
    duplicate in the stream once the server's duplicate window has passed)."""
    config = _config(v01_deployment, tmp_path / "data", lifecycle_events=False)
    client = AlienClient(config)
    try:
        async with _unanswered_events(v01_deployment, "unanswered") as swallowed:
            await asyncio.wait_for(client.initialize(), 20)
            unanswered, telemetry = await _queue_round(client, "unanswered", 17)
            await swallowed.next_msg(timeout=PROMPTLY_S)  # it reached the server, which routes it to no stream
            await _until(lambda: client.stats().in_flight == 1, PROMPTLY_S, "every ack but one received")
            assert not client.outbox.settled(unanswered).done()
            await client.close(timeout=1.5)  # gives up waiting for the unanswered one
    finally:
        await client.close()
    in_stream = await _stream_ids(v01_deployment)
    assert set(telemetry) <= set(in_stream) and max(in_stream.values()) == 1
    queued, parked = _stored(config)
    assert not queued & set(in_stream), "acknowledged telemetry kept in the outbox for the next start"
    assert (queued, parked) == ({unanswered}, 0)  # the unanswered one is kept, with its id, for the next start


async def test_acks_behind_messages_never_answered_settle_while_those_wait(
    v01_deployment: V01Deployment, tmp_path: Path
) -> None:
    """Two events nobody answers, ahead of telemetry in one batch: the telemetry is acknowledged and
    leaves the outbox as its acks come, while the events still wait for theirs."""
    config = _config(v01_deployment, tmp_path / "data", lifecycle_events=False)
    client = AlienClient(config)
    try:
        async with _unanswered_events(v01_deployment, "unanswered"):
            await asyncio.wait_for(client.initialize(), 20)
            first = await client.publish_event("unanswered", {"door": 0})
            second, telemetry = await _queue_round(client, "unanswered", 17)
            outcome, _ = await _settled(client, telemetry)
            assert all(outcome.values())
            assert not client.outbox.settled(first).done() and not client.outbox.settled(second).done()
            assert client.stats().in_flight == 2  # only the two events are still in the outbox
            await client.close(timeout=1.5)
    finally:
        await client.close()
    assert _stored(config) == ({first, second}, 0)  # kept, with their ids, for the next start


async def test_answers_between_messages_never_answered_settle_while_those_wait(
    v01_deployment: V01Deployment, tmp_path: Path
) -> None:
    """Events only, so the batch begins and ends with ones nobody answers: the events the stream
    stores between them are acknowledged and leave the outbox as their acks come."""
    config = _config(v01_deployment, tmp_path / "data", lifecycle_events=False)
    client = AlienClient(config)
    try:
        async with _unanswered_events(v01_deployment, "unanswered"):
            await asyncio.wait_for(client.initialize(), 20)
            # queued without yielding: one batch, the control lane in order
            ahead = [await client.publish_event("unanswered", {"door": n}) for n in range(2)]
            stored = [await client.publish_event("bootsequence", {"step": n}) for n in range(17)]
            behind = await client.publish_event("unanswered", {"door": 2})
            outcome, _ = await _settled(client, stored)
            assert all(outcome.values())
            assert not any(client.outbox.settled(event).done() for event in [*ahead, behind])
            assert client.stats().in_flight == 3  # only the unanswered events are still in the outbox
            await client.close(timeout=1.5)
    finally:
        await client.close()
    assert _stored(config) == ({*ahead, behind}, 0)  # kept, with their ids, for the next start


@pytest.mark.parametrize("v01_deployment", [V011_TELEMETRY_AND_COMMANDS], indirect=True)
async def test_a_fleet_entitys_denied_event_holds_no_other_entity_back(
    v01_deployment: V01Deployment, tmp_path: Path
) -> None:
    """Entities sharing one link and one v0.1.1 key without event rights: every entity's telemetry flows."""
    fleet = AlienFleet(_config(v01_deployment, tmp_path / "fleet"))
    for name in ("rover-1", "rover-2", "rover-3"):
        fleet.add(entity_name=name)
    loop = asyncio.get_running_loop()
    sent: dict[str, list[str]] = {}
    try:
        await asyncio.wait_for(fleet.initialize(), 30)
        began = loop.time()
        settled: list[asyncio.Future[bool]] = []
        for name, client in fleet.clients.items():
            # an event type of its own: each entity's event reaches nats-server and is refused there
            event, telemetry = await _queue_round(client, f"arrived_{name.replace('-', '_')}", 5)
            sent[name] = telemetry
            settled += [client.outbox.settled(msg_id) for msg_id in [event, *telemetry]]
        outcomes = await asyncio.wait_for(asyncio.gather(*settled), PROMPTLY_S)
        assert outcomes.count(False) == len(fleet.clients)  # the events; all the telemetry was acknowledged
        assert loop.time() - began < PROMPTLY_S
        assert [c.stats().dropped.get("denied") for c in fleet.clients.values()] == [2, 2, 2]  # + bootsequence
    finally:
        await fleet.close(timeout=PUBLISH_TIMEOUT_S)
    in_stream = await _stream_ids(v01_deployment)
    for name, client in fleet.clients.items():
        assert set(sent[name]) <= set(in_stream)
        assert _stored(client.config) == (set(), 0)
    assert max(in_stream.values()) == 1
