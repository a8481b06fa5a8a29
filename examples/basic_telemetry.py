"""The seed API's example program (docs/index.md#the-seed-api), unchanged but for the loop length.

Run it against the emulator (`python -m alien_testing` prints the URLs) with MOTHERSHIP_URL and
NATS_URL set. ALIEN_EXAMPLE_ITERATIONS (default 100) and ALIEN_EXAMPLE_INTERVAL_S (default 1)
shorten the loop for tests and the demo.
"""

import asyncio
import logging
import os
import random
import sys

from alien import AlienClient, AlienConfig
from alien.error_hints import hint
from alien.errors import AlienError

logging.basicConfig(level=logging.INFO)

ITERATIONS = int(os.environ.get("ALIEN_EXAMPLE_ITERATIONS", "100"))
INTERVAL_S = float(os.environ.get("ALIEN_EXAMPLE_INTERVAL_S", "1"))


async def main():
    # Initialize client with custom configuration
    config = AlienConfig(
        org_name="Drone Squadron Alpha",
        entity_type="drone",
        entity_name="HAWK-1"
    )

    client = AlienClient(config)

    # Initialize and connect
    await client.initialize()
    org_id, entity_id = client.config.org_id, client.config.entity_id
    print(
        f"connected: entity {entity_id} in organization {org_id}; sending {ITERATIONS} readings, one every "
        f"{INTERVAL_S:g}s. Watch them arrive in another terminal (same MOTHERSHIP_URL / NATS_URL): "
        f"alien tail --org-id {org_id} --entity-id {entity_id}",
        flush=True,
    )

    # Register command handlers
    async def handle_return_to_base(data):
        print("Received return to base command!")
        await client.update_status("returning")

    client.register_command_handler("return_to_base", handle_return_to_base)

    # Simulate telemetry updates
    try:
        await client.update_status("active")

        for i in range(ITERATIONS):
            # Simulate GPS updates
            lat = 40.7128 + random.uniform(-0.01, 0.01)
            lon = -74.0060 + random.uniform(-0.01, 0.01)
            alt = 100 + random.uniform(-10, 10)

            await client.update_position(lat, lon, alt)

            # Publish other telemetry
            await client.publish_telemetry({
                "battery_level": 85 - (i * 0.1),
                "speed": random.uniform(5, 15),
                "heading": random.uniform(0, 360),
                "sensors": {
                    "temperature": 20 + random.uniform(-2, 2),
                    "pressure": 1013.25 + random.uniform(-5, 5)
                }
            })

            await asyncio.sleep(INTERVAL_S)

    finally:
        await client.update_status("inactive")
        await client.close()

if __name__ == "__main__":
    try:
        asyncio.run(main())
    except AlienError as exc:  # a setup mistake: its one-line message says what to fix
        sys.exit(f"error: {exc}{hint(exc, None)}")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
