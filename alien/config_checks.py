"""Checks behind AlienConfig's validators, and its one-line errors (docs/configuration.md).

Errors name the environment variable and what is allowed, and never show a secret or a URL's
credentials: pydantic's own messages would echo the rejected input.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import pydantic
from pydantic import AliasChoices
from pydantic.fields import FieldInfo

from alien.wire import redact_url, split_credentials, url_without_credentials

URL_FIELDS = ("nats_url", "mothership_url")


def env_names(field: str, info: FieldInfo) -> list[str]:
    """The environment variables that set `field`: its seed API name(s) or alias, else ALIEN_<FIELD>."""
    alias = info.validation_alias
    if isinstance(alias, str):
        return [alias]
    named = [c for c in alias.choices if isinstance(c, str) and c.isupper()] if isinstance(alias, AliasChoices) else []
    return named or [f"ALIEN_{field.upper()}"]


def mothership_url(value: str) -> str:
    """MOTHERSHIP_URL checked and without its trailing "/"; ValueError says what is wrong."""
    value = value.strip()
    check_url("MOTHERSHIP_URL", value, ("http", "https"), "http://host:8080")
    if split_credentials(value)[1] is not None:
        # never echo it: the user part is a credential
        raise ValueError("MOTHERSHIP_URL must not carry credentials (user@host); use API_BEARER_TOKEN or ALIEN_API_KEY")
    return value.rstrip("/")


def nats_urls(value: str) -> str:
    """NATS_URL checked server by server; ValueError says which one is wrong."""
    servers = [part.strip() for part in value.split(",") if part.strip()]
    if not servers:
        raise ValueError("NATS_URL is empty (expected e.g. nats://host:4222)")
    # Every server needs a scheme: checked first, so that a comma inside a password (which splits
    # it into a server without one) is reported with the fragment after it, shown as ***@host.
    for server in servers:
        if not split_credentials(server)[0]:
            check_url("NATS_URL", server, ("nats", "tls", "ws", "wss"), "nats://host:4222")
    for server in servers:
        check_url("NATS_URL", server, ("nats", "tls", "ws", "wss"), "nats://host:4222")
        check_nats_user_part(server)
    return value


def check_url(variable: str, url: str, schemes: tuple[str, ...], example: str) -> None:
    """ValueError naming `variable`, the URL (without credentials) and what is wrong with it."""
    shown = redact_url(url)

    def invalid(reason: str) -> ValueError:
        return ValueError(f"{variable} {shown!r} is not a valid URL: {reason} (expected e.g. {example})")

    prefix, _, _ = split_credentials(url)  # the scheme is read before the user part, never from it
    if not prefix:
        if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:?/+", url):  # nats//host, nats:/host
            raise invalid("it has no '://' after the scheme")
        raise invalid("it has no scheme")
    scheme = prefix.removesuffix("://")
    if scheme.lower() not in schemes:
        raise invalid(f"its scheme is {scheme!r}, not {' or '.join(s + '://' for s in schemes)}")
    try:
        parts = url_without_credentials(url, scheme)
        port = parts.port
    except ValueError:
        raise invalid("its port is not a number from 0 to 65535") from None
    if not parts.hostname:
        raise invalid("it has no host")
    if port is None and parts.netloc.endswith(":"):
        raise invalid("its port is empty")


def check_nats_user_part(url: str) -> None:
    """ValueError if the user part of a NATS server URL holds "/", "?" or "#".

    nats-py splits a server URL with urllib, which ends the host at the first of them: the user
    part would be read as host and port (and the password sent nowhere). nats-py takes user and
    password as written, without percent-decoding, so %2F is no way out either.
    """
    _, user, _ = split_credentials(url)
    if user is not None and any(c in user for c in "/?#"):
        raise ValueError(
            f"NATS_URL {redact_url(url)!r} has '/', '?' or '#' in its user or password: nats-py would read "
            "the host from there, and it does not percent-decode %2F %3F %23; leave the credentials out of "
            "the URL and set ALIEN_NATS_USER and ALIEN_NATS_PASSWORD"
        )


def metrics_address(value: str) -> tuple[str, int]:
    """ALIEN_METRICS_ADDR as (host, port): `HOST:PORT`, `[IPv6]:PORT`, or a port alone (127.0.0.1)."""
    text = value.strip()
    if text.isdigit():
        host, port_text = "127.0.0.1", text
    else:
        host, colon, port_text = text.rpartition(":")
        if not colon or not port_text.isdigit():
            raise ValueError("must be HOST:PORT, e.g. 127.0.0.1:9464")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if not host or any(c in host for c in "/[]@ "):
            raise ValueError(
                "names no host: use 127.0.0.1:PORT (loopback), or 0.0.0.0:PORT with "
                "ALIEN_METRICS_ALLOW_REMOTE=true for every interface"
            )
    port = int(port_text)
    if port > 65535:
        raise ValueError(f"port {port} is not in 0..65535")
    return host, port


def describe(exc: pydantic.ValidationError, fields: Mapping[str, FieldInfo]) -> str:
    """One line per bad setting, naming the environment variable and what is allowed."""
    lines = []
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else "?"
        info = fields.get(field)
        path = ".".join(str(part) for part in err["loc"])  # e.g. video_config.stream_url
        name = f"{env_names(field, fields[field])[0]} ({path})" if info else field
        message = str(err["msg"]).removeprefix("Value error, ")
        secret = info is not None and "Secret" in repr(info.annotation)
        shown = "" if secret or "input" not in err else f"; got {err['input']!r}"
        if field in URL_FIELDS and isinstance(err.get("input"), str):
            shown = f"; got {redact_url(err['input'])!r}"  # user:password@ never shown
        if field == "video_config":
            shown = ""  # stream URLs may carry credentials, in any shape of wrong input
        if message.startswith((f"{name}:", f"{env_names(field, fields[field])[0]} ")) and field in URL_FIELDS:
            lines.append(message)  # phrased by _check_url, the URL shown without credentials
        elif message.startswith(f"{name}:"):
            lines.append(message)  # already phrased by our own validator
        else:
            lines.append(f"{name}: {message}{shown}")
    return "invalid configuration: " + "; ".join(lines)
