"""Signed commands: Ed25519 over a canonical encoding, with keys in the NATS NKey format.

Keys are NKeys (`nkeys`, PyNaCl underneath; no dependency beyond what NATS auth already needs)
of the **operator** role: public keys start with `O`, seeds with `SO`. The role says who holds
them (the C2 operator who issues commands), and keeps them apart from the `U...` / `SU...` user
keys NATS authentication uses for the device itself: a robot's login seed can never be
configured as a command-signing key by mistake, and the standard tooling makes them
(`nk -gen operator -pubout`, or `alien keys generate`).

The signed part of a command is UTF-8 JSON with sorted keys and no whitespace of every field
of the command except `signature` (type, params or top-level params, command_id, issued_at,
ttl_s / expires_at, ...), with `entity_id` set to the target entity, so a command signed for one
robot is rejected by every other and no field a handler sees can be changed on the way.
Numbers are re-encoded as Python's `json` does (shortest round-trip form), so a signer in
another language should keep params to strings, integers and simple decimals. The command
carries `"signature": {"key": "<public key>", "sig": "<base64url>"}`.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import nacl.exceptions
import nacl.signing
import nkeys

from alien.untrusted import quoted

KEY_ROLE = "operator"
PUBLIC_PREFIX = "O"
SEED_PREFIX = "SO"
_PREFIX_BYTE = nkeys.PREFIX_BYTE_OPERATOR


class SignatureError(Exception):
    """A command whose signature does not pass; `reason` is the stable rejection token."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class SigningKeyError(ValueError):
    """Not a usable command-signing key (the message never contains the key material)."""


@dataclass(frozen=True)
class CommandKeyPair:
    public_key: str
    seed: str = field(repr=False)  # never printed


def generate_keypair() -> CommandKeyPair:
    """A new operator key pair: public key `O...`, seed `SO...`."""
    signing_key = nacl.signing.SigningKey.generate()
    seed = nkeys.encode_seed(bytes(signing_key), _PREFIX_BYTE).decode()
    return CommandKeyPair(public_key_of(seed), seed)


def public_key_of(seed: str) -> str:
    """The public key of an operator seed; SigningKeyError (without the seed) if it is not one."""
    keys = _keys(seed)
    return str(keys.public_key.decode())


def _keys(seed: str) -> Any:
    try:
        prefix, _ = nkeys.decode_seed(seed.strip().encode())
        keys = nkeys.from_seed(seed.strip().encode())
    except Exception:  # noqa: BLE001 - nkeys raises several kinds; none may echo the seed
        raise SigningKeyError("not an NKey seed") from None
    if prefix != _PREFIX_BYTE:
        raise SigningKeyError(f"not an {KEY_ROLE} seed ({SEED_PREFIX}...); make one with `alien keys generate`")
    return keys


def _shown(key: str) -> str:
    """Enough of a public key to recognise it; of anything else (a seed pasted by mistake?) nothing."""
    if key.startswith("S"):
        return "a seed (S...)"
    return quoted(key[:12] + "...") if key.startswith(PUBLIC_PREFIX) else "a value"


def verify_key(public_key: str) -> nacl.signing.VerifyKey:
    """The Ed25519 key inside an operator public key (`O...`); SigningKeyError says what is wrong."""
    text = public_key.strip()
    if not text.startswith(PUBLIC_PREFIX):
        raise SigningKeyError(f"{_shown(text)} is not an {KEY_ROLE} public key ({PUBLIC_PREFIX}...)")
    try:
        raw = base64.b32decode(text + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        raise SigningKeyError(f"{_shown(text)} is not base32") from None
    if len(raw) != 35 or raw[0] != _PREFIX_BYTE:
        raise SigningKeyError(f"{_shown(text)} is not an {KEY_ROLE} public key")
    if nkeys.crc16(bytearray(raw[:33])) != int.from_bytes(raw[33:], "little"):
        raise SigningKeyError(f"{_shown(text)} has a bad checksum")
    return nacl.signing.VerifyKey(raw[1:33])


def check_public_key(public_key: str) -> str:
    verify_key(public_key)
    return public_key.strip()


def canonical_bytes(command: dict[str, Any], entity_id: str) -> bytes:
    """The bytes a signature covers: every field of the command but `signature`, for `entity_id`.

    Everything is signed, not a chosen subset: a handler receives the whole command, so a field
    left out (a top-level param next to `params`, a `command_type` next to `type`) could be
    changed by anyone on the way.
    """
    document = {k: v for k, v in command.items() if k != "signature"}
    document["entity_id"] = entity_id
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sign_command(command: dict[str, Any], seed: str, entity_id: str) -> dict[str, Any]:
    """A copy of `command` for `entity_id`, signed with `seed`.

    Fills in what a signed command must carry when missing: `command_id` (a new UUID) and
    `issued_at` (now). `entity_id` is written into the command, so a receiver can tell a
    command meant for another entity (`wrong_entity`) from a tampered one (`bad_signature`).
    """
    keys = _keys(seed)
    signed = {k: v for k, v in command.items() if k != "signature"}
    signed.setdefault("command_id", uuid.uuid4().hex)
    signed.setdefault("issued_at", utc_now())
    signed["entity_id"] = entity_id
    signature = keys.sign(canonical_bytes(signed, entity_id))
    sig = base64.urlsafe_b64encode(signature).rstrip(b"=").decode()
    signed["signature"] = {"key": str(keys.public_key.decode()), "sig": sig}
    return signed


def verify(command: dict[str, Any], entity_id: str, trusted_keys: Iterable[str]) -> str:
    """Check the signature of `command` for the receiving `entity_id`; returns the signer's key.

    SignatureError reasons: `unsigned` (no signature), `bad_signature` (malformed, or not over
    this content), `untrusted_key` (valid form, but the key is not trusted), `wrong_entity`
    (validly signed, for another entity). Details never contain signature bytes or seeds.
    """
    signature = command.get("signature")
    if signature is None:
        raise SignatureError("unsigned", "the command carries no signature")
    if not isinstance(signature, dict) or not isinstance(signature.get("key"), str):
        raise SignatureError("bad_signature", 'signature must be {"key": "<public key>", "sig": "<base64url>"}')
    key_text: str = signature["key"]
    sig_text = signature.get("sig")
    raw_sig = _signature_bytes(sig_text)
    if raw_sig is None:
        raise SignatureError("bad_signature", "signature.sig must be the base64url of a 64-byte Ed25519 signature")
    trusted = {k.strip() for k in trusted_keys}
    shown = _shown(key_text)
    if key_text not in trusted:
        configured = "no key is trusted (ALIEN_COMMAND_TRUSTED_KEYS)" if not trusted else "it is not a trusted key"
        raise SignatureError("untrusted_key", f"signed by {shown}: {configured}")
    for name in ("command_id", "issued_at"):
        if not isinstance(command.get(name), str):
            raise SignatureError("bad_signature", f"a signed command must carry {name}")
    claimed = command.get("entity_id", entity_id)
    if not isinstance(claimed, str):
        raise SignatureError("bad_signature", "entity_id must be a string")
    try:
        verify_key(key_text).verify(canonical_bytes(command, claimed), raw_sig)
    except (SigningKeyError, ValueError, TypeError, nacl.exceptions.BadSignatureError):
        raise SignatureError("bad_signature", f"the signature by {shown} does not match the command") from None
    if claimed != entity_id:
        raise SignatureError("wrong_entity", f"the command was signed for entity {quoted(claimed)}, not {entity_id!r}")
    return key_text


def _signature_bytes(sig_text: Any) -> bytes | None:
    """The 64 signature bytes, or None unless `sig_text` is exactly their base64url (padding optional).

    Strict: the default decoder skips characters outside the alphabet, so `sig!!` would pass as
    `sig`; and of the encodings that decode alike only the canonical one is taken.
    """
    if not isinstance(sig_text, str) or len(sig_text) not in (86, 88):
        return None
    try:
        raw = base64.b64decode(sig_text.removesuffix("==") + "==", altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 64 or base64.urlsafe_b64encode(raw).decode().rstrip("=") != sig_text.removesuffix("=="):
        return None
    return raw


# Types that need a trusted signature whatever ALIEN_COMMAND_CRITICAL_TYPES says: a firmware
# update installs code on the device (docs/firmware.md).
ALWAYS_SIGNED_TYPES = frozenset({"firmware_update"})


@dataclass(frozen=True)
class SignaturePolicy:
    """Which command types need a valid signature from a trusted key, and their default life."""

    trusted_keys: frozenset[str] = frozenset()
    critical_types: frozenset[str] = frozenset()
    require_all: bool = False
    max_age_s: float = 30.0

    def requires_signature(self, command_type: str) -> bool:
        # case-folded: "ESTOP" must not slip past a critical "estop" to a fallback handler
        folded = command_type.casefold()
        return (
            self.require_all or folded in ALWAYS_SIGNED_TYPES or folded in {t.casefold() for t in self.critical_types}
        )


def sign_bytes(data: bytes, seed: str) -> dict[str, str]:
    """A detached signature of `data` with an operator seed: `{"key": "<public key>", "sig": "<base64url>"}`.

    For documents other than commands (firmware manifests): the caller puts a context of its own
    in front of `data`, so that no signature made for one kind of document verifies as another.
    """
    keys = _keys(seed)
    sig = base64.urlsafe_b64encode(keys.sign(data)).rstrip(b"=").decode()
    return {"key": str(keys.public_key.decode()), "sig": sig}


def verify_bytes(data: bytes, signature: Any, trusted_keys: Iterable[str]) -> str:
    """The signer's public key when `signature` (as sign_bytes makes it) signs `data` with a trusted key.

    SignatureError reasons: `unsigned`, `bad_signature` (malformed, or not over `data`),
    `untrusted_key`. Details never contain signature bytes or seeds.
    """
    if signature is None:
        raise SignatureError("unsigned", "it carries no signature")
    if not isinstance(signature, dict) or not isinstance(signature.get("key"), str):
        raise SignatureError("bad_signature", 'signature must be {"key": "<public key>", "sig": "<base64url>"}')
    key_text: str = signature["key"]
    raw_sig = _signature_bytes(signature.get("sig"))
    if raw_sig is None:
        raise SignatureError("bad_signature", "signature.sig must be the base64url of a 64-byte Ed25519 signature")
    trusted = {k.strip() for k in trusted_keys}
    shown = _shown(key_text)
    if key_text not in trusted:
        configured = "no key is trusted (ALIEN_COMMAND_TRUSTED_KEYS)" if not trusted else "it is not a trusted key"
        raise SignatureError("untrusted_key", f"signed by {shown}: {configured}")
    try:
        verify_key(key_text).verify(data, raw_sig)
    except (SigningKeyError, ValueError, TypeError, nacl.exceptions.BadSignatureError):
        raise SignatureError("bad_signature", f"the signature by {shown} does not match what it signs") from None
    return key_text
