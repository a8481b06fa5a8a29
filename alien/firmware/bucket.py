"""The operator's side of the firmware bucket: uploading a file with its signed manifest, listing what is there.

Uses nats-py's object store (docs/firmware.md#the-bucket). The bucket is created when missing (file
storage, no age limit); an upload streams the file in chunks (nats-py reads it into one 128 KiB
buffer at a time), and the object's info carries the signed manifest as the header
`Alien-Firmware-Manifest`: it is written after the last chunk, so a manifest is never visible
before all of its file is. A name and version already in the bucket is never replaced.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nats.js import JetStreamContext, api
from nats.js.errors import BucketNotFoundError, NotFoundError, ObjectNotFoundError
from nats.js.object_store import ObjectStore

from alien.firmware import manifest as manifests
from alien.firmware.manifest import MANIFEST_HEADER, FirmwareError, digest_hex

DESCRIPTION = "Alien firmware: files with signed manifests (alien firmware upload)"


@dataclass(frozen=True)
class Listed:
    """One object of the bucket, with what its manifest says (None when it has none)."""

    object_name: str
    size: int
    mtime: str | None
    manifest: dict[str, Any] | None
    signer: str | None
    signature_ok: bool


def file_facts(path: Path) -> tuple[int, str]:
    """(size, sha256 hex) of a file, read in blocks."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while block := handle.read(1024 * 1024):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


async def open_bucket(js: JetStreamContext, bucket: str, *, create: bool) -> ObjectStore | None:
    """The bucket; created when missing and `create`, else None."""
    try:
        return await js.object_store(bucket)
    except (BucketNotFoundError, NotFoundError):
        if not create:
            return None
    config = api.ObjectStoreConfig(bucket=bucket, description=DESCRIPTION, storage=api.StorageType.FILE)
    return await js.create_object_store(bucket, config=config)


async def upload(store: ObjectStore, path: Path, document: dict[str, Any]) -> api.ObjectInfo:
    """Put `path` as the object of the signed manifest `document`; FirmwareError when it cannot be.

    The object's own digest is compared with the manifest's afterwards: a file that changed while
    it was read is deleted again rather than left behind under a manifest it does not match.
    """
    name = manifests.object_name(document["name"], document["version"])
    try:
        existing = await store.get_info(name)
    except ObjectNotFoundError:
        existing = None
    if existing is not None:
        raise FirmwareError(
            "exists",
            f"{document['name']} {document['version']} is already in the bucket and is never replaced; "
            "upload it with a new --version",
        )
    meta = api.ObjectMeta(
        name=name,
        description=f"{document['name']} {document['version']}",
        headers={MANIFEST_HEADER: [manifests.encode(document)]},
    )
    with open(path, "rb") as handle:
        info = await store.put(name, handle, meta=meta)
    if info.size != document["size"] or digest_hex(info.digest) != document["sha256"]:
        await store.delete(name)
        raise FirmwareError("changed", f"{path} changed while it was uploaded; the upload was deleted, try again")
    return info


async def listing(store: ObjectStore) -> list[Listed]:
    """Every object of the bucket (deleted ones left out), sorted by name."""
    try:
        infos = await store.list(ignore_deletes=True)
    except NotFoundError:  # nats-py's answer for an empty bucket
        return []
    listed = []
    for info in sorted(infos, key=lambda i: i.name):
        document = None
        raw = (info.headers or {}).get(MANIFEST_HEADER)
        if raw is not None:
            try:
                document = manifests.decode(raw)
            except FirmwareError:
                document = None
        signer, ok = manifests.signer_of(document) if document is not None else (None, False)
        listed.append(Listed(info.name, info.size or 0, info.mtime, document, signer, ok))
    return listed


def targets_text(document: dict[str, Any]) -> str:
    targets = document.get("targets") or {}
    parts = [*targets.get("entity_ids", []), *targets.get("entity_types", [])]
    return ",".join(map(str, parts)) or "-"
