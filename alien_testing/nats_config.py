"""The config file of a test nats-server: listeners, JetStream, authorization and TLS blocks.

Pure text rendering; :class:`~alien_testing.nats_server.NatsServer` writes the result next to
its store and starts the binary on it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alien_testing.nats_binary import LOOPBACK
from alien_testing.nats_tls import TlsFiles

__all__ = ["auth_config", "cluster_config", "config_text"]

# (public key, checked permissions or None) per NKey user
NkeyEntry = tuple[str, dict[str, Any] | None]


def config_text(
    *,
    port: int,
    monitor_port: int,
    store_dir: Path,
    jetstream_domain: str | None,
    auth: Sequence[str],
    tls: TlsFiles | None,
    extra_config: str,
) -> str:
    """The whole config file; ``auth`` is the :func:`auth_config` block (may be empty)."""
    lines = [
        f"listen: {_conf_str(f'{LOOPBACK}:{port}')}",
        f"http: {_conf_str(f'{LOOPBACK}:{monitor_port}')}",
        f"server_name: {_conf_str(server_name(port))}",
        "jetstream {",
        f"  store_dir: {_conf_str(store_dir)}",
    ]
    if jetstream_domain:
        lines.append(f"  domain: {_conf_str(jetstream_domain)}")
    lines.append("}")
    lines.extend(auth)
    if tls is not None:
        lines += [
            "tls {",
            f"  cert_file: {_conf_str(tls.cert_file)}",
            f"  key_file: {_conf_str(tls.key_file)}",
            f"  ca_file: {_conf_str(tls.ca_file)}",
            f"  verify: {'true' if tls.verify_clients else 'false'}",
            "  timeout: 2",
            "}",
        ]
    if extra_config:
        lines.append(extra_config)
    return "\n".join(lines) + "\n"


def server_name(port: int) -> str:
    """The name a test server on client port `port` has in its cluster (and in the JetStream peer list)."""
    return f"alien-test-{port}"


def cluster_config(name: str, port: int, routes: Sequence[int]) -> str:
    """The ``cluster`` block of one node: routes on loopback only, to every other node's route port."""
    urls = ", ".join(_conf_str(f"nats-route://{LOOPBACK}:{route}") for route in routes)
    return "\n".join(
        [
            "cluster {",
            f"  name: {_conf_str(name)}",
            f"  listen: {_conf_str(f'{LOOPBACK}:{port}')}",
            f"  routes: [{urls}]",
            "}",
        ]
    )


def auth_config(
    *,
    token: str | None,
    user: str | None,
    password: str | None,
    user_permissions: dict[str, Any] | None,
    nkey_users: Sequence[NkeyEntry],
) -> list[str]:
    """The ``authorization`` block: a token, or users (user/password and NKeys); [] for none."""
    if token is not None:
        return ["authorization {", f"  token: {_conf_str(token)}", "}"]
    users: list[str] = []
    if user is not None and password is not None:
        entry = f"user: {_conf_str(user)}, password: {_conf_str(password)}"
        users.append(_user_entry(entry, user_permissions))
    users.extend(_user_entry(f"nkey: {_conf_str(public)}", perms) for public, perms in nkey_users)
    if not users:
        return []
    return ["authorization {", "  users: [", *(f"    {u}" for u in users), "  ]", "}"]


def _conf_str(value: str | Path) -> str:
    """A double-quoted NATS config string (the format accepts JSON string escapes)."""
    return json.dumps(str(value))


def _user_entry(identity: str, permissions: dict[str, Any] | None) -> str:
    """One ``authorization.users`` entry; the config format reads JSON for the permissions block."""
    if permissions is None:
        return f"{{{identity}}}"
    return f"{{{identity}, permissions: {json.dumps(permissions)}}}"
