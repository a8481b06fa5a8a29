"""The NATS link: servers, authentication, TLS, and reconnecting forever.

nats-py gives up after 60 reconnect attempts by default; a robot must not, so attempts are
unlimited (`max_reconnect_attempts=-1`), including the first connect (a robot may boot before its
network). Credentials the server refuses, or a certificate that does not verify, fail at once
with NatsAuthError: retrying them would hang forever. A dead link is noticed after
`nats_ping_interval_s * nats_max_outstanding_pings` seconds.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import nats
import nats.errors
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from alien import transport_security
from alien.errors import ConfigError, NatsAuthError, NotInitializedError
from alien.logs import get_logger
from alien.wire import redact_url

if TYPE_CHECKING:
    from alien.config import AlienConfig

logger = get_logger("alien.link")

Listener = Callable[[], Awaitable[None]]
DenialListener = Callable[[str, str], None]

# nats-server: -ERR 'Permissions Violation for Publish to "subject"' (or "Subscription to").
_DENIED = re.compile(r'permissions violation for (publish|subscription) to "([^"]+)"', re.IGNORECASE)


# Asynchronous publishes awaiting their PubAck at most (nats-py's own default); see Publisher.
MAX_PENDING_PUBLISHES = 4000


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
        # (publish|subscribe, lower-cased subject) -> times refused. nats-py lower-cases the
        # server's error text, so the subject's case is lost: compare with .lower().
        self.denied: dict[tuple[str, str], int] = {}
        self._denied_families: set[tuple[str, str]] = set()  # what was already logged
        self._on_denied: list[DenialListener] = []
        # (operation, lower-cased subject) being checked on purpose: its caller says what a refusal means
        self.probing: set[tuple[str, str]] = set()

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
        domain = self.config.jetstream_domain
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
        transport_security.check_nats(self.config)
        loop = asyncio.get_running_loop()
        self._fatal = loop.create_future()
        nc = _TlsKeepingClient(self.config)
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
            domain=self.config.jetstream_domain,
            timeout=self.config.publish_timeout_s,
            publish_async_max_pending=MAX_PENDING_PUBLISHES,
        )
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
        denial = _DENIED.search(str(exc))
        if denial is not None:
            operation = "publish" if denial.group(1).lower() == "publish" else "subscribe"
            self._record_denial(operation, denial.group(2).lower())
            return
        fatal = _fatal_reason(exc)
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

    def _record_denial(self, operation: str, subject: str) -> None:
        """Say once per feature what was refused and which permission is missing; tell listeners."""
        key = (operation, subject)
        self.denied[key] = self.denied.get(key, 0) + 1
        shown = _restore_case(subject)
        family = (operation, _family(shown))
        if family not in self._denied_families and key not in self.probing:
            self._denied_families.add(family)
            # JetStream API and KV refusals are expected on newer servers: the feature that hit
            # them (command intake, entity state) says in its own one line how it degrades.
            log = logger.debug if shown.startswith(("$JS.", "$KV.")) else logger.error
            log(
                'nats-server denied %s %s "%s": the NATS user needs %s permission for "%s"%s',
                "a publish to" if operation == "publish" else "a subscription to",
                _what(shown),
                shown,
                operation,
                family[1],
                _scope_hint(operation, shown),
            )
        for listener in self._on_denied:
            try:
                listener(operation, subject)
            except Exception:
                logger.exception("denial listener failed")

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
            opts["nkeys_seed_str"] = _valid_seed(cfg.nats_nkey_seed.get_secret_value(), "ALIEN_NATS_NKEY_SEED")
        elif cfg.nats_nkey_seed_file:
            path = _existing(cfg.nats_nkey_seed_file, "ALIEN_NATS_NKEY_SEED_FILE")
            _valid_seed(path.read_text(errors="replace"), f"ALIEN_NATS_NKEY_SEED_FILE ({path})")
            opts["nkeys_seed"] = str(path)
        if cfg.nats_creds_file:
            opts["user_credentials"] = str(_creds_file(cfg.nats_creds_file))
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


class TlsNotOfferedError(nats.errors.Error):
    """A server that must be reached over TLS did not offer it: CONNECT is not sent."""


class _TlsKeepingClient(NatsClient):
    """nats-py's client, refusing to send CONNECT in clear text where TLS was asked for.

    nats-py switches to TLS only when the server's INFO says `tls_required`, even on tls:// URLs
    (see transport_security.nats_server_needs_tls); this checks that before CONNECT goes out, on
    the first connect and on every reconnect.
    """

    def __init__(self, config: AlienConfig) -> None:
        super().__init__()
        self._alien_config = config

    def _connect_command(self) -> bytes:
        server = self._current_server
        if server is not None and not (self._server_info.get("tls_required") or self.options["tls_handshake_first"]):
            uri = server.uri
            if transport_security.nats_server_needs_tls(self._alien_config, uri.scheme, uri.hostname):
                raise TlsNotOfferedError(
                    f"the NATS server at {uri.scheme}://{uri.hostname}:{uri.port} did not offer TLS, which "
                    "this connection requires; nothing was sent (check that the server has TLS on, and "
                    "that nothing in between strips it)"
                )
        return super()._connect_command()


def _fatal_reason(exc: BaseException) -> str | None:
    """A reason when retrying the same connection can never succeed."""
    if isinstance(exc, TlsNotOfferedError):
        return str(exc)
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


def _family(subject: str) -> str:
    """The subjects one feature uses: every event type shares one line in the log."""
    tokens = subject.split(".")
    if tokens[:2] == ["constellation", "events"] and len(tokens) > 3:
        return ".".join(tokens[:3]) + ".>"
    return subject


def _restore_case(subject: str) -> str:
    """The subject as the server spelled it, as far as it can be known (see NatsLink.denied).

    JetStream and KV API tokens are upper-case words; ids (digits, hyphens) keep their case.
    """
    tokens = subject.split(".")
    if tokens[0] == "$kv":
        return ".".join([t.upper() for t in tokens[:2]] + tokens[2:])
    if tokens[0] == "$js":
        return ".".join(t.upper() if re.fullmatch(r"\$?[a-z_]+", t) else t for t in tokens)
    return subject


def _what(subject: str) -> str:
    if subject.startswith("$KV."):
        return "the KV key"
    if subject.startswith("$JS.API."):
        return "the JetStream API"
    return "subject"


def _scope_hint(operation: str, subject: str) -> str:
    """Which API-key scope grants it: v0.1 servers derive NATS permissions from the key's scopes."""
    scopes = {
        ("publish", "constellation.telemetry."): "nats:telemetry (v0.1.1) or nats:telemetry:write (newer)",
        ("publish", "constellation.events."): "nats:all (v0.1.1) or nats:events:write (newer)",
        ("subscribe", "constellation.commands."): "nats:commands (v0.1.1) or nats:commands:read (newer)",
    }
    for (op, prefix), scope in scopes.items():
        if op == operation and subject.startswith(prefix):
            return f" (on v0.1 servers: an API key with the scope {scope} for this organization)"
    if subject.startswith(("$KV.", "$JS.API.STREAM.INFO.KV_", "$JS.API.DIRECT.GET.KV_")):
        return " (newer servers keep entity state themselves; ALIEN_ENTITY_STATE=off stops trying)"
    if subject.startswith("$JS.API."):
        return " (newer servers give edge keys no JetStream API; Alien falls back where it can)"
    return ""


def _valid_seed(seed: str, variable: str) -> str:
    """The seed if nkeys can use it; else a ConfigError that never shows it."""
    import nkeys  # nats-py's own dependency for NKey auth

    error: ConfigError | None = None
    try:
        nkeys.from_seed(bytearray(seed.strip().encode()))
    except Exception:  # noqa: BLE001 - nkeys raises several kinds; none may echo the seed
        error = ConfigError(f"{variable} is not a valid NKey seed (expected SU...)")
    if error is not None:
        raise error
    return seed.strip()


def _creds_file(path: Any) -> Any:
    """The .creds file, checked first: nats-py loops forever on one without a JWT block."""
    text = _existing(path, "ALIEN_NATS_CREDS_FILE").read_text(errors="replace")
    for block in ("NATS USER JWT", "USER NKEY SEED"):
        found = re.search(rf"-{{3,}}BEGIN {block}-{{3,}}\s*\n\s*(\S+)", text)
        if found is None or found.group(1).startswith("-"):
            # never quote the file: it holds the seed
            raise ConfigError(f"ALIEN_NATS_CREDS_FILE: {path} is not a NATS .creds file (no {block} block)")
    return path


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
