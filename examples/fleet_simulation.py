"""A fleet of N simulated entities, each with its own identity file, flying small circles.

Each entity is an AlienClient of its own (own registration, subjects and command handlers);
all share the organization by name. Run against the emulator with MOTHERSHIP_URL and NATS_URL.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
from pathlib import Path

from alien import AlienClient, AlienConfig


def entity_config(index: int, state_dir: Path) -> AlienConfig:
    return AlienConfig(
        org_name="Simulated Fleet",
        entity_type="drone",
        entity_name=f"SIM-{index:03d}",
        config_file=str(state_dir / f"sim-{index:03d}.json"),
    )


async def fly(client: AlienClient, index: int, iterations: int, interval: float) -> int:
    client.register_command_handler("return_to_base", lambda command: client.update_status("returning"))
    await client.update_status("active")
    for step in range(iterations):
        angle = 2 * math.pi * (step / max(iterations, 1)) + index
        await client.update_position(47.0 + 0.01 * math.sin(angle), 8.0 + 0.01 * math.cos(angle), 50 + index)
        await client.publish_telemetry({"battery_level": max(0.0, 100 - step * 0.5), "sim_index": index})
        await asyncio.sleep(interval)
    await client.update_status("inactive")
    await client.flush(10)
    return client.stats().published


async def simulate(entities: int, iterations: int, interval: float, state_dir: Path) -> int:
    state_dir.mkdir(parents=True, exist_ok=True)
    clients = [AlienClient(entity_config(i, state_dir)) for i in range(entities)]
    try:
        # The first entity creates the organization; the others then find it by name. Registered
        # all at once, each would find nothing and create its own (the lookup is not atomic).
        await clients[0].initialize()
        await asyncio.gather(*(client.initialize() for client in clients[1:]))
        published = await asyncio.gather(*(fly(c, i, iterations, interval) for i, c in enumerate(clients)))
    finally:
        await asyncio.gather(*(client.close() for client in clients))
    total = sum(published)
    print(f"fleet of {entities}: {total} messages acknowledged by JetStream", flush=True)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description="simulate a fleet of entities")
    parser.add_argument("--entities", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--state-dir", type=Path, default=Path(".alien/fleet"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(simulate(args.entities, args.iterations, args.interval, args.state_dir))


if __name__ == "__main__":
    main()
