"""Who may connect to a test nats-server: NKey users and the NATS permissions of a user.

:class:`~alien_testing.nats_server.NatsServer` takes these; alien_testing/nats_config.py writes
them into the server's ``authorization`` block. Decentralised (JWT) auth is alien_testing/nats_jwt.py.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["NkeyUser", "Permissions", "check_permissions", "generate_nkey_user", "maybe_check"]

# nats-server authorization permissions, as its config file spells them:
# {"publish": ["a.>"] | {"allow": [...], "deny": [...]}, "subscribe": ..., "allow_responses": True | {...}}
Permissions = Mapping[str, Any]
_PERMISSION_KEYS = frozenset({"publish", "subscribe", "allow_responses"})


@dataclass(frozen=True)
class NkeyUser:
    """An NKey user (public key ``U...``) with optional NATS permissions (None: may do anything)."""

    public_key: str
    permissions: Permissions | None = None


def check_permissions(permissions: Permissions) -> dict[str, Any]:
    """Validate a permissions mapping (see :data:`Permissions`) and return it as plain JSON data."""
    unknown = set(permissions) - _PERMISSION_KEYS
    if unknown:
        raise ValueError(f"unknown permission keys {sorted(unknown)}; use {sorted(_PERMISSION_KEYS)}")
    out: dict[str, Any] = {}
    for direction in ("publish", "subscribe"):
        if direction not in permissions:
            continue
        value = permissions[direction]
        if isinstance(value, Mapping):
            extra = set(value) - {"allow", "deny"}
            if extra:
                raise ValueError(f"{direction}: unknown keys {sorted(extra)}; use allow/deny")
            out[direction] = {k: _subjects(f"{direction}.{k}", v) for k, v in value.items()}
        else:
            out[direction] = {"allow": _subjects(direction, value)}
    if "allow_responses" in permissions:
        responses = permissions["allow_responses"]
        if isinstance(responses, Mapping):
            extra = set(responses) - {"max", "expires"}
            if extra:
                raise ValueError(f"allow_responses: unknown keys {sorted(extra)}; use max/expires")
            out["allow_responses"] = dict(responses)
        elif isinstance(responses, bool):
            out["allow_responses"] = responses
        else:
            raise ValueError("allow_responses is a bool or {max, expires}")
    return out


def _subjects(where: str, value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence) or not all(isinstance(s, str) and s for s in value):
        raise ValueError(f"{where} must be a list of subjects")
    return list(value)


def maybe_check(permissions: Permissions | None) -> dict[str, Any] | None:
    """:func:`check_permissions`, passing None (no restrictions) through."""
    return None if permissions is None else check_permissions(permissions)


def generate_nkey_user() -> tuple[str, str]:
    """A fresh NKey user: (seed ``SU...``, public key ``U...``). The seed is a secret: never log it."""
    import nkeys  # lazily: only NKey tests need it

    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    public = nkeys.from_seed(bytearray(seed)).public_key
    return seed.decode(), bytes(public).decode()
