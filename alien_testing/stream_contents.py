"""What a JetStream stream holds, read from the stream itself: the ground truth of a fault drill.

A client's own counters say what it believes it delivered; :func:`read_stream` says what the
server stored: every message once per stream sequence, with its ``Nats-Msg-Id`` and the time the
stream stored it. :func:`lost_and_doubled` compares that with the ids a client sent.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, RetentionPolicy

__all__ = ["StoredMessage", "lost_and_doubled", "read_stream"]

_BATCH = 1000
_RETRY_S = 0.2
_UNANSWERED = (nats.errors.TimeoutError, nats.errors.NoRespondersError, nats.js.errors.ServiceUnavailableError)
T = TypeVar("T")


@dataclass(frozen=True)
class StoredMessage:
    seq: int  # the stream sequence
    subject: str
    msg_id: str | None  # Nats-Msg-Id
    stored_at: datetime  # when the stream stored it (the server's clock)
    data: bytes


async def read_stream(
    js: JetStreamContext, stream: str, subject: str | None = None, *, first_seq: int = 1, timeout: float = 30.0
) -> list[StoredMessage]:
    """Every message of `stream` (on `subject`, a filter, when given) from `first_seq` on, in order.

    An ephemeral pull consumer that acks nothing, so it takes nothing away: on a limits-retention
    stream beside the server's own consumers; on a work queue only where no other consumer takes
    its subjects (an emulator with ``consumers=False``), since a work queue refuses overlapping
    consumers and wants explicit acks from every consumer, from the first message.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    # Right after a fault the cluster may still be electing leaders: its API answers 503 or nothing.
    info = await _until_answered(lambda: js.stream_info(stream), deadline)
    work_queue = info.config.retention == RetentionPolicy.WORK_QUEUE
    config = ConsumerConfig(
        ack_policy=AckPolicy.EXPLICIT if work_queue else AckPolicy.NONE,
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE if first_seq > 1 else DeliverPolicy.ALL,
        opt_start_seq=first_seq if first_seq > 1 else None,
        filter_subject=subject,
        inactive_threshold=30.0,
        max_ack_pending=-1,  # never acked: unlimited, or a work queue would stop delivering
    )
    sub = await _until_answered(lambda: js.pull_subscribe(subject or ">", stream=stream, config=config), deadline)
    out: list[StoredMessage] = []
    consumer = await _until_answered(sub.consumer_info, deadline)
    try:
        pending = consumer.num_pending or 0
        while pending > 0:
            if loop.time() > deadline:
                raise TimeoutError(f"{stream}: {len(out)} read, {pending} still pending after {timeout:.0f}s")
            try:
                batch = await sub.fetch(min(_BATCH, pending), timeout=2.0)
            except _UNANSWERED:
                continue
            for msg in batch:
                meta = msg.metadata
                headers = msg.headers or {}
                out.append(
                    StoredMessage(
                        meta.sequence.stream, msg.subject, headers.get("Nats-Msg-Id"), meta.timestamp, msg.data
                    )
                )
                pending = meta.num_pending or 0
    finally:
        try:
            await sub.unsubscribe()
            # gone at once, not after its inactivity threshold: a work queue allows no second reader
            await js.delete_consumer(stream, consumer.name)
        except nats.errors.Error:
            pass
    return out


async def _until_answered(call: Callable[[], Awaitable[T]], deadline: float) -> T:
    loop = asyncio.get_running_loop()
    while True:
        try:
            return await call()
        except _UNANSWERED:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(_RETRY_S)  # a bounded retry while the cluster settles


def lost_and_doubled(sent: Iterable[str], stored: Iterable[StoredMessage]) -> tuple[list[str], dict[str, int]]:
    """The sent ids the stream does not hold, and the ids it holds more than once (with their counts)."""
    counts = Counter(message.msg_id for message in stored if message.msg_id is not None)
    lost = [msg_id for msg_id in sent if msg_id not in counts]
    doubled = {msg_id: count for msg_id, count in counts.items() if count > 1}
    return lost, doubled
