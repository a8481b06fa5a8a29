"""The `firmware_update` command: from a signed request to a verified file and the install hook.

In this order (docs/firmware.md#what-the-device-checks): the command itself passed the signature,
replay and expiry policy (`firmware_update` always needs a trusted signature) and nothing else of
its type is running (`busy`); then the object's manifest must be signed by a trusted key, name the
requested firmware and target this entity; its size must be within ALIEN_FIRMWARE_MAX_BYTES and
fit on the disk, and the object must match it. Only then is it downloaded (download.py), and only
a verified file in place reaches the hook. The hook's result, or why anything failed (`reason`),
is the command's terminal event.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alien.commands.context import CommandContext
from alien.commands.envelope import Command
from alien.config import AlienConfig
from alien.firmware import download
from alien.firmware.manifest import (
    MANIFEST_HEADER,
    FirmwareError,
    Manifest,
    check_name,
    decode,
    digest_hex,
    object_name,
    verify,
)
from alien.firmware.objects import BucketReader, ObjectMissing
from alien.link import NatsLink
from alien.logs import get_logger
from alien.settings import FirmwareSettings
from alien.untrusted import DETAIL_LIMIT, shown

logger = get_logger("alien.firmware")

_BUCKET_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


@dataclass(frozen=True)
class FirmwareUpdate:
    """What the install hook gets: a verified file, and what the operator signed about it."""

    name: str
    version: str
    path: Path  # the verified file, in place under ALIEN_DATA_DIR
    size: int
    sha256: str
    signer: str  # the operator key (O...) that signed the manifest
    command_id: str
    _progress: Callable[[dict[str, Any]], None] = field(repr=False, compare=False)

    def progress(self, data: dict[str, Any]) -> None:
        """Report install progress (a `command_progress` event, rate-limited); callable from any thread."""
        self._progress({"phase": "install", **data})


FirmwareHook = Callable[[FirmwareUpdate], Awaitable[Mapping[str, Any] | None] | Mapping[str, Any] | None]


@dataclass(frozen=True)
class FirmwareRequest:
    """The params of a `firmware_update` command: `name`, `version`, optionally `bucket`."""

    name: str
    version: str
    bucket: str


class FirmwareUpdater:
    """Runs `firmware_update` commands for one entity; register `prepare` and `run` as its handler."""

    def __init__(
        self,
        settings: FirmwareSettings,
        link: NatsLink,
        hook: FirmwareHook,
        entity: Callable[[], tuple[str | None, str]],
    ) -> None:
        """`entity()`: this entity's id and its configured type, read when a command runs."""
        self.settings = settings
        self.link = link
        self.hook = hook
        self._entity = entity

    @classmethod
    def from_config(cls, config: AlienConfig, link: NatsLink, hook: FirmwareHook) -> FirmwareUpdater:
        entity = lambda: (config.entity_id, config.entity_type)  # noqa: E731 - read when a command runs
        return cls(FirmwareSettings.from_config(config), link, hook, entity)

    def prepare(self, command: Command) -> FirmwareRequest:
        """Checks the params before the command is accepted; a ValueError rejects it (`bad_params`)."""
        params = command.params
        unknown = sorted(set(params) - {"name", "version", "bucket"})
        if unknown:
            raise ValueError(
                f"params: unknown {', '.join(map(repr, unknown))}; a firmware_update takes name, version, bucket"
            )
        bucket = params.get("bucket", self.settings.bucket)
        if not isinstance(bucket, str) or not 0 < len(bucket) <= 64 or not set(bucket) <= _BUCKET_CHARS:
            raise ValueError("params.bucket: expected a bucket name (letters, digits, '_' or '-')")
        return FirmwareRequest(
            check_name(params.get("name"), "params.name"), check_name(params.get("version"), "params.version"), bucket
        )

    async def run(self, command: dict[str, Any], context: CommandContext) -> dict[str, Any]:
        request: FirmwareRequest = context.prepared
        reader = BucketReader(self.link, request.bucket)
        loop = asyncio.get_running_loop()
        began = loop.time()
        manifest, nuid, existing = await self._checked(request, reader)

        def downloaded(received: int, total: int) -> None:
            context.progress({"phase": "download", "bytes": received, "total": total})

        if existing is not None:
            logger.info(
                "firmware %s %s is already in place and verified at %s", manifest.name, manifest.version, existing
            )
            result = download.Downloaded(existing, 0, loop.time() - began, reused=True)
        else:
            logger.info(
                "firmware %s %s: downloading %d bytes from bucket %s (command %s)",
                manifest.name,
                manifest.version,
                manifest.size,
                request.bucket,
                context.command_id,
            )
            job = download.Download(
                reader,
                manifest,
                nuid,
                self.settings.directory,
                retry_budget_s=self.settings.retry_budget_s,
                progress=downloaded,
            )
            result = await job.run()
            logger.info(
                "firmware %s %s verified (sha256 %s) at %s in %.1fs; installing",
                manifest.name,
                manifest.version,
                manifest.sha256,
                result.path,
                result.seconds,
            )
        installed = await self._install(manifest, result.path, context)
        return {
            "name": manifest.name,
            "version": manifest.version,
            "size": manifest.size,
            "sha256": manifest.sha256,
            "path": str(result.path),
            "downloaded": not result.reused,
            "resumed": result.resumed,
            "download_s": round(result.seconds, 3),
            "install": installed,
        }

    async def _checked(self, request: FirmwareRequest, reader: BucketReader) -> tuple[Manifest, str, Path | None]:
        """The verified manifest, the object's nuid and the file if already in place; FirmwareError: no download."""
        wanted = f"{request.name} {request.version}"
        try:
            info = await reader.info(object_name(request.name, request.version))
        except ObjectMissing:
            raise FirmwareError("not_found", f"no firmware {wanted} in bucket {request.bucket}") from None
        headers = info.headers or {}
        if MANIFEST_HEADER not in headers:
            raise FirmwareError("bad_manifest", f"{wanted} in bucket {request.bucket} carries no signed manifest")
        manifest = verify(decode(headers[MANIFEST_HEADER]), self.settings.trusted_keys)
        if (manifest.name, manifest.version) != (request.name, request.version):
            raise FirmwareError(
                "bad_manifest", f"the manifest of object {wanted} is signed for {manifest.name} {manifest.version}"
            )
        entity_id, entity_type = self._entity()
        if not manifest.targets.matches(entity_id, entity_type):
            raise FirmwareError(
                "wrong_target",
                f"{wanted} is signed for {manifest.targets.describe()}, not for entity {entity_id} ({entity_type})",
            )
        if manifest.size > self.settings.max_bytes:
            raise FirmwareError(
                "too_large",
                f"{wanted} is {manifest.size} bytes, over ALIEN_FIRMWARE_MAX_BYTES={self.settings.max_bytes}",
            )
        existing = await download.already_there(self.settings.directory, manifest)
        if existing is not None:
            return manifest, info.nuid, existing
        download.check_space(self.settings.directory, manifest)
        if info.size != manifest.size:
            raise FirmwareError(
                "size_mismatch", f"object {wanted} holds {info.size} bytes, its manifest signs for {manifest.size}"
            )
        if digest_hex(info.digest) != manifest.sha256:
            raise FirmwareError(
                "hash_mismatch",
                f"object {wanted} has another SHA-256 than its manifest signs for (replaced after it was signed?)",
            )
        return manifest, info.nuid, None

    async def _install(self, manifest: Manifest, path: Path, context: CommandContext) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        loop_thread = threading.get_ident()

        def progress(data: dict[str, Any]) -> None:
            if threading.get_ident() == loop_thread:
                context.progress(data)
            else:
                loop.call_soon_threadsafe(context.progress, data)

        update = FirmwareUpdate(
            manifest.name,
            manifest.version,
            path,
            manifest.size,
            manifest.sha256,
            manifest.signer,
            context.command_id,
            progress,
        )
        try:
            if _is_coroutine_function(self.hook):
                outcome = self.hook(update)
            else:  # a plain function may block (flashing): it runs in a worker thread
                outcome = await asyncio.to_thread(self.hook, update)
            if inspect.isawaitable(outcome):
                outcome = await outcome
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a failing hook fails the command, with its reason
            error = shown(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, DETAIL_LIMIT)
            raise FirmwareError(
                "install_failed", f"the install hook failed for {manifest.name} {manifest.version}: {error}"
            ) from None
        if outcome is None:
            return {}
        return dict(outcome) if isinstance(outcome, Mapping) else {"value": outcome}


def _is_coroutine_function(hook: Any) -> bool:
    """An async function, or an object whose `__call__` is one."""
    call = inspect.getattr_static(hook, "__call__", None)
    return inspect.iscoroutinefunction(hook) or inspect.iscoroutinefunction(call)
