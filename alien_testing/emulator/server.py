"""MothershipEmulator: REST (either dialect) + server-side NATS objects, on its own thread.

The emulator owns an asyncio loop in a daemon thread, so synchronous tests (ROS) and async
tests (their own loop) can both drive it; every public method is thread-safe.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import json
import ssl
import threading
from collections.abc import Awaitable, Callable, Collection, Coroutine, Mapping
from functools import partial
from types import TracebackType
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
from aiohttp import web
from nats.aio.client import Client as NATS
from nats.js.kv import KeyValue

from alien.logs import get_logger
from alien_testing.emulator.app import Faults, build_app
from alien_testing.emulator.context import ApiContext
from alien_testing.emulator.contract import (
    API_KEY_PREFIXES,
    DEFAULT_API_KEY,
    DEFAULT_BEARER_TOKEN,
    DEFAULT_ORG_ID,
    DIALECTS,
    RELEASES,
    SCOPE_ADMIN,
    SCOPES,
    Dialect,
    Release,
    StreamSpec,
    entity_types,
)
from alien_testing.emulator.jetstream import EntityEvents, ServerObjects, stream_config
from alien_testing.emulator.processors import Handler, PullProcessor, ack_and_record
from alien_testing.emulator.records import (
    QuarantinedMessage,
    ReceivedMessage,
    Recorder,
    RequestRecord,
    TelemetryVerdict,
)
from alien_testing.emulator.store import NotFoundError, Row, Store
from alien_testing.emulator.workers import EventWorker, Quarantine, TelemetryWorker

log = get_logger(__name__)
T = TypeVar("T")
_WAKE_S = 0.1  # wait_for also re-checks predicates that read state outside the recorder
_JS_TIMEOUT_S = 2.0  # JetStream API calls; short so recovery after a server restart is quick
_STOP_STEP_S = 2.5  # each step of stop(); three of them stay well inside its 10 s


class MothershipEmulator:
    """An independent implementation of the mothership's wire contract for tests and demos."""

    def __init__(
        self,
        nats_url: str,
        *,
        dialect: Dialect = "v0.0.1",
        release: Release = "v0.1.1",
        bearer_token: str = DEFAULT_BEARER_TOKEN,
        api_keys: Mapping[str, Collection[str]] | None = None,
        command_processor: bool = True,
        nats_options: dict[str, Any] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        kv_sync: bool = True,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if dialect not in DIALECTS:
            raise ValueError(f"dialect must be one of {DIALECTS}, not {dialect!r}")
        if release not in RELEASES:
            raise ValueError(f"release must be one of {RELEASES}, not {release!r}")
        if dialect == "v0.0.1" and release != "v0.1.1":
            raise ValueError("release selects a v0.1 server line; it needs dialect='v0.1'")
        _require_loopback(host)
        keys = {DEFAULT_API_KEY: {SCOPE_ADMIN}} if api_keys is None else api_keys
        for key, scopes in keys.items():
            if not key.startswith(API_KEY_PREFIXES):
                raise ValueError("API keys must start with c4_live_ or c4_test_")
            if not set(scopes) <= SCOPES:
                raise ValueError(f"unknown scopes: {sorted(set(scopes) - SCOPES)}")
        self._nats_url = nats_url
        self._dialect: Dialect = dialect
        self._release: Release = release
        self._bearer_token = bearer_token
        self._api_keys = {k: frozenset(v) for k, v in keys.items()}
        self._command_processor = command_processor
        self._nats_options = dict(nats_options or {})
        self._host, self._port = host, port
        self._kv_sync = kv_sync
        self._ssl_context = ssl_context  # serve HTTPS with this context (a private CA in tests)
        self._recorder = Recorder()
        self._store = Store(self._recorder.condition, entity_types(dialect))
        if dialect == "v0.1":  # docs/contract.md#api-keys-and-scopes: a first boot already has organization "default"
            self._store.create_org("Default Organization", "commercial", None, org_id=DEFAULT_ORG_ID)
        self._faults = Faults()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._nc: NATS | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._events: EntityEvents | None = None
        self._objects: ServerObjects | None = None
        self._kv: KeyValue | None = None
        self._url: str | None = None

    # -- configuration -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("emulator not started")
        return self._url

    @property
    def dialect(self) -> Dialect:
        return self._dialect

    @property
    def release(self) -> Release:
        """The v0.1 server line: "v0.1.1" (tagged release) or "rc" (strict telemetry envelope)."""
        return self._release

    @property
    def nats_url(self) -> str:
        return self._nats_url

    @property
    def bearer_token(self) -> str:
        return self._bearer_token

    @property
    def api_keys(self) -> dict[str, frozenset[str]]:
        return dict(self._api_keys)

    @property
    def command_processor(self) -> bool:
        return self._command_processor

    @property
    def nats_connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, timeout: float = 15.0) -> None:
        if self._loop is not None:
            return
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="mothership-emulator", daemon=True)
        self._thread.start()
        try:
            self._call(self._astart(), timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 10.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            self._call(self._astop(), timeout)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
            loop.close()
            self._loop = self._thread = None
            self._url = None

    def __enter__(self) -> MothershipEmulator:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"MothershipEmulator(dialect={self._dialect!r}, url={self._url!r})"

    # -- what the server received --------------------------------------------------------------
    def organizations(self) -> list[Row]:
        return self._store.organizations()

    def entities(self) -> list[Row]:
        return self._store.entities()

    def telemetry(self) -> list[ReceivedMessage]:
        return self._recorder.messages("telemetry")

    def events(self) -> list[ReceivedMessage]:
        return self._recorder.messages("events")

    def commands(self) -> list[ReceivedMessage]:
        return self._recorder.messages("commands")

    def entity_events(self) -> list[ReceivedMessage]:
        return self._recorder.messages("entity_events")

    def requests(self) -> list[RequestRecord]:
        return self._recorder.requests()

    # -- v0.1 telemetry worker, admission and the operator map --------------------------------
    def telemetry_accepted(self) -> list[TelemetryVerdict]:
        """Telemetry deliveries the v0.1 worker applied (rc: merged into the entity state)."""
        return self._recorder.verdicts("accepted")

    def worker_state(self, entity_id: str) -> dict[str, Any] | None:
        """v0.1.1: what its telemetry worker decoded for ``entity_id`` (kept in its memory, not in KV)."""
        return self._recorder.worker_state(entity_id)

    def telemetry_ignored(self) -> list[TelemetryVerdict]:
        """Acked without effect: rc, not newer than the last of its type; v0.1.1, a type it does not decode."""
        return self._recorder.verdicts("ignored")

    def telemetry_rejected(self) -> list[TelemetryVerdict]:
        """Failed deliveries (one record per delivery) with the worker's error as ``reason``."""
        return self._recorder.verdicts("rejected")

    def quarantined(self) -> list[QuarantinedMessage]:
        """rc: records the server moved to CONSTELLATION_QUARANTINE (after three failed deliveries)."""
        return self._recorder.quarantined()

    def admitted(self) -> frozenset[str]:
        """Entity ids in the server's registry: admitted by ``bootsequence`` (or :meth:`admit`)."""
        return self._recorder.admitted()

    def admit(self, entity_id: str) -> None:
        """Register an entity as the server does at boot for the entities already in its database."""
        self._recorder.admit(entity_id)

    def entity_state(self, entity_id: str) -> dict[str, Any] | None:
        """The operator map's entry for ``entity_id`` (KV CONSTELLATION_GLOBAL_STATE), or None."""
        return self.operator_map(entity_id).get(entity_id)

    def operator_map(self, only: str | None = None) -> dict[str, Any]:
        """Every JSON-object entry of KV CONSTELLATION_GLOBAL_STATE, by key (= entity_id); {} on v0.0.1."""
        if self._dialect == "v0.0.1":
            return {}
        return self._call(self._read_map(only), 10.0)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
        """Block until predicate() holds; re-checked on every record (and every 0.1 s)."""
        self._recorder.wait_for(predicate, timeout, what, wake_every=_WAKE_S)

    async def wait_for_async(self, predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
        """wait_for without blocking the caller's event loop."""
        await asyncio.to_thread(self.wait_for, predicate, timeout, what)

    # -- fault injection and operator actions --------------------------------------------------
    def fail_next_requests(self, n: int, status: int = 503) -> None:
        """The next n API requests (not health, not openapi) answer ``status`` in the dialect's shape."""
        self._faults.fail_next(n, status)

    def set_unavailable(self, flag: bool) -> None:
        """While set, every request (health included) answers 503."""
        self._faults.set_unavailable(flag)

    def withhold_stream(self, name: str, withheld: bool) -> None:
        """Withhold stream `name`'s subjects (True) or give them back (False).

        While withheld the stream captures none of its subjects (they are moved aside), as while
        a server recreates its streams: a publish to them gets no answer from JetStream. Its
        stored messages and its consumer stay.
        """
        self._call(self._withhold_stream(name, withheld), 10.0)

    def delete_entity(self, org_id: str, entity_id: str) -> None:
        """An operator deletes an entity on the server (the entity event is published)."""
        self._call(self._delete_entity(org_id, entity_id), 10.0)

    # -- internals -----------------------------------------------------------------------------
    def _call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"emulator did not finish within {timeout:.1f}s") from None

    async def _astart(self) -> None:
        connected = asyncio.Event()

        async def on_disconnect() -> None:
            connected.clear()

        async def on_reconnect() -> None:
            connected.set()

        async def on_error(exc: Exception) -> None:
            log.debug("emulator NATS error: %s", type(exc).__name__)

        options: dict[str, Any] = {
            "servers": [self._nats_url],
            "name": "mothership-emulator",
            "allow_reconnect": True,
            "max_reconnect_attempts": -1,
            "reconnect_time_wait": 0.1,
            "connect_timeout": 2,
            "ping_interval": 5,
            "disconnected_cb": on_disconnect,
            "reconnected_cb": on_reconnect,
            "error_cb": on_error,
            **self._nats_options,
        }
        self._nc = await nats.connect(**options)
        connected.set()
        js = self._nc.jetstream(timeout=_JS_TIMEOUT_S)
        objects = ServerObjects(js, self._dialect, self._command_processor, self._release)
        await objects.ensure_all()
        self._objects = objects
        self._kv = objects.kv
        if not self._kv_sync:
            objects.kv = None  # the bucket exists; the REST side just does not write it
        self._events = EntityEvents(js, self._dialect, self._store, objects)
        for spec in objects.specs:
            if objects.runs_consumer(spec):
                processor = PullProcessor(
                    self._nc, spec, self._handler(js, spec), partial(objects.ensure, spec), connected
                )
                self._tasks.append(asyncio.create_task(processor.run(), name=spec.consumer))
        ctx = ApiContext(
            self._dialect,
            self._store,
            self._bearer_token,
            self._api_keys,
            self._events,
            self._nats_problem,
            self._release,
        )
        # an emulator stops at once: a lingering keep-alive client must not hold it for 60 s
        self._runner = web.AppRunner(
            build_app(ctx, self._recorder, self._faults), access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, ssl_context=self._ssl_context)
        await site.start()
        port = self._runner.addresses[0][1]
        self._url = f"{'https' if self._ssl_context else 'http'}://{self._host}:{port}"

    def _handler(self, js: Any, spec: StreamSpec) -> Handler:
        """The worker behind each server consumer: v0.1 reads telemetry and events, others just ack."""
        if self._dialect == "v0.1" and spec.kind in ("telemetry", "events"):
            worker = "TelemetryWorker" if spec.kind == "telemetry" else "EventWorker"
            quarantine = Quarantine(js, spec, worker, self._release, self._recorder)
            if spec.kind == "events":
                return EventWorker(spec, self._recorder, quarantine)
            return TelemetryWorker(spec, self._release, self._recorder, self._store, quarantine, self._kv)
        return ack_and_record(spec, partial(self._recorder.add_message, spec.kind))

    async def _read_map(self, only: str | None) -> dict[str, Any]:
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

    @staticmethod
    async def _kv_keys(kv: KeyValue) -> list[str]:
        try:
            return list(await kv.keys())
        except nats.js.errors.NoKeysError:
            return []

    async def _astop(self) -> None:
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

    def _nats_problem(self) -> str | None:
        return None if self.nats_connected else "NATS not connected"

    async def _withhold_stream(self, name: str, withheld: bool) -> None:
        assert self._objects is not None and self._nc is not None
        spec = next((spec for spec in self._objects.specs if spec.name == name), None)
        if spec is None:
            raise LookupError(f"no stream {name} on this server (streams: {[s.name for s in self._objects.specs]})")
        config = stream_config(spec)
        if withheld:
            config.subjects = [f"withheld.{spec.subject}"]
        await self._nc.jetstream(timeout=_JS_TIMEOUT_S).update_stream(config)

    async def _delete_entity(self, org_id: str, entity_id: str) -> None:
        try:
            row = self._store.delete_entity(org_id, entity_id)
        except NotFoundError:
            raise LookupError(f"no entity {entity_id} in organization {org_id}") from None
        assert self._events is not None
        await self._events("deleted", row)


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


def _require_loopback(host: str) -> None:
    """Nothing leaves the machine: refuse to listen beyond loopback."""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ValueError(f"the emulator listens on loopback only, not {host!r}")
