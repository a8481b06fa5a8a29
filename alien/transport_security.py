"""TLS by default beyond loopback: no plain-text connection to another machine is ever dialled.

A NATS server other than loopback must be reached over TLS (`tls://`, `wss://`, or a TLS CA or
client certificate configured), and a mothership other than loopback over `https://`; otherwise
the connection is refused with a ConfigError naming the URL, unless `ALIEN_ALLOW_INSECURE=true`
(then one WARNING line per URL, each time a connection is set up). Loopback is 127.0.0.0/8, ::1
and `localhost`; any other name counts as remote (nothing is resolved: DNS could say anything).

The check runs where a connection is about to be made (`NatsLink.connect`, `MothershipClient`),
not when AlienConfig is validated: a configuration naming a remote plain URL can still be built,
printed and tested, but nothing insecure is dialled. Certificates are always verified, hostname
included (`ssl.create_default_context`); nothing here or elsewhere turns that off.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from alien.errors import ConfigError
from alien.logs import get_logger
from alien.wire import redact_url, split_credentials, url_without_credentials

if TYPE_CHECKING:
    from alien.settings import MothershipSettings, NatsSettings

logger = get_logger("alien.security")

_TLS_NATS_SCHEMES = frozenset({"tls", "wss"})


def is_loopback(host: str | None) -> bool:
    """127.0.0.0/8, ::1 (also as ::ffff:127.x) or `localhost`; a name is never resolved."""
    if not host:
        return False
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _host(url: str, default_scheme: str) -> tuple[str, str | None]:
    """(scheme, host) of `url`; nats-py reads `host:port` as nats://host:port."""
    try:
        # without the user part: an unencoded "/" in a password would make its start the host
        parts = url_without_credentials(url, default_scheme)
        host = parts.hostname
    except ValueError:  # e.g. an unbalanced IPv6 bracket: not loopback, so refused
        return split_credentials(url)[0].removesuffix("://").lower() or default_scheme, None
    return parts.scheme.lower(), host


def insecure_nats_urls(settings: NatsSettings) -> list[str]:
    """The NATS servers that would be dialled without TLS to a host other than loopback."""
    tls_configured = bool(settings.tls_ca or settings.tls_cert)
    insecure = []
    for url in settings.servers:
        scheme, host = _host(url, "nats")
        if scheme in _TLS_NATS_SCHEMES or tls_configured or is_loopback(host):
            continue
        insecure.append(url)
    return insecure


def nats_server_needs_tls(settings: NatsSettings, scheme: str, host: str | None) -> bool:
    """Whether CONNECT may go to this server only over TLS: what the policy above counted as TLS.

    nats-py upgrades to TLS only when the server's INFO asks for it, even on a tls:// URL; a
    server (or anyone in between) that does not ask would get CONNECT, credentials included, in
    clear text. NatsLink refuses that for these servers.
    """
    if scheme == "tls":
        return True
    # Whatever the scheme (servers nats-py discovers from INFO connect_urls get "nats"), clear
    # text beyond loopback is only for those who asked for it.
    return not is_loopback(host) and not settings.allow_insecure


def check_nats(settings: NatsSettings) -> None:
    """Refuse (ConfigError) or, with allow_insecure, warn about plain NATS beyond loopback."""
    for url in insecure_nats_urls(settings):
        shown = redact_url(url)
        if settings.allow_insecure:
            logger.warning(
                "%s",
                f"NATS_URL: {shown} is not loopback and not TLS; connecting in clear text because "
                "ALIEN_ALLOW_INSECURE=true (credentials, telemetry and commands can be read and changed "
                "on the way)",
            )
            continue
        raise ConfigError(
            f"NATS_URL: {shown} is not loopback and not TLS, so credentials, telemetry and commands "
            f"would cross the network in clear text; refused before connecting. Use {_with_scheme(shown, 'tls')} "
            "(ALIEN_NATS_TLS_CA for a private CA), or set ALIEN_ALLOW_INSECURE=true to accept plain "
            "NATS on a network you trust"
        )


def check_mothership(settings: MothershipSettings) -> None:
    """Refuse (ConfigError) or, with allow_insecure, warn about plain HTTP beyond loopback."""
    url = settings.url
    scheme, host = _host(url, "http")
    if scheme != "http" or is_loopback(host):
        return
    shown = redact_url(url)
    if settings.allow_insecure:
        logger.warning(
            "%s",
            f"MOTHERSHIP_URL: {shown} is not loopback and not HTTPS; connecting in clear text because "
            "ALIEN_ALLOW_INSECURE=true (the API key or bearer token can be read on the way)",
        )
        return
    raise ConfigError(
        f"MOTHERSHIP_URL: {shown} is not loopback and not HTTPS, so the API key or bearer token "
        f"would cross the network in clear text; refused before connecting. Use {_with_scheme(shown, 'https')} "
        "(ALIEN_HTTP_TLS_CA for a private CA), or set ALIEN_ALLOW_INSECURE=true to accept plain "
        "HTTP on a network you trust"
    )


def _with_scheme(shown: str, scheme: str) -> str:
    return f"{scheme}://{shown.split('://', 1)[-1]}"
