"""ThreadedClient: an AlienClient on an event loop of its own thread, for synchronous programs.

A ROS executor (or any callback-driven program) must never block on network I/O. This class
runs the client, its publisher and its command intake on a private asyncio loop; the caller's
threads hand readings and events over without waiting (`call_soon_threadsafe`), and only
start/shutdown block, with timeouts.

Starting keeps retrying, with backoff, while retrying can succeed: the mothership unreachable or
answering 5xx (a robot may boot before its network). Readings are held (the latest per channel)
and events queued (bounded) until then. Anything else (401/403, configuration, identity file,
credentials NATS refuses, a URL that is no mothership) is not retried: the state is `failed`,
with one line saying what to set, logged once at ERROR.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from alien.client import AlienClient
from alien.commands import CommandHandler, Prepare
from alien.config import AlienConfig
from alien.error_hints import describe_start_failure
from alien.errors import MothershipUnavailableError, ServerError
from alien.firmware import FirmwareHook
from alien.logs import get_logger
from alien.telemetry.channels import TelemetryChannels

logger = get_logger("alien.threaded")

_MAX_HELD_EVENTS = 1000
SNAPSHOT_PERIOD_S = 0.25  # how stale snapshot()'s counters may be
# Flow control of the hand-over (docs/performance.md#the-bridges-ros-path): a submitting thread
# waits while this many readings wait for the loop, and the loop takes at most a publish window
# of them per wake-up, and none while the outbox already holds two windows that are being sent.
HANDOVER_MAX = 1024
_ROOM_RECHECK_S = 1.0  # while waiting for room in the outbox: how often the link's state is looked at again


@dataclass(frozen=True)
class ClientSnapshot:
    """What a health report needs: made on the client's loop, read from any thread."""

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
        """`device_id`: the lifecycle events' device_id when ALIEN_DEVICE_ID is not set.

        The client works on a config of its own (`config.derive()`, the same settings): its loop
        thread learns the ids and the dialect into that one's identity, never into the caller's.
        """
        own = config.derive(device_id=device_id) if device_id and not config.device_id else config.derive()
        self.client = AlienClient(own)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="alien-client", daemon=True)
        self.channels = TelemetryChannels(self.client.queue_telemetry, self._loop)
        self._held_events: deque[tuple[str, dict[str, Any]]] = deque(maxlen=_MAX_HELD_EVENTS)
        self._startup: asyncio.Task[None] | None = None
        self.state = "starting"
        self.error: str | None = None
        self.ready = threading.Event()
        self._closed = threading.Event()
        # Readings from other threads wait here for the loop, which takes them in one wake-up and
        # one outbox transaction (see submit_many).
        self._handover: deque[tuple[str, dict[str, Any]]] = deque()
        self._handover_scheduled = False
        self._handover_room = threading.Event()  # set by the loop when it has taken readings
        self._snapshot = self._make_snapshot()  # replaced whole by the loop, never changed
        self._snapshots: asyncio.Task[None] | None = None

    @property
    def device_id(self) -> str:
        """The device_id of the lifecycle events: ALIEN_DEVICE_ID, else the entity name, else its id."""
        config = self.client.config
        return config.device_id or config.entity_name or config.entity_id or ""

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
            future.cancel()  # its `finally` still releases the HTTP session before the loop stops
            self._closed.wait(2)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    # --- hand-offs from other threads (never block) ---
    def add_channel(self, name: str, rate_hz: float) -> None:
        self._loop.call_soon_threadsafe(self.channels.add, name, rate_hz)

    def submit(self, channel: str, reading: dict[str, Any]) -> None:
        self.submit_many(((channel, reading),))

    def submit_many(self, readings: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Hand (channel, reading) pairs over; the loop takes those waiting in one wake-up and one outbox transaction.

        One transaction is safe: no caller was told these readings were stored, and a kill before
        the loop takes them would lose them just the same. While HANDOVER_MAX readings wait (the
        loop stores and sends slower than they come), the calling thread waits too: a ROS input
        thread then takes no more than the bridge can send, and DDS keeps or drops the rest as it
        does for any slow reader, instead of the outbox dropping what was taken.
        """
        handover = self._handover
        handover.extend(readings)
        if not self._handover_scheduled:
            self._handover_scheduled = True
            self._loop.call_soon_threadsafe(self._take_handover)
        while len(handover) >= HANDOVER_MAX and not self._closed.is_set() and not self._on_loop_thread():
            self._handover_room.clear()
            if len(handover) >= HANDOVER_MAX:  # re-checked after clear(): a wake-up in between is not lost
                self._handover_room.wait(_ROOM_RECHECK_S)

    def _on_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def event(self, event_type: str, data: dict[str, Any]) -> None:
        self._loop.call_soon_threadsafe(self._event, event_type, data)

    def register_command_handler(
        self, command_type: str, handler: CommandHandler, *, prepare: Prepare | None = None
    ) -> None:
        """Before start(): handlers run on the client's loop (see AlienClient)."""
        self.client.register_command_handler(command_type, handler, prepare=prepare)

    def set_unhandled_command_handler(self, handler: CommandHandler | None) -> None:
        """Before start(): commands of every type nobody registered go to `handler` (see AlienClient)."""
        self.client.set_unhandled_command_handler(handler)

    def on_firmware(self, hook: FirmwareHook) -> None:
        """Before start(): signed firmware updates, each verified file handed to `hook` (see AlienClient)."""
        self.client.on_firmware(hook)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def call_soon(self, callback: Callable[[], object]) -> None:
        self._loop.call_soon_threadsafe(callback)

    def snapshot(self) -> ClientSnapshot:
        """The latest the loop made (at most SNAPSHOT_PERIOD_S old, and new at every state change)."""
        return self._snapshot

    # --- on the loop thread ---
    def _take_handover(self) -> None:
        self._handover_scheduled = False  # first: a reading appended from now on schedules a new wake-up
        handover = self._handover
        room = self._room_in_outbox()
        if room > 0:
            with self.client.batch():  # one durable write for the whole hand-over
                for _ in range(min(room, len(handover))):
                    self.channels.submit(*handover.popleft())
            self._handover_room.set()
        if handover and not self._handover_scheduled:
            self._handover_scheduled = True
            if self._room_in_outbox() > 0:
                self._loop.call_soon(self._take_handover)
            else:
                self._loop.create_task(self._take_handover_when_sent(), name="alien-handover-room")

    def _room_in_outbox(self) -> int:
        """How many readings the loop takes now: a window, or none while two windows wait to be sent.

        Only while the link is up and telemetry flows: during an outage every reading is taken and
        the outbox's bounds and policy decide what is kept.
        """
        client = self.client
        window = client.config.publish_window
        if not client.link.connected.is_set() or client.outbox.telemetry_held:
            return window
        return min(window, 2 * window - client.outbox.unsettled)

    async def _take_handover_when_sent(self) -> None:
        outbox, high = self.client.outbox, 2 * self.client.config.publish_window
        while self._room_in_outbox() <= 0:
            try:  # woken when messages settle; the link's state is looked at again meanwhile
                await asyncio.wait_for(outbox.wait_below(high), _ROOM_RECHECK_S)
            except TimeoutError:
                pass
        self._take_handover()

    def _make_snapshot(self) -> ClientSnapshot:
        client = self.client
        stats = client.stats()
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
            depth=stats.depth,
            enqueued=stats.enqueued,
            published=stats.published,
            duplicates=stats.duplicates,
            dropped=sum(stats.dropped.values()),
            rejected=stats.rejected,
            parked=stats.parked,
            oldest_age_s=stats.oldest_age_s,
            reconnects=client.link.reconnects,
            last_publish_latency_s=client.publisher.last_latency_s,
        )

    def _publish_snapshot(self) -> None:
        self._snapshot = self._make_snapshot()  # one assignment: a reader sees the old one or the new one

    async def _refresh_snapshots(self) -> None:
        while True:
            self._publish_snapshot()
            await asyncio.sleep(SNAPSHOT_PERIOD_S)  # a refresh period, not a wait for state

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()
        self._loop.close()

    async def _begin(self) -> None:
        self._startup = asyncio.create_task(self._initialize(), name="alien-startup")
        self._snapshots = asyncio.create_task(self._refresh_snapshots(), name="alien-snapshots")

    async def _initialize(self) -> None:
        # initialize() itself waits while the mothership is unreachable (or 502/503/504) and while
        # NATS is; what it raises is retried here only when retrying can succeed (transient()).
        config = self.client.config
        delay = config.retry_backoff_s
        while True:
            self.state = "registering"
            self._publish_snapshot()
            try:
                await self.client.initialize()
                break
            except Exception as exc:  # noqa: BLE001 - reported (state, one line), never raised into a thread
                if not transient(exc):
                    await self._fail(exc)
                    return
                self.error = describe_start_failure(exc, config, self._dialect())
                self._publish_snapshot()
                logger.warning("cannot start yet: %s; trying again in %.1fs", self.error, delay)
            await asyncio.sleep(delay)  # the backoff between attempts, not a wait for state
            delay = min(delay * 2, config.retry_backoff_max_s)
        self.state, self.error = "connected", None
        self._publish_snapshot()
        self.channels.set_ready()
        while self._held_events:
            self._event(*self._held_events.popleft())
        self.ready.set()

    async def _fail(self, exc: Exception) -> None:
        self.state, self.error = "failed", describe_start_failure(exc, self.client.config, self._dialect())
        self._publish_snapshot()
        logger.error("%s", failure_line(self.error))  # one line: no traceback, it says what to fix
        if self.client.mothership is not None:
            await self.client.mothership.close()  # nothing more to ask it until a restart

    def _dialect(self) -> str | None:
        mothership = self.client.mothership
        return (mothership.dialect if mothership else None) or self.client.config.server_dialect

    def _event(self, event_type: str, data: dict[str, Any]) -> None:
        if not self.client.is_registered or self.state != "connected":
            if len(self._held_events) == self._held_events.maxlen:
                self.client.outbox.note_dropped("held_events_full")  # the oldest held event goes
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
        try:
            if self._startup is not None and not self._startup.done():
                self._startup.cancel()  # e.g. Ctrl-C while registration is still being retried
                await asyncio.gather(self._startup, return_exceptions=True)
            self.channels.stop()
            if self.state == "connected":
                # close() sends the shutdown lifecycle event (docs/contract.md#lifecycle-events) after what is queued
                try:
                    await asyncio.wait_for(self.client.update_status("inactive"), timeout / 3)
                except Exception as exc:  # noqa: BLE001 - the shutdown event still says it
                    logger.warning("could not store status inactive: %r", exc)
            await self.client.close(max(0.1, deadline - loop.time()))
        finally:
            # close() ends with this too; here it also runs when close() raised or was cut short,
            # so an initialize() that never finished leaves no open aiohttp session behind.
            if self.client.mothership is not None:
                await self.client.mothership.close()
            if self._snapshots is not None:
                self._snapshots.cancel()
            self.state = "closed"
            self._publish_snapshot()
            self._closed.set()


def transient(exc: BaseException) -> bool:
    """Whether initialize() can succeed by trying again: the mothership unreachable or answering 5xx.

    Everything else is for a person to fix: 401/403, other 4xx, configuration, the identity file,
    credentials NATS refuses or that cannot publish the entity's telemetry, a URL that is no
    mothership, and errors alien does not know (retrying those would spin on a bug).
    """
    return isinstance(exc, (MothershipUnavailableError, ServerError))


def failure_line(error: str) -> str:
    """The one line a start that is not retried is logged as and shown as (e.g. on /diagnostics)."""
    return f"cannot start: {error}"
