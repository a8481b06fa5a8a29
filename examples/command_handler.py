"""A command-responsive robot (the seed API's `robot_main`), runnable against the emulator.

It registers `move`, `stop` and `patrol` handlers, reports its position, and runs until
interrupted (Ctrl-C / SIGTERM) or for `--duration` seconds. Each handler's outcome goes back to
the mothership: a handler that raises becomes a `command_failed` event.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from typing import Any

from alien import AlienClient, AlienConfig

logger = logging.getLogger("robot")


class Robot:
    def __init__(self) -> None:
        self.latitude, self.longitude = 52.52, 13.405
        self.patrolling = False

    async def handle_move(self, command: dict[str, Any]) -> None:
        params = command.get("params", command)
        self.latitude = float(params["latitude"])
        self.longitude = float(params["longitude"])
        logger.info("moving to %.5f, %.5f", self.latitude, self.longitude)

    async def handle_stop(self, command: dict[str, Any]) -> None:
        self.patrolling = False
        logger.info("stopped")

    async def handle_patrol(self, command: dict[str, Any]) -> None:
        self.patrolling = True
        logger.info("patrolling")


async def robot_main(duration: float | None) -> None:
    config = AlienConfig(entity_type="robot", entity_name="rover-1")
    client = AlienClient(config)
    robot = Robot()

    # Register command handlers
    client.register_command_handler("move", robot.handle_move)
    client.register_command_handler("stop", robot.handle_stop)
    client.register_command_handler("patrol", robot.handle_patrol)

    await client.initialize()
    print(f"robot ready: org {config.org_id} entity {config.entity_id}", flush=True)

    async def report_position() -> None:
        while True:
            await client.update_position(robot.latitude, robot.longitude, 0)
            await asyncio.sleep(1)

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(client.close()))
    if duration is not None:
        loop.call_later(duration, lambda: asyncio.ensure_future(client.close()))
    reporter = asyncio.create_task(report_position())
    try:
        await client.start()  # Runs until interrupted
    finally:
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    asyncio.run(robot_main(args.duration))


if __name__ == "__main__":
    main()
