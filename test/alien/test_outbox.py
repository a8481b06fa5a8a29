"""The in-memory outbox: lanes, bound and drop policy, settlement."""

from __future__ import annotations

import asyncio

import pytest

from alien.delivery.outbox import Lane, MemoryOutbox, OutgoingMessage


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
    assert [m.attempts for m in again] == [1, 0, 1]  # the first batch was t1 and the freshest, t3
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


async def test_the_freshest_telemetry_rides_ahead_of_a_backlog() -> None:
    outbox = MemoryOutbox(100)
    for i in range(10):
        outbox.put(_msg(f"t{i}", Lane.TELEMETRY))
    first = await outbox.take(4)
    assert [m.msg_id for m in first] == ["t9", "t0", "t1", "t2"]
    outbox.retry(first)  # a failed batch goes back where it came from
    assert [m.msg_id for m in await outbox.take(100)] == [f"t{i}" for i in range(10)]


def test_bytes_bound_and_drop_newest_policy() -> None:
    by_bytes = MemoryOutbox(100, max_bytes=25)  # each message is 10 bytes
    for name in ("t1", "t2", "t3"):
        by_bytes.put(_msg(name, Lane.TELEMETRY))
    assert by_bytes.stats().depth == 2 and by_bytes.dropped == {"full_telemetry": 1}
    keep_history = MemoryOutbox(2, policy="drop_newest")
    for name in ("t1", "t2", "t3"):
        keep_history.put(_msg(name, Lane.TELEMETRY))
    assert [m.msg_id for m in keep_history._lanes[Lane.TELEMETRY]] == ["t1", "t2"]


async def test_old_telemetry_expires_unsent_and_is_counted() -> None:
    outbox = MemoryOutbox(100, max_age_s=60)
    stale = _msg("old", Lane.TELEMETRY)
    stale.created -= 120
    outbox.put(stale)
    outbox.put(_msg("new", Lane.TELEMETRY))
    assert [m.msg_id for m in await outbox.take(10)] == ["new"]
    assert outbox.dropped == {"expired": 1}


async def test_held_telemetry_waits_while_control_goes_until_released() -> None:
    outbox = MemoryOutbox(10)
    outbox.hold_telemetry("admission")
    outbox.put(_msg("t1", Lane.TELEMETRY))
    outbox.put(_msg("c1", Lane.CONTROL))
    assert [m.msg_id for m in await outbox.take(10)] == ["c1"]
    waiting = asyncio.ensure_future(outbox.take(10))
    for _ in range(5):  # give take() every chance to run: it must keep waiting
        await asyncio.sleep(0)
    assert not waiting.done()
    outbox.hold_telemetry("dialect")
    outbox.release_telemetry("admission")
    for _ in range(5):
        await asyncio.sleep(0)
    assert not waiting.done()  # one hold left
    outbox.release_telemetry("dialect")
    assert [m.msg_id for m in await asyncio.wait_for(waiting, 5)] == ["t1"]


async def test_settled_resolves_on_ack_and_on_refusal() -> None:
    outbox = MemoryOutbox(10)
    for name in ("a", "b"):
        outbox.put(_msg(name, Lane.CONTROL))
    acked, refused = outbox.settled("a"), outbox.settled("b")
    first, second = await outbox.take(10)
    outbox.ack(first, duplicate=False)
    outbox.reject(second, "denied")
    assert (await acked, await refused) == (True, False)


def test_message_ids_stay_unique_in_a_forked_child() -> None:
    import os

    from alien.wire import new_message_id

    parent = [new_message_id() for _ in range(3)]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids go to the parent, then it exits at once
        os.write(write, " ".join(new_message_id() for _ in range(3)).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 1000).decode().split()
    os.waitpid(pid, 0)
    following = [new_message_id() for _ in range(3)]
    assert len(set(parent + child + following)) == 9
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in parent + child)


async def test_nothing_overtakes_a_pending_message_and_it_is_replaced_in_its_place() -> None:
    outbox = MemoryOutbox(10)
    outbox.put(_msg("c1", Lane.CONTROL))
    outbox.put(OutgoingMessage("p1", "@event@", b"{}", Lane.CONTROL))  # not encoded yet
    outbox.put(_msg("c2", Lane.CONTROL))
    outbox.put(_msg("t1", Lane.TELEMETRY))
    assert [m.msg_id for m in await outbox.take(10)] == ["t1"]  # the control lane waits behind p1
    outbox.resolve(lambda held: None)  # still not encodable: stays
    waiting = asyncio.ensure_future(outbox.take(10))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not waiting.done()
    outbox.resolve(lambda held: [OutgoingMessage(held.msg_id, "events.p1", b"{}", Lane.CONTROL)])
    assert [(m.msg_id, m.subject) for m in await asyncio.wait_for(waiting, 5)] == [
        ("c1", "subject.c1"),
        ("p1", "events.p1"),
        ("c2", "subject.c2"),
    ]


def test_drops_are_counted_by_the_outbox_and_read_only_elsewhere() -> None:
    outbox = MemoryOutbox(10)
    outbox.note_dropped("rate_limited")
    outbox.note_dropped("closed_unsent", 3)
    assert outbox.dropped == {"rate_limited": 1, "closed_unsent": 3} == outbox.stats().dropped
    with pytest.raises(TypeError):
        outbox.dropped["rate_limited"] = 0  # type: ignore[index]
    assert outbox.dropped["rate_limited"] == 1
