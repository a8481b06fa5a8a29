"""Firmware downloads, in a process of their own (the emulator runs in the harness).

    python bench/firmware_child.py register
    python bench/firmware_child.py update --command JSON
    python bench/firmware_child.py nats-get --object NAME --out FILE

- register: registers the entity once; prints its ids (the harness signs commands for it).
- update: an AlienClient with an install hook; it sends itself the signed `firmware_update`
  command, and times it from the send to the verified file reaching the hook (checks, download in
  direct gets, SHA-256, fsync, rename), sampling resident memory meanwhile.
- nats-get: the baseline, nats-py's own `ObjectStore.get(name, writeinto=file)` (a push consumer,
  no verification against a manifest, no fsync), timed and sampled the same way.
The configuration comes from the environment (bench/common.py sets it). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nats
import psutil

from alien import AlienClient, AlienConfig, FirmwareUpdate
from alien.wire import command_subject

MIB = 1024 * 1024


class Rss:
    """Resident memory now and its peak, sampled every 5 ms in a thread."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.start = self.peak = self.process.memory_info().rss
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.wait(0.005):  # the sampling period
            self.peak = max(self.peak, self.process.memory_info().rss)

    @contextmanager
    def sampling(self) -> Iterator[None]:
        thread = threading.Thread(target=self._sample, daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._stop.set()
            thread.join()

    def figures(self) -> dict[str, float]:
        return {"rss_start_mib": self.start / MIB, "rss_peak_mib": self.peak / MIB}


async def register(config: AlienConfig) -> dict[str, Any]:
    async with AlienClient(config) as client:
        return {"org_id": client.config.org_id, "entity_id": client.config.entity_id}


async def update(config: AlienConfig, command: dict[str, Any]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    installed: asyncio.Future[float] = loop.create_future()

    async def install(update: FirmwareUpdate) -> None:
        installed.set_result(time.perf_counter())

    async with AlienClient(config) as client:
        client.on_firmware(install)
        nc = await nats.connect(config.nats_url)
        rss = Rss()
        with rss.sampling():
            began = time.perf_counter()
            await nc.publish(
                command_subject(str(client.config.org_id), str(client.config.entity_id)), json.dumps(command).encode()
            )
            await nc.flush()
            done = await asyncio.wait_for(installed, 600)
        await nc.close()
        counts = client.command_counts
    return {"seconds": done - began, "failed": counts.get("failed", 0), **rss.figures()}


async def nats_get(config: AlienConfig, name: str, out: Path) -> dict[str, Any]:
    nc = await nats.connect(config.nats_url)
    store = await nc.jetstream().object_store(config.firmware_bucket)
    rss = Rss()
    with rss.sampling(), open(out, "wb") as handle:
        began = time.perf_counter()
        info = await store.get(name, writeinto=handle)
        seconds = time.perf_counter() - began
    await nc.close()
    return {"seconds": seconds, "size": info.info.size, **rss.figures()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["register", "update", "nats-get"])
    parser.add_argument("--command", help="update: the signed firmware_update command (JSON)")
    parser.add_argument("--object", help="nats-get: the object's name")
    parser.add_argument("--out", type=Path, help="nats-get: where it goes")
    args = parser.parse_args()
    config = AlienConfig()
    if args.mode == "register":
        result = asyncio.run(register(config))
    elif args.mode == "update":
        result = asyncio.run(update(config, json.loads(args.command)))
    else:
        result = asyncio.run(nats_get(config, args.object, args.out))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
