"""Firmware manifests: what an operator signed about one firmware file (docs/firmware.md#the-manifest).

A manifest names the firmware (`name`, `version`), pins its bytes (`size`, `sha256`) and says which
entities may install it (`targets`: entity ids and/or server entity types, at least one). It is
signed with the operator key that signs commands (alien/signing.py), over a context line followed
by UTF-8 JSON with sorted keys and no whitespace of every field but `signature`; the context keeps
a manifest signature from ever verifying as a command's, and the reverse. Parsing is strict:
exactly these fields, so nothing unsigned can change what a device does.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from alien.errors import CommandFailure, ConfigError
from alien.mothership.enums import resolve_entity_type
from alien.signing import SignatureError, sign_bytes, utc_now, verify_bytes
from alien.untrusted import quoted

FORMAT = "alien-firmware-manifest/1"
FIRMWARE_COMMAND = "firmware_update"
SIGNING_CONTEXT = b"alien firmware manifest\n"
# A name or version becomes part of an object name and of a file name: no "/", no leading ".".
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
ENTITY_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
MAX_MANIFEST_BYTES = 16 * 1024
# The object info header that holds the signed manifest (docs/firmware.md#the-bucket).
MANIFEST_HEADER = "Alien-Firmware-Manifest"
_FIELDS = frozenset({"format", "name", "version", "size", "sha256", "targets", "created_at", "signature"})
_TARGET_FIELDS = frozenset({"entity_ids", "entity_types"})


class FirmwareError(CommandFailure):
    """A firmware update that cannot go on; `reason` is a stable token (docs/firmware.md#failures)."""


def check_name(value: Any, what: str) -> str:
    """`value` when it can be a firmware name or version, else ValueError naming `what`."""
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise ValueError(
            f"{what} {quoted(value) if isinstance(value, str) else type(value).__name__} must be 1 to 64 letters, "
            "digits, '.', '_' or '-', starting with a letter or digit"
        )
    return value


def object_name(name: str, version: str) -> str:
    """The object holding firmware `name` at `version` in the bucket."""
    return f"{name}/{version}"


@dataclass(frozen=True)
class Targets:
    """Who may install: an entity listed by id, or an entity of a listed server type."""

    entity_ids: tuple[str, ...] = ()
    entity_types: tuple[str, ...] = ()

    def matches(self, entity_id: str | None, entity_type: str) -> bool:
        """`entity_type` as configured (a friendly name or a server enum)."""
        if entity_id is not None and entity_id in self.entity_ids:
            return True
        try:
            own = resolve_entity_type(entity_type)
        except ConfigError:
            return False
        return own in self.entity_types

    def describe(self) -> str:
        parts = [f"entities {', '.join(self.entity_ids)}"] if self.entity_ids else []
        if self.entity_types:
            parts.append(f"entity types {', '.join(self.entity_types)}")
        return " and ".join(parts)


@dataclass(frozen=True)
class Manifest:
    """A manifest whose signature was checked."""

    name: str
    version: str
    size: int
    sha256: str  # lower-case hex
    targets: Targets
    created_at: str
    signer: str  # the operator public key (O...) that signed it


def build(
    name: str, version: str, size: int, sha256: str, entity_ids: Sequence[str], entity_types: Sequence[str]
) -> dict[str, Any]:
    """An unsigned manifest; ValueError names a bad field. Entity types become server enums."""
    check_name(name, "name")
    check_name(version, "version")
    for entity_id in entity_ids:
        if not ENTITY_ID_PATTERN.fullmatch(entity_id):
            raise ValueError(f"entity id {quoted(entity_id)} is not an entity id (letters, digits, '_' or '-')")
    try:
        types = sorted({resolve_entity_type(t) for t in entity_types})
    except ConfigError as exc:
        raise ValueError(str(exc).replace("ENTITY_TYPE (entity_type): ", "")) from None
    if not entity_ids and not types:
        raise ValueError("a manifest names at least one target entity id or entity type")
    document = {
        "format": FORMAT,
        "name": name,
        "version": version,
        "size": size,
        "sha256": sha256,
        "targets": {"entity_ids": sorted(set(entity_ids)), "entity_types": types},
        "created_at": utc_now(),
    }
    _fields(document)  # the same checks a device makes
    return document


def signed_bytes(document: dict[str, Any]) -> bytes:
    unsigned = {k: v for k, v in document.items() if k != "signature"}
    text = json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return SIGNING_CONTEXT + text.encode()


def sign(document: dict[str, Any], seed: str) -> dict[str, Any]:
    """`document` with its signature by the operator `seed` (SigningKeyError: not an operator seed)."""
    return {**document, "signature": sign_bytes(signed_bytes(document), seed)}


def encode(document: dict[str, Any]) -> str:
    """The manifest as it is stored: compact JSON."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def decode(text: Any) -> dict[str, Any]:
    """A stored manifest back to its JSON object; FirmwareError (`bad_manifest`) when it is none."""
    if isinstance(text, list) and len(text) == 1:  # headers are lists of values (NATS header maps)
        text = text[0]
    if not isinstance(text, str) or len(text.encode()) > MAX_MANIFEST_BYTES:
        raise FirmwareError("bad_manifest", f"the manifest is not a JSON text of at most {MAX_MANIFEST_BYTES} bytes")
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise FirmwareError("bad_manifest", f"the manifest is not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise FirmwareError("bad_manifest", "the manifest is not a JSON object")
    return document


def verify(document: dict[str, Any], trusted_keys: Iterable[str]) -> Manifest:
    """The manifest when its fields are well formed and it is signed by a trusted key.

    FirmwareError reasons: `bad_manifest`, `unsigned`, `bad_signature`, `untrusted_key`.
    """
    name, version, size, sha256, targets, created_at = _fields(document)
    try:
        signer = verify_bytes(signed_bytes(document), document.get("signature"), trusted_keys)
    except SignatureError as exc:
        raise FirmwareError(exc.reason, f"manifest of {name} {version}: {exc.detail}") from None
    return Manifest(name, version, size, sha256, targets, created_at, signer)


def signer_of(document: dict[str, Any]) -> tuple[str | None, bool]:
    """(the key a manifest claims to be signed by, whether that signature holds): for listings."""
    signature = document.get("signature")
    key = signature.get("key") if isinstance(signature, dict) else None
    if not isinstance(key, str):
        return None, False
    try:
        _fields(document)
        verify_bytes(signed_bytes(document), signature, [key])
    except (FirmwareError, SignatureError):
        return key, False
    return key, True


def digest_hex(digest: str | None) -> str | None:
    """An object's digest as the object store writes it (`SHA-256=<base64url>`) in lower-case hex; None if not one."""
    if not digest or not digest.upper().startswith("SHA-256="):
        return None
    try:
        raw = base64.b64decode(digest[len("SHA-256=") :], altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 32 else None


def _fields(document: dict[str, Any]) -> tuple[str, str, int, str, Targets, str]:
    def bad(detail: str) -> FirmwareError:
        return FirmwareError("bad_manifest", detail)

    fields = set(document)
    if fields - _FIELDS or not (_FIELDS - {"signature"}) <= fields:
        unknown, missing = sorted(fields - _FIELDS), sorted(_FIELDS - {"signature"} - fields)
        raise bad(f"the manifest's fields are wrong (unknown: {unknown or 'none'}; missing: {missing or 'none'})")
    if document["format"] != FORMAT:
        raise bad(f"unknown manifest format {quoted(str(document['format']))} (this client reads {FORMAT})")
    try:
        name = check_name(document["name"], "name")
        version = check_name(document["version"], "version")
    except ValueError as exc:
        raise bad(str(exc)) from None
    size = document["size"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise bad("size must be a positive whole number of bytes")
    sha256 = document["sha256"]
    if not isinstance(sha256, str) or not SHA256_PATTERN.fullmatch(sha256):
        raise bad("sha256 must be 64 lower-case hex digits")
    if not isinstance(document["created_at"], str):
        raise bad("created_at must be a timestamp")
    return name, version, size, sha256, _targets(document["targets"]), document["created_at"]


def _targets(value: Any) -> Targets:
    if not isinstance(value, dict) or set(value) != _TARGET_FIELDS:
        raise FirmwareError("bad_manifest", 'targets must be {"entity_ids": [...], "entity_types": [...]}')
    lists = []
    for field in sorted(_TARGET_FIELDS):
        items = value[field]
        if not isinstance(items, list) or not all(isinstance(i, str) and ENTITY_ID_PATTERN.fullmatch(i) for i in items):
            raise FirmwareError("bad_manifest", f"targets.{field} must be a list of ids")
        lists.append(tuple(items))
    entity_ids, entity_types = lists
    if not entity_ids and not entity_types:
        raise FirmwareError("bad_manifest", "the manifest targets no entity (no ids, no types)")
    return Targets(entity_ids, entity_types)
