"""StreamOutages: a stream that stops taking messages is said once, and once when it takes them again."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import nats
import pytest

from alien import AlienClient, AlienConfig
from alien.stream_outages import StreamOutages, stream_family
from alien_testing import NatsServer

TELEMETRY = "constellation.telemetry.org-1.entity-1"
OTHER_ENTITY = "constellation.telemetry.org-1.entity-2"
EVENT = "constellation.events.org-1.bootsequence"


def test_a_family_is_the_stream_a_client_can_tell_from_the_subject() -> None:
    assert stream_family(TELEMETRY) == stream_family(OTHER_ENTITY) == "constellation.telemetry"
    assert stream_family(EVENT) == "constellation.events"
    assert stream_family("$KV.CONSTELLATION_GLOBAL_STATE") == "$KV.CONSTELLATION_GLOBAL_STATE"


def test_one_warning_per_outage_and_stream_then_one_line_when_it_is_over(caplog: pytest.LogCaptureFixture) -> None:
    outages = StreamOutages()
    caplog.set_level(logging.DEBUG, logger="alien.publisher")
    assert not outages.any and not outages.has_taken(TELEMETRY)
    outages.answered([TELEMETRY])
    assert outages.has_taken(OTHER_ENTITY) and not outages.has_taken(EVENT)
    assert not caplog.records  # nothing was out: nothing to say
    for subject in (TELEMETRY, OTHER_ENTITY, TELEMETRY):  # every entity of a fleet, every retry
        outages.unanswered(subject, "no responders")
    outages.unanswered(EVENT, "nats: timeout")
    assert outages.any and outages.is_out(OTHER_ENTITY)
    outages.answered([EVENT])  # the events stream is back, telemetry is not
    assert outages.is_out(TELEMETRY) and not outages.is_out(EVENT)
    outages.answered([OTHER_ENTITY])
    assert not outages.any
    loud = [(r.levelname, r.getMessage()) for r in caplog.records if r.levelno >= logging.INFO]
    assert [level for level, _ in loud] == ["WARNING", "WARNING", "INFO", "INFO"]
    assert loud[0][1].startswith("JetStream is not taking messages on constellation.telemetry.> (no responders)")
    assert loud[1][1].startswith("JetStream is not taking messages on constellation.events.> (nats: timeout)")
    assert "takes messages on constellation.events.> again after" in loud[2][1] and "(1 attempt(s)" in loud[2][1]
    assert "takes messages on constellation.telemetry.> again after" in loud[3][1] and "(3 attempt(s)" in loud[3][1]
    outages.unanswered(TELEMETRY, "no responders")  # a new outage is said again
    assert [r.levelname for r in caplog.records if r.levelno >= logging.INFO][-1] == "WARNING"


async def test_duplicate_message_id_in_process_is_retried_never_parked(
    make_emulator: Any,
    nats_server: NatsServer,
    make_config: Callable[..., AlienConfig],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """409 err 10158: what a clustered stream answers for an id still in a proposal it has not committed.

    A responder stands in for that stream on a nats-server of its own (the emulator serves REST from
    another one): it answers the first two deliveries of each telemetry id with 10158, then stores it.
    """
    emulator = make_emulator(dialect="v0.0.1")
    deliveries: dict[str, int] = {}
    with NatsServer(jetstream_domain=None) as edge:
        responder = await nats.connect(edge.url)

        async def answer(msg: Any) -> None:
            if not msg.reply:
                return  # the startup permission probe asks for no answer
            msg_id = (msg.headers or {}).get("Nats-Msg-Id", "")
            deliveries[msg_id] = deliveries.get(msg_id, 0) + 1
            if msg.subject.startswith("constellation.telemetry.") and deliveries[msg_id] <= 2:
                error = {"code": 409, "err_code": 10158, "description": "duplicate message id is in process"}
                await msg.respond(json.dumps({"error": error}).encode())
            else:
                await msg.respond(json.dumps({"stream": "STANDS_IN", "seq": len(deliveries)}).encode())

        await responder.subscribe("constellation.>", cb=answer)
        await responder.flush()
        caplog.set_level(logging.INFO, logger="alien")
        try:
            config = make_config(emulator, edge, command_intake="core", lifecycle_events=False)
            async with AlienClient(config) as client:
                sent = [await client.publish_telemetry({"battery_level": float(n)}) for n in range(5)]
                assert await client.flush(20)
                stats = client.stats()
        finally:
            await responder.close()
    assert (stats.published, stats.rejected, stats.parked) == (5, 0, 0)
    assert all(deliveries[msg_id] == 3 for msg_id in sent)  # twice 10158, then stored: same id each time
    loud = [(r.levelname, r.getMessage()) for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(loud) == 1 and "not taking messages on constellation.telemetry.>" in loud[0][1], loud
    assert "10158" in loud[0][1]
    assert any("takes messages on constellation.telemetry.> again" in r.getMessage() for r in caplog.records)
