"""The in-memory outbox: lanes, bound and drop policy, settlement."""

from __future__ import annotations

from alien.outbox import Lane, MemoryOutbox, OutgoingMessage


def _msg(msg_id: str, lane: Lane) -> OutgoingMessage:
    return OutgoingMessage(msg_id, f"subject.{msg_id}", b"x" * 10, lane)


async def test_control_goes_before_telemetry() -> None:
    outbox = MemoryOutbox(10)
    outbox.put(_msg("t1", Lane.TELEMETRY))
    outbox.put(_msg("c1", Lane.CONTROL))
    outbox.put(_msg("t2", Lane.TELEMETRY))
    assert [m.msg_id for m in await outbox.take(10)] == ["c1", "t1", "t2"]


def test_when_full_the_oldest_telemetry_makes_room() -> None:
    outbox = MemoryOutbox(3)
    for name in ("t1", "t2"):
        outbox.put(_msg(name, Lane.TELEMETRY))
    outbox.put(_msg("c1", Lane.CONTROL))
    outbox.put(_msg("c2", Lane.CONTROL))  # evicts t1
    outbox.put(_msg("t3", Lane.TELEMETRY))  # evicts t2
    assert outbox.dropped == {"full_telemetry": 2}
    assert outbox.stats().depth == 3


def test_telemetry_never_evicts_control() -> None:
    outbox = MemoryOutbox(3)
    for name in ("c1", "c2", "c3"):
        outbox.put(_msg(name, Lane.CONTROL))
    outbox.put(_msg("t1", Lane.TELEMETRY))
    assert outbox.dropped == {"full_telemetry": 1}
    outbox.put(_msg("c4", Lane.CONTROL))  # only control queued: the oldest control goes
    assert outbox.dropped == {"full_telemetry": 1, "full_control": 1}


async def test_retry_keeps_order_and_ids_and_ack_counts() -> None:
    outbox = MemoryOutbox(10)
    for name in ("t1", "t2", "t3"):
        outbox.put(_msg(name, Lane.TELEMETRY))
    batch = await outbox.take(2)
    outbox.retry(batch)
    again = await outbox.take(3)
    assert [m.msg_id for m in again] == ["t1", "t2", "t3"]
    assert [m.attempts for m in again] == [1, 1, 0]
    outbox.ack(again[0], duplicate=False)
    outbox.ack(again[1], duplicate=True)
    outbox.reject(again[2], "too large")
    stats = outbox.stats()
    assert (stats.published, stats.duplicates, stats.rejected, stats.parked, stats.depth, stats.in_flight) == (
        2,
        1,
        1,
        1,
        0,
        0,
    )
    await outbox.wait_idle()  # returns at once: nothing queued or in flight
