"""A fleet of N simulated entities in one process over ONE NATS connection (AlienFleet).

Each entity has its own identity, subjects, outbox and command handlers, kept under
`<state-dir>/fleet/<name>/`; a second run reuses them. `alien simulate` is the full version.
Run against a mothership with MOTHERSHIP_URL and NATS_URL set.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
from pathlib import Path

from alien import AlienClient, AlienConfig, AlienFleet


async def fly(client: AlienClient, index: int, iterations: int, interval: float) -> None:
    await client.update_status("active")
    for step in range(iterations):
        angle = 2 * math.pi * step / max(iterations, 1)
        await client.update_position(47.0 + 0.01 * math.sin(angle), 8.0 + 0.01 * math.cos(angle), 50 + index)
        await client.publish_telemetry({"battery_level": 100 - step * 0.5})
        await asyncio.sleep(interval)
    await client.update_status("inactive")


async def simulate(entities: int, iterations: int, interval: float, state_dir: Path) -> int:
    fleet = AlienFleet(AlienConfig(org_name="Simulated Fleet", entity_type="drone", data_dir=state_dir))
    for index in range(entities):
        client = fleet.add(entity_name=f"SIM-{index:03d}")
        # each entity answers its own commands (the default argument binds this entity's client)
        client.register_command_handler("return_to_base", lambda command, c=client: c.update_status("returning"))
    async with fleet:  # one NATS connection; registers every entity (the organization is created once)
        await asyncio.gather(*(fly(c, i, iterations, interval) for i, c in enumerate(fleet.clients.values())))
        await fleet.flush(10)
        total = sum(stats.published for stats in fleet.stats().values())
    print(f"fleet of {entities}: {total} messages acknowledged by JetStream", flush=True)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description="simulate a fleet of entities over one NATS connection")
    parser.add_argument("--entities", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--state-dir", type=Path, default=Path(".alien"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(simulate(args.entities, args.iterations, args.interval, args.state_dir))


if __name__ == "__main__":
    main()
