"""AlienClient: the seed API (docs/index.md#the-seed-api), composed from the pieces of this package.

`initialize()` registers the device once (ids persisted and reused), connects to NATS and
starts receiving commands; `publish_telemetry` / `publish_event` / `update_position` queue a
message in the outbox, which the publisher drains into JetStream with a stable Nats-Msg-Id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import datetime
from types import TracebackType
from typing import Any

from alien import permission_check, registration, transport_security
from alien.closing import flush_before_close
from alien.command_reports import CommandReports
from alien.commands import CommandDispatcher, CommandHandler, CommandIntake, Prepare
from alien.commands.intake import intake_mode
from alien.commands.seen import SeenCommandStore, seen_commands_path
from alien.config import AlienConfig
from alien.delivery.batch import OutboxBatch
from alien.delivery.outbox import Outbox, OutboxStats
from alien.delivery.outbox_store import SqliteStore
from alien.delivery.publisher import Publisher
from alien.dialect_wait import DialectWait
from alien.entity_state import EntityStateWriter
from alien.errors import ConfigError, NotInitializedError
from alien.firmware import FIRMWARE_COMMAND, FirmwareHook
from alien.firmware.updater import FirmwareUpdater
from alien.link import NatsLink
from alien.logs import get_logger
from alien.metrics.endpoint import MetricsEndpoint
from alien.metrics.entity import EntityMetrics
from alien.mothership import MothershipClient
from alien.presence import Presence
from alien.settings import MothershipSettings, NatsSettings, TelemetrySettings
from alien.stats_log import log_stats_every
from alien.telemetry.composer import Composer, Ids
from alien.telemetry.encoders import TelemetryFormat
from alien.telemetry.queueing import TelemetryQueue
from alien.telemetry.readings import Reading, position
from alien.telemetry.wire_format import WireFormat
from alien.video import VideoConfig
from alien.wire import command_subject, telemetry_subject

logger = get_logger("alien")


class AlienClient:
    """Connects one device to the mothership."""

    def __init__(self, config: AlienConfig | None = None, *, link: NatsLink | None = None) -> None:
        """`link`: a NATS connection shared with other entities (AlienFleet), connected and closed by its owner."""
        self.config = config if config is not None else AlienConfig()
        self.mothership: MothershipClient | None = None
        self._owns_link = link is None
        self.link = link or NatsLink(
            NatsSettings.from_config(self.config), name=f"alien-{self.config.entity_name or self.config.entity_type}"
        )
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
        )
        self._intake: CommandIntake | None = None
        self._stats_task: asyncio.Task[None] | None = None
        self.registration_error: str | None = None  # why registration is still being retried
        self.entity_state = EntityStateWriter(
            self.link,
            lambda: self.config.entity_id,
            period_s=self.config.entity_state_period_s,
        )
        self.wire_format = WireFormat(
            TelemetrySettings.from_config(self.config), lambda: self.mothership, lambda: self.config.server_dialect
        )
        known_ids = self.config.identity.subject_ids  # None until registered: messages then wait (Composer)
        self.composer = Composer.from_config(self.config, self.outbox, self.wire_format, known_ids)
        reports = CommandReports(self.composer, self.link)
        self._dispatcher = CommandDispatcher.from_config(self.config, reports.report, reports.reply)
        self.presence = Presence(
            self.config, self.link, self.outbox, self.composer, self.entity_state, closing=lambda: self._closed
        )
        self._telemetry = TelemetryQueue(self.outbox, self.composer, self.presence.observe)
        self._dialect_wait = DialectWait(
            self.wire_format, self.composer, self.outbox, self.presence, self._learn_dialect
        )
        # None unless ALIEN_METRICS_ADDR is set (docs/metrics.md); an AlienFleet serves its entities on its own endpoint
        self.metrics = EntityMetrics.of_client(self.config, self.outbox, self.link, self._dispatcher, self.wire_format)
        self.metrics_endpoint = MetricsEndpoint.serving(self.metrics, self.config) if self._owns_link else None
        self.link.on_reconnect(self.presence.announce)
        self.link.on_denied(permission_check.keep_refusals(self.config, self.link, lambda: self.is_registered))
        self._stopped = asyncio.Event()
        self._running = False
        self._closed = False
        self._close_done: asyncio.Future[None] | None = None

    # --- the seed API's attributes ---
    @property
    def nc(self) -> Any:
        return self.link.nc

    @property
    def js(self) -> Any:
        return self.link.js

    @property
    def _command_handlers(self) -> dict[str, CommandHandler]:  # the seed API's attribute
        return self._dispatcher.handlers

    @property
    def command_counts(self) -> dict[str, int]:
        """Command totals so far, a copy.

        Keys: `received`, `accepted`, `completed`, `failed`, `rate_limited` (dropped unread over
        ALIEN_COMMAND_RATE_LIMIT_HZ), `rejected` and `rejected.<reason>`.
        """
        return dict(self._dispatcher.counts)

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
        if not self.config.allow_insecure:
            # Refuse plain NATS beyond loopback before registering, not after (the link checks
            # again, and warns, when it dials).
            transport_security.check_nats(NatsSettings.from_config(self.config))
        if self.metrics_endpoint is not None:  # before registration: "not registered yet" is worth seeing
            await self.metrics_endpoint.start()
        self.config.load()
        if self.config.outbox_durability != "memory" and self.outbox.store is None:
            self.outbox.attach(SqliteStore(self.config.outbox_path, self.config.outbox_durability))
            if self.outbox.restored:
                logger.info("%d message(s) from an earlier run will be sent first", self.outbox.restored)
        if self._dispatcher.seen is None:  # command ids accepted before a restart stay refused
            seen_path = seen_commands_path(self.config.data_dir, self.config.identity_path)
            self._dispatcher.attach_seen_store(SeenCommandStore(seen_path))
        if self.mothership is not None:  # a retry after a failed first attempt
            await self.mothership.close()
        self.mothership = MothershipClient(
            MothershipSettings.from_config(self.config), on_request=self.metrics.rest_request if self.metrics else None
        )
        try:
            await self.mothership.__aenter__()
            # as long as the mothership is unreachable (telemetry waits in the outbox)
            await registration.register_while_unreachable(
                self.config, self.mothership, lambda: len(self.outbox), self._note_registration_error
            )
            self.config.identity.dialect = self.mothership.dialect or self.config.server_dialect
            self.config.save()
            await self._connect_nats()
        except BaseException:  # also Ctrl-C: no session or connection is left open behind the error
            await self._abandon_start()
            raise

    async def _abandon_start(self) -> None:
        """A failed initialize(): close what it opened; a later initialize() or close() starts from here."""
        if self.mothership is not None:
            await self.mothership.close()
        if self._owns_link and self._intake is None and self.link.is_open:
            await self.link.close(1.0)  # not yet in use: nothing queued goes through it

    def _note_registration_error(self, error: str | None) -> None:
        self.registration_error = error  # why registration is still being retried; None once it succeeded

    async def _connect_nats(self) -> None:
        if self._intake is not None:  # initialize() retried after a failure past this point
            await self._intake.stop()
            if self._owns_link:
                await self.link.close()
        if self._owns_link:
            await self.link.connect()
        else:
            await self.link.connected.wait()  # the owner connects it (and waits out outages)
        org_id, entity_id = self._registered_ids()
        await permission_check.require_telemetry(  # TelemetryDeniedError when these credentials cannot publish it
            self.link,
            telemetry_subject(org_id, entity_id),
            org_id,
            org_pinned=self.config.identity.org_pinned,
            timeout=self.config.publish_timeout_s,
            list_organizations=self.mothership.list_organizations if self.mothership is not None else None,
        )
        # bootsequence first: it admits the entity for telemetry (docs/contract.md#lifecycle-events)
        await self.presence.announce()
        self._dialect_wait.begin()  # before the publisher starts: readings may still need the format
        self.publisher.start()
        if self._stats_task is None and self.config.stats_log_interval_s > 0:
            self._stats_task = asyncio.create_task(
                log_stats_every(self.config.stats_log_interval_s, self.stats, lambda: self.link.reconnects),
                name="alien-stats",
            )
        self._intake = CommandIntake(
            self.link, command_subject(org_id, entity_id), f"alien-{entity_id}", self._dispatcher
        )
        await self._intake.start(
            intake_mode(self.config.command_intake, self.config.learnt_denials, self.config.nats_url)
        )

    async def _learn_dialect(self) -> None:
        """Saved ids, server unreachable at boot and no dialect saved: ask until it answers."""
        assert self.mothership is not None
        self.config.identity.dialect = await registration.learn_dialect_while_unreachable(self.config, self.mothership)
        self.config.save()

    @property
    def telemetry_format(self) -> TelemetryFormat:
        """The wire format telemetry goes out in (ALIEN_TELEMETRY_FORMAT, or chosen by the dialect)."""
        return self.wire_format.format

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

    def on_firmware(self, hook: FirmwareHook) -> None:
        """Take signed firmware updates (docs/firmware.md): `hook(update)` installs each verified file.

        Registers the `firmware_update` command: always signed, one at a time (else `busy`). A plain
        function runs in a worker thread; a dict it returns joins the command's result, raising fails it.
        """
        updater = FirmwareUpdater.from_config(self.config, self.link, hook)
        self._dispatcher.register(FIRMWARE_COMMAND, updater.run, prepare=updater.prepare, exclusive=True)

    async def publish_telemetry(self, data: dict[str, Any], *, timestamp: datetime | float | None = None) -> str:
        """Queue telemetry for `constellation.telemetry.{org}.{entity}`; returns its message id.

        `timestamp`: the reading's own time (a datetime with a zone, or POSIX seconds), kept on the
        wire; default now.
        """
        return self.queue_telemetry(data, timestamp=timestamp)

    async def publish_telemetry_batch(self, readings: Iterable[dict[str, Any] | Reading]) -> list[str]:
        """Queue many readings in one durable outbox transaction; their message ids, in order.

        Each is a dict (read now) or a `Reading(data, timestamp)`; each is its own message. One
        that cannot be encoded raises, naming its index, and none of them is queued.
        """
        return self._telemetry.readings(readings)

    def batch(self) -> OutboxBatch:
        """`async with client.batch():` (or `with`): what this task queues inside enters the outbox together.

        One store transaction when the block ends, each message with its own id; a block that raises
        queues none of it (docs/library.md#batches-of-readings).
        """
        return OutboxBatch(self.outbox)

    async def publish_event(self, event_type: str, data: dict[str, Any]) -> str:
        """Queue an event for `constellation.events.{org}.{event_type}`; returns its message id."""
        return self.queue_event(event_type, data)

    def queue_telemetry(self, data: dict[str, Any], *, timestamp: datetime | float | None = None) -> str:
        """`publish_telemetry` for synchronous callers on the client's event loop (timers, callbacks).

        The reading is encoded for the server (`telemetry_format`); what that format cannot carry
        (e.g. free-form keys on MAVLink servers) goes out as a `telemetry` event instead. A value
        the format cannot represent raises TelemetryEncodeError and nothing is queued. A reading
        over the flood limits (`TelemetryLimiter`, keyed by its top-level keys) is dropped, counted
        as `dropped["rate_limited"]`, and "" returned.
        """
        return self._telemetry.reading(data, timestamp)

    def queue_event(self, event_type: str, data: dict[str, Any]) -> str:
        """`publish_event` for synchronous callers on the client's event loop."""
        return self.composer.event(event_type, data)

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
        self.presence.change_status(status, self.mothership.dialect)  # first, over NATS: REST may be down
        await self.mothership.update_entity_status(org_id, entity_id, status)

    async def update_video_config(self, video: VideoConfig | dict[str, Any]) -> None:
        """Store new video stream metadata on the server (v0.1.x).

        ALIEN_VIDEO_CONFIG, when set, is what the next start applies again (the settings never
        change). ConfigError names a bad field; UnsupportedByServerError on a v0.0.1 server.
        """
        checked = self.config.derive(video_config=video).video_config  # ConfigError names a bad field
        if checked is None:
            raise ConfigError("video_config: give the streams to store")
        org_id, entity_id = self._registered_ids()
        assert self.mothership is not None
        await self.mothership.update_video_config(org_id, entity_id, checked)

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
            if self._close_done is not None:  # another task is closing: return when it is done
                await asyncio.shield(self._close_done)
            return
        self._closed = True
        self.presence.leave()  # from here, a reconnect must not admit the departing device again
        self._close_done = asyncio.get_running_loop().create_future()
        try:
            await self._close(timeout)
        finally:
            self._close_done.set_result(None)

    async def _close(self, timeout: float | None) -> None:
        # Stop taking commands, end the running ones (their `command_failed` events are queued),
        # then flush, so those events go out too.
        if self._intake is not None:
            await self._intake.stop()
        await self._dispatcher.stop()
        self._dialect_wait.cancel()
        self.outbox.release_telemetry()
        loop = asyncio.get_running_loop()
        budget = timeout if timeout is not None else 2 * self.config.publish_timeout_s
        deadline = loop.time() + budget
        await flush_before_close(
            self.publisher, self.presence, self.outbox, connected=self.link.is_connected, budget_s=budget
        )
        await self.entity_state.stop(final={"is_live": False}, timeout=max(0.1, deadline - loop.time()))
        await self.publisher.stop()
        if self._stats_task is not None:
            self._stats_task.cancel()
        if self._owns_link:
            await self.link.close(max(0.1, deadline - loop.time()))
        self.outbox.close()
        if self._dispatcher.seen is not None:
            self._dispatcher.seen.close()
            self._dispatcher.attach_seen_store(None)
        if self.mothership is not None:
            await self.mothership.close()
        if self.metrics_endpoint is not None:
            await self.metrics_endpoint.stop()

    # --- internals ---
    def _registered_ids(self) -> Ids:
        ids = self.config.identity.subject_ids()
        if ids is None:
            raise NotInitializedError("the device is not registered yet; await client.initialize() first")
        return ids
