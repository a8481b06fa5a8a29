"""What the emulator runs on its event loop: the NATS link, the server's consumers and the HTTP site.

:class:`~alien_testing.emulator.server.MothershipEmulator` owns the loop thread and is the
thread-safe face; everything here is called on that loop. Start connects to NATS, creates or
verifies the server's JetStream objects, runs one pull processor per server consumer and serves
the dialect's REST app; stop takes each of those down within a bounded time.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import nats
import nats.js.errors
from aiohttp import web
from nats.aio.client import Client as NATS
from nats.js.kv import KeyValue

from alien.logs import get_logger
from alien_testing.emulator.app import Faults, build_app
from alien_testing.emulator.context import ApiContext
from alien_testing.emulator.contract import Dialect, Release, StreamSpec
from alien_testing.emulator.jetstream import EntityEvents, ServerObjects, stream_config
from alien_testing.emulator.processors import Handler, PullProcessor, ack_and_record
from alien_testing.emulator.records import Recorder
from alien_testing.emulator.store import NotFoundError, Store
from alien_testing.emulator.workers import EventWorker, Quarantine, TelemetryWorker

__all__ = ["EmulatorRuntime", "Settings"]

log = get_logger(__name__)
_JS_TIMEOUT_S = 2.0  # JetStream API calls; short so recovery after a server restart is quick
_STOP_STEP_S = 2.5  # each step of stop(); three of them stay well inside MothershipEmulator.stop's 10 s


@dataclass(frozen=True)
class Settings:
    """The emulator's validated constructor arguments (MothershipEmulator checks them)."""

    nats_url: str
    dialect: Dialect
    release: Release
    bearer_token: str
    api_keys: dict[str, frozenset[str]]
    command_processor: bool
    nats_options: Mapping[str, Any]
    host: str
    port: int
    kv_sync: bool
    ssl_context: ssl.SSLContext | None  # serve HTTPS with this context (a private CA in tests)
    replicas: int = 1  # of every stream and the KV bucket: 3 on a test cluster, 1 as the real server
    consumers: bool = True  # the server's durable consumers and their workers (False: load benchmarks)


class EmulatorRuntime:
    """The loop-side half of one emulator; start() and stop() may alternate any number of times."""

    def __init__(self, settings: Settings, recorder: Recorder, store: Store, faults: Faults) -> None:
        self._settings = settings
        self._recorder = recorder
        self._store = store
        self._faults = faults
        self._nc: NATS | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._events: EntityEvents | None = None
        self._objects: ServerObjects | None = None
        self._kv: KeyValue | None = None
        self._processing: asyncio.Event | None = None  # made on the loop (see start)

    @property
    def nats_connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    async def start(self) -> str:
        """Connect, create the server objects, run the consumers, serve HTTP; returns the base URL."""
        settings = self._settings
        connected = asyncio.Event()
        if self._processing is None:
            self._processing = asyncio.Event()
            self._processing.set()

        async def on_disconnect() -> None:
            connected.clear()

        async def on_reconnect() -> None:
            connected.set()

        async def on_error(exc: Exception) -> None:
            log.debug("emulator NATS error: %s", type(exc).__name__)

        options: dict[str, Any] = {
            "servers": [url.strip() for url in settings.nats_url.split(",")],
            "name": "mothership-emulator",
            "allow_reconnect": True,
            "max_reconnect_attempts": -1,
            "reconnect_time_wait": 0.1,
            "connect_timeout": 2,
            "ping_interval": 5,
            "disconnected_cb": on_disconnect,
            "reconnected_cb": on_reconnect,
            "error_cb": on_error,
            **settings.nats_options,
        }
        self._nc = await nats.connect(**options)
        connected.set()
        js = self._nc.jetstream(timeout=_JS_TIMEOUT_S)
        objects = ServerObjects(
            js, settings.dialect, settings.command_processor, settings.release, settings.replicas, settings.consumers
        )
        await objects.ensure_all()
        self._objects = objects
        self._kv = objects.kv
        if not settings.kv_sync:
            objects.kv = None  # the bucket exists; the REST side just does not write it
        self._events = EntityEvents(js, settings.dialect, self._store, objects)
        for spec in objects.specs:
            if objects.runs_consumer(spec):
                processor = PullProcessor(
                    self._nc, spec, self._handler(js, spec), partial(objects.ensure, spec), connected, self._processing
                )
                self._tasks.append(asyncio.create_task(processor.run(), name=spec.consumer))
        ctx = ApiContext(
            settings.dialect,
            self._store,
            settings.bearer_token,
            settings.api_keys,
            self._events,
            self._nats_problem,
            settings.release,
        )
        # an emulator stops at once: a lingering keep-alive client must not hold it for 60 s
        self._runner = web.AppRunner(
            build_app(ctx, self._recorder, self._faults), access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, settings.host, settings.port, ssl_context=settings.ssl_context)
        await site.start()
        port = self._runner.addresses[0][1]
        return f"{'https' if settings.ssl_context else 'http'}://{settings.host}:{port}"

    async def stop(self) -> None:
        # Every step is bounded: after nats-server restarts a processor can sit in a nats-py call
        # that is slow to give up (a deaf connection), and stopping must not hang on it.
        for task in self._tasks:
            task.cancel()
        if not await _within(asyncio.gather(*self._tasks, return_exceptions=True), _STOP_STEP_S):
            log.warning("emulator: processors did not stop within %.0fs; abandoning them", _STOP_STEP_S)
        self._tasks.clear()
        if self._runner is not None:
            if not await _within(self._runner.cleanup(), _STOP_STEP_S):
                log.warning("emulator: HTTP server did not stop within %.0fs", _STOP_STEP_S)
            self._runner = None
        if self._nc is not None and not self._nc.is_closed:
            await _within(self._nc.close(), _STOP_STEP_S)
        self._nc = None
        self._kv = None

    # -- operator map and operator actions -----------------------------------------------------
    async def read_map(self, only: str | None) -> dict[str, Any]:
        """JSON-object entries of the KV bucket by key (only ``only`` when given); {} without a bucket."""
        kv = self._kv
        if kv is None:
            return {}
        keys = [only] if only is not None else await self._kv_keys(kv)
        out: dict[str, Any] = {}
        for key in keys:
            try:
                entry = await kv.get(key)
            except nats.js.errors.KeyNotFoundError:
                continue
            try:
                value = json.loads(entry.value or b"")
            except ValueError:
                continue
            if isinstance(value, dict):
                out[key] = value
        return out

    async def pause_processing(self, paused: bool) -> None:
        """See MothershipEmulator.pause_processing."""
        assert self._processing is not None
        if paused:
            self._processing.clear()
        else:
            self._processing.set()

    async def withhold_stream(self, name: str, withheld: bool) -> None:
        """See MothershipEmulator.withhold_stream."""
        assert self._objects is not None and self._nc is not None
        spec = next((spec for spec in self._objects.specs if spec.name == name), None)
        if spec is None:
            raise LookupError(f"no stream {name} on this server (streams: {[s.name for s in self._objects.specs]})")
        config = stream_config(spec, self._objects.replicas)
        if withheld:
            config.subjects = [f"withheld.{spec.subject}"]
        await self._nc.jetstream(timeout=_JS_TIMEOUT_S).update_stream(config)

    async def delete_entity(self, org_id: str, entity_id: str) -> None:
        """Delete the entity from the store and publish its entity event."""
        try:
            row = self._store.delete_entity(org_id, entity_id)
        except NotFoundError:
            raise LookupError(f"no entity {entity_id} in organization {org_id}") from None
        assert self._events is not None
        await self._events("deleted", row)

    # -- internals -----------------------------------------------------------------------------
    def _handler(self, js: Any, spec: StreamSpec) -> Handler:
        """The worker behind each server consumer: v0.1 reads telemetry and events, others just ack."""
        release = self._settings.release
        if self._settings.dialect == "v0.1" and spec.kind in ("telemetry", "events"):
            worker = "TelemetryWorker" if spec.kind == "telemetry" else "EventWorker"
            quarantine = Quarantine(js, spec, worker, release, self._recorder)
            if spec.kind == "events":
                return EventWorker(spec, self._recorder, quarantine)
            return TelemetryWorker(spec, release, self._recorder, self._store, quarantine, self._kv)
        return ack_and_record(spec, partial(self._recorder.add_message, spec.kind))

    @staticmethod
    async def _kv_keys(kv: KeyValue) -> list[str]:
        try:
            return list(await kv.keys())
        except nats.js.errors.NoKeysError:
            return []

    def _nats_problem(self) -> str | None:
        return None if self.nats_connected else "NATS not connected"


async def _within(step: Awaitable[Any], seconds: float) -> bool:
    """Run `step` for at most `seconds`; False (and the step abandoned) when it takes longer.

    Not asyncio.wait_for: on Python 3.11 it waits for a cancelled nats-py call that swallowed
    the cancellation, which is exactly the hang a bounded stop must not have.
    """
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        return False
    if not task.cancelled() and task.exception() is not None:
        log.debug("emulator: stop step failed: %r", task.exception())
    return True
