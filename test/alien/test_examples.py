"""The examples and the demo, run as their own processes against the emulator."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def _telemetry_types(emulator: Any) -> Counter[str]:
    """Telemetry by MAVLink message type (v0.1); the seed shape (v0.0.1) counts as `seed`."""
    return Counter(m.json().get("message_type", "seed") for m in emulator.telemetry())


def _event_types(emulator: Any) -> Counter[str]:
    return Counter(m.json()["event_type"] for m in emulator.events())


def _env(emulator: Any, nats_server: Any, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIEN_")}
    env.update(
        MOTHERSHIP_URL=emulator.url,
        NATS_URL=nats_server.url,
        ALIEN_CONFIG_FILE=str(tmp_path / "identity.json"),
        ALIEN_REQUEST_ATTEMPTS="3",
        ALIEN_RETRY_BACKOFF_S="0.05",
        **extra,
    )
    if emulator.dialect == "v0.1":
        env["ALIEN_API_KEY"] = next(iter(emulator.api_keys))
    return env


@pytest.mark.parametrize("dialect", ["v0.0.1", "v0.1"])
def test_seed_api_example_runs_unchanged(make_emulator: Any, nats_server: Any, tmp_path: Path, dialect: str) -> None:
    emulator = make_emulator(dialect=dialect)
    env = _env(emulator, nats_server, tmp_path, ALIEN_EXAMPLE_ITERATIONS="3", ALIEN_EXAMPLE_INTERVAL_S="0.01")
    run = subprocess.run(
        [sys.executable, str(EXAMPLES / "basic_telemetry.py")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    # both dialects: bootsequence on connect, shutdown on close (docs/contract.md#lifecycle-events),
    # the two status changes
    events = {"bootsequence": 1, "status_changed": 2, "shutdown": 1}
    if dialect == "v0.0.1":
        telemetry_types = {"seed": 6}  # the seed shape: 3 positions, 3 readings
    else:
        # docs/contract.md#mavlink-style-telemetry: each position a GPS_RAW_INT (v0.1.1), each battery
        # level a BATTERY_STATUS and a SYS_STATUS, plus HEARTBEATs; speed, heading and sensors a
        # `telemetry` event per reading
        telemetry_types = {"GPS_RAW_INT": 3, "BATTERY_STATUS": 3, "SYS_STATUS": 3, "HEARTBEAT": 1}
        events["telemetry"] = 3

    def arrived() -> bool:  # at least the expected numbers; exact ones are asserted below
        types, kinds = _telemetry_types(emulator), _event_types(emulator)
        return all(types[t] >= n for t, n in telemetry_types.items()) and all(kinds[k] >= n for k, n in events.items())

    emulator.wait_for(arrived, 10, "example output")

    (org,) = [o for o in emulator.organizations() if o["name"] == "Drone Squadron Alpha"]
    (entity,) = emulator.entities()
    assert entity["entity_type"] == "aircraft_multirotor"
    assert entity["status"] == "inactive"  # the example's finally: update_status("inactive")
    assert {m.subject for m in emulator.telemetry()} == {
        f"constellation.telemetry.{org['org_id']}.{entity['entity_id']}"
    }
    assert len({m.headers["Nats-Msg-Id"] for m in emulator.telemetry()}) == len(emulator.telemetry())
    assert _event_types(emulator) == events
    statuses = [m.json()["data"]["status"] for m in emulator.events() if m.subject.endswith("status_changed")]
    assert statuses == ["active", "inactive"]
    for kind in ("bootsequence", "shutdown"):
        (lifecycle,) = [m.json() for m in emulator.events() if m.subject.endswith(f".{kind}")]
        assert lifecycle["entity_id"] == entity["entity_id"] and lifecycle["device_id"] == "HAWK-1"
    telemetry = [m.json() for m in sorted(emulator.telemetry(), key=lambda m: m.stream_seq)]

    if dialect == "v0.0.1":
        assert _telemetry_types(emulator) == telemetry_types
        positions = [t["data"]["position"] for t in telemetry if "position" in t["data"]]
        readings = [t["data"] for t in telemetry if "battery_level" in t["data"]]
        assert len(positions) == 3 and len(readings) == 3
        assert all(abs(p["latitude"] - 40.7128) <= 0.01 for p in positions)
        assert [r["battery_level"] for r in readings] == pytest.approx([85, 84.9, 84.8])
        assert all(set(r) == {"battery_level", "speed", "heading", "sensors"} for r in readings)
        return

    heartbeats = _telemetry_types(emulator)["HEARTBEAT"]
    assert _telemetry_types(emulator) == {**telemetry_types, "HEARTBEAT": heartbeats}
    positions = [t["data"] for t in telemetry if t["message_type"] == "GPS_RAW_INT"]
    assert all(abs(p["lat"] / 1e7 - 40.7128) <= 0.01 and abs(p["lon"] / 1e7 + 74.006) <= 0.01 for p in positions)
    assert all(90_000 <= p["alt"] <= 110_000 for p in positions)  # 100 m +- 10, in mm
    # 85, 84.9, 84.8 %: battery_remaining is a whole percent
    for kind in ("BATTERY_STATUS", "SYS_STATUS"):
        assert [t["data"]["battery_remaining"] for t in telemetry if t["message_type"] == kind] == [85, 85, 85]
    diverted = [m.json()["data"] for m in emulator.events() if m.subject.endswith(".telemetry")]
    assert [set(d) for d in diverted] == [{"speed", "heading", "sensors"}] * 3
    assert all(5 <= d["speed"] <= 15 and set(d["sensors"]) == {"temperature", "pressure"} for d in diverted)


def test_command_handler_example_obeys_commands_and_stops_on_sigint(
    make_emulator: Any, nats_server: Any, tmp_path: Path
) -> None:
    import asyncio

    import nats

    emulator = make_emulator(dialect="v0.0.1")
    log_path = tmp_path / "robot.log"
    log = log_path.open("w")  # a file, not a pipe: a full pipe would block the robot's logging
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "command_handler.py")],
        env=_env(emulator, nats_server, tmp_path),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        assert "robot ready" in ready, log_path.read_text()
        ids = json.loads((tmp_path / "identity.json").read_text())
        subject = f"constellation.commands.{ids['org_id']}.{ids['entity_id']}"

        async def send() -> None:
            nc = await nats.connect(nats_server.url)
            await nc.publish(subject, b'{"type": "move", "params": {"latitude": 1.5, "longitude": 2.5}}')
            await nc.publish(subject, b'{"type": "fly_to_moon"}')
            await nc.flush()
            await nc.close()

        asyncio.run(send())
        try:
            emulator.wait_for(
                lambda: any(m.json()["data"].get("position", {}).get("latitude") == 1.5 for m in emulator.telemetry()),
                15,
                "position after move",
            )
        except TimeoutError as exc:
            raise AssertionError(f"{exc}; robot log:\n{log_path.read_text()}") from None
        emulator.wait_for(
            lambda: any(m.subject.endswith(".command_rejected") for m in emulator.events()), 10, "rejection"
        )
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def test_fleet_simulation_registers_every_entity(make_emulator: Any, nats_server: Any, tmp_path: Path) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    run = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "fleet_simulation.py"),
            "--entities",
            "3",
            "--iterations",
            "4",
            "--interval",
            "0.01",
            "--state-dir",
            str(tmp_path / "fleet"),
        ],
        env=_env(emulator, nats_server, tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    # 3 x (4 x 2 telemetry + 2 status events + bootsequence); shutdown goes out after the count, on close
    assert "fleet of 3: 33 messages acknowledged" in run.stdout
    saved = [json.loads((tmp_path / "fleet" / "fleet" / f"SIM-00{i}" / "identity.json").read_text()) for i in range(3)]
    assert {e["entity_id"] for e in emulator.entities()} == {ids["entity_id"] for ids in saved}
    assert len([o for o in emulator.organizations() if o["name"] == "Simulated Fleet"]) == 1
    emulator.wait_for(lambda: len(emulator.telemetry()) >= 24, 10, "fleet telemetry")
    assert len({m.subject for m in emulator.telemetry()}) == 3
    # all three entities shared one NATS connection (nats-server's own record of its clients)
    import urllib.request

    connz = f"http://127.0.0.1:{nats_server.monitor_port}/connz?state=all&limit=1000"
    with urllib.request.urlopen(connz, timeout=5) as response:
        names = [c.get("name") for c in json.load(response)["connections"]]
    assert names.count("alien-fleet") == 1 and not any(str(n).startswith("alien-SIM") for n in names)


def _page_example(page: str, heading: str) -> str:
    """The first Python block under `heading` of docs/<page>: what a reader copies."""
    import re

    text = (ROOT / "docs" / page).read_text()
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"^```python\n(.*?)^```", section, flags=re.S | re.M)
    assert match is not None, f"docs/{page} has no Python example under {heading!r}"
    return match.group(1)


@pytest.mark.parametrize("dialect", ["v0.0.1", "v0.1"])
def test_the_batch_example_of_the_library_page_runs(
    make_emulator: Any, nats_server: Any, tmp_path: Path, dialect: str
) -> None:
    import itertools
    from datetime import datetime, timedelta

    emulator = make_emulator(dialect=dialect)
    script = tmp_path / "batch_example.py"
    script.write_text(_page_example("library.md", "Batches of readings"))
    run = subprocess.run(
        [sys.executable, str(script)],
        env=_env(emulator, nats_server, tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    # the log: 10 readings one minute apart, ten minutes ago, each with its own time and message
    kind = "seed" if dialect == "v0.0.1" else "BATTERY_STATUS"

    def logged() -> list[dict[str, Any]]:
        found = [m.json() for m in emulator.telemetry()]
        if kind == "seed":
            return [t for t in found if "battery_level" in t["data"]]
        return [t for t in found if t["message_type"] == kind]

    emulator.wait_for(lambda: len(logged()) == 10, 10, "the replayed log")
    stamps = sorted(datetime.fromisoformat(t["timestamp"]) for t in logged())
    assert [later - earlier for earlier, later in itertools.pairwise(stamps)] == [timedelta(minutes=1)] * 9
    assert datetime.now(stamps[0].tzinfo) - stamps[-1] > timedelta(seconds=50)  # history, not now
    levels = [t["data"]["battery_level" if kind == "seed" else "battery_remaining"] for t in logged()]
    assert sorted(levels) == list(range(81, 91))
    emulator.wait_for(lambda: "log_replayed" in _event_types(emulator), 10, "the batch's event")
    (replayed,) = [m.json()["data"] for m in emulator.events() if m.json()["event_type"] == "log_replayed"]
    assert replayed == {"readings": 10}
