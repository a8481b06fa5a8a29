"""Firmware over the air against a real nats-server: a signed request, a bounded download, the hook.

docs/firmware.md: only a file the operator signed for this entity, downloaded whole and verified,
reaches the install hook; every refusal names its reason; nothing half-downloaded stays behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
import psutil
from firmware_support import (
    MIB,
    OPERATOR,
    STRANGER,
    ended,
    final,
    firmware_command,
    lifecycle,
    run_command,
    send,
    signed_manifest,
    upload,
    write_firmware,
)

from alien import AlienClient, AlienConfig, FirmwareUpdate


def _config(make_config: Callable[..., AlienConfig], emulator: Any, nats_server: Any, **overrides: Any) -> AlienConfig:
    return make_config(
        emulator, nats_server, entity_type="drone", command_trusted_keys=[OPERATOR.public_key], **overrides
    )


def _firmware_files(client: AlienClient) -> list[str]:
    directory = client.config.data_dir / f"firmware.{Path(client.config.config_file).stem}"
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


class Hook:
    """An install hook that checks what it is given and records it."""

    def __init__(self) -> None:
        self.updates: list[FirmwareUpdate] = []
        self.digests: list[str] = []

    async def __call__(self, update: FirmwareUpdate) -> dict[str, Any]:
        self.updates.append(update)
        self.digests.append(await asyncio.to_thread(_sha256, update.path))
        update.progress({"step": "flashing"})
        return {"flashed": update.version}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(MIB):
            digest.update(block)
    return digest.hexdigest()


class RssPeak:
    """The highest resident set size of this process while it runs (sampled every 2 ms in a thread)."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.baseline = self.process.memory_info().rss
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


async def test_a_50_mb_file_goes_end_to_end_in_bounded_memory(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], tmp_path: Path
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    image = tmp_path / "robot-fw.bin"
    sha256 = write_firmware(image, 50 * MIB)
    await upload(nats_server.url, image, signed_manifest(image, "robot-fw.bin", "2.0.0"))
    hook = Hook()
    async with AlienClient(_config(make_config, emulator, nats_server)) as client:
        client.on_firmware(hook)
        with RssPeak() as rss:
            events = await run_command(
                emulator, nats_server.url, client, firmware_command(client, "robot-fw.bin", "2.0.0", "fw-50"), 120
            )
        files = _firmware_files(client)
    print(f"\n50 MiB firmware: RSS grew {rss.growth / MIB:.1f} MiB (peak {rss.peak / MIB:.0f} MiB)")
    assert rss.growth < 20 * MIB  # the whole file in memory would be 50 MiB
    done = final(events)
    assert done["event_type"] == "command_completed", done
    result = done["data"]["result"]
    assert result["sha256"] == sha256 and result["size"] == 50 * MIB and result["downloaded"] is True
    assert result["install"] == {"flashed": "2.0.0"}
    assert hook.digests == [sha256] and hook.updates[0].signer == OPERATOR.public_key
    assert files == ["robot-fw.bin@2.0.0"]  # no staging file left
    progress = [e["data"]["progress"] for e in events if e["event_type"] == "command_progress"]
    downloads = [p for p in progress if p["phase"] == "download"]
    assert downloads[0] == {"phase": "download", "bytes": 128 * 1024, "total": 50 * MIB}  # the first goes at once
    assert all(p["total"] == 50 * MIB and 0 < p["bytes"] <= 50 * MIB for p in downloads)
    # the latest progress of a period goes out: the install's replaced the download's last one
    assert progress[-1] == {"phase": "install", "step": "flashing"}
    # ALIEN_COMMAND_PROGRESS_RATE_HZ (2/s): a few events, not one per chunk (400 chunks)
    assert len(downloads) <= 2 * result["download_s"] + 3, len(downloads)


async def test_refusals_before_any_download_each_name_their_reason(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], tmp_path: Path
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    image = tmp_path / "fw.bin"
    write_firmware(image, 3 * MIB)
    other = tmp_path / "other.bin"
    write_firmware(other, 3 * MIB)
    free = shutil.disk_usage(tmp_path).free
    tampered = signed_manifest(image, "fw", "1.0.3")
    tampered["targets"] = {"entity_ids": [], "entity_types": ["aircraft_multirotor", "ground_vehicle_wheeled"]}
    cases = {  # version -> (the manifest it is uploaded with, the file, the reason expected)
        "1.0.1": (signed_manifest(image, "fw", "1.0.1", seed=STRANGER.seed), image, "untrusted_key"),
        "1.0.2": (signed_manifest(image, "fw", "1.0.2", entity_types=("rover",)), image, "wrong_target"),
        "1.0.3": (tampered, image, "bad_signature"),
        "1.0.4": (signed_manifest(image, "fw", "1.0.4"), other, "hash_mismatch"),  # the object is not what was signed
        "1.0.5": (signed_manifest(image, "fw", "1.0.5", entity_ids=("x",), entity_types=()), image, "wrong_target"),
        "1.0.6": (signed_manifest(image, "fw", "1.0.6", size=free + 1024 * MIB), image, "no_space"),
        "1.0.7": (signed_manifest(image, "fw", "1.0.7", size=2**62), image, "too_large"),
    }
    for document, path, _ in cases.values():
        await upload(nats_server.url, path, document)
    hook = Hook()
    config = _config(make_config, emulator, nats_server, firmware_max_bytes=2**61)
    async with AlienClient(config) as client:
        client.on_firmware(hook)
        outcomes = {}
        for version in [*cases, "9.9.9"]:
            events = await _update(emulator, nats_server, client, "fw", version, f"c-{version}")
            outcomes[version] = final(events)
        files = _firmware_files(client)
    assert hook.updates == [] and files == []
    for version, (_, _, reason) in cases.items():
        assert outcomes[version]["event_type"] == "command_failed", outcomes[version]
        assert outcomes[version]["data"]["reason"] == reason, (version, outcomes[version])
    assert outcomes["9.9.9"]["data"]["reason"] == "not_found"
    assert "bytes free" in outcomes["1.0.6"]["data"]["error"]
    assert "ALIEN_FIRMWARE_MAX_BYTES" in outcomes["1.0.7"]["data"]["error"]
    assert "not for entity" in outcomes["1.0.2"]["data"]["error"]


async def test_tampered_chunks_are_discarded_and_the_earlier_file_kept(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], tmp_path: Path
) -> None:
    """Chunks changed under an intact manifest and object info: only the download's own hash can tell."""
    emulator = make_emulator(dialect="v0.0.1")
    good, bad = tmp_path / "good.bin", tmp_path / "bad.bin"
    good_sha = write_firmware(good, 2 * MIB)
    write_firmware(bad, 2 * MIB)
    await upload(nats_server.url, good, signed_manifest(good, "fw", "1.0"))
    info = await upload(nats_server.url, bad, signed_manifest(bad, "fw", "1.1"))
    # swap the first chunk of 1.1 for other bytes of the same length (its info keeps its digest)
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    chunks = f"$O.alien_firmware.C.{info.nuid}"
    first = await js.get_msg("OBJ_alien_firmware", seq=1, subject=chunks, next=True)
    await js.delete_msg("OBJ_alien_firmware", first.seq)
    await js.publish(chunks, os.urandom(len(first.data or b"")))
    await nc.close()

    hook = Hook()
    async with AlienClient(_config(make_config, emulator, nats_server)) as client:
        client.on_firmware(hook)
        installed = await _update(emulator, nats_server, client, "fw", "1.0", "c-good")
        kept = client.config.data_dir / f"firmware.{Path(client.config.config_file).stem}" / "fw@1.0"
        before = kept.stat()
        refused = await _update(emulator, nats_server, client, "fw", "1.1", "c-bad")
        again = await _update(emulator, nats_server, client, "fw", "1.0", "c-again")
        files = _firmware_files(client)
    assert final(installed)["event_type"] == "command_completed"
    assert final(refused)["event_type"] == "command_failed" and final(refused)["data"]["reason"] == "hash_mismatch"
    assert "discarded" in final(refused)["data"]["error"]
    assert files == ["fw@1.0"]  # no 1.1, no staging file
    assert (kept.stat().st_mtime_ns, kept.stat().st_ino) == (before.st_mtime_ns, before.st_ino)
    assert _sha256(kept) == good_sha
    assert [u.version for u in hook.updates] == ["1.0", "1.0"]
    assert final(again)["data"]["result"]["downloaded"] is False  # verified in place: not downloaded again


async def test_nats_server_killed_mid_download_resumes_after_the_restart(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], tmp_path: Path
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    image = tmp_path / "fw.bin"
    size = 16 * MIB
    sha256 = write_firmware(image, size)
    # small chunks: the download takes long enough to be caught in the middle
    await upload(nats_server.url, image, signed_manifest(image, "fw", "3.0"), chunk_size=8 * 1024)
    hook = Hook()
    async with AlienClient(_config(make_config, emulator, nats_server)) as client:
        client.on_firmware(hook)
        staging = client.config.data_dir / f"firmware.{Path(client.config.config_file).stem}" / ".fw@3.0.part"
        await send(nats_server.url, client, firmware_command(client, "fw", "3.0", "c-kill"))
        await _until(lambda: staging.exists() and staging.stat().st_size >= 4 * MIB, 30, "the download to be underway")
        nats_server.kill()
        at_kill = staging.stat().st_size  # still staging: the download was cut in the middle
        await _until(lambda: not client.link.is_connected, 10, "the client to notice the server is gone")
        nats_server.start()
        await emulator.wait_for_async(ended(emulator, "c-kill"), 90, "the update to end")
        reconnects = client.link.reconnects
    done = final(lifecycle(emulator, "c-kill"))
    assert done["event_type"] == "command_completed", done
    assert 4 * MIB <= at_kill < size and reconnects >= 1
    assert hook.digests == [sha256]
    # resumed, not started over: the restarted server sent less than the whole file (chunks and their headers)
    sent_after_restart = _server_out_bytes(nats_server)
    print(f"\nkilled at {at_kill} of {size} bytes; the restarted server sent {sent_after_restart} bytes")
    assert sent_after_restart < size


def _server_out_bytes(server: Any) -> int:
    """Bytes this nats-server process sent to its clients (monitoring endpoint /varz)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{server.monitor_port}/varz", timeout=5) as response:
        return int(json.load(response)["out_bytes"])


async def test_an_interruption_beyond_the_retry_budget_fails_clearly(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], tmp_path: Path
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    image = tmp_path / "fw.bin"
    write_firmware(image, 24 * MIB)
    await upload(nats_server.url, image, signed_manifest(image, "fw", "4.0"), chunk_size=16 * 1024)
    hook = Hook()
    async with AlienClient(_config(make_config, emulator, nats_server, firmware_retry_budget_s=2.0)) as client:
        client.on_firmware(hook)
        staging = client.config.data_dir / f"firmware.{Path(client.config.config_file).stem}" / ".fw@4.0.part"
        await send(nats_server.url, client, firmware_command(client, "fw", "4.0", "c-gone"))
        await _until(lambda: staging.exists() and staging.stat().st_size >= MIB, 30, "the download to be underway")
        nats_server.kill()
        await _until(lambda: client.command_counts.get("failed", 0) == 1, 30, "the update to give up")
        assert not staging.exists() and _firmware_files(client) == []
        nats_server.start()  # the failure event waited in the outbox
        await emulator.wait_for_async(ended(emulator, "c-gone"), 30, "the failure event")
    failed = final(lifecycle(emulator, "c-gone"))
    assert failed["data"]["reason"] == "download_failed"
    assert "ALIEN_FIRMWARE_RETRY_BUDGET_S=2" in failed["data"]["error"]
    assert hook.updates == []


async def test_one_update_at_a_time_a_second_is_busy(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], tmp_path: Path
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    image = tmp_path / "fw.bin"
    write_firmware(image, MIB)
    for version in ("5.0", "5.1"):
        await upload(nats_server.url, image, signed_manifest(image, "fw", version))
    release = asyncio.Event()
    installing = asyncio.Event()

    async def slow_install(update: FirmwareUpdate) -> None:
        installing.set()
        await release.wait()

    async with AlienClient(_config(make_config, emulator, nats_server)) as client:
        client.on_firmware(slow_install)
        await send(nats_server.url, client, firmware_command(client, "fw", "5.0", "c-first"))
        await asyncio.wait_for(installing.wait(), 30)
        busy = await _update(emulator, nats_server, client, "fw", "5.1", "c-second")
        release.set()
        await emulator.wait_for_async(lambda: final_type(emulator, "c-first") == "command_completed", 30, "the first")
        later = await _update(emulator, nats_server, client, "fw", "5.1", "c-third")
    assert [e["event_type"] for e in busy] == ["command_rejected"]
    assert busy[0]["data"]["reason"] == "busy" and "c-first" in busy[0]["data"]["detail"]
    assert final(later)["event_type"] == "command_completed"


async def _update(
    emulator: Any, nats_server: Any, client: AlienClient, name: str, version: str, command_id: str
) -> list[dict[str, Any]]:
    return await run_command(emulator, nats_server.url, client, firmware_command(client, name, version, command_id))


def final_type(emulator: Any, command_id: str) -> str | None:
    events = lifecycle(emulator, command_id)
    return events[-1]["event_type"] if events else None


async def test_an_install_hook_that_fails_is_reported_as_failed(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], tmp_path: Path
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    image = tmp_path / "fw.bin"
    write_firmware(image, MIB)
    await upload(nats_server.url, image, signed_manifest(image, "fw", "6.0"))
    threads: list[str] = []

    def failing_install(update: FirmwareUpdate) -> None:  # a plain function: it runs in a worker thread
        threads.append(threading.current_thread().name)
        raise RuntimeError("flash verify failed at sector 12")

    async with AlienClient(_config(make_config, emulator, nats_server)) as client:
        client.on_firmware(failing_install)
        events = await _update(emulator, nats_server, client, "fw", "6.0", "c-fail")
    failed = final(events)
    assert failed["event_type"] == "command_failed"
    assert failed["data"]["reason"] == "install_failed"
    assert "RuntimeError: flash verify failed at sector 12" in failed["data"]["error"]
    assert threads and threads[0] != threading.main_thread().name


async def test_an_unsigned_or_wrongly_addressed_update_never_runs(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], tmp_path: Path
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    hook = Hook()
    async with AlienClient(_config(make_config, emulator, nats_server)) as client:
        client.on_firmware(hook)
        unsigned = {"type": "firmware_update", "command_id": "c-unsigned", "params": {"name": "fw", "version": "1"}}
        rejected = await run_command(emulator, nats_server.url, client, unsigned)
        bad = firmware_command(client, "fw", "../etc", "c-bad-params")
        bad_params = await run_command(emulator, nats_server.url, client, bad)
    assert rejected[0]["data"]["reason"] == "unsigned" and "always needs one" in rejected[0]["data"]["detail"]
    assert bad_params[0]["data"]["reason"] == "bad_params" and "params.version" in bad_params[0]["data"]["detail"]
    assert hook.updates == []


async def _until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Bounded poll of state that has no event of its own (a file's size, the link's state)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.005)
