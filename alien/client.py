"""AlienClient: the design document's API, composed from the pieces of this package.

`initialize()` registers the device once (ids persisted and reused), connects to NATS and
starts receiving commands; `publish_telemetry` / `publish_event` / `update_position` queue a
message in the outbox, which the publisher drains into JetStream with a stable Nats-Msg-Id.
"""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import Any

from alien import registration
from alien.commands import CommandDispatcher, CommandHandler, CommandIntake, Prepare
from alien.config import AlienConfig
from alien.errors import MothershipUnavailableError, NotInitializedError, ServerError
from alien.link import NatsLink
from alien.mothership import MothershipClient, nearest_status
from alien.outbox import Lane, Outbox, OutboxStats, OutgoingMessage
from alien.outbox_store import SqliteStore
from alien.publisher import Publisher
from alien.telemetry import encode_event, encode_telemetry, position
from alien.wire import (
    ENTITY_PLACEHOLDER,
    ORG_PLACEHOLDER,
    command_subject,
    dumps,
    event_subject,
    fill_ids,
    new_message_id,
    subject_token,
    telemetry_subject,
)

logger = logging.getLogger("alien")


class AlienClient:
    """Connects one device to the mothership."""

    def __init__(self, config: AlienConfig | None = None) -> None:
        self.config = config if config is not None else AlienConfig()
        self.mothership: MothershipClient | None = None
        self.link = NatsLink(self.config, name=f"alien-{self.config.entity_name or self.config.entity_type}")
        self.outbox = Outbox(
            self.config.outbox_max_messages,
            max_bytes=self.config.outbox_max_bytes,
            max_age_s=self.config.outbox_max_age_s,
            policy=self.config.outbox_full_policy,
        )
        self.publisher = Publisher(
            self.link,
            self.outbox,
            window=self.config.publish_window,
            timeout_s=self.config.publish_timeout_s,
            fill_ids=self._fill_ids,
        )
        self._dispatcher = CommandDispatcher(
            self._report_command,
            self._reply,
            dedupe_window_s=self.config.command_dedupe_window_s,
            clock_skew_s=self.config.command_clock_skew_s,
            progress_rate_hz=self.config.command_progress_rate_hz,
        )
        self._intake: CommandIntake | None = None
        self._replies: set[asyncio.Task[None]] = set()
        self._stats_task: asyncio.Task[None] | None = None
        self.registration_error: str | None = None  # why registration is still being retried
        self._stopped = asyncio.Event()
        self._running = False
        self._closed = False

    # --- the design document's attributes ---
    @property
    def nc(self) -> Any:
        return self.link.nc

    @property
    def js(self) -> Any:
        return self.link.js

    @property
    def _command_handlers(self) -> dict[str, CommandHandler]:
        return self._dispatcher.handlers

    @property
    def command_intake(self) -> str | None:
        """`core` or `jetstream` once commands are being received."""
        return self._intake.mode if self._intake else None

    async def __aenter__(self) -> AlienClient:
        await self.initialize()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def initialize(self) -> None:
        """Register with the mothership if needed (ids persisted), then connect to NATS."""
        self.config.load()
        if self.config.outbox_durability != "memory" and self.outbox.store is None:
            self.outbox.attach(SqliteStore(self.config.outbox_path, self.config.outbox_durability))
            if self.outbox.restored:
                logger.info("%d message(s) from an earlier run will be sent first", self.outbox.restored)
        if self.mothership is not None:  # a retry after a failed first attempt
            await self.mothership.close()
        self.mothership = MothershipClient(self.config)
        await self.mothership.__aenter__()
        await self._register()
        self.config.save()
        await self._connect_nats()

    async def _log_stats(self) -> None:
        """Once a period, the outbox counters at INFO, when there is anything to say."""
        while True:
            await asyncio.sleep(self.config.stats_log_interval_s)
            stats = self.stats()
            waiting = stats.depth + stats.in_flight
            if waiting or stats.dropped or stats.parked or stats.duplicates or self.link.reconnects:
                age = f"{stats.oldest_age_s:.1f}s" if stats.oldest_age_s is not None else "-"
                logger.info(
                    "outbox: %d waiting (%d bytes queued, oldest %s), %d published, %d duplicates, dropped %s, "
                    "%d parked, %d reconnects",
                    waiting,
                    stats.depth_bytes,
                    age,
                    stats.published,
                    stats.duplicates,
                    stats.dropped or "none",
                    stats.parked,
                    self.link.reconnects,
                )

    async def _register(self) -> None:
        """Register, waiting as long as the mothership is unreachable.

        A robot may boot before its network; meanwhile telemetry and events wait in the outbox.
        """
        assert self.mothership is not None
        delay = self.config.retry_backoff_s
        while True:
            try:
                await registration.ensure_registered(self.config, self.mothership)
                self.registration_error = None
                return
            except (MothershipUnavailableError, ServerError) as exc:
                if isinstance(exc, ServerError) and exc.status not in (502, 503, 504):
                    raise  # a server that answers with an error will answer it again
                self.registration_error = str(exc)
                logger.warning(
                    "cannot register yet (%s); trying again in %.1fs (%d message(s) waiting)",
                    exc,
                    delay,
                    len(self.outbox),
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.config.retry_backoff_max_s)

    async def _connect_nats(self) -> None:
        if self._intake is not None:  # initialize() retried after a failure past this point
            await self._intake.stop()
            await self.link.close()
        await self.link.connect()
        self.publisher.start()
        if self._stats_task is None and self.config.stats_log_interval_s > 0:
            self._stats_task = asyncio.create_task(self._log_stats(), name="alien-stats")
        org_id, entity_id = self._registered_ids()
        self._intake = CommandIntake(
            self.link, command_subject(org_id, entity_id), f"alien-{entity_id}", self._dispatcher
        )
        await self._intake.start(self.config.command_intake)

    def register_command_handler(
        self, command_type: str, handler: CommandHandler, *, prepare: Prepare | None = None
    ) -> None:
        """Call `handler(command_dict)` (sync or async) for commands whose type is `command_type`.

        A handler taking a second argument gets a `CommandContext` (`command_id`, `params`,
        `progress(dict)`, `prepared`). Returning a dict completes the command with that result;
        raising fails it. `prepare(command)` validates before acceptance (see CommandDispatcher).
        """
        self._dispatcher.register(command_type, handler, prepare=prepare)

    def set_unhandled_command_handler(self, handler: CommandHandler | None) -> None:
        """Handle commands of every type nobody registered, instead of rejecting them."""
        self._dispatcher.set_fallback(handler)

    async def publish_telemetry(self, data: dict[str, Any]) -> str:
        """Queue telemetry for `constellation.telemetry.{org}.{entity}`; returns its message id."""
        return self.queue_telemetry(data)

    async def publish_event(self, event_type: str, data: dict[str, Any]) -> str:
        """Queue an event for `constellation.events.{org}.{event_type}`; returns its message id."""
        return self.queue_event(event_type, data)

    def queue_telemetry(self, data: dict[str, Any]) -> str:
        """`publish_telemetry` for synchronous callers on the client's event loop (timers, callbacks)."""
        org_id, entity_id = self._ids()
        payload = encode_telemetry(entity_id, data)
        return self._enqueue(telemetry_subject(org_id, entity_id), payload, Lane.TELEMETRY)

    def queue_event(self, event_type: str, data: dict[str, Any]) -> str:
        """`publish_event` for synchronous callers on the client's event loop."""
        org_id, entity_id = self._ids()
        subject = event_subject(org_id, event_type)
        return self._enqueue(subject, encode_event(entity_id, event_type, data), Lane.CONTROL)

    @property
    def is_registered(self) -> bool:
        return bool(self.config.org_id and self.config.entity_id)

    async def update_position(self, latitude: float, longitude: float, altitude: float = 0) -> str:
        return await self.publish_telemetry(position(latitude, longitude, altitude))

    async def update_status(self, status: str) -> None:
        """Store the status on the server and announce it with a `status_changed` event.

        A status the server does not store (e.g. `returning`) is stored as the nearest one it
        accepts; the event carries the exact status either way.
        """
        org_id, entity_id = self._registered_ids()
        assert self.mothership is not None
        # The event goes first, over NATS: an unreachable REST API must not hold it back.
        dialect = self.mothership.dialect
        event: dict[str, Any] = {"status": status}
        if dialect is not None:
            event["server_status"] = nearest_status(status, dialect)
        await self.publish_event("status_changed", event)
        await self.mothership.update_entity_status(org_id, entity_id, status)

    async def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is acknowledged by JetStream."""
        return await self.publisher.flush(timeout)

    def stats(self) -> OutboxStats:
        return self.outbox.stats()

    async def start(self) -> None:
        """Run until close() is called or the task is cancelled (Ctrl-C), then close."""
        self._running = True
        try:
            await self._stopped.wait()
        except asyncio.CancelledError:
            logger.info("Shutting down...")
            raise
        finally:
            await self.close()

    async def close(self, timeout: float | None = None) -> None:
        """Stop receiving commands, flush what is queued and close, within `timeout` seconds.

        Default: `publish_timeout_s` for the flush and as much again for the drain.
        """
        self._running = False
        self._stopped.set()
        if self._closed:
            return
        self._closed = True
        # Stop taking commands, end the running ones (their `command_failed` events are queued),
        # then flush, so those events go out too.
        if self._intake is not None:
            await self._intake.stop()
        await self._dispatcher.stop()
        loop = asyncio.get_running_loop()
        budget = timeout if timeout is not None else 2 * self.config.publish_timeout_s
        deadline = loop.time() + budget
        if not (self.link.is_connected and await self.publisher.flush(budget / 2)):
            left = self.stats()
            if left.depth or left.in_flight:
                if self.outbox.store is not None:
                    logger.info("closing with %d message(s) kept for the next start", left.depth + left.in_flight)
                else:
                    logger.warning(
                        "closing with %d message(s) not acknowledged; lost (ALIEN_OUTBOX_DURABILITY=memory)",
                        left.depth + left.in_flight,
                    )
                    self.outbox.dropped["closed_unsent"] += left.depth + left.in_flight
        await self.publisher.stop()
        if self._stats_task is not None:
            self._stats_task.cancel()
        await self.link.close(max(0.1, deadline - loop.time()))
        self.outbox.close()
        if self.mothership is not None:
            await self.mothership.close()

    # --- internals ---
    def _ids(self) -> tuple[str, str]:
        """The ids for subjects and payloads; placeholders until registered.

        The outbox holds such messages, and the publisher fills the ids in once they are known.
        """
        org_id, entity_id = self.config.org_id, self.config.entity_id
        if not org_id or not entity_id:
            return ORG_PLACEHOLDER, ENTITY_PLACEHOLDER
        return subject_token(org_id, "org_id"), subject_token(entity_id, "entity_id")

    def _registered_ids(self) -> tuple[str, str]:
        org_id, entity_id = self.config.org_id, self.config.entity_id
        if not org_id or not entity_id:
            raise NotInitializedError("the device is not registered yet; await client.initialize() first")
        return subject_token(org_id, "org_id"), subject_token(entity_id, "entity_id")

    def _fill_ids(self, subject: str, payload: bytes) -> tuple[str, bytes]:
        org_id, entity_id = self._registered_ids()
        return fill_ids(subject, payload, org_id, entity_id)

    def _enqueue(self, subject: str, payload: bytes, lane: Lane) -> str:
        message = OutgoingMessage(new_message_id(), subject, payload, lane)
        self.outbox.put(message)
        return message.msg_id

    def _reply(self, subject: str, data: dict[str, Any]) -> None:
        """Answer a command sent as a NATS request (live, not through the outbox)."""

        async def send() -> None:
            try:
                await self.link.nc.publish(subject, dumps(data))
            except Exception as exc:  # noqa: BLE001 - the lifecycle events still tell the C2
                logger.warning("could not reply to a command request: %s", exc)

        task = asyncio.create_task(send())
        self._replies.add(task)
        task.add_done_callback(self._replies.discard)

    def _report_command(self, event_type: str, data: dict[str, Any]) -> None:
        try:
            self.queue_event(event_type, data)
        except Exception:
            logger.exception("could not queue %s event", event_type)
