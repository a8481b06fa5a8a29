"""The demo on embedded defaults: a real nats-server, the mothership emulator, and the design
document's example program against them, with a `return_to_base` command sent mid-flight.

Prints what the mothership received and exits 0 when all of it arrived:
    scripts/demo [--dialect v0.0.1|v0.1] [--iterations N] [--interval S]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import nats

from alien.testing import MothershipEmulator, NatsServer

EXAMPLE = Path(__file__).with_name("basic_telemetry.py")


def _load_example() -> Any:
    spec = importlib.util.spec_from_file_location("basic_telemetry", EXAMPLE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _send_return_to_base(nats_url: str, emulator: MothershipEmulator) -> None:
    """Once the example says it is active (it subscribed before that), command it home."""
    await emulator.wait_for_async(
        lambda: any(m.subject.endswith(".status_changed") for m in emulator.events()), 30, "the example's first status"
    )
    entity = emulator.entities()[0]
    nc = await nats.connect(nats_url)
    try:
        subject = f"constellation.commands.{entity['org_id']}.{entity['entity_id']}"
        await nc.publish(subject, json.dumps({"type": "return_to_base", "command_id": "demo-1"}).encode())
        await nc.flush()
        print(f"operator: sent return_to_base on {subject}", flush=True)
    finally:
        await nc.close()


def _statuses(emulator: MothershipEmulator) -> list[str]:
    events = [m.json() for m in emulator.events()]
    return [e["data"].get("status") for e in events if e.get("event_type") == "status_changed"]


def _complete(emulator: MothershipEmulator, iterations: int) -> bool:
    statuses = _statuses(emulator)
    return (
        len(emulator.telemetry()) == 2 * iterations
        and statuses[:1] == ["active"]
        and "returning" in statuses
        and statuses[-1:] == ["inactive"]
    )


def _summary(emulator: MothershipEmulator, iterations: int) -> bool:
    telemetry = emulator.telemetry()
    events = [m.json() for m in emulator.events()]
    statuses = _statuses(emulator)
    print("\n=== what the mothership received ===")
    for org in emulator.organizations():
        print(f"organization  {org.get('name')!r:28} {org.get('org_id')}")
    for entity in emulator.entities():
        metadata = entity.get("metadata") or {}
        metadata = json.loads(metadata) if isinstance(metadata, str) else metadata  # v0.0.1 stores a string
        name = entity.get("name") or metadata.get("name")
        kind, status = entity.get("entity_type"), entity.get("status")
        print(f"entity        {name!r:28} {entity.get('entity_id')} type={kind} status={status}")
    print(f"telemetry     {len(telemetry)} messages on {sorted({m.subject for m in telemetry})}")
    print(f"events        {dict(Counter(e.get('event_type') for e in events))}")
    print(f"statuses      {statuses}")
    if telemetry:
        print(f"last message  {telemetry[-1].data.decode()[:200]}")
    ok = _complete(emulator, iterations)
    print("\nRESULT: " + ("everything arrived" if ok else "something is missing"))
    return ok


async def run(dialect: str, iterations: int, interval: float) -> bool:
    workdir = Path(tempfile.mkdtemp(prefix="alien-demo-"))
    with NatsServer(workdir / "nats") as server, MothershipEmulator(server.url, dialect=dialect) as emulator:  # type: ignore[arg-type]
        print(f"nats-server   {server.url}\nmothership    {emulator.url} (emulator, dialect {dialect})", flush=True)
        identity_file = workdir / "alien_config.json"
        os.environ.update(
            MOTHERSHIP_URL=emulator.url,
            NATS_URL=server.url,
            ALIEN_CONFIG_FILE=str(identity_file),
            ALIEN_DATA_DIR=str(workdir / "data"),
            ALIEN_EXAMPLE_ITERATIONS=str(iterations),
            ALIEN_EXAMPLE_INTERVAL_S=str(interval),
        )
        if dialect == "v0.1":
            os.environ["ALIEN_API_KEY"] = next(iter(emulator.api_keys))
        example = _load_example()
        operator = asyncio.create_task(_send_return_to_base(server.url, emulator))
        await example.main()
        await operator
        # JetStream has acknowledged everything; the server's consumers take a moment to process it
        with contextlib.suppress(TimeoutError):
            emulator.wait_for(lambda: _complete(emulator, iterations), 10, "everything the example sent")
        return _summary(emulator, iterations)


def main() -> None:
    parser = argparse.ArgumentParser(description="Alien demo on embedded defaults")
    parser.add_argument("--dialect", choices=["v0.0.1", "v0.1"], default="v0.0.1")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args()
    sys.exit(0 if asyncio.run(run(args.dialect, args.iterations, args.interval)) else 1)


if __name__ == "__main__":
    main()
