"""ROS-free throughput, in a process of its own (the emulator's consumer runs in the harness).

    python bench/nats_child.py bare|library|drain --count N [--callers C]

- bare: nats-py `publish_async` (Nats-Msg-Id header, acks awaited) into the telemetry stream: the
  ceiling the library is measured against.
- library: `publish_telemetry` (encoder, durable outbox, publisher) from C concurrent tasks (count/C
  readings each); flush waits for every PubAck. With --camera each reading also has a `camera` key
  (bench/encryption.py: encrypted or not).
- drain: N encoded messages left in the durable outbox by an outage, then a new client drains them;
  resident memory is sampled while it does.
The configuration comes from the environment (bench/common.py sets it). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time

import nats
import psutil

from alien import AlienClient, AlienConfig
from alien.delivery.outbox import Lane, Outbox, OutgoingMessage
from alien.delivery.outbox_store import SqliteStore
from alien.telemetry.encoders import EncoderIds, make_encoder
from alien.wire import telemetry_subject

BATCH = 256  # readings queued between yields to the loop: the caller produces while it publishes


def reading(i: int) -> dict[str, object]:
    return {"position": {"latitude": 47.3769, "longitude": 8.5417, "altitude": float(i)}}


def camera_reading(i: int) -> dict[str, object]:
    """A position and a camera key: what bench/encryption.py encrypts (or not)."""
    camera = {"frame": i, "faces": [[0.12, 0.31, 0.08, 0.11]], "label": "person", "confidence": 0.93}
    return {**reading(i), "camera": camera}


async def bare(config: AlienConfig, count: int) -> dict[str, object]:
    config.load()
    payload = make_encoder("mavlink", entity_type="rover").encode(reading(0), EncoderIds("o", "e")).messages[0].payload
    nc = await nats.connect(config.nats_url)
    js = nc.jetstream(publish_async_max_pending=config.publish_window)
    subject = telemetry_subject(str(config.org_id), str(config.entity_id))
    began = time.perf_counter()
    for i in range(count):
        await js.publish_async(subject, payload, headers={"Nats-Msg-Id": f"bare-{began}-{i}"})
    await js.publish_async_completed()
    elapsed = time.perf_counter() - began
    await nc.close()
    return {"count": count, "elapsed_s": elapsed}


async def library(config: AlienConfig, count: int, callers: int = 1, camera: bool = False) -> dict[str, object]:
    make = camera_reading if camera else reading

    async def caller(client: AlienClient, first: int, step: int) -> None:
        for n, i in enumerate(range(first, count, step)):
            await client.publish_telemetry(make(i))
            if n % BATCH == BATCH - 1:
                await asyncio.sleep(0)  # let the publisher run, as a real producer's awaits would

    async with AlienClient(config) as client:
        began = time.perf_counter()
        await asyncio.gather(*(caller(client, first, callers) for first in range(callers)))
        flushed = await client.flush(120)
        elapsed = time.perf_counter() - began
        stats = client.stats()
    return {"count": count, "elapsed_s": elapsed, "flushed": flushed, "dropped": sum(stats.dropped.values())}


async def drain(config: AlienConfig, count: int) -> dict[str, object]:
    config.load()
    org, entity = str(config.org_id), str(config.entity_id)
    encoder = make_encoder("mavlink", entity_type="rover")
    outbox = Outbox(count + 10, SqliteStore(config.outbox_path, config.outbox_durability))  # type: ignore[arg-type]
    for i in range(count):  # what an outage of `count` readings leaves on disk
        wire = encoder.encode(reading(i), EncoderIds(org, entity)).messages[0]
        outbox.put(OutgoingMessage(wire.msg_id, telemetry_subject(org, entity), wire.payload, Lane.TELEMETRY))
    outbox.close()
    process = psutil.Process()
    samples = [process.memory_info().rss]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):  # the sampling period
            samples.append(process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    async with AlienClient(config) as client:
        restored = client.outbox.restored
        began = time.perf_counter()
        flushed = await client.flush(300)
        elapsed = time.perf_counter() - began
    stop.set()
    sampler.join()
    mib = 1024 * 1024
    return {
        "count": count,
        "restored": restored,
        "flushed": flushed,
        "elapsed_s": elapsed,
        "rss_start_mib": samples[0] / mib,
        "rss_peak_mib": max(samples) / mib,
        "rss_end_mib": samples[-1] / mib,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("bare", "library", "drain"))
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--callers", type=int, default=1)
    parser.add_argument("--camera", action="store_true", help="library: readings with a camera key too")
    args = parser.parse_args()
    config = AlienConfig(_env_file=None)  # type: ignore[call-arg]
    if args.mode == "library":
        result = asyncio.run(library(config, args.count, args.callers, args.camera))
    else:
        result = asyncio.run({"bare": bare, "drain": drain}[args.mode](config, args.count))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
