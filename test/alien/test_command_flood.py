"""A flood of hostile commands through a real nats-server, against a client with a small outbox.

While the mothership's events stream is withheld (its subjects moved aside, as while a server
recreates its streams), earlier events wait in the outbox; then thousands of malformed commands
arrive on the entity's command subject. Nothing that happened before the flood may be lost: every
earlier event reaches the server once the stream is back. With the shipped limits the flood is
mostly dropped unread, logged as ten lines and one summary, and a signed command sent in the
middle still runs. With the limits off, the rejection events themselves overflow the outbox,
and only older rejections make room for them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import nats
import pytest

from alien import AlienClient, AlienConfig
from alien.signing import generate_keypair, sign_command
from alien.untrusted import is_safe
from alien.wire import command_subject
from alien_testing.emulator import MothershipEmulator
from alien_testing.hostile import hostile_command
from alien_testing.nats_server import NatsServer

KEYS = generate_keypair()
MARKERS = 100
WAIT_S = 60.0  # every wait is bounded
EVENTS_STREAM = "CONSTELLATION_EVENTS"


def _config(server: NatsServer, emulator: MothershipEmulator, workdir: Path, **overrides: Any) -> AlienConfig:
    return AlienConfig(
        mothership_url=emulator.url,
        api_key=next(iter(emulator.api_keys)),
        nats_url=server.url,
        config_file=str(workdir / "identity.json"),
        data_dir=workdir / "data",
        command_intake="core",  # edge keys on real v0.1 servers may not use the JetStream API
        command_trusted_keys=[KEYS.public_key],
        command_critical_types=["return_to_base"],
        outbox_max_messages=MARKERS + 50,
        heartbeat_period_s=0,
        stats_log_interval_s=0,
        **overrides,
    )


async def _flood(subject: str, url: str, count: int, signed_at: int | None = None, signed: bytes = b"") -> None:
    nc = await nats.connect(url)
    try:
        for number in range(count):
            await nc.publish(subject, hostile_command(number, oversized_every=5))
            if number == signed_at:
                await nc.publish(subject, signed)
        await nc.flush()
    finally:
        await nc.close()


async def _received(client: AlienClient, count: int) -> None:
    async with asyncio.timeout(WAIT_S):
        while client.command_counts.get("received", 0) < count:
            await asyncio.sleep(0.02)  # a bounded poll of a counter: nothing to await on


def _events(emulator: MothershipEmulator, event_type: str) -> list[dict[str, Any]]:
    return [json.loads(m.data) for m in emulator.events() if m.subject.endswith(f".{event_type}")]


async def _markers_delivered(emulator: MothershipEmulator) -> list[int]:
    """The markers the server's event worker has taken, once it has taken as many as were queued."""
    await emulator.wait_for_async(lambda: len(_events(emulator, "flood_marker")) >= MARKERS, WAIT_S, "markers")
    return sorted(e["data"]["n"] for e in _events(emulator, "flood_marker"))


async def _queue_markers(client: AlienClient) -> None:
    for number in range(MARKERS):
        await client.publish_event("flood_marker", {"n": number})
    assert client.stats().depth >= MARKERS  # the events stream is withheld: they all wait


@pytest.mark.asyncio
async def test_a_flood_at_the_shipped_limits_loses_nothing_and_a_signed_command_runs(
    nats_server: NatsServer, emulator_v01: MothershipEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    flood = 20_000
    ran: list[str] = []
    config = _config(nats_server, emulator_v01, tmp_path, command_rejection_window_s=600)
    caplog.set_level(logging.INFO)
    async with AlienClient(config) as client:
        client.register_command_handler("return_to_base", lambda command: ran.append(command["command_id"]))
        client.register_command_handler("ping", lambda command: "pong")
        await asyncio.to_thread(emulator_v01.withhold_stream, EVENTS_STREAM, True)
        await _queue_markers(client)
        org_id, entity_id = str(config.org_id), str(config.entity_id)
        signed = sign_command({"type": "return_to_base", "command_id": "the-real-one"}, KEYS.seed, entity_id)
        await _flood(
            command_subject(org_id, entity_id), nats_server.url, flood, flood // 2, json.dumps(signed).encode()
        )
        await _received(client, flood + 1)
        assert ran == ["the-real-one"]
        counts = client.command_counts
        assert counts["rate_limited"] > flood * 0.9, counts  # dropped unread
        assert counts["accepted"] == 1 and counts["rejected"] + counts["rate_limited"] == flood, counts
        await asyncio.to_thread(emulator_v01.withhold_stream, EVENTS_STREAM, False)
        assert await client.flush(WAIT_S)
        dropped = {reason: n for reason, n in client.stats().dropped.items() if n}
    assert dropped == {}, dropped
    await emulator_v01.wait_for_async(lambda: len(_events(emulator_v01, "commands_rejected")) == 1, WAIT_S, "summary")
    assert await _markers_delivered(emulator_v01) == list(range(MARKERS))
    (summary,) = _events(emulator_v01, "commands_rejected")
    assert summary["data"]["count"] == flood
    assert sum(summary["data"]["reasons"].values()) == flood
    assert len(_events(emulator_v01, "command_rejected")) == 10
    assert [e["data"]["command_id"] for e in _events(emulator_v01, "command_completed")] == ["the-real-one"]
    lines = [r.getMessage() for r in caplog.records if r.name == "alien.commands" and r.levelno >= logging.WARNING]
    assert len(lines) == 11, lines
    assert lines[-1].startswith(f"{flood} commands rejected in 600s: rate_limited "), lines[-1]
    assert all(is_safe(line) and len(line) < 1_000 for line in lines), lines


@pytest.mark.asyncio
async def test_rejection_events_overflowing_the_outbox_evict_only_older_rejections(
    nats_server: NatsServer, emulator_v01: MothershipEmulator, tmp_path: Path
) -> None:
    flood = 3_000
    # limits off: every command is read, rejected and reported on its own
    config = _config(nats_server, emulator_v01, tmp_path, command_rate_limit_hz=0, command_rejections_logged=10**6)
    async with AlienClient(config) as client:
        await asyncio.to_thread(emulator_v01.withhold_stream, EVENTS_STREAM, True)
        await _queue_markers(client)
        await _flood(command_subject(str(config.org_id), str(config.entity_id)), nats_server.url, flood)
        await _received(client, flood)
        assert client.command_counts["rejected"] == flood
        await asyncio.to_thread(emulator_v01.withhold_stream, EVENTS_STREAM, False)
        assert await client.flush(WAIT_S)
        dropped = {reason: n for reason, n in client.stats().dropped.items() if n}
    assert set(dropped) == {"full_rejections"} and dropped["full_rejections"] > flood - 150, dropped
    assert await _markers_delivered(emulator_v01) == list(range(MARKERS))
    await emulator_v01.wait_for_async(
        lambda: len(_events(emulator_v01, "command_rejected")) + dropped["full_rejections"] >= flood, WAIT_S, "rejected"
    )
    rejected = _events(emulator_v01, "command_rejected")
    assert 0 < len(rejected) <= 150
    assert len(rejected) + dropped["full_rejections"] == flood  # every rejection delivered or counted
