"""How to reach NATS, from the settings: servers, timers, credentials, TLS, and what is fatal.

Credentials the server refuses, or a certificate that does not verify, can never succeed on
retry (`fatal_reason`); a .creds file or NKey seed is checked before nats-py sees it, and no
error ever quotes a seed.
"""

from __future__ import annotations

import random
import re
import ssl
from typing import TYPE_CHECKING, Any

import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.client import Server

from alien import transport_security
from alien.errors import ConfigError

if TYPE_CHECKING:
    from alien.settings import NatsSettings


def connect_options(settings: NatsSettings, name: str) -> dict[str, Any]:
    """nats.connect() options from the settings: servers, timers, credentials and TLS."""
    opts: dict[str, Any] = {
        "servers": list(settings.servers),
        "name": name,
        "allow_reconnect": True,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": settings.reconnect_wait_s,
        "reconnect_to_server_handler": ReconnectSchedule(settings.reconnect_wait_s, settings.reconnect_jitter_s),
        "connect_timeout": settings.connect_timeout_s,
        "ping_interval": settings.ping_interval_s,
        "max_outstanding_pings": settings.max_outstanding_pings,
    }
    if settings.token:
        opts["token"] = settings.token.get_secret_value()
    if settings.user:
        opts["user"] = settings.user
        opts["password"] = settings.password.get_secret_value() if settings.password else ""
    if settings.nkey_seed:
        opts["nkeys_seed_str"] = _valid_seed(settings.nkey_seed.get_secret_value(), "ALIEN_NATS_NKEY_SEED")
    elif settings.nkey_seed_file:
        path = _existing(settings.nkey_seed_file, "ALIEN_NATS_NKEY_SEED_FILE")
        _valid_seed(path.read_text(errors="replace"), f"ALIEN_NATS_NKEY_SEED_FILE ({path})")
        opts["nkeys_seed"] = str(path)
    if settings.creds_file:
        opts["user_credentials"] = str(_creds_file(settings.creds_file))
    tls = tls_context(settings)
    if tls is not None:
        opts["tls"] = tls
    return opts


class ReconnectSchedule:
    """Which server a reconnect attempt goes to, and how long it waits first (docs/capacity.md#reconnect-storms).

    nats-py alone retries every `reconnect_time_wait` exactly, without jitter: a fleet that lost
    its hub at one instant would come back at one instant, attempt after attempt. Here the server
    least tried since its last success goes first (the pool, shuffled at each disconnect, breaks
    ties: a round robin over the configured and the discovered servers), one that failed before
    waits `wait_s`, and every attempt waits a random 0..`jitter_s` more.
    """

    def __init__(self, wait_s: float, jitter_s: float) -> None:
        self.wait_s = wait_s
        self.jitter_s = jitter_s

    def __call__(self, servers: list[Server], info: dict[str, Any]) -> tuple[Server | None, float]:
        if not servers:
            return None, self.wait_s
        server = min(servers, key=lambda candidate: candidate.reconnects)
        wait = self.wait_s if server.reconnects else 0.0
        return server, wait + random.uniform(0.0, self.jitter_s)


def tls_context(settings: NatsSettings) -> ssl.SSLContext | None:
    """The TLS context a tls:// URL, a CA or a client certificate asks for; else None."""
    wants_tls = any(u.startswith("tls://") for u in settings.servers)
    if not (wants_tls or settings.tls_ca or settings.tls_cert):
        return None
    ca = _existing(settings.tls_ca, "ALIEN_NATS_TLS_CA") if settings.tls_ca else None
    context = ssl.create_default_context(cafile=str(ca) if ca else None)
    if settings.tls_cert:
        if not settings.tls_key:
            raise ConfigError(
                "ALIEN_NATS_TLS_CERT is set but ALIEN_NATS_TLS_KEY is not: a client certificate needs its key"
            )
        context.load_cert_chain(
            str(_existing(settings.tls_cert, "ALIEN_NATS_TLS_CERT")),
            str(_existing(settings.tls_key, "ALIEN_NATS_TLS_KEY")),
        )
    return context


class TlsNotOfferedError(nats.errors.Error):
    """A server that must be reached over TLS did not offer it: CONNECT is not sent."""


class TlsKeepingClient(NatsClient):
    """nats-py's client, refusing to send CONNECT in clear text where TLS was asked for.

    nats-py switches to TLS only when the server's INFO says `tls_required`, even on tls:// URLs
    (see transport_security.nats_server_needs_tls); this checks that before CONNECT goes out, on
    the first connect and on every reconnect.
    """

    def __init__(self, settings: NatsSettings) -> None:
        super().__init__()
        self._alien_settings = settings

    def _connect_command(self) -> bytes:
        server = self._current_server
        if server is not None and not (self._server_info.get("tls_required") or self.options["tls_handshake_first"]):
            uri = server.uri
            if transport_security.nats_server_needs_tls(self._alien_settings, uri.scheme, uri.hostname):
                raise TlsNotOfferedError(
                    f"the NATS server at {uri.scheme}://{uri.hostname}:{uri.port} did not offer TLS, which "
                    "this connection requires; nothing was sent (check that the server has TLS on, and "
                    "that nothing in between strips it)"
                )
        return super()._connect_command()


def fatal_reason(exc: BaseException) -> str | None:
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
