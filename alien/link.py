"""The NATS link: servers, authentication, TLS, and reconnecting forever.

nats-py gives up after 60 reconnect attempts by default; a robot must not, so attempts are
unlimited (`max_reconnect_attempts=-1`), including the first connect (a robot may boot before its
network). Credentials the server refuses, or a certificate that does not verify, fail at once
with NatsAuthError: retrying them would hang forever. A dead link is noticed after
`nats_ping_interval_s * nats_max_outstanding_pings` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import nats
import nats.errors
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from alien.errors import ConfigError, NatsAuthError, NotInitializedError
from alien.wire import redact_url

if TYPE_CHECKING:
    from alien.config import AlienConfig

logger = logging.getLogger("alien.link")

Listener = Callable[[], Awaitable[None]]


class NatsLink:
    """One NATS connection with JetStream, shared by the publisher and the command intake."""

    def __init__(self, config: AlienConfig, *, name: str = "alien") -> None:
        self.config = config
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
    def is_connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    def on_reconnect(self, listener: Listener) -> None:
        """Call `listener` after every reconnect (subscriptions are restored by nats-py itself)."""
        self._on_reconnect.append(listener)

    async def connect(self) -> None:
        """Connect, waiting as long as the servers are unreachable; fail fast on refused credentials."""
        loop = asyncio.get_running_loop()
        self._fatal = loop.create_future()
        nc = NatsClient()
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
        self._js = nc.jetstream(domain=self.config.jetstream_domain, timeout=self.config.publish_timeout_s)
        self.connected.set()
        logger.info("connected to NATS at %s", _shown_url(nc))

    async def close(self, timeout: float | None = None) -> None:
        """Drain subscriptions (at most `timeout` s) and close; idempotent."""
        self.connected.clear()
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None and not nc.is_closed:
            try:
                await asyncio.wait_for(nc.drain(), timeout=timeout or self.config.publish_timeout_s)
            except Exception as exc:  # noqa: BLE001 - closing must not raise
                logger.debug("drain on close failed: %s", exc)
            await _quiet_close(nc)

    # --- nats-py callbacks ---
    async def _error_cb(self, exc: Exception) -> None:
        fatal = _fatal_reason(exc)
        if fatal and self._fatal is not None and not self._fatal.done() and self._nc is None:
            self._fatal.set_result(NatsAuthError(fatal))
            return
        if isinstance(exc, (OSError, asyncio.TimeoutError)) and self._nc is None:
            # unreachable at first connect: say it once, then keep trying quietly
            log = logger.debug if self._waiting_logged else logger.warning
            log(
                "waiting for NATS at %s (%s); retrying every %.1fs",
                redact_url(self.config.nats_url),
                exc or type(exc).__name__,
                self.config.nats_reconnect_wait_s,
            )
            self._waiting_logged = True
            return
        if isinstance(exc, (OSError, asyncio.TimeoutError, nats.errors.StaleConnectionError)):
            # reconnect attempts during an outage: said once per outage, then quietly
            log = logger.debug if self._outage_logged else logger.warning
            log("NATS still unreachable (%s); retrying", exc or type(exc).__name__)
            self._outage_logged = True
            return
        logger.error("NATS error: %s", fatal or exc or type(exc).__name__)

    async def _disconnected_cb(self) -> None:
        if self.connected.is_set():
            self.disconnects += 1
            logger.warning("disconnected from NATS; reconnecting (no limit on attempts)")
        self.connected.clear()

    async def _reconnected_cb(self) -> None:
        self.reconnects += 1
        self._outage_logged = False
        self.connected.set()
        logger.info("reconnected to NATS at %s (reconnect #%d)", _shown_url(self._nc), self.reconnects)
        for listener in self._on_reconnect:
            try:
                await listener()
            except Exception:
                logger.exception("reconnect listener failed")

    async def _closed_cb(self) -> None:
        self.connected.clear()

    def _options(self) -> dict[str, Any]:
        cfg = self.config
        opts: dict[str, Any] = {
            "servers": cfg.nats_servers,
            "name": self.name,
            "allow_reconnect": True,
            "max_reconnect_attempts": -1,
            "reconnect_time_wait": cfg.nats_reconnect_wait_s,
            "connect_timeout": cfg.nats_connect_timeout_s,
            "ping_interval": cfg.nats_ping_interval_s,
            "max_outstanding_pings": cfg.nats_max_outstanding_pings,
            "error_cb": self._error_cb,
            "disconnected_cb": self._disconnected_cb,
            "reconnected_cb": self._reconnected_cb,
            "closed_cb": self._closed_cb,
        }
        if cfg.nats_token:
            opts["token"] = cfg.nats_token.get_secret_value()
        if cfg.nats_user:
            opts["user"] = cfg.nats_user
            opts["password"] = cfg.nats_password.get_secret_value() if cfg.nats_password else ""
        if cfg.nats_nkey_seed:
            opts["nkeys_seed_str"] = cfg.nats_nkey_seed.get_secret_value()
        elif cfg.nats_nkey_seed_file:
            opts["nkeys_seed"] = str(_existing(cfg.nats_nkey_seed_file, "ALIEN_NATS_NKEY_SEED_FILE"))
        if cfg.nats_creds_file:
            opts["user_credentials"] = str(_existing(cfg.nats_creds_file, "ALIEN_NATS_CREDS_FILE"))
        tls = self._tls_context()
        if tls is not None:
            opts["tls"] = tls
        return opts

    def _tls_context(self) -> ssl.SSLContext | None:
        cfg = self.config
        wants_tls = any(u.startswith("tls://") for u in cfg.nats_servers)
        if not (wants_tls or cfg.nats_tls_ca or cfg.nats_tls_cert):
            return None
        ca = _existing(cfg.nats_tls_ca, "ALIEN_NATS_TLS_CA") if cfg.nats_tls_ca else None
        context = ssl.create_default_context(cafile=str(ca) if ca else None)
        if cfg.nats_tls_cert:
            if not cfg.nats_tls_key:
                raise ConfigError(
                    "ALIEN_NATS_TLS_CERT is set but ALIEN_NATS_TLS_KEY is not: a client certificate needs its key"
                )
            context.load_cert_chain(
                str(_existing(cfg.nats_tls_cert, "ALIEN_NATS_TLS_CERT")),
                str(_existing(cfg.nats_tls_key, "ALIEN_NATS_TLS_KEY")),
            )
        return context


def _fatal_reason(exc: BaseException) -> str | None:
    """A reason when retrying the same connection can never succeed."""
    text = str(exc).lower()
    if "authorization violation" in text or "authentication" in text or type(exc).__name__ == "AuthorizationError":
        return (
            "nats-server refused the credentials (authorization violation); "
            "check the NATS token, user/password, NKey seed or creds file"
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"the NATS server certificate does not verify ({exc.verify_message}); "
            "check ALIEN_NATS_TLS_CA and the server name"
        )
    return None


def _existing(path: Any, variable: str) -> Any:
    if not path.is_file():
        raise ConfigError(f"{variable}: file {path} does not exist")
    return path


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
