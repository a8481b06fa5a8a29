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


def _message_type(body: Any) -> str:
    """MAVLink-style telemetry names its type (v0.1); the design document's shape is `seed` (v0.0.1)."""
    if isinstance(body, dict) and isinstance(body.get("message_type"), str):
        return body["message_type"]
    if isinstance(body, dict) and {"entity_id", "timestamp", "data"} <= set(body):
        return "seed"
    return "unrecognised"


def _message_types(emulator: MothershipEmulator) -> Counter[str]:
    return Counter(_message_type(m.json()) for m in emulator.telemetry())


def _event_types(emulator: MothershipEmulator) -> Counter[str]:
    return Counter(m.json().get("event_type") for m in emulator.events())


# What the example's telemetry becomes on a v0.1 server (MOTHERSHIP_CONTRACT.md §3): the position one
# GLOBAL_POSITION_INT, the battery level a BATTERY_STATUS and a SYS_STATUS, plus the client's own
# HEARTBEATs; speed, heading and sensors have no MAVLink message and go out as a `telemetry` event.
MAVLINK_PER_ITERATION = ("GLOBAL_POSITION_INT", "BATTERY_STATUS", "SYS_STATUS")
FREE_FORM_KEYS = {"speed", "heading", "sensors"}


def _telemetry_complete(emulator: MothershipEmulator, iterations: int, dialect: str) -> bool:
    types = _message_types(emulator)
    if dialect == "v0.0.1":  # the design document's shape, position and readings alike
        return types == {"seed": 2 * iterations} and not _event_types(emulator)["telemetry"]
    diverted = [m.json() for m in emulator.events() if m.json().get("event_type") == "telemetry"]
    return (
        set(types) == {*MAVLINK_PER_ITERATION, "HEARTBEAT"}
        and all(types[kind] == iterations for kind in MAVLINK_PER_ITERATION)
        and len(diverted) == iterations
        and all(set(e.get("data", {})) == FREE_FORM_KEYS for e in diverted)
    )


def _complete(emulator: MothershipEmulator, iterations: int, dialect: str) -> bool:
    statuses = _statuses(emulator)
    events = _event_types(emulator)
    return (
        _telemetry_complete(emulator, iterations, dialect)
        and events["bootsequence"] == 1  # on connect, and shutdown on close (contract §2)
        and events["shutdown"] == 1
        and statuses[:1] == ["active"]
        and "returning" in statuses
        and statuses[-1:] == ["inactive"]
    )


def _summary(emulator: MothershipEmulator, iterations: int, dialect: str) -> bool:
    telemetry = emulator.telemetry()
    events = _event_types(emulator)
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
    print(f"by type       {dict(_message_types(emulator))}")
    print(f"events        {dict(events)}")
    print(f"statuses      {statuses}")
    if telemetry:
        print(f"last message  {telemetry[-1].data.decode()[:200]}")
    ok = _complete(emulator, iterations, dialect)
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
            emulator.wait_for(lambda: _complete(emulator, iterations, dialect), 10, "everything the example sent")
        return _summary(emulator, iterations, dialect)


def main() -> None:
    parser = argparse.ArgumentParser(description="Alien demo on embedded defaults")
    parser.add_argument("--dialect", choices=["v0.0.1", "v0.1"], default="v0.0.1")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args()
    sys.exit(0 if asyncio.run(run(args.dialect, args.iterations, args.interval)) else 1)


if __name__ == "__main__":
    main()
