"""Sealed values: a JSON value encrypted to the public keys of its readers (docs/encryption.md#format).

    {"alg": "x25519-sealedbox+xchacha20poly1305",
     "to": [{"kid": "<reader's public key X...>", "ek": "<base64url: the content key, sealed>"}, ...],
     "nonce": "<base64url: 24 bytes>", "ct": "<base64url: ciphertext and tag>"}

Two libsodium constructions, as libsodium defines them, and nothing of our own: the value's
compact UTF-8 JSON is encrypted with XChaCha20-Poly1305 (IETF) under a random 32-byte content
key, with the context (what the value is, of which entity) as associated data; the content key is
sealed to each reader with `crypto_box_seal` (X25519, XSalsa20-Poly1305, an ephemeral key per
seal). A `Sealer` keeps one content key, and its seals, for a bounded number of values and time
(`KEY_USES`, `KEY_LIFE_S`): a seal costs two X25519 operations, the encryption of a value a few
microseconds (docs/performance.md). Nonces are random (192 bits: no counter to keep). A value
moved to another field, entity or command no longer authenticates, because its context differs.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.utils

from alien.e2e.keys import E2EKeyError, encode_public, public_key, short
from alien.untrusted import quoted
from alien.wire import dumps

ALGORITHM = "x25519-sealedbox+xchacha20poly1305"
FOR_ANOTHER_KEY = "encrypted for another key"  # how a value sealed for other readers only is described
CONTEXT_VERSION = "alien-e2e/1"
KEY_USES = 10_000  # values encrypted under one content key at most
KEY_LIFE_S = 300.0  # and for this long at most
MAX_RECIPIENTS = 64  # a sealed value naming more is malformed (bounded work for a reader)
MAX_DEPTH = 32  # of the decrypted JSON (alien/commands/envelope.py's limit)
_KEY_BYTES = 32
_NONCE_BYTES = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES  # 24
_SEALED_KEY_BYTES = _KEY_BYTES + nacl.bindings.crypto_box_SEALBYTES  # 80
_TAG_BYTES = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_ABYTES  # 16
_FIELDS = frozenset({"alg", "to", "nonce", "ct"})
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_decrypt = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt

Kind = Literal["telemetry", "event", "params"]


class E2EError(Exception):
    """A sealed value that cannot be opened; `reason` is a stable token, `detail` says why.

    Reasons: `malformed`, `unsupported_algorithm`, `not_for_us` (sealed for other keys only),
    `authentication_failed` (a wrong key, or a changed or moved value), `bad_plaintext`.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def context(kind: Kind, entity_id: str, name: str) -> bytes:
    """The associated data: what the value is (a telemetry key, an event type, a command's params) of which entity.

    `entity_id` is a subject token and `kind` fixed, so only `name` (the last line) may hold anything.
    """
    return f"{CONTEXT_VERSION}\n{kind}\n{entity_id}\n{name}".encode()


def is_sealed(value: Any) -> bool:
    """Whether `value` has the sealed shape (an object with `alg` and `ct`); opening it says whether it is good."""
    return isinstance(value, dict) and isinstance(value.get("alg"), str) and "ct" in value


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class Sealer:
    """Seals values to a fixed set of readers, one content key at a time (a new one every KEY_USES / KEY_LIFE_S)."""

    def __init__(
        self,
        recipients: Iterable[str],
        *,
        key_uses: int = KEY_USES,
        key_life_s: float = KEY_LIFE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`recipients`: public keys `X...` (E2EKeyError names a bad one)."""
        self.recipients = tuple(dict.fromkeys(key.strip() for key in recipients))
        if not self.recipients:
            raise E2EKeyError("no reader's public key to encrypt to")
        self._boxes = [(kid, nacl.public.SealedBox(public_key(kid))) for kid in self.recipients]
        self.key_uses, self.key_life_s, self._clock = key_uses, key_life_s, clock
        self._key = b""
        self._to: list[dict[str, str]] = []
        self._uses = 0
        self._since = 0.0
        self.keys_made = 0

    def seal(self, value: Any, aad: bytes) -> dict[str, Any]:
        """The sealed form of `value` (any JSON value; TypeError if it is not one)."""
        plaintext = dumps(value)
        now = self._clock()
        if self._uses >= self.key_uses or not self._key or now - self._since >= self.key_life_s:
            self._new_key(now)
        self._uses += 1
        nonce = nacl.utils.random(_NONCE_BYTES)
        ciphertext = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, aad, nonce, self._key)
        return {"alg": ALGORITHM, "to": list(self._to), "nonce": b64(nonce), "ct": b64(ciphertext)}

    def _new_key(self, now: float) -> None:
        self._key = nacl.utils.random(_KEY_BYTES)
        self._to = [{"kid": kid, "ek": b64(box.encrypt(self._key))} for kid, box in self._boxes]
        self._uses, self._since = 0, now
        self.keys_made += 1


class Opener:
    """Opens sealed values with one or more private keys (several: a reader's old and new keys)."""

    def __init__(self, keys: Sequence[nacl.public.PrivateKey], *, cache: int = 256) -> None:
        if not keys:
            raise E2EKeyError("no private key to decrypt with")
        self._keys = {encode_public(bytes(key.public_key)): nacl.public.SealedBox(key) for key in keys}
        self._content_keys: OrderedDict[bytes, bytes] = OrderedDict()  # sealed content key -> content key
        self._cache = cache

    @property
    def key_ids(self) -> list[str]:
        """The public keys (ids) this opener decrypts for."""
        return list(self._keys)

    def open(self, value: Any, aad: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
        """The JSON value sealed in `value` for one of our keys, under the context `aad`; E2EError says why not."""
        if not isinstance(value, Mapping):
            raise E2EError("malformed", f"a sealed value is a JSON object, not {type(value).__name__}")
        alg = value.get("alg")
        if alg != ALGORITHM:
            raise E2EError("unsupported_algorithm", f"algorithm {quoted(alg)} is not {ALGORITHM}")
        unknown = sorted(set(value) - _FIELDS)
        if unknown:
            raise E2EError("malformed", f"unknown fields {', '.join(map(quoted, unknown[:4]))}")
        entries = _entries(value.get("to"))
        ours = [(kid, ek) for kid, ek in entries if kid in self._keys]
        if not ours:
            theirs = ", ".join(short(kid) for kid, _ in entries[:4]) + (", ..." if len(entries) > 4 else "")
            mine = ", ".join(short(kid) for kid in self._keys)
            raise E2EError("not_for_us", f"{FOR_ANOTHER_KEY} ({theirs}), not for {mine}")
        nonce = _unb64(value.get("nonce"), "nonce", _NONCE_BYTES)
        ciphertext = _unb64(value.get("ct"), "ct")
        if len(ciphertext) < _TAG_BYTES:
            raise E2EError("malformed", f"ct is shorter than the {_TAG_BYTES}-byte tag")
        failure: E2EError | None = None
        for kid, sealed_key in ours:  # one of ours, normally; after a key rotation perhaps two
            try:
                content_key = self._content_key(kid, sealed_key)
            except E2EError as exc:
                failure = failure or exc
                continue
            try:
                plaintext = _decrypt(ciphertext, aad, nonce, content_key)
            except nacl.exceptions.CryptoError:
                raise E2EError(
                    "authentication_failed",
                    "the ciphertext does not authenticate: it was changed, or it belongs to another field, "
                    "entity or command",
                ) from None
            return _json(plaintext, max_depth)
        assert failure is not None
        raise failure

    def _content_key(self, kid: str, sealed_key: bytes) -> bytes:
        known = self._content_keys.get(sealed_key)
        if known is not None:
            self._content_keys.move_to_end(sealed_key)
            return known
        try:
            content_key = self._keys[kid].decrypt(sealed_key)
        except nacl.exceptions.CryptoError:
            raise E2EError(
                "authentication_failed",
                f"the content key sealed for {short(kid)} does not open with that key (a wrong key, or a changed "
                "value)",
            ) from None
        if len(content_key) != _KEY_BYTES:
            raise E2EError("malformed", f"the content key is {len(content_key)} bytes, not {_KEY_BYTES}")
        self._content_keys[sealed_key] = content_key
        while len(self._content_keys) > self._cache:
            self._content_keys.popitem(last=False)
        return content_key


def _entries(to: Any) -> list[tuple[str, bytes]]:
    if not isinstance(to, list) or not 0 < len(to) <= MAX_RECIPIENTS:
        raise E2EError("malformed", f'\'to\' must list 1 to {MAX_RECIPIENTS} readers as {{"kid", "ek"}}')
    entries = []
    for entry in to:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            raise E2EError("malformed", 'each entry of \'to\' is {"kid": "X...", "ek": "<base64url>"}')
        entries.append((entry["kid"], _unb64(entry.get("ek"), "ek", _SEALED_KEY_BYTES)))
    return entries


def _unb64(text: Any, name: str, size: int | None = None) -> bytes:
    """Strict unpadded base64url (the lenient decoder skips stray characters)."""
    if not isinstance(text, str) or not _BASE64URL.fullmatch(text) or len(text) % 4 == 1:
        raise E2EError("malformed", f"{name} is not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise E2EError("malformed", f"{name} is not base64url") from None
    if b64(data) != text:
        raise E2EError("malformed", f"{name} is not canonical base64url")
    if size is not None and len(data) != size:
        raise E2EError("malformed", f"{name} is {len(data)} bytes, not {size}")
    return data


def _json(plaintext: bytes, max_depth: int) -> Any:
    try:
        value = json.loads(plaintext)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise E2EError("bad_plaintext", "the decrypted value is not JSON") from None
    deepest, stack = 0, [(value, 1)]
    while stack:  # iterative: a hostile value must not exhaust the stack here
        item, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > max_depth:
            raise E2EError("bad_plaintext", f"the decrypted value nests deeper than {max_depth}")
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, level + 1) for child in children)
    return value
