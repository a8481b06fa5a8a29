"""The fleet benchmark's reader: what the streams store, as they store it, on a loop thread of its own.

One durable pull consumer per stream (three replicas: it survives the node the benchmark kills),
headers only: for every message the `Nats-Msg-Id`, the stream sequence and the time the stream
stored it (the server's clock). It stands in for the mothership's own consumers, which the
emulator does not run here (their Python workers would be what the benchmark measured).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

T = TypeVar("T")
_BATCH = 1000
_UNANSWERED = (nats.errors.Error, asyncio.TimeoutError)  # a node lost or an election: ask again


@dataclass
class StreamLog:
    """What one stream stored: the first stored time per id, how many sequences each id got."""

    stored_at: dict[str, float] = field(default_factory=dict)
    copies: dict[str, int] = field(default_factory=dict)
    again_at: dict[str, float] = field(default_factory=dict)  # when an id was stored a second time
    seqs: set[int] = field(default_factory=set)
    last_seq: int = 0


class LiveReader:
    """Reads `streams` on `urls` from now on until stop(); thread-safe views of what it has read."""

    def __init__(self, urls: list[str], streams: dict[str, str], *, ack: set[str]) -> None:
        """`streams`: name -> the subjects it captures (the consumer's filter)."""
        self._urls = urls
        self._subjects = streams
        self._streams = list(streams)
        self._ack = ack  # streams whose consumer must ack (a work queue refuses AckNone)
        self.logs = {stream: StreamLog() for stream in streams}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fleet-reader", daemon=True)
        self._tasks: list[asyncio.Task[None]] = []
        self._nc: Any = None
        self._lock = threading.Lock()

    def start(self) -> None:
        self._thread.start()
        self.call(self._start())

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stop(self) -> None:
        self.call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def last_seqs(self) -> dict[str, int]:
        """Each stream's last sequence now (how many messages it took so far), asked of the cluster."""
        return self.call(self._last_seqs([*self._streams, "KV_CONSTELLATION_GLOBAL_STATE"]))

    def caught_up(self) -> bool:
        seqs = self.call(self._last_seqs(self._streams))
        with self._lock:
            return all(self.logs[stream].last_seq >= seq for stream, seq in seqs.items())

    # -- on the loop ---------------------------------------------------------------------------
    async def _start(self) -> None:
        self._nc = await nats.connect(self._urls, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
        js = self._nc.jetstream(timeout=5)
        for stream in self._streams:
            config = ConsumerConfig(
                durable_name="bench-reader",
                ack_policy=AckPolicy.EXPLICIT if stream in self._ack else AckPolicy.NONE,
                # a work queue allows only "all" (err 10101); it holds nothing yet when the reader starts
                deliver_policy=DeliverPolicy.ALL if stream in self._ack else DeliverPolicy.NEW,
                headers_only=True,
                num_replicas=3,
                max_ack_pending=20_000,
            )
            sub = await js.pull_subscribe(self._subjects[stream], durable="bench-reader", stream=stream, config=config)
            self._tasks.append(asyncio.create_task(self._read(stream, sub)))

    async def _read(self, stream: str, sub: Any) -> None:
        log = self.logs[stream]
        ack = stream in self._ack
        while True:
            try:
                batch = await sub.fetch(_BATCH, timeout=1.0)
            except _UNANSWERED:
                continue
            with self._lock:
                for msg in batch:
                    meta = msg.metadata
                    seq = meta.sequence.stream
                    log.last_seq = max(log.last_seq, seq)
                    if seq in log.seqs:
                        continue  # delivered again (a consumer's leader changed): the same stored message
                    log.seqs.add(seq)
                    msg_id = (msg.headers or {}).get("Nats-Msg-Id", "")
                    log.copies[msg_id] = log.copies.get(msg_id, 0) + 1
                    at = meta.timestamp.timestamp()
                    if log.stored_at.setdefault(msg_id, at) != at:
                        log.again_at.setdefault(msg_id, at)
            if ack:
                for msg in batch:
                    try:
                        await msg.ack()
                    except _UNANSWERED:
                        break  # not acked: delivered again, and counted once by its sequence

    async def _last_seqs(self, streams: list[str]) -> dict[str, int]:
        js = self._nc.jetstream(timeout=5)
        out = {}
        for stream in streams:
            for _ in range(20):
                try:
                    out[stream] = int((await js.stream_info(stream)).state.last_seq)
                    break
                except _UNANSWERED:
                    await asyncio.sleep(0.5)  # a bounded retry while the cluster elects a leader
            if stream not in out:
                raise RuntimeError(f"{stream}: no stream info after 20 attempts")
        return out

    async def _stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._nc is not None:
            await self._nc.close()
