"""One firmware object into a file of ALIEN_DATA_DIR, verified before it takes its place.

The object streams, chunk by chunk, into a staging file next to its final place (hashed as it
is written, in a worker thread: the loop never waits on the disk). An interruption (a reconnect,
a server restart) resumes at the chunk being read, for as long as the retry budget allows without
progress. Size and SHA-256 are checked against the signed manifest; the file is fsynced, renamed
over its final name (atomic on POSIX) and the directory fsynced. Whatever fails, the staging file
is removed and no other file is touched: an earlier good file is never replaced by a bad one.
See docs/firmware.md#how-it-downloads.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import nats.errors

from alien.errors import NotInitializedError
from alien.firmware.manifest import FirmwareError, Manifest
from alien.firmware.objects import BucketReader, ObjectMissing
from alien.logs import get_logger
from alien.retry import Backoff

logger = get_logger("alien.firmware")

# What a reconnect can cure: timeouts, no JetStream responder yet, the connection going away.
RETRYABLE = (nats.errors.Error, asyncio.TimeoutError, OSError, NotInitializedError)
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Downloaded:
    path: Path
    resumed: int  # interruptions it recovered from
    seconds: float
    reused: bool = False  # the verified file was already in place: nothing downloaded


def final_path(directory: Path, manifest: Manifest) -> Path:
    return directory / f"{manifest.name}@{manifest.version}"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def check_space(directory: Path, manifest: Manifest) -> None:
    """FirmwareError (`no_space`) when the file would not fit; refused before anything is downloaded."""
    directory.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(directory).free
    if manifest.size > free:
        raise FirmwareError(
            "no_space",
            f"{manifest.name} {manifest.version} is {manifest.size} bytes; {directory} has {free} bytes free",
        )


async def already_there(directory: Path, manifest: Manifest) -> Path | None:
    """The final file when it is in place and verifies; a file that does not is named, then replaced later."""
    path = final_path(directory, manifest)
    if not path.exists():
        return None
    if path.stat().st_size == manifest.size and await asyncio.to_thread(file_sha256, path) == manifest.sha256:
        return path
    logger.warning(
        "firmware file %s does not match its signed manifest (size or sha256); a verified download will replace it",
        path,
    )
    return None


class Download:
    """Streams one object into its place; `run()` returns where it went."""

    def __init__(
        self,
        reader: BucketReader,
        manifest: Manifest,
        nuid: str,
        directory: Path,
        *,
        retry_budget_s: float,
        progress: Progress,
    ) -> None:
        self.reader = reader
        self.manifest = manifest
        self.nuid = nuid
        self.final = final_path(directory, manifest)
        self.staging = directory / f".{self.final.name}.part"
        self.retry_budget_s = retry_budget_s
        self.progress = progress
        self.received = 0
        self.resumed = 0
        self._hash = hashlib.sha256()

    async def run(self) -> Downloaded:
        loop = asyncio.get_running_loop()
        began = loop.time()
        handle = open(self.staging, "wb")
        placed = False
        try:
            await self._stream(handle)
            self._verify()
            await asyncio.to_thread(_sync_and_close, handle)
            await asyncio.to_thread(_place, self.staging, self.final)
            placed = True
        finally:
            if not placed:  # also when cancelled: no half file is left behind
                _discard(handle, self.staging)
        return Downloaded(self.final, self.resumed, loop.time() - began)

    async def _stream(self, handle: BinaryIO) -> None:
        loop = asyncio.get_running_loop()
        size, next_seq = self.manifest.size, 1
        last_progress = loop.time()
        backoff = Backoff(0.1, 2.0)
        interrupted: BaseException | None = None
        while self.received < size:
            try:
                seq, data = await self.reader.chunk(self.nuid, next_seq)
            except ObjectMissing:
                raise FirmwareError(
                    "not_found",
                    f"the chunks of {self.manifest.name} {self.manifest.version} are gone from bucket "
                    f"{self.reader.bucket} after {self.received} of {size} bytes (deleted or replaced meanwhile)",
                ) from None
            except RETRYABLE as exc:
                waited = loop.time() - last_progress
                if waited >= self.retry_budget_s:
                    raise FirmwareError(
                        "download_failed",
                        f"{self.manifest.name} {self.manifest.version}: nothing received for {waited:.0f}s "
                        f"(ALIEN_FIRMWARE_RETRY_BUDGET_S={self.retry_budget_s:g}) after {self.received} of {size} "
                        f"bytes; last error: {_describe(exc)}",
                    ) from None
                if interrupted is None:
                    self.resumed += 1
                    logger.warning(
                        "firmware download of %s %s interrupted at %d of %d bytes (%s); resuming",
                        self.manifest.name,
                        self.manifest.version,
                        self.received,
                        size,
                        _describe(exc),
                    )
                interrupted = exc
                await self._pause(backoff.next_delay(), self.retry_budget_s - waited)
                continue
            if interrupted is not None:
                logger.info("firmware download of %s resumed at %d bytes", self.manifest.name, self.received)
                interrupted = None
                backoff.reset()
            if self.received + len(data) > size:
                raise FirmwareError(
                    "size_mismatch",
                    f"the object holds more than the {size} bytes its manifest signs for "
                    f"{self.manifest.name} {self.manifest.version}",
                )
            await asyncio.to_thread(self._absorb, handle, data)
            self.received += len(data)
            next_seq = seq + 1
            last_progress = loop.time()
            self.progress(self.received, size)

    async def _pause(self, delay: float, budget_left: float) -> None:
        """Wait before the next attempt: until the link is back when it is down, else the backoff delay."""
        link = self.reader.link
        if link.is_open and not link.is_connected:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(link.connected.wait(), max(0.0, budget_left))
            return
        await asyncio.sleep(min(delay, max(0.0, budget_left)))  # the backoff between attempts

    def _absorb(self, handle: BinaryIO, data: bytes) -> None:
        handle.write(data)
        self._hash.update(data)

    def _verify(self) -> None:
        name = f"{self.manifest.name} {self.manifest.version}"
        if self.received != self.manifest.size:
            raise FirmwareError(
                "size_mismatch", f"{name}: {self.received} bytes received, the manifest signs for {self.manifest.size}"
            )
        digest = self._hash.hexdigest()
        if digest != self.manifest.sha256:
            raise FirmwareError(
                "hash_mismatch",
                f"{name}: the downloaded bytes have sha256 {digest}, the manifest signs for {self.manifest.sha256}; "
                "discarded",
            )


def _sync_and_close(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()


def _place(staging: Path, final: Path) -> None:
    os.replace(staging, final)  # atomic: the final name holds the old file or the new one, never a mix
    directory = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)


def _discard(handle: BinaryIO, staging: Path) -> None:
    handle.close()
    staging.unlink(missing_ok=True)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
