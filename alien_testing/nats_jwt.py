"""NATS decentralised auth for tests: operator, account and user NKeys, JWTs and ``.creds`` files.

What ``nsc`` does, reduced to what a test needs (NATS JWT v2): an operator signs a system account
and an application account (JetStream enabled), the application account signs users (optionally
with publish/subscribe permissions), and :meth:`OperatorTrust.server_config` is the nats-server
config for operator mode with the accounts preloaded (``resolver: MEMORY``). Pass it to
:class:`~alien_testing.nats_server.NatsServer` as ``extra_config``; users connect with the file
:meth:`OperatorTrust.write_user_creds` writes.

Seeds and user JWTs are secrets: never log them (reprs here show public keys only).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "NKey",
    "OperatorTrust",
    "account_jwt",
    "creds_text",
    "encode_jwt",
    "new_nkey",
    "operator_jwt",
    "user_jwt",
    "write_creds",
]

Role = Literal["operator", "account", "user"]

JWT_HEADER = {"typ": "JWT", "alg": "ed25519-nkey"}
_UNLIMITED = -1
_NATS_LIMITS = dict.fromkeys(("subs", "data", "payload"), _UNLIMITED)
_ACCOUNT_LIMITS = {**dict.fromkeys(("imports", "exports", "conn", "leaf"), _UNLIMITED), "wildcards": True}
# JetStream is on for an account whose memory or disk storage limit is not 0.
_JETSTREAM_LIMITS = dict.fromkeys(("mem_storage", "disk_storage", "streams", "consumer"), _UNLIMITED)


@dataclass(frozen=True)
class NKey:
    """An NKey pair: ``seed`` (secret, ``S?...``) and ``public`` key (``O...``, ``A...`` or ``U...``)."""

    seed: str = field(repr=False)
    public: str

    def sign(self, data: bytes) -> bytes:
        """The raw ed25519 signature of `data`."""
        import nkeys  # lazily: only JWT tests need it

        pair = nkeys.from_seed(bytearray(self.seed.encode()))
        try:
            signature: bytes = pair.sign(data)
        finally:
            pair.wipe()
        return signature


def new_nkey(role: Role) -> NKey:
    """A fresh random NKey for an operator, an account or a user."""
    import nkeys

    prefix = {
        "operator": nkeys.PREFIX_BYTE_OPERATOR,
        "account": nkeys.PREFIX_BYTE_ACCOUNT,
        "user": nkeys.PREFIX_BYTE_USER,
    }[role]
    seed: bytes = nkeys.encode_seed(os.urandom(32), prefix)
    pair = nkeys.from_seed(bytearray(seed))
    public = bytes(pair.public_key).decode()
    pair.wipe()
    return NKey(seed=seed.decode(), public=public)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def encode_jwt(subject: str, name: str, nats: dict[str, Any], issuer: NKey, *, expires: int | None = None) -> str:
    """A NATS v2 JWT about `subject`, issued and signed by `issuer`.

    ``jti`` is the base32 SHA-512/256 of the standard claims without it, as the Go library makes it.
    """
    claims: dict[str, Any] = {}
    if expires is not None:
        claims["exp"] = expires
    claims.update(iat=int(time.time()), iss=issuer.public, name=name, sub=subject)
    jti = base64.b32encode(hashlib.new("sha512_256", _json(claims)).digest()).rstrip(b"=").decode()
    claims = {"jti": jti, **claims, "nats": {**nats, "version": 2}}
    signed = f"{_b64url(_json(JWT_HEADER))}.{_b64url(_json(claims))}"
    return f"{signed}.{_b64url(issuer.sign(signed.encode()))}"


def operator_jwt(operator: NKey, *, name: str = "alien-test-operator", system_account: str | None = None) -> str:
    """The operator's self-signed JWT, naming its system account."""
    nats: dict[str, Any] = {"type": "operator"}
    if system_account is not None:
        nats["system_account"] = system_account
    return encode_jwt(operator.public, name, nats, operator)


def account_jwt(account: NKey, operator: NKey, *, name: str, jetstream: bool = True) -> str:
    """An account JWT signed by `operator`: no connection limits, JetStream unlimited when `jetstream`."""
    limits: dict[str, Any] = {**_NATS_LIMITS, **_ACCOUNT_LIMITS}
    if jetstream:
        limits.update(_JETSTREAM_LIMITS)
    nats = {"limits": limits, "default_permissions": {"pub": {}, "sub": {}}, "type": "account"}
    return encode_jwt(account.public, name, nats, operator)


def _permission(allow: Sequence[str], deny: Sequence[str]) -> dict[str, list[str]]:
    permission: dict[str, list[str]] = {}
    if allow:
        permission["allow"] = list(allow)
    if deny:
        permission["deny"] = list(deny)
    return permission


def user_jwt(
    user: NKey,
    account: NKey,
    *,
    name: str = "alien",
    pub_allow: Sequence[str] = (),
    pub_deny: Sequence[str] = (),
    sub_allow: Sequence[str] = (),
    sub_deny: Sequence[str] = (),
    expires: int | None = None,
) -> str:
    """A user JWT signed by `account`; empty allow lists mean everything not denied."""
    nats: dict[str, Any] = {
        "pub": _permission(pub_allow, pub_deny),
        "sub": _permission(sub_allow, sub_deny),
        **_NATS_LIMITS,
        "type": "user",
    }
    return encode_jwt(user.public, name, nats, account, expires=expires)


def creds_text(user_jwt: str, user_seed: str) -> str:
    """A ``.creds`` file's text in the layout nsc writes and the NATS clients parse."""
    return (
        "-----BEGIN NATS USER JWT-----\n"
        f"{user_jwt}\n"
        "------END NATS USER JWT------\n\n"
        "************************* IMPORTANT *************************\n"
        "NKEY Seed printed below can be used to sign and prove identity.\n"
        "NKEYs are sensitive and should be treated as secrets.\n\n"
        "-----BEGIN USER NKEY SEED-----\n"
        f"{user_seed}\n"
        "------END USER NKEY SEED------\n\n"
        "*************************************************************\n"
    )


def write_creds(path: Path | str, user_jwt: str, user_seed: str) -> Path:
    """Write a ``.creds`` file readable by its owner only (created 0600, never world-readable)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(creds_text(user_jwt, user_seed))
    out.chmod(0o600)  # an existing file keeps its old mode through os.open
    return out


class OperatorTrust:
    """An operator, its system account and one JetStream-enabled application account."""

    def __init__(self, *, account_name: str = "ALIEN", operator_name: str = "alien-test-operator") -> None:
        self.operator = new_nkey("operator")
        self.system_account = new_nkey("account")
        self.account = new_nkey("account")
        self.operator_jwt = operator_jwt(self.operator, name=operator_name, system_account=self.system_account.public)
        self.system_account_jwt = account_jwt(self.system_account, self.operator, name="SYS", jetstream=False)
        self.account_jwt = account_jwt(self.account, self.operator, name=account_name)

    def server_config(self) -> str:
        """nats-server config lines for operator mode trusting this operator, accounts preloaded."""
        preload = (
            (self.system_account.public, self.system_account_jwt),
            (self.account.public, self.account_jwt),
        )
        return "\n".join(
            [
                f"operator: {json.dumps(self.operator_jwt)}",
                f"system_account: {json.dumps(self.system_account.public)}",
                "resolver: MEMORY",
                "resolver_preload: {",
                *(f"  {public}: {json.dumps(token)}" for public, token in preload),
                "}",
            ]
        )

    def user(self, *, name: str = "alien", **permissions: Any) -> tuple[NKey, str]:
        """A new user of the application account: (its NKey, its JWT); see :func:`user_jwt`."""
        key = new_nkey("user")
        return key, user_jwt(key, self.account, name=name, **permissions)

    def write_user_creds(self, path: Path | str, *, name: str = "alien", **permissions: Any) -> Path:
        """A ``.creds`` file (mode 0600) for a new user of the application account."""
        key, token = self.user(name=name, **permissions)
        return write_creds(path, token, key.seed)

    def __repr__(self) -> str:
        return f"OperatorTrust(operator={self.operator.public!r}, account={self.account.public!r})"
