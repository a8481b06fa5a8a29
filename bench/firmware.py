"""Firmware over the air: a 50 MiB file through `firmware_update`, MB/s and memory (docs/firmware.md).

Measured from the signed command's send to the verified file reaching the install hook (manifest
checks, the download in direct gets, SHA-256, fsync, rename), against nats-py's own
`ObjectStore.get(writeinto=file)` of the same object in the same run. Each repetition downloads
into a new data directory, so nothing is reused. MB/s is 10^6 bytes per second.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path

import nats
from common import Figure, Servers, Settings, at_most, run_json

from alien.firmware import bucket as buckets
from alien.firmware import manifest as manifests
from alien.signing import generate_keypair, sign_command

MIB = 1024 * 1024


def _upload(servers: Servers, path: Path, seed: str) -> dict[str, object]:
    size, sha256 = buckets.file_facts(path)
    document = manifests.sign(manifests.build("bench-fw", "1.0.0", size, sha256, [], ["rover"]), seed)

    async def put() -> None:
        nc = await nats.connect(servers.nats.url)
        store = await buckets.open_bucket(nc.jetstream(), "alien_firmware", create=True)
        assert store is not None
        await buckets.upload(store, path, document)
        await nc.close()

    asyncio.run(put())
    return document


def run(servers: Servers, settings: Settings, done: dict[str, Figure]) -> list[Figure]:
    size_mib = 2 if settings.smoke else 50
    repeats = 1 if settings.smoke else settings.repeats  # each repetition is two child processes
    keys = generate_keypair()
    image = servers.workdir / "firmware.bin"
    with open(image, "wb") as handle:
        for _ in range(size_mib):
            handle.write(os.urandom(MIB))
    _upload(servers, image, keys.seed)
    env = servers.client_env(
        ALIEN_CONFIG_FILE=str(servers.workdir / "firmware.identity.json"),
        ENTITY_NAME="bench-firmware",
        ENTITY_TYPE="rover",
        ALIEN_COMMAND_TRUSTED_KEYS=keys.public_key,
    )
    ids = run_json(["bench/firmware_child.py", "register"], {**env, "ALIEN_DATA_DIR": str(servers.workdir / "fw")}, 60)
    rates, growth, peaks, baseline_rates, baseline_growth = [], [], [], [], []
    for repeat in range(repeats):
        command = sign_command(
            {
                "type": "firmware_update",
                "command_id": uuid.uuid4().hex,
                "params": {"name": "bench-fw", "version": "1.0.0"},
                "ttl_s": 600,
            },
            keys.seed,
            str(ids["entity_id"]),
        )
        data_dir = str(servers.workdir / f"fw.{repeat}")  # a new one: the file is downloaded every time
        out = run_json(
            ["bench/firmware_child.py", "update", "--command", json.dumps(command)],
            {**env, "ALIEN_DATA_DIR": data_dir},
            timeout=900,
        )
        if out["failed"]:
            raise RuntimeError("firmware_update failed; see the child's log")
        rates.append(size_mib * MIB / out["seconds"] / 1e6)
        growth.append(out["rss_peak_mib"] - out["rss_start_mib"])
        peaks.append(out["rss_peak_mib"])
        target = servers.workdir / f"nats-get.{repeat}.bin"
        base = run_json(
            ["bench/firmware_child.py", "nats-get", "--object", "bench-fw/1.0.0", "--out", str(target)], env, 900
        )
        target.unlink()
        baseline_rates.append(size_mib * MIB / base["seconds"] / 1e6)
        baseline_growth.append(base["rss_peak_mib"] - base["rss_start_mib"])
    image.unlink()
    baseline = Figure(
        "firmware_nats_get",
        f"nats-py ObjectStore.get(writeinto=file), {size_mib} MiB (baseline)",
        "MB/s",
        baseline_rates,
    )
    return [
        Figure(
            "firmware_update_rate",
            f"firmware_update, {size_mib} MiB: command sent -> verified file handed to the hook",
            "MB/s",
            rates,
            baseline.median,
            "nats-py get",
            note="includes the manifest checks, the SHA-256 of every byte, fsync and rename; nats-py's get "
            "verifies only the object's own digest and keeps no staging file",
        ),
        baseline,
        at_most(
            Figure("firmware_rss_growth", f"firmware_update, {size_mib} MiB: RSS growth while it runs", "MiB", growth),
            20,
        ),
        Figure("firmware_rss_peak", f"firmware_update, {size_mib} MiB: peak RSS of the client process", "MiB", peaks),
        Figure(
            "firmware_nats_get_rss_growth",
            f"nats-py ObjectStore.get(writeinto=file), {size_mib} MiB: RSS growth (baseline)",
            "MiB",
            baseline_growth,
        ),
    ]
