"""The outbox: the one place an outgoing message waits until JetStream acknowledges it.

Three lanes, taken in this order: control (events, command results), rejections (reports of
commands refused: anyone who can publish a command can cause them), telemetry. At the bound a
rejection makes room only among rejections; control makes room with rejections, then telemetry,
then the oldest control; telemetry only with telemetry. Every drop is counted. A message keeps
the id it got when it entered, so every retry carries the same Nats-Msg-Id. With a store
(`alien.delivery.outbox_store.SqliteStore` and its journal) every queued message is also on disk
until it is acknowledged, so it survives a restart; without one the outbox lives in memory only.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from types import MappingProxyType
from typing import Literal, Protocol

from alien.metrics.latency import Latency

FullPolicy = Literal["drop_oldest", "drop_newest"]


class Lane(IntEnum):
    CONTROL = 0
    TELEMETRY = 1
    REJECTIONS = 2  # a flood of garbage commands must not evict what happened before it


_TAKE_ORDER = (Lane.CONTROL, Lane.REJECTIONS, Lane.TELEMETRY)
# Which queued lanes a message arriving at the bound may evict from, in the order tried.
_MAKES_ROOM = {
    Lane.CONTROL: (Lane.REJECTIONS, Lane.TELEMETRY, Lane.CONTROL),
    Lane.REJECTIONS: (Lane.REJECTIONS,),
    Lane.TELEMETRY: (Lane.TELEMETRY,),
}


@dataclass(slots=True)
class OutgoingMessage:
    msg_id: str
    subject: str
    payload: bytes
    lane: Lane
    created: float = field(default_factory=time.time)
    attempts: int = 0
    seq: int = 0  # order of entry into the outbox (assigned by it); retries go back by it

    @property
    def pending(self) -> bool:
        """Not encoded yet (alien.telemetry.composer): a subject no message goes out on; never taken while so."""
        return "@" in self.subject


class Store(Protocol):
    def load(self) -> tuple[list[OutgoingMessage], int]: ...
    def insert(self, message: OutgoingMessage) -> None: ...
    def delete(self, msg_id: str) -> None: ...
    def delete_many(self, msg_ids: list[str]) -> None: ...
    def park(self, msg_id: str, reason: str) -> None: ...
    def batch(self) -> contextlib.AbstractContextManager[None]: ...
    def transaction(self) -> contextlib.AbstractContextManager[None]: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class OutboxStats:
    enqueued: int
    published: int
    duplicates: int
    dropped: dict[str, int]
    rejected: int
    depth: int
    depth_bytes: int
    in_flight: int
    parked: int
    oldest_age_s: float | None


class Outbox:
    """Bounded three-lane queue; `take` hands out messages, `ack`/`retry`/`reject` settle them."""

    def __init__(
        self,
        max_messages: int,
        store: Store | None = None,
        *,
        max_bytes: int = 64 * 1024 * 1024,
        max_age_s: float = 0.0,
        policy: FullPolicy = "drop_oldest",
    ) -> None:
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.policy = policy
        self.store: Store | None = None
        self._lanes: dict[Lane, deque[OutgoingMessage]] = {lane: deque() for lane in _TAKE_ORDER}
        self._in_flight: dict[str, OutgoingMessage] = {}
        self._bytes = 0
        self._available = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._left = asyncio.Event()  # set whenever a message leaves (settled or dropped): see wait_below()
        self.restored = 0
        self._next_seq = 0
        self.enqueued = 0
        self.published = 0
        self.duplicates = 0
        self.rejected = 0
        self._dropped: Counter[str] = Counter()
        self._pending: Counter[Lane] = Counter()  # messages not encoded yet, per lane (see resolve())
        self.parked = 0
        self._holds: set[str] = set()  # see hold_telemetry()
        self._settled: dict[str, asyncio.Future[bool]] = {}
        self.ack_latency: Latency | None = None  # enqueue -> PubAck, observed when metrics are on
        if store is not None:
            self.attach(store)

    def hold_telemetry(self, reason: str) -> None:
        """Hand out control messages only until every reason is released (e.g. "admission")."""
        self._holds.add(reason)

    def release_telemetry(self, reason: str | None = None) -> None:
        """Release one hold (every hold when `reason` is None)."""
        if reason is None:
            self._holds.clear()
        else:
            self._holds.discard(reason)
        self._available.set()

    @property
    def telemetry_held(self) -> bool:
        return bool(self._holds)

    def resolve(self, expand: Callable[[OutgoingMessage], list[OutgoingMessage] | None]) -> None:
        """Replace each pending message by `expand(message)` (None: it stays pending), in its place.

        One store transaction: a kill leaves either the pending row or what replaced it.
        """
        with self.store.transaction() if self.store is not None else contextlib.nullcontext():
            for lane, queue in self._lanes.items():
                if not any(m.pending for m in queue):
                    continue
                rewritten: deque[OutgoingMessage] = deque()
                for message in queue:
                    new = expand(message) if message.pending else None
                    if new is None:
                        rewritten.append(message)
                        continue
                    self._bytes -= len(message.payload)
                    self._pending[lane] -= 1
                    if self.store is not None:
                        self.store.delete(message.msg_id)
                    for one in new:  # encoded: nothing pending (the composer's promise)
                        one.seq, one.created, one.lane = message.seq, message.created, lane
                        self._bytes += len(one.payload)
                        if self.store is not None:
                            self.store.insert(one)
                        rewritten.append(one)
                queue.clear()  # in place: take() may be waiting with a reference to this deque
                queue.extend(rewritten)
        self._available.set()

    @property
    def dropped(self) -> Mapping[str, int]:
        """Drops by reason (a read-only view, for the loop's thread; `stats()` has a copy)."""
        return MappingProxyType(self._dropped)

    def note_dropped(self, reason: str, count: int = 1) -> None:
        """A message dropped before or instead of entering the outbox (e.g. `rate_limited`), counted here."""
        self._dropped[reason] += count

    def settled(self, msg_id: str) -> asyncio.Future[bool]:
        """Resolves when message `msg_id` is acknowledged (True), or refused for good or dropped (False).

        Ask right after put(): a message settled before the call is not remembered.
        """
        future = self._settled.get(msg_id)
        if future is None:
            future = self._settled[msg_id] = asyncio.get_running_loop().create_future()
        return future

    def attach(self, store: Store) -> None:
        """Keep every queued message in `store` from now on.

        What an earlier run left there goes first, with the ids it had (the server's duplicate
        window drops what already arrived); what was queued before attaching is stored too.
        """
        self.store = store
        already = {m.msg_id for lane in self._lanes.values() for m in lane}
        for lane in _TAKE_ORDER:
            for message in self._lanes[lane]:
                store.insert(message)
        queued, self.parked = store.load()
        queued = [m for m in queued if m.msg_id not in already]
        for message in reversed(queued):
            self._lanes[message.lane].appendleft(message)
            self._pending[message.lane] += message.pending
            self._bytes += len(message.payload)
        for index, message in enumerate(m for lane in self._lanes.values() for m in lane):
            message.seq = index + 1
        self._next_seq = len(self)
        self.restored = len(queued)
        if len(self):
            self._idle.clear()
            self._available.set()

    def close(self) -> None:
        if self.store is not None:
            self.store.close()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Puts inside reach the store in one write at the end.

        For messages handed over together that nobody was told are stored yet: put() normally
        writes each message to disk before it returns.
        """
        with self.store.batch() if self.store is not None else contextlib.nullcontext():
            yield

    def __len__(self) -> int:
        return sum(len(q) for q in self._lanes.values())

    @property
    def unsettled(self) -> int:
        """Messages queued or in flight: what the bounds count."""
        return len(self) + len(self._in_flight)

    async def wait_below(self, count: int) -> None:
        """Until fewer than `count` messages are queued or in flight."""
        while self.unsettled >= count:
            self._left.clear()
            await self._left.wait()

    def put(self, message: OutgoingMessage) -> None:
        """Queue `message`; when a bound is reached, telemetry makes room first (every drop counted).

        Policy `drop_oldest` (default) drops the oldest queued telemetry; `drop_newest` drops the
        incoming telemetry instead (keeps the history). A telemetry message finding no telemetry to
        replace is itself dropped; control messages (events, command results) are dropped only when
        nothing but control is queued.
        """
        while self._full(len(message.payload)):
            if message.lane is Lane.TELEMETRY and self.policy == "drop_newest":
                self._dropped["full_telemetry"] += 1
                return
            victim = next((lane for lane in _MAKES_ROOM[message.lane] if self._lanes[lane]), None)
            if victim is None:  # nothing it may replace (or everything is in flight)
                self._dropped[f"full_{message.lane.name.lower()}"] += 1
                return
            self._evict(victim, f"full_{victim.name.lower()}")
        if self.store is not None:
            self.store.insert(message)  # on disk before put() returns: a kill cannot lose it
        self._next_seq += 1
        message.seq = self._next_seq
        self._lanes[message.lane].append(message)
        if message.pending:
            self._pending[message.lane] += 1
        self._bytes += len(message.payload)
        self.enqueued += 1
        self._idle.clear()
        self._available.set()

    def _full(self, incoming_bytes: int) -> bool:
        return len(self) + len(self._in_flight) >= self.max_messages or (
            self._bytes + incoming_bytes > self.max_bytes and len(self) > 0
        )

    def _evict(self, lane: Lane, reason: str) -> None:
        self._left.set()
        victim = self._lanes[lane].popleft()
        self._pending[lane] -= victim.pending
        self._bytes -= len(victim.payload)
        self._dropped[reason] += 1
        waiter = self._settled.pop(victim.msg_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(False)
        if self.store is not None:
            self.store.delete(victim.msg_id)

    async def take(self, limit: int) -> list[OutgoingMessage]:
        """Up to `limit` messages: control first, then telemetry oldest first; waits while empty.

        Telemetry older than `max_age_s` is dropped here (counted as `expired`). Behind a backlog
        longer than the batch, the newest telemetry message rides along with the oldest ones, so
        the operator sees where the robot is now while the history drains.
        """
        while True:
            self._expire()
            control, rejections, telemetry = (self._open(lane) for lane in _TAKE_ORDER)
            if control or rejections or telemetry:
                break
            self._available.clear()
            await self._available.wait()
        batch: list[OutgoingMessage] = []
        for events in (control, rejections):
            while events and len(batch) < limit:
                batch.append(events.popleft())
        if len(telemetry) > limit - len(batch) > 1:
            batch.append(telemetry.pop())  # the freshest state, ahead of the backlog
        while telemetry and len(batch) < limit:
            batch.append(telemetry.popleft())
        for message in batch:
            self._bytes -= len(message.payload)
            self._in_flight[message.msg_id] = message
        return batch

    def _open(self, lane: Lane) -> deque[OutgoingMessage]:
        """The lane's queue, or an empty one while it is held: nothing overtakes a pending message."""
        if self._pending[lane] or (lane is Lane.TELEMETRY and self.telemetry_held):
            return deque()
        return self._lanes[lane]

    def _expire(self) -> None:
        if self.max_age_s <= 0:
            return
        telemetry, horizon = self._lanes[Lane.TELEMETRY], time.time() - self.max_age_s
        while telemetry and telemetry[0].created < horizon:
            self._evict(Lane.TELEMETRY, "expired")
        if not len(self) and not self._in_flight:
            self._idle.set()

    def ack(self, message: OutgoingMessage, *, duplicate: bool) -> None:
        self.ack_many([(message, duplicate)])

    def ack_many(self, acks: list[tuple[OutgoingMessage, bool]]) -> None:
        """Acknowledged (message, duplicate) pairs: one store transaction for all of them."""
        if self.store is not None:
            self.store.delete_many([message.msg_id for message, _ in acks])
        for message, duplicate in acks:
            self._settle(message, acknowledged=True)
            self.duplicates += int(duplicate)
        self.published += len(acks)
        if self.ack_latency is not None:
            now = time.time()
            for message, _ in acks:
                self.ack_latency.observe(now - message.created)

    def reject(self, message: OutgoingMessage, reason: str) -> None:
        """The server refused it for good: parked with the reason (kept on disk), not retried."""
        if self.store is not None:
            self.store.park(message.msg_id, reason)
        self._settle(message, acknowledged=False)
        self.rejected += 1
        self.parked += 1

    def discard(self, message: OutgoingMessage, reason: str) -> None:
        """Taken but never to be sent (e.g. its subject is denied): removed and counted as dropped."""
        if self.store is not None:
            self.store.delete(message.msg_id)
        self._dropped[reason] += 1
        self._settle(message, acknowledged=False)

    def retry(self, messages: list[OutgoingMessage]) -> None:
        """Put messages back where they were in their lanes (by entry order)."""
        for message in sorted(messages, key=lambda m: m.seq, reverse=True):
            self._in_flight.pop(message.msg_id, None)
            message.attempts += 1
            lane = self._lanes[message.lane]
            if lane and message.seq > lane[-1].seq:
                lane.append(message)  # the fresh message taken from the tail goes back there
            else:
                lane.appendleft(message)
            self._bytes += len(message.payload)
        if messages:
            self._available.set()

    async def wait_idle(self) -> None:
        """Until nothing is queued or in flight."""
        await self._idle.wait()

    def stats(self) -> OutboxStats:
        oldest = [q[0].created for q in self._lanes.values() if q] + [m.created for m in self._in_flight.values()]
        return OutboxStats(
            enqueued=self.enqueued,
            published=self.published,
            duplicates=self.duplicates,
            dropped=dict(self._dropped),
            rejected=self.rejected,
            depth=len(self),
            depth_bytes=self._bytes,
            in_flight=len(self._in_flight),
            parked=self.parked,
            oldest_age_s=(time.time() - min(oldest)) if oldest else None,
        )

    def _settle(self, message: OutgoingMessage, *, acknowledged: bool) -> None:
        self._left.set()
        self._in_flight.pop(message.msg_id, None)
        waiter = self._settled.pop(message.msg_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(acknowledged)
        if not self._in_flight and not len(self):  # per message: the cheap test first
            self._idle.set()


MemoryOutbox = Outbox  # the outbox without a store
