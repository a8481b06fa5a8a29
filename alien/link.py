"""The NATS link: servers, authentication, TLS, and reconnecting forever.

nats-py gives up after 60 reconnect attempts by default; a robot must not, so attempts are
unlimited (`max_reconnect_attempts=-1`), including the first connect (a robot may boot before its
network). Credentials the server refuses, or a certificate that does not verify, fail at once
with NatsAuthError: retrying them would hang forever. A dead link is noticed after
`nats_ping_interval_s * nats_max_outstanding_pings` seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from alien import transport_security
from alien.errors import NatsAuthError, NotInitializedError
from alien.logs import get_logger
from alien.nats_denials import denial_in, denial_line, restore_case
from alien.nats_denials import family as subject_family
from alien.nats_options import TlsKeepingClient, TlsNotOfferedError, connect_options, fatal_reason
from alien.stream_outages import StreamOutages
from alien.wire import redact_url

if TYPE_CHECKING:
    from alien.settings import NatsSettings

logger = get_logger("alien.link")

Listener = Callable[[], Awaitable[None]]
DenialListener = Callable[[str, str], None]


# Asynchronous publishes awaiting their PubAck at most (nats-py's own default); see Publisher.
MAX_PENDING_PUBLISHES = 4000


class NatsLink:
    """One NATS connection with JetStream, shared by the publisher and the command intake."""

    def __init__(self, settings: NatsSettings, *, name: str = "alien") -> None:
        self.settings = settings
        self.name = name
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self.connected = asyncio.Event()
        self.reconnects = 0
        self.disconnects = 0
        self._on_reconnect: list[Listener] = []
        self._fatal: asyncio.Future[BaseException] | None = None
        self._waiting_logged = False
        self._outage_logged = False
        self._drop_reason: str | None = None  # why the live connection ended, for the disconnect line
        self._disconnected_at: float | None = None  # loop time of the last disconnect
        self._server_shown = "?"  # the server connected to, as logged (no credentials)
        # (publish|subscribe, lower-cased subject) -> times refused. nats-py lower-cases the
        # server's error text, so the subject's case is lost: compare with .lower().
        self.denied: dict[tuple[str, str], int] = {}
        self._denied_families: set[tuple[str, str]] = set()  # what was already logged
        self._on_denied: list[DenialListener] = []
        # (operation, lower-cased subject) being checked on purpose: its caller says what a refusal means
        self.probing: set[tuple[str, str]] = set()
        # streams not taking messages now (a cluster electing a leader): said once for every user of the link
        self.stream_outages = StreamOutages()

    @property
    def nc(self) -> NatsClient:
        if self._nc is None:
            raise NotInitializedError("the NATS link is not connected; call initialize() first")
        return self._nc

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise NotInitializedError("the NATS link is not connected; call initialize() first")
        return self._js

    @property
    def api_prefix(self) -> str:
        """The JetStream API subject prefix: `$JS.API.`, or `$JS.<domain>.API.` through a leaf node."""
        domain = self.settings.jetstream_domain
        return f"$JS.{domain}.API." if domain else "$JS.API."

    @property
    def is_connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    @property
    def is_open(self) -> bool:
        """Connected once and not closed since: connected now, or reconnecting on its own."""
        return self._nc is not None

    def on_reconnect(self, listener: Listener) -> None:
        """Call `listener` after every reconnect (subscriptions are restored by nats-py itself)."""
        self._on_reconnect.append(listener)

    def on_denied(self, listener: DenialListener) -> None:
        """Call `listener(operation, subject)` each time nats-server refuses a publish or subscription.

        The subject comes lower-cased (see `denied`).
        """
        self._on_denied.append(listener)

    async def denied_soon(self, operation: str, subject_prefix: str) -> None:
        """Return once nats-server refuses an `operation` on a subject starting with the prefix.

        Race it against a request: a refused request is never answered, only timed out.
        """
        refused = asyncio.get_running_loop().create_future()

        prefix = subject_prefix.lower()

        def listener(op: str, subject: str) -> None:
            if op == operation and subject.startswith(prefix) and not refused.done():
                refused.set_result(subject)

        self._on_denied.append(listener)
        try:
            await refused
        finally:
            self._on_denied.remove(listener)

    def is_denied(self, operation: str, subject: str) -> bool:
        return (operation, subject.lower()) in self.denied

    async def connect(self) -> None:
        """Connect, waiting as long as the servers are unreachable; fail fast on refused credentials.

        Plain NATS to a host other than loopback is refused before dialling (alien.transport_security).
        """
        transport_security.check_nats(self.settings)
        loop = asyncio.get_running_loop()
        self._fatal = loop.create_future()
        nc = TlsKeepingClient(self.settings)
        connecting: asyncio.Future[Any] = asyncio.ensure_future(nc.connect(**self._options()))
        fatal: asyncio.Future[Any] = self._fatal
        try:
            done, _ = await asyncio.wait({connecting, fatal}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # cancelled (e.g. shutdown while waiting): leave no client behind
            connecting.cancel()
            await asyncio.gather(connecting, return_exceptions=True)
            await _quiet_close(nc)
            raise
        if connecting not in done:
            connecting.cancel()
            await asyncio.gather(connecting, return_exceptions=True)
            await _quiet_close(nc)
            raise NatsAuthError(str(self._fatal.result()))
        connecting.result()
        self._nc = nc
        self._js = nc.jetstream(
            domain=self.settings.jetstream_domain,
            timeout=self.settings.publish_timeout_s,
            publish_async_max_pending=MAX_PENDING_PUBLISHES,
        )
        self.connected.set()
        self._server_shown = _shown_url(nc)
        logger.info("connected to NATS at %s", self._server_shown)

    async def close(self, timeout: float | None = None) -> None:
        """Drain subscriptions (at most `timeout` s) and close; idempotent."""
        self.connected.clear()
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None and not nc.is_closed:
            try:
                await asyncio.wait_for(nc.drain(), timeout=timeout or self.settings.publish_timeout_s)
            except Exception as exc:  # noqa: BLE001 - closing must not raise
                logger.debug("drain on close failed: %s", exc)
            await _quiet_close(nc)

    # --- nats-py callbacks ---
    async def _error_cb(self, exc: Exception) -> None:
        denial = denial_in(str(exc))
        if denial is not None:
            self._record_denial(*denial)
            return
        if isinstance(exc, nats.js.errors.APIError):
            # A refused publish_async that nats-py 2.16 raises here instead of failing its future
            # (nats-io/nats.py#985): the publisher sends it again synchronously and says what the
            # answer means (a retry, a refusal for good, a stream without a leader).
            logger.debug("JetStream refused an asynchronous publish: %s", exc)
            return
        fatal = fatal_reason(exc)
        if fatal and self._fatal is not None and not self._fatal.done() and self._nc is None:
            self._fatal.set_result(NatsAuthError(fatal))
            return
        if isinstance(exc, TlsNotOfferedError):  # on a reconnect: said once per outage, never sent in clear
            log = logger.debug if self._outage_logged else logger.error
            log("NATS reconnect refused: %s; retrying", exc)
            self._outage_logged = True
            return
        if isinstance(exc, (OSError, asyncio.TimeoutError)) and self._nc is None:
            # unreachable at first connect: say it once, then keep trying quietly
            log = logger.debug if self._waiting_logged else logger.warning
            log(
                "waiting for NATS at %s (%s); retrying every %.1fs",
                redact_url(self.settings.url),
                exc or type(exc).__name__,
                self.settings.reconnect_wait_s,
            )
            self._waiting_logged = True
            return
        if isinstance(exc, (OSError, asyncio.TimeoutError, nats.errors.StaleConnectionError)):
            if self.connected.is_set():
                # What ends a live connection (a node killed, a cut path): the disconnect line says it.
                self._drop_reason = str(exc) or type(exc).__name__
                logger.debug("NATS connection lost: %s", self._drop_reason)
                return
            # Reconnect attempts during an outage: said once per outage, then quietly; not in the
            # first round of attempts, where a cluster's surviving node is usually found.
            if (
                self._outage_logged
                or self._outage_s() < self.settings.reconnect_wait_s + self.settings.reconnect_jitter_s
            ):
                logger.debug("NATS reconnect attempt failed (%s); retrying", exc or type(exc).__name__)
                return
            logger.warning("NATS still unreachable (%s); retrying", exc or type(exc).__name__)
            self._outage_logged = True
            return
        logger.error("NATS error: %s", fatal or exc or type(exc).__name__)

    def _record_denial(self, operation: str, subject: str) -> None:
        """Say once per feature what was refused and which permission is missing; tell listeners."""
        key = (operation, subject)
        self.denied[key] = self.denied.get(key, 0) + 1
        shown = restore_case(subject)
        family = (operation, subject_family(shown))
        if family not in self._denied_families and key not in self.probing:
            self._denied_families.add(family)
            # JetStream API and KV refusals are expected on newer servers: the feature that hit
            # them (command intake, entity state) says in its own one line how it degrades.
            log = logger.debug if shown.startswith(("$JS.", "$KV.")) else logger.error
            log("%s", denial_line(operation, shown, family[1]))
        for listener in self._on_denied:
            try:
                listener(operation, subject)
            except Exception:
                logger.exception("denial listener failed")

    async def _disconnected_cb(self) -> None:
        if self.connected.is_set():
            self.disconnects += 1
            self._disconnected_at = asyncio.get_running_loop().time()
            reason, self._drop_reason = self._drop_reason, None
            logger.warning(
                "disconnected from NATS at %s%s; reconnecting (no limit on attempts)",
                self._server_shown,
                f" ({reason})" if reason else "",
            )
        self.connected.clear()

    def _outage_s(self) -> float:
        """How long the link has been down (inf when it never disconnected: nothing to wait for)."""
        if self._disconnected_at is None:
            return float("inf")
        return asyncio.get_running_loop().time() - self._disconnected_at

    async def _reconnected_cb(self) -> None:
        self.reconnects += 1
        self._outage_logged = False
        self.connected.set()
        outage = asyncio.get_running_loop().time() - self._disconnected_at if self._disconnected_at else None
        self._server_shown = _shown_url(self._nc)
        logger.info(
            "reconnected to NATS at %s%s (reconnect #%d)",
            self._server_shown,
            f" after {outage:.1f}s" if outage is not None else "",
            self.reconnects,
        )
        for listener in self._on_reconnect:
            try:
                await listener()
            except Exception:
                logger.exception("reconnect listener failed")

    async def _closed_cb(self) -> None:
        self.connected.clear()

    def _options(self) -> dict[str, Any]:
        callbacks = {
            "error_cb": self._error_cb,
            "disconnected_cb": self._disconnected_cb,
            "reconnected_cb": self._reconnected_cb,
            "closed_cb": self._closed_cb,
        }
        return {**connect_options(self.settings, self.name), **callbacks}


def _shown_url(nc: NatsClient | None) -> str:
    url = nc.connected_url if nc is not None else None
    # never print user:password@ from the URL
    return f"{url.scheme}://{url.hostname}:{url.port}" if url else "?"


async def _quiet_close(nc: NatsClient) -> None:
    try:
        await nc.close()
    except Exception as exc:  # noqa: BLE001 - closing must not raise
        logger.debug("close failed: %s", exc)


__all__ = ["NatsLink", "nats"]
