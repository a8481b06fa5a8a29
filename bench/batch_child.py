"""Readings in groups of 100, as `publish_telemetry_batch` or as 100 `publish_telemetry` calls, in a process of its own.

    python bench/batch_child.py batch|singles --count N

Both go through the durable outbox (ALIEN_OUTBOX_DURABILITY=process); a single call writes its
row before it returns, a batch writes its 100 in one transaction. The loop yields once per group,
as a producer's own awaits would. Prints one JSON line: count, elapsed_s, cpu_s (this process, all
threads, from the first reading to the last PubAck), flushed. The configuration comes from the
environment (bench/common.py sets it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from alien import AlienClient, AlienConfig

GROUP = 100


def reading(i: int) -> dict[str, object]:
    return {"position": {"latitude": 47.3769, "longitude": 8.5417, "altitude": float(i)}}


async def send(config: AlienConfig, mode: str, count: int) -> dict[str, object]:
    async with AlienClient(config) as client:
        began, cpu = time.perf_counter(), time.process_time()
        for start in range(0, count, GROUP):
            group = [reading(i) for i in range(start, min(count, start + GROUP))]
            if mode == "batch":
                await client.publish_telemetry_batch(group)
            else:
                for one in group:
                    await client.publish_telemetry(one)
            await asyncio.sleep(0)  # let the publisher run
        flushed = await client.flush(120)
        elapsed, cpu_s = time.perf_counter() - began, time.process_time() - cpu
        dropped = sum(client.stats().dropped.values())
    return {"count": count, "elapsed_s": elapsed, "cpu_s": cpu_s, "flushed": flushed, "dropped": dropped}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("batch", "singles"))
    parser.add_argument("--count", type=int, required=True)
    args = parser.parse_args()
    config = AlienConfig(_env_file=None)  # type: ignore[call-arg]
    print(json.dumps(asyncio.run(send(config, args.mode, args.count))), flush=True)


if __name__ == "__main__":
    main()
