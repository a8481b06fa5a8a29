"""The dispatcher's signature policy: critical types, expiry, replays across restarts (seen store), the allowlist."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
import pytest
from signing_support import ENTITY, KEYS, OTHER, _iso

from alien import AlienClient, AlienConfig
from alien.commands import CommandDispatcher
from alien.commands.seen import SeenCommandStore
from alien.signing import SignaturePolicy, sign_command

# --- signed commands through the dispatcher ---


async def test_an_unsigned_command_cannot_claim_the_id_of_a_signed_one(tmp_path: Path) -> None:
    recorder = Recorder()
    dispatcher = _dispatcher(recorder, SeenCommandStore(tmp_path / "seen.sqlite3"))
    _send(dispatcher, {"type": "ping", "command_id": "op-42"})  # someone guesses the next C2 id
    _send(dispatcher, sign_command({"type": "move", "command_id": "op-42"}, KEYS.seed, ENTITY))
    await dispatcher.stop()
    events = [e for e in recorder.events if e[1].get("command_id") == "op-42"]
    assert [kind for kind, _ in events].count("command_received") == 2  # the genuine one still runs
    assert "command_rejected" not in [kind for kind, _ in events]


async def test_critical_types_cannot_be_dodged_by_case_or_a_trailing_newline(tmp_path: Path) -> None:
    recorder = Recorder()
    dispatcher = _dispatcher(recorder)
    dispatcher.set_fallback(recorder.calls.append)
    _send(dispatcher, {"type": "MOVE", "command_id": "c-up"})
    _send(dispatcher, {"type": "move\n", "command_id": "c-nl"})
    await dispatcher.stop()
    assert recorder.outcome("c-up") == ("command_rejected", "unsigned")
    assert recorder.outcome("c-nl") == ("command_rejected", "bad_type")
    assert recorder.calls == []


async def test_a_signed_command_lives_no_longer_than_the_cap(tmp_path: Path) -> None:
    recorder = Recorder()
    dispatcher = _dispatcher(recorder)
    old = {"type": "move", "command_id": "c-old", "issued_at": _iso(-7200), "expires_at": "9999-01-01T00:00:00Z"}
    _send(dispatcher, sign_command(old, KEYS.seed, ENTITY))
    await dispatcher.stop()
    assert recorder.outcome("c-old") == ("command_rejected", "expired")


# --- the dispatcher's policy (real dispatcher, events captured) ---


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.calls: list[dict[str, Any]] = []

        self._changed: asyncio.Event | None = None

    def report(self, kind: str, data: dict[str, Any]) -> None:
        self.events.append((kind, data))
        if self._changed is not None:
            self._changed.set()

    async def until(self, predicate: Callable[[], bool], timeout: float = 5) -> None:
        self._changed = self._changed or asyncio.Event()
        while not predicate():
            self._changed.clear()
            await asyncio.wait_for(self._changed.wait(), timeout)

    def outcome(self, command_id: str) -> tuple[str, str | None]:
        kind, data = next((k, d) for k, d in self.events if d.get("command_id") == command_id)
        return kind, data.get("reason")


def _dispatcher(recorder: Recorder, store: SeenCommandStore | None = None, **policy: Any) -> CommandDispatcher:
    values: dict[str, Any] = {"trusted_keys": frozenset({KEYS.public_key}), "critical_types": frozenset({"move"})}
    values.update(policy)
    dispatcher = CommandDispatcher(
        recorder.report,
        lambda subject, data: None,
        signature_policy=SignaturePolicy(**values),
        entity_id=lambda: ENTITY,
    )
    for kind in ("move", "ping"):
        dispatcher.register(kind, recorder.calls.append)
    dispatcher.attach_seen_store(store)
    return dispatcher


def _send(dispatcher: CommandDispatcher, command: dict[str, Any]) -> None:
    dispatcher.dispatch(json.dumps(command).encode())


async def test_policy_critical_signed_unsigned_and_non_critical(caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder()
    dispatcher = _dispatcher(recorder)
    signed = sign_command({"type": "move", "command_id": "ok-1"}, KEYS.seed, ENTITY)
    with caplog.at_level(logging.WARNING, logger="alien.commands"):
        _send(dispatcher, signed)
        _send(dispatcher, {"type": "move", "command_id": "uns-1"})
        _send(dispatcher, {"type": "ping", "command_id": "ping-1"})  # not critical: no signature needed
        _send(dispatcher, {"type": "ping", "command_id": "ping-2", "entity_id": "entity-2"})
        bad = sign_command({"type": "ping", "command_id": "ping-3"}, KEYS.seed, ENTITY)
        bad["params"] = {"x": 1}  # a signature that is present is always checked
        _send(dispatcher, bad)
        _send(dispatcher, sign_command({"type": "move", "command_id": "oth-1"}, OTHER.seed, ENTITY))
        _send(dispatcher, sign_command({"type": "move", "command_id": "ent-1"}, KEYS.seed, "entity-2"))
        _send(dispatcher, signed)
    await dispatcher.stop()
    assert recorder.outcome("ok-1") == ("command_received", None)
    assert recorder.outcome("uns-1") == ("command_rejected", "unsigned")
    assert recorder.outcome("ping-1") == ("command_received", None)
    assert recorder.outcome("ping-2") == ("command_rejected", "wrong_entity")
    assert recorder.outcome("ping-3") == ("command_rejected", "bad_signature")
    assert recorder.outcome("oth-1") == ("command_rejected", "untrusted_key")
    assert recorder.outcome("ent-1") == ("command_rejected", "wrong_entity")
    replay = [d for k, d in recorder.events if k == "command_rejected" and d["command_id"] == "ok-1"]
    assert replay[0]["reason"] == "replayed"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for reason in ("unsigned", "wrong_entity", "bad_signature", "untrusted_key", "replayed"):
        assert any(f"rejected ({reason})" in line for line in warnings), reason
    logged = "\n".join(warnings)
    assert signed["signature"]["sig"] not in logged and KEYS.seed not in logged and OTHER.seed not in logged
    assert dispatcher.counts["rejected.unsigned"] == 1


async def test_require_signature_covers_every_type() -> None:
    recorder = Recorder()
    dispatcher = _dispatcher(recorder, require_all=True)
    _send(dispatcher, {"type": "ping", "command_id": "p-1"})
    _send(dispatcher, sign_command({"type": "ping", "command_id": "p-2"}, KEYS.seed, ENTITY))
    await dispatcher.stop()
    assert recorder.outcome("p-1") == ("command_rejected", "unsigned")
    assert recorder.outcome("p-2") == ("command_received", None)


async def test_signed_expiry_default_age_and_clock_skew() -> None:
    recorder = Recorder()
    dispatcher = _dispatcher(recorder, max_age_s=30.0)  # clock skew allowance: 5 s (default)
    cases = {
        "fresh": {"issued_at": _iso(-1)},
        "within-skew": {"issued_at": _iso(-33)},  # 30 s life + 3 s late: the skew allows it
        "too-old": {"issued_at": _iso(-40)},
        "ttl-ok": {"issued_at": _iso(-50), "ttl_s": 60},  # an explicit ttl wins over the default
        "ttl-late": {"issued_at": _iso(-20), "ttl_s": 10},
        "future-skew": {"issued_at": _iso(3)},  # a sender clock 3 s ahead
        "future": {"issued_at": _iso(60)},
    }
    for command_id, fields in cases.items():
        _send(dispatcher, sign_command({"type": "move", "command_id": command_id, **fields}, KEYS.seed, ENTITY))
    await dispatcher.stop()
    assert recorder.outcome("fresh")[0] == "command_received"
    assert recorder.outcome("within-skew")[0] == "command_received"
    assert recorder.outcome("too-old") == ("command_rejected", "expired")
    assert recorder.outcome("ttl-ok")[0] == "command_received"
    assert recorder.outcome("ttl-late") == ("command_rejected", "expired")
    assert recorder.outcome("future-skew")[0] == "command_received"
    assert recorder.outcome("future") == ("command_rejected", "bad_envelope")


async def test_the_seen_store_outlives_the_dispatcher(tmp_path: Path) -> None:
    path = tmp_path / "seen.sqlite3"
    recorder = Recorder()
    first = _dispatcher(recorder, SeenCommandStore(path))
    signed = sign_command({"type": "move", "command_id": "s-1"}, KEYS.seed, ENTITY)
    _send(first, signed)
    _send(first, {"type": "ping", "command_id": "u-1"})
    _send(first, {"type": "ping"})  # no id: never stored
    await first.stop()
    assert first.seen is not None
    assert len(first.seen) == 2
    first.seen.close()

    second_recorder = Recorder()
    second = _dispatcher(second_recorder, SeenCommandStore(path))  # a restart
    _send(second, signed)
    _send(second, {"type": "ping", "command_id": "u-1"})
    await second.stop()
    assert second_recorder.outcome("s-1") == ("command_rejected", "replayed")
    assert second_recorder.outcome("u-1") == ("command_rejected", "duplicate")
    assert second.seen is not None
    second.seen.close()


def test_seen_store_prunes_and_is_bounded(tmp_path: Path) -> None:
    store = SeenCommandStore(tmp_path / "seen.sqlite3", max_rows=3)
    now = time.time()
    store.add("old", now - 100, keep_until=now - 1)
    for name in ("a", "b", "c", "d"):
        store.add(name, now, keep_until=now + 60)
    assert store.seen_at("old", now) is None  # past its keep_until: no longer counts
    assert store.prune(now) == 2  # the expired row, and the oldest beyond max_rows
    assert len(store) == 3
    store.close()


# --- through a real client, nats-server and the emulator ---


async def _outcome(emulator: Any, command_id: str, nth: int = 1) -> dict[str, Any]:
    """The nth final event (completed, rejected, failed) of `command_id`."""
    final = {"command_completed", "command_rejected", "command_failed"}

    def found() -> list[dict[str, Any]]:
        events = (m.json() for m in sorted(emulator.events(), key=lambda m: m.stream_seq))
        return [e for e in events if e["event_type"] in final and (e.get("data") or {}).get("command_id") == command_id]

    # 30 s: on a loaded CI machine a restarted client's first event once took longer than 10 s
    await emulator.wait_for_async(lambda: len(found()) >= nth, 30, f"outcome {nth} of {command_id}")
    return found()[nth - 1]


async def test_a_replay_after_a_client_restart_is_rejected(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig]
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    settings = {"command_trusted_keys": [KEYS.public_key], "command_critical_types": ["move"]}
    calls: list[dict[str, Any]] = []
    nc = await nats.connect(nats_server.url)
    try:
        async with AlienClient(make_config(emulator, nats_server, **settings)) as client:
            client.register_command_handler("move", calls.append)
            subject = f"constellation.commands.{client.config.org_id}.{client.config.entity_id}"
            entity_id = client.config.entity_id
            assert entity_id is not None
            signed = sign_command({"type": "move", "command_id": "mv-1", "ttl_s": 60}, KEYS.seed, entity_id)
            await nc.publish(subject, json.dumps(signed).encode())
            assert (await _outcome(emulator, "mv-1"))["event_type"] == "command_completed"
        # same data_dir and identity: the restarted client remembers what it executed
        async with AlienClient(make_config(emulator, nats_server, **settings)) as client:
            client.register_command_handler("move", calls.append)
            await nc.publish(subject, json.dumps(signed).encode())
            rejected = await _outcome(emulator, "mv-1", nth=2)
            assert rejected["event_type"] == "command_rejected" and rejected["data"]["reason"] == "replayed"
            fresh = sign_command({"type": "move", "command_id": "mv-2"}, KEYS.seed, entity_id)
            await nc.publish(subject, json.dumps(fresh).encode())
            assert (await _outcome(emulator, "mv-2"))["event_type"] == "command_completed"
    finally:
        await nc.close()
    assert [c["command_id"] for c in calls] == ["mv-1", "mv-2"]


# --- the allowlist (library paths; the ROS paths are in test_command_router.py) ---


async def test_allowlist_handler_fallback_and_unknown() -> None:
    recorder = Recorder()
    dispatcher = _dispatcher(recorder, critical_types=frozenset({"open_hatch"}))
    _send(dispatcher, {"type": "ping", "command_id": "a-1"})  # has a handler
    _send(dispatcher, {"type": "warp", "command_id": "a-2"})  # has none
    dispatcher.set_fallback(recorder.calls.append)
    _send(dispatcher, {"type": "warp", "command_id": "a-3"})  # the fallback takes it
    _send(dispatcher, {"type": "open_hatch", "command_id": "a-4"})  # critical, even through the fallback
    dispatcher.set_fallback(None)
    _send(dispatcher, {"type": "warp", "command_id": "a-5"})
    await recorder.until(lambda: sum(k == "command_completed" for k, _ in recorder.events) == 2)
    await dispatcher.stop()
    assert recorder.outcome("a-1") == ("command_received", None)
    assert recorder.outcome("a-2") == ("command_rejected", "unknown_type")
    assert recorder.outcome("a-3") == ("command_received", None)
    assert recorder.outcome("a-4") == ("command_rejected", "unsigned")
    assert recorder.outcome("a-5") == ("command_rejected", "unknown_type")
    unknown = next(d for k, d in recorder.events if d.get("command_id") == "a-2")
    assert "handled: move, ping" in unknown["detail"]
    assert [c["command_id"] for c in recorder.calls] == ["a-1", "a-3"]


async def test_an_unreadable_seen_store_refuses_rather_than_risks_a_replay(tmp_path: Path) -> None:
    recorder = Recorder()
    store = SeenCommandStore(tmp_path / "seen.sqlite3")
    dispatcher = _dispatcher(recorder, store)
    store.close()  # every read now fails
    _send(dispatcher, sign_command({"type": "move", "command_id": "s-9"}, KEYS.seed, ENTITY))
    await dispatcher.stop()
    assert recorder.outcome("s-9") == ("command_rejected", "replay_check_failed")
    assert recorder.calls == []
