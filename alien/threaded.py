"""ThreadedClient: an AlienClient on an event loop of its own thread, for synchronous programs.

A ROS executor (or any callback-driven program) must never block on network I/O. This class
runs the client, its publisher and its command intake on a private asyncio loop; the caller's
threads hand readings and events over without waiting (`call_soon_threadsafe`), and only
start/shutdown block, with timeouts.

Registration keeps retrying while the mothership is unreachable (a robot may boot before its
network): readings are held (the latest per channel) and events queued (bounded) until then.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from alien.channels import TelemetryChannels
from alien.client import AlienClient
from alien.commands import CommandHandler, Prepare
from alien.config import AlienConfig
from alien.error_hints import hint
from alien.errors import AlienError
from alien.logs import get_logger

logger = get_logger("alien.threaded")

_MAX_HELD_EVENTS = 1000


@dataclass(frozen=True)
class ClientSnapshot:
    """What a health report needs, read without blocking the client's loop."""

    state: str  # starting | registering | connected | disconnected | failed | closed
    error: str | None
    org_id: str | None
    entity_id: str | None
    dialect: str | None
    command_intake: str | None
    depth: int
    enqueued: int
    published: int
    duplicates: int
    dropped: int
    rejected: int
    parked: int
    oldest_age_s: float | None
    reconnects: int
    last_publish_latency_s: float | None


class ThreadedClient:
    def __init__(self, config: AlienConfig, *, device_id: str | None = None) -> None:
        if device_id and not config.device_id:
            config.device_id = device_id  # the lifecycle events' device_id (e.g. the ROS node's name)
        self.client = AlienClient(config)
        self.device_id = config.device_id or config.entity_name or "alien"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="alien-client", daemon=True)
        self.channels = TelemetryChannels(self.client.queue_telemetry, self._loop)
        self._held_events: deque[tuple[str, dict[str, Any]]] = deque(maxlen=_MAX_HELD_EVENTS)
        self._startup: asyncio.Task[None] | None = None
        self.state = "starting"
        self.error: str | None = None
        self.ready = threading.Event()

    # --- lifecycle (blocking, with timeouts) ---
    def start(self) -> None:
        """Start the loop thread and, on it, registration and the NATS connection."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._begin(), self._loop).result(timeout=5)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Flush (bounded), send the `shutdown` event, store status inactive, close. Idempotent."""
        if not self._thread.is_alive():
            return
        future: Future[None] = asyncio.run_coroutine_threadsafe(self._shutdown(timeout), self._loop)
        try:
            future.result(timeout=timeout + 2)
        except Exception as exc:  # noqa: BLE001 - shutdown must finish whatever happened
            logger.warning("shutdown was not clean: %r", exc)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    # --- hand-offs from other threads (never block) ---
    def add_channel(self, name: str, rate_hz: float) -> None:
        self._loop.call_soon_threadsafe(self.channels.add, name, rate_hz)

    def submit(self, channel: str, reading: dict[str, Any]) -> None:
        self._loop.call_soon_threadsafe(self.channels.submit, channel, reading)

    def event(self, event_type: str, data: dict[str, Any]) -> None:
        self._loop.call_soon_threadsafe(self._event, event_type, data)

    def register_command_handler(
        self, command_type: str, handler: CommandHandler, *, prepare: Prepare | None = None
    ) -> None:
        """Before start(): handlers run on the client's loop (see AlienClient)."""
        self.client.register_command_handler(command_type, handler, prepare=prepare)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def call_soon(self, callback: Callable[[], object]) -> None:
        self._loop.call_soon_threadsafe(callback)

    def snapshot(self) -> ClientSnapshot:
        # Plain attribute reads: atomic under the GIL, and a slightly stale figure is fine here.
        client = self.client
        stats = client.outbox
        state = self.state
        if state == "connected" and not client.link.connected.is_set():
            state = "disconnected"
        return ClientSnapshot(
            state=state,
            error=self.error or client.registration_error,
            org_id=client.config.org_id,
            entity_id=client.config.entity_id,
            dialect=client.mothership.dialect if client.mothership else None,
            command_intake=client.command_intake,
            depth=len(stats),
            enqueued=stats.enqueued,
            published=stats.published,
            duplicates=stats.duplicates,
            dropped=sum(list(stats.dropped.values())),  # list(): a snapshot, the loop may add a key
            rejected=stats.rejected,
            parked=stats.parked,
            oldest_age_s=self._oldest_age(),
            reconnects=client.link.reconnects,
            last_publish_latency_s=client.publisher.last_latency_s,
        )

    def _oldest_age(self) -> float | None:
        try:
            return self.client.outbox.stats().oldest_age_s
        except RuntimeError:  # the loop changed the queue while this thread looked: next time
            return None

    # --- on the loop thread ---
    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()
        self._loop.close()

    async def _begin(self) -> None:
        self._startup = asyncio.create_task(self._initialize(), name="alien-startup")

    async def _initialize(self) -> None:
        # initialize() itself waits for an unreachable mothership and NATS (retrying forever);
        # what it raises cannot succeed by retrying: configuration, identity file, credentials.
        self.state = "registering"
        try:
            await self.client.initialize()
        except Exception as exc:  # noqa: BLE001 - reported (state failed), not raised into a thread
            self._fail(exc)
            return
        self.state, self.error = "connected", None
        self.channels.set_ready()
        while self._held_events:
            self._event(*self._held_events.popleft())
        self.ready.set()

    def _fail(self, exc: BaseException) -> None:
        said = f"{exc}{hint(exc, self.client.config)}" if isinstance(exc, AlienError) else str(exc)
        self.state, self.error = "failed", f"{type(exc).__name__}: {said}"
        logger.error("alien client cannot start: %s", self.error)

    def _event(self, event_type: str, data: dict[str, Any]) -> None:
        if not self.client.is_registered or self.state != "connected":
            if len(self._held_events) == self._held_events.maxlen:
                self.client.outbox.dropped["held_events_full"] += 1  # the oldest held event goes
            self._held_events.append((event_type, data))
            return
        try:
            self.client.queue_event(event_type, data)
        except Exception as exc:  # noqa: BLE001 - a bad event must not stop the loop
            logger.warning("event %r not sent: %s", event_type, exc)

    async def _shutdown(self, timeout: float) -> None:
        """Everything within `timeout`: a third for the status, the rest for flush and drain."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if self._startup is not None and not self._startup.done():
            self._startup.cancel()
            await asyncio.gather(self._startup, return_exceptions=True)
        self.channels.stop()
        if self.state == "connected":
            # close() sends the shutdown lifecycle event (contract §2) after what is queued
            try:
                await asyncio.wait_for(self.client.update_status("inactive"), timeout / 3)
            except Exception as exc:  # noqa: BLE001 - the shutdown event still says it
                logger.warning("could not store status inactive: %r", exc)
        await self.client.close(max(0.1, deadline - loop.time()))
        self.state = "closed"
