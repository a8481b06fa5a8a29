"""Intake: the entity's command subject, as a core subscription or a durable JetStream consumer.

A real server's `command-processor` consumer owns the commands work-queue stream, so a durable
consumer of our own is refused there (err_code 10100) and the server deletes each command within
about a second: a plain core subscription receives commands live on real servers. A durable
JetStream consumer also gets the commands sent while the device was away, where the deployment's
stream allows it. `auto` tries JetStream and falls back. See docs/contract.md.
"""

from __future__ import annotations

import asyncio
from typing import Literal

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import ConsumerConfig, DeliverPolicy, RetentionPolicy

from alien.commands.dispatcher import CommandDispatcher
from alien.errors import NatsPermissionError
from alien.learnt_denials import LearntDenials
from alien.link import NatsLink
from alien.logs import get_logger

logger = get_logger("alien.commands")

IntakeMode = Literal["auto", "core", "jetstream"]

_WORKQUEUE_CONFLICT = 10100  # "filtered consumer not unique on workqueue stream"


def intake_mode(configured: IntakeMode, denials: LearntDenials, nats_url: str) -> IntakeMode:
    """`configured`, except that `auto` goes straight to core where the JetStream API was refused before."""
    if configured == "auto" and denials.holds("jetstream_api", nats_url):
        logger.info("the JetStream API was refused on an earlier start (identity file): commands by core subscription")
        return "core"
    return configured


class CommandIntake:
    """Subscribes to the entity's command subject in the configured mode."""

    def __init__(self, link: NatsLink, subject: str, durable: str, dispatcher: CommandDispatcher) -> None:
        self.link = link
        self.subject = subject
        self.durable = durable
        self.dispatcher = dispatcher
        self.mode: Literal["core", "jetstream"] | None = None
        self._sub: Subscription | None = None

    async def start(self, mode: IntakeMode) -> Literal["core", "jetstream"]:
        if mode in ("jetstream", "auto"):
            try:
                await self._start_jetstream_unless_denied()
            except (
                nats.js.errors.APIError,
                nats.errors.TimeoutError,
                nats.errors.NoRespondersError,
                NatsPermissionError,
            ) as exc:
                if mode == "jetstream":
                    raise
                logger.info(
                    "JetStream command consumer %r not possible here (%s); using a core subscription on %s",
                    self.durable,
                    _why(exc),
                    self.subject,
                )
            else:
                return "jetstream"
        self._sub = await self.link.nc.subscribe(self.subject, cb=self._on_core)
        # SUB is only buffered until now: a flush (PING/PONG) means the server has it, so a
        # command sent after initialize() returns is never missed.
        await self.link.nc.flush(timeout=max(1, round(self.link.settings.publish_timeout_s)))
        self.mode = "core"
        logger.info("receiving commands on %s (core subscription)", self.subject)
        return "core"

    async def _start_jetstream_unless_denied(self) -> None:
        """The JetStream consumer, or PermissionError as soon as the server refuses its API.

        Edge keys on v0.1 servers have no JetStream API rights (docs/contract.md#edge-permissions); a refused request
        would otherwise only end at its timeout.
        """
        starting = asyncio.ensure_future(self._start_jetstream())
        denied = asyncio.ensure_future(self.link.denied_soon("publish", self.link.api_prefix))
        try:
            await asyncio.wait({starting, denied}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            denied.cancel()
            if not starting.done():
                starting.cancel()
        if starting.cancelled() or not starting.done():
            await asyncio.gather(starting, return_exceptions=True)
            raise NatsPermissionError("this NATS user may not use the JetStream API")
        starting.result()

    async def _start_jetstream(self) -> None:
        js = self.link.js
        stream = await js.find_stream_name_by_subject(self.subject)
        info = await js.stream_info(stream)
        # A first start must not execute an old backlog (DeliverPolicy.NEW), but a work-queue
        # stream only allows "all" (err 10101): there, what waits is what nobody took yet.
        work_queue = info.config.retention == RetentionPolicy.WORK_QUEUE
        self._sub = await js.subscribe(
            self.subject,
            durable=self.durable,
            stream=stream,
            manual_ack=True,
            cb=self._on_jetstream,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL if work_queue else DeliverPolicy.NEW),
        )
        self.mode = "jetstream"
        logger.info("receiving commands on %s (JetStream durable consumer %s)", self.subject, self.durable)

    async def _on_core(self, msg: Msg) -> None:
        self._dispatch(msg, reply=msg.reply or None, message_id=_header_id(msg))

    def _dispatch(self, msg: Msg, *, reply: str | None, message_id: str | None) -> None:
        try:
            self.dispatcher.dispatch(msg.data, reply=reply, message_id=message_id)
        except Exception:
            logger.exception("command on %s could not be handled", msg.subject)

    async def _on_jetstream(self, msg: Msg) -> None:
        # Ack on receipt: a command is executed at most once; a redelivery after a slow handler
        # (ack_wait) would move the robot twice.
        try:
            await msg.ack()
        except Exception as exc:  # noqa: BLE001 - the command is still handled
            logger.warning("could not ack command: %s", exc)
        message_id = _header_id(msg) or f"js-{msg.metadata.stream}-{msg.metadata.sequence.stream}"
        self._dispatch(msg, reply=None, message_id=message_id)

    async def stop(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            try:
                await sub.unsubscribe()
            except Exception as exc:  # noqa: BLE001 - the connection may already be gone
                logger.debug("unsubscribe failed: %s", exc)


def _header_id(msg: Msg) -> str | None:
    return msg.headers.get("Nats-Msg-Id") if msg.headers else None


def _why(exc: BaseException) -> str:
    code = getattr(exc, "err_code", None)
    if code == _WORKQUEUE_CONFLICT:
        return "the server's command-processor owns the commands work queue (err 10100)"
    if isinstance(exc, nats.js.errors.NotFoundError):
        return "no stream holds the commands subject"
    if isinstance(exc, (nats.errors.TimeoutError, nats.errors.NoRespondersError)):
        return "no JetStream API answer (no JetStream, or no permission)"
    return str(exc) or type(exc).__name__
