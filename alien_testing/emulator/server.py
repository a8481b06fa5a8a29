"""MothershipEmulator: REST (either dialect) + server-side NATS objects, on its own thread.

The emulator owns an asyncio loop in a daemon thread, so synchronous tests (ROS) and async
tests (their own loop) can both drive it; every public method is thread-safe. What runs on that
loop (the NATS link, the server's consumers, the HTTP site) is alien_testing/emulator/runtime.py.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import ssl
import threading
from collections.abc import Callable, Collection, Coroutine, Mapping
from types import TracebackType
from typing import Any, TypeVar

from alien_testing.emulator.app import Faults
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
    entity_types,
)
from alien_testing.emulator.records import (
    QuarantinedMessage,
    ReceivedMessage,
    Recorder,
    RequestRecord,
    TelemetryVerdict,
)
from alien_testing.emulator.runtime import EmulatorRuntime, Settings
from alien_testing.emulator.store import Row, Store

T = TypeVar("T")
_WAKE_S = 0.1  # wait_for also re-checks predicates that read state outside the recorder


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
        replicas: int = 1,
        consumers: bool = True,
    ) -> None:
        """An emulator on `nats_url` (one URL, or a cluster's nodes comma-separated).

        `replicas`: of every stream and the KV bucket it creates (3 on a NatsCluster; the real
        server runs one node). `consumers=False` creates the streams without the server's durable
        consumers and workers: a load benchmark reads the streams itself, and the emulator's
        Python workers would otherwise be what it measures.
        """
        if dialect not in DIALECTS:
            raise ValueError(f"dialect must be one of {DIALECTS}, not {dialect!r}")
        if release not in RELEASES:
            raise ValueError(f"release must be one of {RELEASES}, not {release!r}")
        if dialect == "v0.0.1" and release != "v0.1.1":
            raise ValueError("release selects a v0.1 server line; it needs dialect='v0.1'")
        _require_loopback(host)
        if replicas < 1:
            raise ValueError(f"replicas must be at least 1, not {replicas}")
        keys = {DEFAULT_API_KEY: {SCOPE_ADMIN}} if api_keys is None else api_keys
        for key, scopes in keys.items():
            if not key.startswith(API_KEY_PREFIXES):
                raise ValueError("API keys must start with c4_live_ or c4_test_")
            if not set(scopes) <= SCOPES:
                raise ValueError(f"unknown scopes: {sorted(set(scopes) - SCOPES)}")
        self._settings = Settings(
            nats_url=nats_url,
            dialect=dialect,
            release=release,
            bearer_token=bearer_token,
            api_keys={k: frozenset(v) for k, v in keys.items()},
            command_processor=command_processor,
            nats_options=dict(nats_options or {}),
            host=host,
            port=port,
            kv_sync=kv_sync,
            ssl_context=ssl_context,
            replicas=replicas,
            consumers=consumers,
        )
        self._recorder = Recorder()
        self._store = Store(self._recorder.condition, entity_types(dialect))
        if dialect == "v0.1":  # docs/contract.md#api-keys-and-scopes: a first boot already has organization "default"
            self._store.create_org("Default Organization", "commercial", None, org_id=DEFAULT_ORG_ID)
        self._faults = Faults()
        self._runtime = EmulatorRuntime(self._settings, self._recorder, self._store, self._faults)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None

    # -- configuration -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("emulator not started")
        return self._url

    @property
    def dialect(self) -> Dialect:
        return self._settings.dialect

    @property
    def release(self) -> Release:
        """The v0.1 server line: "v0.1.1" (tagged release) or "rc" (strict telemetry envelope)."""
        return self._settings.release

    @property
    def nats_url(self) -> str:
        return self._settings.nats_url

    @property
    def bearer_token(self) -> str:
        return self._settings.bearer_token

    @property
    def api_keys(self) -> dict[str, frozenset[str]]:
        return dict(self._settings.api_keys)

    @property
    def command_processor(self) -> bool:
        return self._settings.command_processor

    @property
    def nats_connected(self) -> bool:
        return self._runtime.nats_connected

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, timeout: float = 15.0) -> None:
        if self._loop is not None:
            return
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="mothership-emulator", daemon=True)
        self._thread.start()
        try:
            self._url = self._call(self._runtime.start(), timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 10.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            self._call(self._runtime.stop(), timeout)
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
        return f"MothershipEmulator(dialect={self._settings.dialect!r}, url={self._url!r})"

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
        if self._settings.dialect == "v0.0.1":
            return {}
        return self._call(self._runtime.read_map(only), 10.0)

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

    def pause_processing(self, paused: bool) -> None:
        """Stop (True) or resume (False) the server's consumers: the streams store on, nothing is processed.

        For benchmarks whose client runs on the machine the emulator does: the mothership's own
        work on what arrives is the server's, not the robot's. Messages delivered meanwhile wait,
        unacknowledged, and are handled once resumed (a redelivery is recorded once).
        """
        self._call(self._runtime.pause_processing(paused), 10.0)

    def withhold_stream(self, name: str, withheld: bool) -> None:
        """Withhold stream `name`'s subjects (True) or give them back (False).

        While withheld the stream captures none of its subjects (they are moved aside), as while
        a server recreates its streams: a publish to them gets no answer from JetStream. Its
        stored messages and its consumer stay.
        """
        self._call(self._runtime.withhold_stream(name, withheld), 10.0)

    def delete_entity(self, org_id: str, entity_id: str) -> None:
        """An operator deletes an entity on the server (the entity event is published)."""
        self._call(self._runtime.delete_entity(org_id, entity_id), 10.0)

    # -- internals -----------------------------------------------------------------------------
    def _call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"emulator did not finish within {timeout:.1f}s") from None


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
