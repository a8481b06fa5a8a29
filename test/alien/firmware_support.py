"""Shared by the test_firmware_* modules: firmware files, uploads with signed manifests, signed commands, events."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import nats
from nats.js import api

from alien import AlienClient
from alien.firmware import bucket as buckets
from alien.firmware import manifest as manifests
from alien.signing import generate_keypair, sign_command
from alien_testing import MothershipEmulator

OPERATOR = generate_keypair()
STRANGER = generate_keypair()
BUCKET = "alien_firmware"
MIB = 1024 * 1024
FINAL = {"command_completed", "command_failed", "command_rejected"}


def write_firmware(path: Path, size: int) -> str:
    """A file of `size` random bytes, written in blocks (never whole in memory); its sha256."""
    digest = hashlib.sha256()
    with open(path, "wb") as handle:
        left = size
        while left:
            block = os.urandom(min(left, MIB))
            handle.write(block)
            digest.update(block)
            left -= len(block)
    return digest.hexdigest()


def signed_manifest(
    path: Path,
    name: str,
    version: str,
    *,
    entity_ids: Sequence[str] = (),
    entity_types: Sequence[str] = ("drone",),
    seed: str = OPERATOR.seed,
    **changes: Any,
) -> dict[str, Any]:
    size, sha256 = buckets.file_facts(path)
    document = manifests.build(name, version, size, sha256, entity_ids, entity_types)
    return manifests.sign({**document, **changes}, seed)


Server = str | dict[str, Any]  # a NATS URL, or nats.connect kwargs (a deployment's admin_options())


async def _connect(server: Server) -> nats.NATS:
    return await nats.connect(server) if isinstance(server, str) else await nats.connect(**server)


async def upload(
    server: Server, path: Path, document: dict[str, Any], *, chunk_size: int = 128 * 1024, bucket: str = BUCKET
) -> api.ObjectInfo:
    """Put `path` with `document` as its manifest, in-process, as `alien firmware upload` stores it.

    Without the upload's own checks: a test puts here what an attacker with write rights on the
    bucket could (a manifest over other bytes, a size the object does not have).
    """
    nc = await _connect(server)
    try:
        store = await buckets.open_bucket(nc.jetstream(), bucket, create=True)
        assert store is not None
        name = manifests.object_name(document["name"], document["version"])
        meta = api.ObjectMeta(
            name=name,
            headers={manifests.MANIFEST_HEADER: [manifests.encode(document)]},
            options=api.ObjectMetaOptions(max_chunk_size=chunk_size),
        )
        with open(path, "rb") as handle:
            return await store.put(name, handle, meta=meta)
    finally:
        await nc.close()


def firmware_command(
    client: AlienClient, name: str, version: str, command_id: str, *, seed: str = OPERATOR.seed, **params: Any
) -> dict[str, Any]:
    assert client.config.entity_id
    command = {
        "type": "firmware_update",
        "command_id": command_id,
        "params": {"name": name, "version": version, **params},
    }
    return sign_command(command, seed, client.config.entity_id)


async def send(server: Server, client: AlienClient, command: dict[str, Any]) -> None:
    nc = await _connect(server)
    try:
        await nc.publish(
            f"constellation.commands.{client.config.org_id}.{client.config.entity_id}", json.dumps(command).encode()
        )
        await nc.flush()
    finally:
        await nc.close()


def lifecycle(emulator: MothershipEmulator, command_id: str) -> list[dict[str, Any]]:
    """The command's events in stream order, each a dict of event_type and data."""
    ordered = sorted(emulator.events(), key=lambda m: m.stream_seq)
    events = [m.json() for m in ordered]
    return [e for e in events if (e.get("data") or {}).get("command_id") == command_id]


def ended(emulator: MothershipEmulator, command_id: str) -> Callable[[], bool]:
    return lambda: any(e["event_type"] in FINAL for e in lifecycle(emulator, command_id))


async def run_command(
    emulator: MothershipEmulator, server: Server, client: AlienClient, command: dict[str, Any], timeout: float = 30
) -> list[dict[str, Any]]:
    """Send `command`, wait (bounded) for its final event; its events."""
    await send(server, client, command)
    await emulator.wait_for_async(ended(emulator, command["command_id"]), timeout, command["command_id"])
    return lifecycle(emulator, command["command_id"])


def final(events: list[dict[str, Any]]) -> dict[str, Any]:
    last = events[-1]
    assert last["event_type"] in FINAL, events
    return last
