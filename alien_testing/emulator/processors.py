"""The server's pull-consumer loops (``event-processor``, ``telemetry-processor``, ...).

Each loop keeps one pull request open (batch + expiry + idle heartbeat) and handles every
message the moment it arrives, so there is neither per-message fetch latency nor busy polling.
A request that goes silent for two heartbeats is dead (nats-server restarted, link cut): the
loop then waits for the connection, re-checks the server objects and asks again. That is how
the emulator survives a nats-server restart (docs/contract.md#streams: the real server's
``command-processor`` keeps draining the commands work queue).
"""

from __future__ import annotations

import asyncio
import enum
import json
from collections.abc import Awaitable, Callable

import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import RetentionPolicy

from alien.logs import get_logger
from alien_testing.emulator.contract import StreamSpec
from alien_testing.emulator.records import ReceivedMessage

log = get_logger(__name__)

_BATCH = 256
_EXPIRES_S = 5.0
_HEARTBEAT_S = 0.5
_ACK_TIMEOUT_S = 2.0
_RETRY_BACKOFF_S = 0.1
_PROBE_TIMEOUT_S = 1  # seconds (nats-py types this as int)


class _Outcome(enum.Enum):
    DONE = "done"  # the request ended normally
    LOST = "lost"  # silent or consumer gone: recover before asking again
    REFUSED = "refused"  # the server answered with an error status


Handler = Callable[[Msg], Awaitable[None]]


def received(msg: Msg) -> ReceivedMessage:
    meta = msg.metadata
    return ReceivedMessage(
        subject=msg.subject,
        data=msg.data,
        headers=dict(msg.headers or {}),
        stream_seq=meta.sequence.stream,
        stored_at=meta.timestamp,
    )


async def settle(msg: Msg, spec: StreamSpec, action: str = "ack") -> None:
    """Settle one message: ack, nak or term.

    Work-queue acks are confirmed (ack_sync) so a message recorded afterwards is already gone
    from the stream: tests can rely on that ordering.
    """
    try:
        if action == "ack" and spec.retention == RetentionPolicy.WORK_QUEUE:
            await msg.ack_sync(timeout=_ACK_TIMEOUT_S)
        elif action == "ack":
            await msg.ack()
        elif action == "nak":
            await msg.nak()  # no delay: redelivered at once, as the real worker's msg.Nak()
        else:
            await msg.term()
    except (nats.errors.Error, asyncio.TimeoutError) as exc:
        # Not settled: the server redelivers after AckWait, as a real server would.
        log.warning("%s: %s failed (%s)", spec.consumer, action, type(exc).__name__)


def ack_and_record(spec: StreamSpec, record: Callable[[ReceivedMessage], None]) -> Handler:
    """The plain processor: ack each message, then record it."""

    async def handle(msg: Msg) -> None:
        await settle(msg, spec)
        record(received(msg))

    return handle


class PullProcessor:
    """Consume ``spec.consumer`` on ``spec.name`` with ``handler`` (which acks, naks or terms)."""

    def __init__(
        self,
        nc: NATS,
        spec: StreamSpec,
        handler: Handler,
        repair: Callable[[], Awaitable[None]],
        connected: asyncio.Event,
        processing: asyncio.Event | None = None,
    ) -> None:
        """`processing`: while cleared, nothing is handled (a message already delivered waits, unacknowledged)."""
        assert spec.consumer is not None
        self._nc = nc
        self._spec = spec
        self._handler = handler
        self._repair = repair
        self._connected = connected
        self._processing = processing
        self._next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{spec.name}.{spec.consumer}"

    async def run(self) -> None:
        inbox = self._nc.new_inbox()
        sub = await self._nc.subscribe(inbox)
        try:
            while True:
                if self._processing is not None:
                    await self._processing.wait()
                outcome = await self._one_request(inbox, sub)
                if outcome is _Outcome.LOST:
                    await self._recover()
                elif outcome is _Outcome.REFUSED:
                    # Rate limit (not synchronisation): a refusal such as "409 Server Shutdown"
                    # must not spin; if the server is going away the next request goes silent.
                    await asyncio.sleep(_RETRY_BACKOFF_S)
        finally:
            if not self._nc.is_closed:
                try:
                    await sub.unsubscribe()
                except nats.errors.Error:
                    pass

    async def _one_request(self, inbox: str, sub: Subscription) -> _Outcome:
        """Serve one pull request to its end."""
        request = {"batch": _BATCH, "expires": int(_EXPIRES_S * 1e9), "idle_heartbeat": int(_HEARTBEAT_S * 1e9)}
        try:
            await self._nc.publish(self._next_subject, json.dumps(request).encode(), reply=inbox)
        except nats.errors.Error:
            return _Outcome.LOST
        remaining = _BATCH
        while remaining > 0:
            try:
                msg = await sub.next_msg(timeout=2 * _HEARTBEAT_S + 0.5)
            except nats.errors.TimeoutError:
                return _Outcome.LOST  # two heartbeats missed: the server no longer has the request
            headers = msg.headers or {}
            status = headers.get("Status")
            if status == "100":
                continue  # idle heartbeat: the request is alive
            if status in ("404", "408"):
                return _Outcome.DONE  # expired or nothing pending: ask again
            if status is not None:
                deleted = "Deleted" in headers.get("Description", "")
                return _Outcome.LOST if deleted else _Outcome.REFUSED
            if self._processing is not None:
                await self._processing.wait()
            await self._handle(msg)
            remaining -= 1
        return _Outcome.DONE

    async def _handle(self, msg: Msg) -> None:
        try:
            await self._handler(msg)
        except Exception as exc:  # noqa: BLE001 - one bad message must not stop the processor
            log.warning("%s: handler failed (%s: %s)", self._spec.consumer, type(exc).__name__, exc)
            await settle(msg, self._spec, "nak")

    async def _recover(self) -> None:
        """After a lost request: wait for the link, then make sure stream and consumer exist."""
        await self._connected.wait()
        try:
            await self._nc.flush(timeout=_PROBE_TIMEOUT_S)
            await self._repair()
        except Exception as exc:  # noqa: BLE001 - keep the loop alive; the next round retries
            log.warning("%s: repair failed (%s: %s)", self._spec.consumer, type(exc).__name__, exc)
