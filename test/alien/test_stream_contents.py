"""read_stream: what a stream holds, read from the stream itself (the ground truth of the fault tests)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

import nats
import pytest
from nats.js.api import RetentionPolicy

from alien_testing import MothershipEmulator, NatsServer
from alien_testing.stream_contents import StoredMessage, lost_and_doubled, read_stream


async def test_a_limits_stream_and_a_work_queue_read_once_per_sequence_with_their_ids_and_store_times(
    make_emulator: Callable[..., MothershipEmulator], nats_server: NatsServer
) -> None:
    emulator = make_emulator(dialect="v0.1", consumers=False)  # the streams alone: nobody takes the events
    assert emulator.nats_connected
    before = datetime.now(timezone.utc)
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        for n in range(3):
            await js.publish(f"constellation.telemetry.org.e{n}", b"t", headers={"Nats-Msg-Id": f"t-{n}"})
            await js.publish("constellation.events.org.bootsequence", b"e", headers={"Nats-Msg-Id": f"e-{n}"})
        await js.publish("constellation.telemetry.org.e0", b"t", headers={"Nats-Msg-Id": "t-0"})  # a replay: dropped
        telemetry = await read_stream(js, "CONSTELLATION_TELEMETRY")
        one_entity = await read_stream(js, "CONSTELLATION_TELEMETRY", "constellation.telemetry.org.e1")
        later = await read_stream(js, "CONSTELLATION_TELEMETRY", first_seq=2)
        events = await read_stream(js, "CONSTELLATION_EVENTS", "constellation.events.*.bootsequence")
        again = await read_stream(js, "CONSTELLATION_EVENTS")  # reading takes nothing from a work queue
        info = await js.stream_info("CONSTELLATION_EVENTS")
    finally:
        await nc.close()
    assert [(m.seq, m.msg_id) for m in telemetry] == [(1, "t-0"), (2, "t-1"), (3, "t-2")]
    assert [m.msg_id for m in one_entity] == ["t-1"] and [m.seq for m in later] == [2, 3]
    assert all(before <= m.stored_at <= datetime.now(timezone.utc) for m in telemetry)
    assert [m.msg_id for m in events] == [m.msg_id for m in again] == ["e-0", "e-1", "e-2"]
    assert info.state.messages == 3 and info.config.retention == RetentionPolicy.WORK_QUEUE


@pytest.mark.parametrize(
    ("stored", "lost", "doubled"),
    [
        (["a", "b", "c"], [], {}),
        (["a", "c"], ["b"], {}),
        (["a", "b", "b", "c", "c", "c"], [], {"b": 2, "c": 3}),
    ],
)
def test_lost_and_doubled_compare_what_was_sent_with_what_was_stored(
    stored: list[str], lost: list[str], doubled: dict[str, int]
) -> None:
    at = datetime.now(timezone.utc)
    messages = [StoredMessage(seq, "s", msg_id, at, b"") for seq, msg_id in enumerate(stored, 1)]
    assert lost_and_doubled(["a", "b", "c"], messages) == (lost, doubled)
