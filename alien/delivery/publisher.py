"""The publisher: drains the outbox into JetStream.

It keeps up to `publish_window` JetStream publishes in flight (core-NATS publishes whose answers
`alien.delivery.pub_acks` awaits), settles each message on its PubAck as it comes (counting
`duplicate` acks: the server's Nats-Msg-Id window dropped a replay), retries transient failures
with the same message id, and rejects for good only what the server refused as invalid (it would
never succeed). A publish nats-server denies is never answered: the refusal (NatsLink.on_denied)
ends its wait at once and it is dropped, counted as `denied`. While the link is down it waits for
the reconnect instead of spinning.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Iterable

import nats.errors
import nats.js.errors

from alien.delivery.outbox import Outbox, OutgoingMessage
from alien.delivery.pub_acks import AckInbox
from alien.link import NatsLink
from alien.logs import get_logger

logger = get_logger("alien.publisher")

# The server refused the message itself (too large, bad subject...): retrying cannot help.
_PERMANENT = (nats.errors.MaxPayloadError, nats.errors.BadSubjectError)
_TRANSIENT_API_CODES = frozenset({500, 503})
# 409 "duplicate message id is in process" (10158): a clustered stream has this id in a proposal it
# has not committed yet (a leader that lost its quorum, then got it back). Sent again later with
# the same id it is stored once: a retry, never a refusal (docs/delivery.md#on-a-nats-cluster).
_TRANSIENT_ERR_CODES = frozenset({10158})

_Sent = tuple[OutgoingMessage, str, bytes]  # the message, and the subject and payload it went out with
_Answer = asyncio.Future[bool]  # resolves to `duplicate` (see alien.delivery.pub_acks)


class _DeniedError(Exception):
    """nats-server refused the publish (permissions violation); it never answers such a message."""


def _newest_per_subject(
    waiting: Iterable[tuple[_Answer, _Sent]],
) -> dict[str, _Answer]:
    return {subject: future for future, (_, subject, _) in waiting}  # in send order: the last one stays


class Publisher:
    def __init__(
        self,
        link: NatsLink,
        outbox: Outbox,
        *,
        window: int,
        timeout_s: float,
    ) -> None:
        self.link = link
        self.outbox = outbox
        self.window = window
        self.timeout_s = timeout_s
        self.last_latency_s: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._failures = 0
        self._stopping = False
        self._no_stream_said: set[str] = set()  # subjects already warned about
        self._taken_subjects: set[str] = set()  # subjects a stream took messages on (told to link.stream_outages)
        self._sent: dict[_Answer, _Sent] = {}  # the batch awaiting its answers
        self._acks = AckInbox()
        self._denials = 0
        self._wake: asyncio.Future[None] | None = None  # set when an answer may settle a message
        link.on_denied(self._on_denied)

    def start(self) -> None:
        self._stopping = False
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="alien-publisher")
            self._task.add_done_callback(self._restart_if_died)

    def _restart_if_died(self, task: asyncio.Task[None]) -> None:
        """The publisher must not end silently: an unexpected error is logged and it restarts."""
        if task.cancelled() or task is not self._task:
            return
        exc = task.exception()
        if exc is not None:
            logger.error("publisher stopped by %r; restarting it in 1 s", exc)
            self._task = None
            asyncio.get_running_loop().call_later(1.0, self.start)

    async def stop(self, timeout: float = 5.0) -> None:
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True  # ends the loop even if a nats-py await swallowed the cancel (3.11)
            task.cancel()
            await asyncio.wait({task}, timeout=timeout)
        await self._acks.close()

    async def flush(self, timeout: float) -> bool:
        """Wait until every queued message is acknowledged; False when `timeout` passed first."""
        try:
            await asyncio.wait_for(self.outbox.wait_idle(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def _run(self) -> None:
        while not self._stopping:
            # Wait for the link first: a batch taken during an outage would sit in flight, out of
            # reach of the outbox's bounds and age limit, until the reconnect.
            await self.link.connected.wait()
            batch = await self.outbox.take(self.window)
            if not self.link.connected.is_set():
                self.outbox.retry(batch)
                continue
            failed = await self._publish(batch)
            if failed and self._stopping:
                self.outbox.retry(failed)  # kept for the next start
                return
            if failed:
                self.outbox.retry(failed)
                self._failures += 1
                # full-jitter backoff, capped; a reconnect is awaited at the top of the loop
                await asyncio.sleep(random.uniform(0, min(5.0, 0.05 * 2 ** min(self._failures, 7))))
            else:
                self._failures = 0

    async def _publish(self, batch: list[OutgoingMessage]) -> list[OutgoingMessage]:
        """Publish `batch`; returns the messages to retry."""
        started = asyncio.get_running_loop().time()
        pending: dict[_Answer, _Sent] = {}
        replies: list[str] = []
        retry: list[OutgoingMessage] = []
        self._sent = pending  # where a refusal finds the messages it ends (see _on_denied)
        try:
            await self._send(batch, pending, replies, retry)
            timed_out = await self._settle(pending, started, retry)
        finally:
            self._sent = {}
            for reply in replies:  # answered, given up on or never sent: nothing is awaited on them now
                self._acks.forget(reply)
        for index, (message, subject, payload) in enumerate(timed_out):
            if self.link.is_denied("publish", subject):  # never answered: nats-server refused it
                self._reject_denied(message, subject)
                continue
            if not await self._publish_one(message, subject, payload, retry):
                retry.extend(m for m, _, _ in timed_out[index + 1 :])  # the server is not answering
                break
        if retry:
            logger.debug("%d message(s) will be retried with their ids", len(retry))
        return retry

    async def _send(
        self,
        batch: list[OutgoingMessage],
        pending: dict[_Answer, _Sent],
        replies: list[str],
        retry: list[OutgoingMessage],
    ) -> None:
        """Hand `batch` to nats-py; each message sent gets the future of its PubAck in `pending`."""
        nc = self.link.nc
        await self._acks.open(nc)
        denials = self._denials
        for message in batch:
            # Nothing is sent that nats-py would refuse (too large, link down): said and counted here.
            subject, payload = message.subject, message.payload  # final bytes: published as they are
            if len(payload) > nc.max_payload:
                self._reject(message, f"{len(payload)} bytes exceed the server's max_payload {nc.max_payload}")
                continue
            if not nc.is_connected:
                retry.append(message)
                continue
            if self.link.denied and self.link.is_denied("publish", subject):  # nothing refused yet: no lookup
                self._reject_denied(message, subject)
                continue
            reply, future = self._acks.expect()
            replies.append(reply)
            try:
                # JetStream's publish: the stream answers on `reply`. No per-message flush: nats-py's
                # flusher writes what the loop pass queued in one socket write.
                await nc.publish(subject, payload, reply=reply, headers={"Nats-Msg-Id": message.msg_id})
            except _PERMANENT as exc:
                self._reject(message, str(exc))
                continue
            except Exception as exc:  # noqa: BLE001 - any send failure is retried with the same id
                logger.debug("publish of %s deferred: %r", message.msg_id, exc)
                retry.append(message)
                continue
            pending[future] = (message, subject, payload)
        if self._denials != denials:
            # A refusal that came while nats-py was still sending, before its future was in
            # `pending`: the listener could not see that message.
            for future, (_, subject, _) in pending.items():
                if not future.done() and self.link.is_denied("publish", subject):
                    future.set_exception(_DeniedError(subject))

    async def _settle(self, pending: dict[_Answer, _Sent], started: float, retry: list[OutgoingMessage]) -> list[_Sent]:
        """Settle each message as its answer comes, in any order; returns those unanswered in time.

        An ack settles when it comes, not behind a message still waiting in the same batch: a stop
        meanwhile must not leave in the outbox what the server has stored (the next start would
        send it again, a duplicate once the server's duplicate window has passed).
        """
        loop = asyncio.get_running_loop()
        waiting: deque[tuple[_Answer, _Sent]] = deque(pending.items())  # in send order
        # A done callback on every future costs a loop callback per message (5-8 % of the drain
        # rate, measured). A stream answers in order, so it is enough to be woken by the oldest
        # message waiting and by the newest one of each subject (and by a refusal, see
        # _on_denied): when one of them is answered, so are, or soon will be, those before it to
        # that subject. Only an answer that comes behind one of its own subject still waiting (a
        # reply lost) is left until the next wake-up, the timeout or the stop.
        newest = _newest_per_subject(waiting)
        armed: set[_Answer] = set()
        timed_out: list[_Sent] = []
        deadline = started + self.timeout_s
        out_of_order = False
        try:
            while True:
                acked: list[tuple[OutgoingMessage, bool]] = []
                while waiting and waiting[0][0].done():
                    future, sent = waiting.popleft()
                    if newest.get(sent[1]) is future:
                        del newest[sent[1]]  # nothing to that subject waits any more
                    self._settle_one(future, sent, acked, retry)
                if waiting and (out_of_order or any(future.done() for future in newest.values())):
                    # Answered behind one still waiting (never answered, or another stream is
                    # slower): every answer that came is settled, wherever it is in the batch.
                    still: deque[tuple[_Answer, _Sent]] = deque()
                    for future, sent in waiting:
                        if future.done():
                            self._settle_one(future, sent, acked, retry)
                        else:
                            still.append((future, sent))
                    waiting = still
                    newest = _newest_per_subject(waiting)
                self._ack(acked, started)  # answers that came together: one store transaction
                if not waiting:
                    break
                for future in {waiting[0][0], *newest.values()} - armed:
                    future.add_done_callback(self._wake_up)
                    armed.add(future)
                self._wake = wake = loop.create_future()
                try:
                    async with asyncio.timeout_at(deadline):
                        await wake  # the wake-up wakes this task directly: one loop pass, not two
                except TimeoutError:
                    break
                out_of_order = not waiting[0][0].done()
        finally:  # also when cancelled (stop): every answer that has come is settled
            self._wake = None
            for future in armed:
                future.remove_done_callback(self._wake_up)
            acked = []
            for future, sent in waiting:
                if future.done():
                    self._settle_one(future, sent, acked, retry)
                else:
                    future.cancel()
                    timed_out.append(sent)
            self._ack(acked, started)
        return timed_out

    def _wake_up(self, _: object = None) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    def _settle_one(
        self,
        future: _Answer,
        sent: _Sent,
        acked: list[tuple[OutgoingMessage, bool]],
        retry: list[OutgoingMessage],
    ) -> None:
        message, subject, _ = sent
        try:
            duplicate = future.result()
        except _DeniedError:
            self._reject_denied(message, subject)
        except nats.js.errors.APIError as exc:
            if exc.code in _TRANSIENT_API_CODES or exc.err_code in _TRANSIENT_ERR_CODES:
                self.link.stream_outages.unanswered(subject, str(exc))
                retry.append(message)
            else:
                self._reject(message, str(exc))
        except nats.js.errors.NoStreamResponseError:
            self._no_stream(subject)
            retry.append(message)
        except (Exception, asyncio.CancelledError) as exc:  # noqa: BLE001 - connection lost, cancelled...
            logger.debug("publish of %s failed: %r", message.msg_id, exc)
            retry.append(message)
        else:
            acked.append((message, duplicate))

    def _ack(self, acked: list[tuple[OutgoingMessage, bool]], started: float) -> None:
        if acked:
            self.outbox.ack_many(acked)
            subjects = {message.subject for message, _ in acked}
            if self.link.stream_outages.any or not subjects <= self._taken_subjects:
                self._taken_subjects |= subjects
                self.link.stream_outages.answered(subjects)
            self.last_latency_s = asyncio.get_running_loop().time() - started

    def _on_denied(self, operation: str, subject: str) -> None:
        """nats-server refused a publish: it will never answer, so the wait for it ends now.

        The refusal names only the subject (lower-cased by nats-py): every message of this batch
        to it ends, as the same permission refuses them all. With a link shared by several
        publishers (AlienFleet) each one ends its own.
        """
        if operation != "publish":
            return
        self._denials += 1
        for future, (_, sent_to, _) in self._sent.items():
            if not future.done() and sent_to.lower() == subject:
                future.set_exception(_DeniedError(subject))
                self._wake_up()

    async def _publish_one(
        self, message: OutgoingMessage, subject: str, payload: bytes, retry: list[OutgoingMessage]
    ) -> bool:
        """A message whose asynchronous ack never came, sent again on its own, synchronously.

        An ack lost when the link dropped: the same id makes the server answer `duplicate`.
        (A refusal is answered at once: alien.delivery.pub_acks reads it.)
        """
        if not self.link.is_connected:
            retry.append(message)
            return False
        try:
            ack = await self.link.js.publish(
                subject, payload, timeout=self.timeout_s, headers={"Nats-Msg-Id": message.msg_id}
            )
        except nats.js.errors.APIError as exc:
            if exc.code in _TRANSIENT_API_CODES or exc.err_code in _TRANSIENT_ERR_CODES:
                self.link.stream_outages.unanswered(subject, str(exc))
                retry.append(message)
            else:
                self._reject(message, str(exc))
        except nats.js.errors.NoStreamResponseError:
            self._no_stream(subject)
            retry.append(message)
            return False
        except Exception as exc:  # noqa: BLE001 - still no answer: retried later with the same id
            logger.debug("publish of %s failed again: %r", message.msg_id, exc)
            if isinstance(exc, asyncio.TimeoutError) and self.link.is_connected:
                self.link.stream_outages.unanswered(subject, f"no PubAck within {self.timeout_s:g}s")
            retry.append(message)
            return False
        else:
            self.outbox.ack(message, duplicate=bool(ack.duplicate))
            if self.link.stream_outages.any:
                self.link.stream_outages.answered((subject,))
        return True

    def _no_stream(self, subject: str) -> None:
        """No JetStream stream captures `subject`: said once per subject, then retried quietly.

        Where a stream took such messages before, it is there but has no leader (a cluster node
        lost, an election): that outage is said once for the whole link (StreamOutages).
        """
        if self.link.stream_outages.has_taken(subject):
            self.link.stream_outages.unanswered(subject, "no responders")
            return
        if subject in self._no_stream_said:
            logger.debug("no stream captures %s yet; retrying", subject)
            return
        self._no_stream_said.add(subject)
        logger.warning(
            "no JetStream stream captures %s: messages wait in the outbox and are retried with their ids "
            "(is NATS_URL the mothership's NATS, has it created its streams, is ALIEN_JETSTREAM_DOMAIN right?)",
            subject,
        )

    def _reject_denied(self, message: OutgoingMessage, subject: str) -> None:
        """Dropped and counted (`dropped["denied"]`): neither retried nor kept.

        A key without the right would otherwise fill the disk at sensor rate; the link said once
        which right is missing.
        """
        self.outbox.discard(message, "denied")
        logger.debug("message %s dropped: publishing to %s is denied", message.msg_id, subject)

    def _reject(self, message: OutgoingMessage, reason: str) -> None:
        self.outbox.reject(message, reason)
        logger.error("message %s on %s refused for good: %s", message.msg_id, message.subject, reason)
