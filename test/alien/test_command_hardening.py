"""Hostile commands: forged log lines, terminal escapes, loose signatures, conflicting types, floods.

The dispatcher runs on a real event loop with real signing keys and the real outbox; what it
logs is read from the log records, what it reports from its report callback.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from alien.commands import CommandDispatcher
from alien.delivery.outbox import Lane, Outbox, OutgoingMessage
from alien.rate_limits import RejectionDigest, TokenBucket
from alien.signing import SignaturePolicy, generate_keypair, sign_command
from alien.untrusted import is_safe, shown

KEYS = generate_keypair()
ENTITY = "e-1"
FORGED = "li-1\n2026-12-02 00:00:00,000 WARNING alien.commands: FORGED operator approved"
ESCAPES = "esc-1\u001b]0;PWNED\u0007\u001b[2J"


class Recorder:
    def __init__(self) -> None:
        self.reports: list[tuple[str, dict[str, Any]]] = []
        self.ran: list[dict[str, Any]] = []

    def of(self, event_type: str) -> list[dict[str, Any]]:
        return [d for e, d in self.reports if e == event_type]


def _dispatcher(recorder: Recorder, **kwargs: Any) -> CommandDispatcher:
    dispatcher = CommandDispatcher(
        lambda e, d: recorder.reports.append((e, d)),
        lambda s, d: None,
        signature_policy=SignaturePolicy(frozenset({KEYS.public_key}), frozenset({"return_to_base"})),
        entity_id=lambda: ENTITY,
        **kwargs,
    )
    for command_type in ("ping", "return_to_base"):
        dispatcher.register(command_type, recorder.ran.append)
    return dispatcher


def _run(body: Any) -> None:
    asyncio.run(body())


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "alien.commands"]


@pytest.mark.parametrize("command_id", [FORGED, ESCAPES, "bidi-\u202egnp.exe", "cr-1\rOVERWRITTEN"])
def test_a_command_id_cannot_forge_a_log_line_or_reach_a_terminal_raw(
    command_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()

    async def body() -> None:
        dispatcher = _dispatcher(recorder)
        dispatcher.dispatch(json.dumps({"type": "return_to_base", "command_id": command_id}).encode())

    with caplog.at_level(logging.WARNING):
        _run(body)
    (line,) = _lines(caplog)
    assert is_safe(line) and "\n" not in line and "\x1b" not in line, line
    (rejected,) = recorder.of("command_rejected")
    assert rejected["reason"] == "bad_envelope"
    assert is_safe(rejected["detail"]) and command_id not in rejected["detail"]
    assert not recorder.ran


def test_shown_escapes_and_caps() -> None:
    assert shown(FORGED).startswith("li-1\\n2026-12-02")
    assert shown(ESCAPES, 200) == "esc-1\\x1b]0;PWNED\\x07\\x1b[2J"
    assert shown("plain-id_1.2") == "plain-id_1.2"
    capped = shown("x" * 30_000)
    assert capped == "x" * 64 + "...(+29936 chars)"


@pytest.mark.parametrize("field", ["issued_at", "expires_at", "priority", "type", "entity_id", "ttl_s"])
def test_an_echoed_field_is_capped(field: str, caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder()
    huge = "9" * 30_000 if field != "ttl_s" else 10**400 // 10**370

    async def body() -> None:
        command: dict[str, Any] = {"type": "ping", "command_id": "c-1", field: huge}
        if field == "ttl_s":
            command["ttl_s"] = "y" * 30_000
        _dispatcher(recorder).dispatch(json.dumps(command).encode())

    with caplog.at_level(logging.WARNING):
        _run(body)
    (line,) = _lines(caplog)
    (rejected,) = recorder.of("command_rejected")
    assert len(line) < 1_000 and len(rejected["detail"]) < 500, (len(line), line[:200])


def _signed(command: dict[str, Any]) -> dict[str, Any]:
    return sign_command(command, KEYS.seed, ENTITY)


@pytest.mark.parametrize(
    "change",
    [
        lambda sig: sig[:10] + "!!" + sig[10:],  # characters outside the alphabet, skipped by a lax decoder
        lambda sig: sig + "!!",
        lambda sig: sig[:40] + "\n" + sig[40:],
        lambda sig: sig.replace("-", "+").replace("_", "/"),  # the other alphabet
        lambda sig: sig[:-1],  # short
        lambda sig: sig + "AAAA",  # long
    ],
)
def test_a_malformed_signature_text_is_refused(change: Any) -> None:
    recorder = Recorder()
    command = _signed({"type": "return_to_base"})
    original = command["signature"]["sig"]
    command["signature"]["sig"] = change(original)

    async def body() -> None:
        _dispatcher(recorder).dispatch(json.dumps(command).encode())

    _run(body)
    if command["signature"]["sig"] == original:
        pytest.skip("this signature has no character the change alters")
    assert [d["reason"] for d in recorder.of("command_rejected")] == ["bad_signature"]
    assert not recorder.ran


def test_a_signature_still_verifies_with_or_without_padding() -> None:
    recorder = Recorder()
    padded = _signed({"type": "return_to_base"})
    padded["signature"]["sig"] += "=="

    async def body() -> None:
        dispatcher = _dispatcher(recorder)
        dispatcher.dispatch(json.dumps(_signed({"type": "return_to_base"})).encode())
        dispatcher.dispatch(json.dumps(padded).encode())
        await dispatcher.join()

    _run(body)
    assert len(recorder.ran) == 2, recorder.reports


def test_signature_null_is_no_signature() -> None:
    recorder = Recorder()

    async def body() -> None:
        dispatcher = _dispatcher(recorder)
        dispatcher.dispatch(b'{"type":"ping","command_id":"p-1","signature":null}')
        dispatcher.dispatch(b'{"type":"return_to_base","command_id":"r-1","signature":null}')
        await dispatcher.join()

    _run(body)
    assert [c["command_id"] for c in recorder.ran] == ["p-1"]
    (rejected,) = recorder.of("command_rejected")
    assert rejected["reason"] == "unsigned" and "'return_to_base' is a critical type" in rejected["detail"]


def test_type_fields_that_disagree_are_refused() -> None:
    recorder = Recorder()

    async def body() -> None:
        dispatcher = _dispatcher(recorder)
        dispatcher.dispatch(b'{"type":"ping","command_type":"return_to_base","command_id":"t-1"}')
        dispatcher.dispatch(b'{"type":"ping","command_type":"ping","command_id":"t-2"}')
        await dispatcher.join()

    _run(body)
    assert [c["command_id"] for c in recorder.ran] == ["t-2"]
    (rejected,) = recorder.of("command_rejected")
    assert rejected["reason"] == "conflicting_type"


def test_a_flood_is_summarised_limited_and_a_signed_command_still_runs(caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder()

    async def body() -> None:
        dispatcher = _dispatcher(
            recorder, intake_limit=TokenBucket(1.0, 100), digest=RejectionDigest(10, window_s=60.0)
        )
        for number in range(2_000):
            dispatcher.dispatch(b"{not json" if number % 2 else b'{"type":"return_to_base"}')
            if number == 1_000:
                dispatcher.dispatch(json.dumps(_signed({"type": "return_to_base", "command_id": "real"})).encode())
        await dispatcher.join()
        await dispatcher.stop()  # ends the window: its summary goes out now

    with caplog.at_level(logging.WARNING):
        _run(body)
    assert [c["command_id"] for c in recorder.ran] == ["real"]
    assert len(recorder.of("command_rejected")) == 10
    (summary,) = recorder.of("commands_rejected")
    assert summary["count"] == 2_000
    assert summary["reasons"]["rate_limited"] >= 1_800
    assert (
        summary["reasons"]["malformed_json"] + summary["reasons"]["unsigned"]
        == 2_000 - summary["reasons"]["rate_limited"]
    )
    lines = _lines(caplog)
    assert len(lines) == 11, lines[-3:]
    assert lines[-1].startswith("2000 commands rejected in 60s: rate_limited ")


def _message(msg_id: str, lane: Lane) -> OutgoingMessage:
    return OutgoingMessage(msg_id, "constellation.events.o.x", b"{}", lane)


def test_rejection_events_never_evict_other_events_or_results() -> None:
    async def body() -> None:
        outbox = Outbox(max_messages=10)
        for number in range(5):
            outbox.put(
                OutgoingMessage(f"event-{number}", "constellation.events.o.command_completed", b"{}", Lane.CONTROL)
            )
        for number in range(3):
            outbox.put(_message(f"t-{number}", Lane.TELEMETRY))
        for number in range(100):
            outbox.put(
                OutgoingMessage(f"r-{number}", "constellation.events.o.command_rejected", b"{}", Lane.REJECTIONS)
            )
        taken = [m.msg_id for m in await outbox.take(100)]
        assert taken[:5] == [f"event-{n}" for n in range(5)]
        assert [i for i in taken if i.startswith("t-")] == ["t-0", "t-1", "t-2"]
        assert [i for i in taken if i.startswith("r-")] == ["r-98", "r-99"]  # room made among rejections only
        assert outbox.dropped["full_rejections"] == 98

        outbox = Outbox(max_messages=3)
        for number in range(3):
            outbox.put(
                OutgoingMessage(f"r-{number}", "constellation.events.o.command_rejected", b"{}", Lane.REJECTIONS)
            )
        outbox.put(_message("result", Lane.CONTROL))
        assert [m.msg_id for m in await outbox.take(10)] == ["result", "r-1", "r-2"]

    _run(body)
