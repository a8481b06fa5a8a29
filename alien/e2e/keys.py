"""End-to-end encryption keys: X25519 key pairs in the NATS NKey "curve" text form.

Public keys start with `X`, seeds with `SX` (NATS's own tooling makes the same keys:
`nk -gen curve -pubout`). The role letter keeps them apart from the operator keys that sign
commands (`O` / `SO`, alien/signing.py) and the user keys NATS logs in with (`U` / `SU`): a
signing seed or a login seed is never taken for an encryption key. The text is base32 of a
prefix, the raw 32-byte key and a CRC-16, so a mistyped key is an error, not another key.
A seed holds the raw X25519 private key; a public key is the key's id on the wire
(docs/encryption.md#keys).
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import nacl.public
import nkeys

from alien.logs import get_logger

logger = get_logger("alien.e2e")

PREFIX_BYTE_CURVE = 23 << 3  # base32 "X"; NATS nkeys' PrefixByteCurve
PUBLIC_PREFIX = "X"
SEED_PREFIX = "SX"
_SEED_HEADER = bytes([nkeys.PREFIX_BYTE_SEED | PREFIX_BYTE_CURVE >> 5, (PREFIX_BYTE_CURVE & 31) << 3])
_ROLES = {"O": "operator (command-signing)", "U": "user (NATS login)", "A": "account", "N": "server", "C": "cluster"}


class E2EKeyError(ValueError):
    """Not a usable encryption key; the message never contains key material."""


@dataclass(frozen=True)
class E2EKeyPair:
    public_key: str
    seed: str = field(repr=False)  # never printed


def generate_keypair() -> E2EKeyPair:
    """A new key pair: public key `X...`, seed `SX...`."""
    private = nacl.public.PrivateKey.generate()
    return E2EKeyPair(encode_public(bytes(private.public_key)), _encode(_SEED_HEADER, bytes(private)))


def encode_public(raw: bytes) -> str:
    """The `X...` text of a raw 32-byte X25519 public key."""
    return _encode(bytes([PREFIX_BYTE_CURVE]), raw)


def private_key(seed: str) -> nacl.public.PrivateKey:
    """The X25519 key of an `SX...` seed; E2EKeyError (without the seed) if it is not one."""
    text = seed.strip()
    raw = _decode(text, 36)
    if raw is None or raw[0] & 0xF8 != nkeys.PREFIX_BYTE_SEED:
        raise E2EKeyError(f"not an encryption seed ({SEED_PREFIX}...); make one with `alien keys generate --e2e`")
    if raw[:2] != _SEED_HEADER:
        role = _ROLES.get(text[1:2], "another kind of")
        raise E2EKeyError(f"an {role} seed, not an encryption seed ({SEED_PREFIX}...)")
    return nacl.public.PrivateKey(raw[2:34])


def public_key_of(seed: str) -> str:
    return encode_public(bytes(private_key(seed).public_key))


def public_key(text: str) -> nacl.public.PublicKey:
    """The X25519 key inside an `X...` public key; E2EKeyError says what is wrong (never quoting a seed)."""
    text = text.strip()
    if text.startswith("S"):
        raise E2EKeyError(f"a seed (S...) was given where a public key ({PUBLIC_PREFIX}...) belongs")
    if not text.startswith(PUBLIC_PREFIX):
        role = _ROLES.get(text[:1])
        what = f"an {role} key" if role else "not a key"
        raise E2EKeyError(f"{_shown(text)} is {what}, not an encryption public key ({PUBLIC_PREFIX}...)")
    raw = _decode(text, 35)
    if raw is None or raw[0] != PREFIX_BYTE_CURVE:
        raise E2EKeyError(f"{_shown(text)} is not an encryption public key (bad length or checksum)")
    return nacl.public.PublicKey(raw[1:33])


def check_public_key(text: str) -> str:
    public_key(text)
    return text.strip()


def short(key: str) -> str:
    """Enough of a public key to recognise it in a message."""
    return key[:12] + "..." if len(key) > 12 else key


def read_seed_file(path: Path, setting: str) -> nacl.public.PrivateKey:
    """The key in a seed file; E2EKeyError names `setting` and the file, never its content.

    A file others may read is used, with a WARNING: the key is only as private as the file.
    """
    try:
        text = path.read_text()
        mode = path.stat().st_mode
    except OSError as exc:
        raise E2EKeyError(f"{setting}: cannot read {path} ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise E2EKeyError(f"{setting}: {path} is not a seed file (not text)") from None
    try:
        key = private_key(text)
    except E2EKeyError as exc:
        raise E2EKeyError(f"{setting}: {path}: {exc}") from None
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning("%s: %s can be read by other users (mode %o); chmod 600 it", setting, path, mode & 0o777)
    return key


def _encode(header: bytes, raw: bytes) -> str:
    body = header + raw
    checksum = nkeys.crc16(bytearray(body)).to_bytes(2, "little")
    return base64.b32encode(body + checksum).decode().rstrip("=")


def _decode(text: str, size: int) -> bytes | None:
    """The bytes before the checksum, if `text` is base32 of `size` bytes with a matching CRC-16."""
    try:
        raw = base64.b32decode(text + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        return None
    if len(raw) != size or nkeys.crc16(bytearray(raw[:-2])) != int.from_bytes(raw[-2:], "little"):
        return None
    return raw[:-2]


def _shown(text: str) -> str:
    return repr(short(text)) if text.isalnum() else "the value"
