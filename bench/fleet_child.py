"""One AlienFleet process of the fleet benchmark (bench/fleet.py): K entities at the bridge's default rates.

    python bench/fleet_child.py --entities K --prefix NAME --ids-out FILE

The configuration comes from the environment (bench/fleet.py sets it: the cluster, the pinned
organization, shipped defaults otherwise). Prints one JSON line when every entity is registered
and its bootsequence is stored ({"event": "ready", ...}), then sends each entity's readings
(position, battery and health at config/bridge.yaml's rates, each on its own random phase) until
it reads "stop" on stdin; then it flushes, writes "msg_id wall_time" for every reading to
--ids-out and prints {"event": "done", ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from pathlib import Path

import psutil
from fleet_rates import default_rates, reading

from alien import AlienConfig, AlienFleet
from alien.client import AlienClient


def rss() -> int:
    return int(psutil.Process().memory_info().rss)


async def produce(client: AlienClient, kind: str, hz: float, sent: list[tuple[str, float]]) -> None:
    """Readings of one kind at `hz` from a random phase, on an absolute schedule (a late loop catches up)."""
    loop = asyncio.get_running_loop()
    period = 1.0 / hz
    due = loop.time() + random.uniform(0, period)
    n = 0
    while True:
        await asyncio.sleep(max(0.0, due - loop.time()))  # the reading's period: paces the load
        msg_id = client.queue_telemetry(reading(kind, n))
        sent.append((msg_id, time.time()))
        n += 1
        due += period


async def read_line() -> str:
    return await asyncio.to_thread(sys.stdin.readline)


async def main(args: argparse.Namespace) -> dict[str, object]:
    base_rss = rss()
    config = AlienConfig()
    fleet = AlienFleet(config)
    for index in range(args.entities):
        fleet.add(entity_name=f"{args.prefix}-{index:04d}", entity_type="rover")
    began = time.monotonic()
    await fleet.initialize()
    flushed = await fleet.flush(120)  # every bootsequence stored
    init_s = time.monotonic() - began
    print(json.dumps({"event": "ready", "init_s": init_s, "flushed": flushed, "rss_base": base_rss, "rss": rss()}))
    sys.stdout.flush()
    sent: list[tuple[str, float]] = []
    producers = [
        asyncio.create_task(produce(client, kind, hz, sent))
        for client in fleet.clients.values()
        for kind, hz in default_rates().items()
    ]
    while (await read_line()).strip() not in ("stop", ""):
        pass
    for task in producers:
        task.cancel()
    await asyncio.gather(*producers, return_exceptions=True)
    flushed = await fleet.flush(args.flush_timeout)
    stats = fleet.stats().values()
    result: dict[str, object] = {
        "event": "done",
        "sent": len(sent),
        "flushed": flushed,
        "published": sum(s.published for s in stats),
        "duplicates": sum(s.duplicates for s in stats),
        "dropped": sum(sum(s.dropped.values()) for s in stats),
        "rejected": sum(s.rejected for s in stats),
        "reconnects": fleet.link.reconnects,
        "rss": rss(),
    }
    Path(args.ids_out).write_text("".join(f"{msg_id} {at:.6f}\n" for msg_id, at in sent if msg_id))
    await fleet.close(10)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--entities", type=int, required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--ids-out", required=True)
    parser.add_argument("--flush-timeout", type=float, default=120.0)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"  # no ROS here; kept as every bench process does
    print(json.dumps(asyncio.run(main(parser.parse_args()))), flush=True)
