"""Commands: the envelope and its validation (pure), and the lifecycle through real NATS."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import nats
import pytest

from alien import AlienClient, AlienConfig
from alien.commands.envelope import MAX_JSON_DEPTH, CommandRejected, RecentCommandIds, parse_command

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=timezone.utc)


def _at(seconds: float) -> str:
    return (NOW + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def _parse(payload: Any, **kwargs: Any) -> Any:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return parse_command(data, now=NOW.timestamp(), **kwargs)


def _rejected(payload: Any, **kwargs: Any) -> CommandRejected:
    with pytest.raises(CommandRejected) as info:
        _parse(payload, **kwargs)
    return info.value


# --- the envelope ---


def test_full_envelope() -> None:
    command = _parse(
        {"type": "move", "command_id": "c-1", "params": {"x": 1}, "issued_at": _at(-1), "ttl_s": 30, "priority": "high"}
    )
    assert (command.command_id, command.type, command.params, command.priority) == ("c-1", "move", {"x": 1}, "high")
    assert command.expires_at == pytest.approx(NOW.timestamp() + 29)
    assert command.id_derived is False


def test_seed_shape_top_level_fields_are_params() -> None:
    command = _parse({"type": "return_to_base", "speed": 3, "altitude": 50})
    assert command.params == {"speed": 3, "altitude": 50}
    assert command.raw == {"type": "return_to_base", "speed": 3, "altitude": 50}


def test_command_type_is_accepted_like_type() -> None:
    assert _parse({"command_type": "stop"}).type == "stop"


def test_missing_command_id_comes_from_the_transport_or_is_fresh() -> None:
    payload = {"type": "stop"}
    from_header = _parse(payload, message_id="msg-42")
    assert (from_header.command_id, from_header.id_derived, from_header.id_fresh) == ("msg-42", True, False)
    first, second = _parse(payload), _parse(payload)
    assert first.id_fresh and second.id_fresh
    assert first.command_id != second.command_id  # two identical stops are two stops


@pytest.mark.parametrize(
    ("payload", "reason", "words"),
    [
        (b"{nope", "malformed_json", "not valid JSON"),
        (b"\xff\xfe", "malformed_json", "not valid JSON"),
        (b'"stop"', "not_an_object", "JSON object"),
        (b'{"type": "stop", "pad": "' + b"x" * 33_000 + b'"}', "too_large", "32768"),
        ({"params": {}}, "missing_type", "neither 'type' nor 'command_type'"),
        ({"type": "rm -rf"}, "bad_type", "must match"),
        ({"type": "x" * 65}, "bad_type", "must match"),
        ({"type": 7}, "bad_type", "must match"),
        ({"type": "stop", "command_id": 12}, "bad_envelope", "command_id must be 1 to 128 printable characters"),
        ({"type": "stop", "params": [1]}, "bad_envelope", "params must be a JSON object"),
        ({"type": "stop", "ttl_s": 10}, "bad_envelope", "ttl_s needs issued_at"),
        ({"type": "stop", "ttl_s": -1, "issued_at": _at(0)}, "bad_envelope", "seconds in (0,"),
        ({"type": "stop", "issued_at": "yesterday"}, "bad_envelope", "not an RFC 3339 time"),
        ({"type": "stop", "issued_at": "2026-11-27T12:00:00"}, "bad_envelope", "no time zone"),
        ({"type": "stop", "issued_at": _at(60)}, "bad_envelope", "in the future"),
        ({"type": "stop", "issued_at": _at(-60), "ttl_s": 30}, "expired", "expired 30.0s ago"),
        ({"type": "stop", "expires_at": _at(-10)}, "expired", "expired 10.0s ago"),
        ({"type": "stop", "priority": 1}, "bad_envelope", "priority must be 1 to 32 printable characters"),
        (b'{"type": "stop", "n": ' + b"9" * 5000 + b"}", "malformed_json", "not valid JSON"),
        ({"type": "stop", "issued_at": _at(0), "ttl_s": 10**400}, "bad_envelope", "ttl_s must be a number"),
    ],
)
def test_rejections_name_the_problem(payload: Any, reason: str, words: str) -> None:
    rejection = _rejected(payload)
    assert rejection.reason == reason
    assert words in rejection.detail


def test_clock_skew_allowance_is_honoured() -> None:
    late = {"type": "stop", "expires_at": _at(-3)}
    assert _parse(late, clock_skew_s=5.0).type == "stop"
    assert _rejected(late, clock_skew_s=1.0).reason == "expired"


def test_depth_limit() -> None:
    deep: Any = {"type": "stop", "params": {}}
    node = deep["params"]
    for _ in range(MAX_JSON_DEPTH + 5):
        node["n"] = {}
        node = node["n"]
    assert _rejected(deep).reason == "too_deep"
    assert _rejected(b'{"type": "stop", "p": ' + b"[" * 5_000 + b"]" * 5_000 + b"}").reason == "too_deep"


def test_recent_ids_window_and_bound() -> None:
    recent = RecentCommandIds(window_s=10, max_ids=3)
    recent.add("a", now=0)
    assert recent.seen_at("a", now=5) == 0
    assert recent.seen_at("a", now=11) is None  # out of the window
    for name, when in (("b", 20), ("c", 21), ("d", 22), ("e", 23)):
        recent.add(name, now=when)
    assert recent.seen_at("b", now=23) is None  # bounded: the oldest made room
    assert recent.seen_at("e", now=23) == 23


# --- the lifecycle through real NATS ---


# the client's own events, without "data" (docs/contract.md#lifecycle-events)
CLIENT_LIFECYCLE = ("bootsequence", "shutdown")


def _command_events(emulator: Any) -> list[dict[str, Any]]:
    """Every event but the client's lifecycle events, in stream order."""
    ordered = sorted(emulator.events(), key=lambda m: m.stream_seq)
    return [e for e in (m.json() for m in ordered) if e["event_type"] not in CLIENT_LIFECYCLE]


async def _events(emulator: Any, command_id: str, until: str) -> list[dict[str, Any]]:
    def ended() -> bool:
        return any(
            e["event_type"] == until and e["data"].get("command_id") == command_id for e in _command_events(emulator)
        )

    await emulator.wait_for_async(ended, 10, f"{until} for {command_id}")
    return [e for e in _command_events(emulator) if e["data"].get("command_id") == command_id]


@pytest.fixture
async def robot(make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig]) -> Any:
    emulator = make_emulator(dialect="v0.0.1")
    client = AlienClient(make_config(emulator, nats_server, command_progress_rate_hz=5.0))
    release = asyncio.Event()
    calls: list[dict[str, Any]] = []

    async def patrol(command: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append(command)
        for waypoint in range(1, 11):
            context.progress({"waypoint": waypoint, "of": 10})
        await release.wait()
        return {"waypoints_done": 10}

    client.register_command_handler("patrol", patrol)
    client.register_command_handler("ping", lambda command: "pong")
    async with client:
        nc = await nats.connect(nats_server.url)
        subject = f"constellation.commands.{client.config.org_id}.{client.config.entity_id}"
        yield {"client": client, "emulator": emulator, "nc": nc, "subject": subject, "release": release, "calls": calls}
        release.set()
        await nc.close()


async def test_full_lifecycle_with_rate_limited_progress(robot: dict[str, Any]) -> None:
    await robot["nc"].publish(robot["subject"], b'{"type": "patrol", "command_id": "p-1", "params": {"route": "A"}}')
    await robot["emulator"].wait_for_async(
        lambda: any(m.json()["event_type"] == "command_progress" for m in robot["emulator"].events()), 10, "progress"
    )
    robot["release"].set()
    events = await _events(robot["emulator"], "p-1", "command_completed")
    kinds = [e["event_type"] for e in events]
    assert kinds[0] == "command_received" and kinds[-1] == "command_completed"
    progress = [e["data"]["progress"]["waypoint"] for e in events if e["event_type"] == "command_progress"]
    assert progress[0] == 1 and progress[-1] == 10  # the first at once, the latest before the end
    assert len(progress) < 10  # rate-limited
    assert events[-1]["data"] == {"command_id": "p-1", "type": "patrol", "result": {"waypoints_done": 10}}
    entity_id = robot["client"].config.entity_id
    assert all(e["entity_id"] == entity_id and e["timestamp"].endswith("Z") for e in events)


async def test_a_plain_return_value_completes_the_command(robot: dict[str, Any]) -> None:
    await robot["nc"].publish(robot["subject"], b'{"type": "ping", "command_id": "q-1"}')
    events = await _events(robot["emulator"], "q-1", "command_completed")
    assert events[-1]["data"]["result"] == {"value": "pong"}


async def _request(nc: Any, subject: str, payload: bytes) -> dict[str, Any]:
    """A request on a subject the commands stream captures gets two answers: JetStream's PubAck
    (docs/contract.md#streams: the stream stores the command) and Alien's own reply. Wait for Alien's."""
    inbox = nc.new_inbox()
    answers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def collect(msg: Any) -> None:
        await answers.put(json.loads(msg.data))

    sub = await nc.subscribe(inbox, cb=collect)
    await nc.publish(subject, payload, reply=inbox)
    try:
        while True:
            answer = await asyncio.wait_for(answers.get(), 10)
            if "accepted" in answer:
                return answer
    finally:
        await sub.unsubscribe()


async def test_a_request_gets_a_reply(robot: dict[str, Any]) -> None:
    accepted = await _request(robot["nc"], robot["subject"], b'{"type": "ping", "command_id": "r-1"}')
    assert accepted == {"command_id": "r-1", "type": "ping", "accepted": True}
    refused = await _request(robot["nc"], robot["subject"], b'{"type": "warp", "command_id": "r-2"}')
    assert refused["accepted"] is False and refused["reason"] == "unknown_type" and refused["command_id"] == "r-2"


async def test_a_duplicate_is_never_executed_twice(robot: dict[str, Any]) -> None:
    robot["release"].set()
    for _ in range(2):
        await robot["nc"].publish(robot["subject"], b'{"type": "patrol", "command_id": "d-1"}')
    events = await _events(robot["emulator"], "d-1", "command_rejected")
    await _events(robot["emulator"], "d-1", "command_completed")
    rejection = next(e["data"] for e in events if e["event_type"] == "command_rejected")
    assert rejection["reason"] == "duplicate" and "not executed again" in rejection["detail"]
    assert len(robot["calls"]) == 1


async def test_identical_commands_without_ids_both_run(robot: dict[str, Any]) -> None:
    for _ in range(2):
        await robot["nc"].publish(robot["subject"], b'{"type": "ping"}')
    await robot["emulator"].wait_for_async(
        lambda: sum(m.json()["event_type"] == "command_completed" for m in robot["emulator"].events()) == 2,
        10,
        "two completions",
    )
    assert not [m for m in robot["emulator"].events() if m.json()["event_type"] == "command_rejected"]


async def test_an_expired_command_is_rejected(robot: dict[str, Any]) -> None:
    stale = {"type": "patrol", "command_id": "e-1", "issued_at": "2020-01-01T00:00:00Z", "ttl_s": 5}
    await robot["nc"].publish(robot["subject"], json.dumps(stale).encode())
    events = await _events(robot["emulator"], "e-1", "command_rejected")
    assert events[-1]["data"]["reason"] == "expired"
    assert robot["calls"] == []


async def test_closing_fails_running_commands_and_reports_it(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig]
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    started = asyncio.Event()

    async def forever(command: dict[str, Any]) -> None:
        started.set()
        await asyncio.Event().wait()

    async with AlienClient(make_config(emulator, nats_server)) as client:
        client.register_command_handler("hold", forever)
        nc = await nats.connect(nats_server.url)
        await nc.publish(
            f"constellation.commands.{client.config.org_id}.{client.config.entity_id}",
            b'{"type": "hold", "command_id": "h-1"}',
        )
        await nc.close()
        await asyncio.wait_for(started.wait(), 10)
    events = await _events(emulator, "h-1", "command_failed")
    assert events[-1]["data"]["error"] == "cancelled"


def test_command_types_registered_must_be_valid() -> None:
    client = AlienClient(AlienConfig())
    with pytest.raises(ValueError, match="must match"):
        client.register_command_handler("bad type!", lambda command: None)
