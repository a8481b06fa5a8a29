"""`alien tail` and `alien simulate`: decoded and summarised payloads, filters, Ctrl-C, a simulated fleet."""

from __future__ import annotations

import asyncio
import json
import math
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_support import ALIEN, _alien, _cli_env, _connections, _one_error_line, _wait_for_subscriber

from alien import AlienClient, AlienConfig


async def test_tail_json_prints_telemetry_and_events_with_decoded_payloads(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], tmp_path: Path
) -> None:
    emulator = make_emulator(dialect="v0.1")
    config = make_config(emulator, nats_server, heartbeat_period_s=0, entity_state="off")
    async with AlienClient(config) as client:
        org_id, entity_id = client.config.org_id, client.config.entity_id
        assert org_id and entity_id
        env = _cli_env(emulator, nats_server.url, tmp_path / "cli")
        tail = asyncio.create_task(
            _alien("tail", "--json", "--org-id", org_id, "--count", "5", "--timeout", "30", env=env, cwd=tmp_path)
        )
        await _wait_for_subscriber(nats_server, "alien-tail", 2)
        await client.update_position(47.5, 8.5, 120)
        # SYS_STATUS and BATTERY_STATUS (docs/contract.md#mavlink-style-telemetry)
        await client.publish_telemetry({"battery_level": 77})
        await client.publish_event("mission", {"waypoint": 3})
        await client.nc.publish(f"constellation.telemetry.{org_id}.{entity_id}", b"\xffnot json")
        code, out, err = await tail
    assert (code, err) == (0, "")
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 5 and all(line["entity_id"] == entity_id for line in lines)
    telemetry = {
        line["payload"]["message_type"]: line for line in lines if line["payload"] and line["kind"] == "telemetry"
    }
    assert telemetry["GPS_RAW_INT"]["payload"]["data"]["lat"] == 475_000_000
    assert telemetry["BATTERY_STATUS"]["payload"]["data"]["battery_remaining"] == 77
    assert telemetry["GPS_RAW_INT"]["subject"] == f"constellation.telemetry.{org_id}.{entity_id}"
    (event,) = [line for line in lines if line["kind"] == "event"]
    assert event["payload"]["event_type"] == "mission" and event["payload"]["data"] == {"waypoint": 3}
    (garbage,) = [line for line in lines if line["payload"] is None]
    assert garbage["error"].startswith("not UTF-8") and garbage["raw"].endswith("not json")


async def test_tail_pretty_summarises_and_filters_by_entity(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], tmp_path: Path
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    async with AlienClient(make_config(emulator, nats_server)) as client:
        org_id, entity_id = client.config.org_id, client.config.entity_id
        assert org_id and entity_id
        env = _cli_env(emulator, nats_server.url, tmp_path / "cli", ALIEN_ORG_ID=org_id)
        mine = asyncio.create_task(
            _alien("tail", "--entity-id", entity_id, "--count", "3", "--timeout", "30", env=env, cwd=tmp_path)
        )
        other = asyncio.create_task(
            _alien("tail", "--entity-id", "someone-else", "--timeout", "3", env=env, cwd=tmp_path)
        )
        await _wait_for_subscriber(nats_server, "alien-tail", 2, clients=2)  # both listen before anything is sent
        await client.update_position(47.1, 8.2, 100)
        await client.publish_telemetry({"battery_level": 80, "speed": 3})
        await client.publish_event("mission", {"waypoint": 3})
        code, out, err = await mine
        assert (code, err) == (0, "")
        assert await other == (0, "", "")  # the filter let nothing of this entity's through
    lines = out.splitlines()
    assert len(lines) == 3 and all(entity_id[:8] in line for line in lines)
    assert any("telemetry" in line and "seed lat=47.100000 lon=8.200000 alt=100.0m" in line for line in lines)
    assert any("seed battery_level=80 speed=3" in line for line in lines)
    assert any("event" in line and "mission waypoint=3" in line for line in lines)


async def test_tail_count_not_reached_is_exit_5_and_needs_an_org(
    make_emulator: Any, nats_server: Any, tmp_path: Path
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    env = _cli_env(emulator, nats_server.url, tmp_path)
    code, out, err = await _alien(
        "tail", "--org-id", "quiet", "--count", "1", "--timeout", "0.5", env=env, cwd=tmp_path
    )
    assert (code, out) == (5, "") and "0 of 1 messages within 0.5s" in _one_error_line(err)
    code, out, err = await _alien("tail", env=env, cwd=tmp_path)
    assert (code, out) == (2, "") and "--org-id" in _one_error_line(err)


async def test_tail_stops_cleanly_on_ctrl_c(make_emulator: Any, nats_server: Any, tmp_path: Path) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    env = _cli_env(emulator, nats_server.url, tmp_path, ALIEN_ORG_ID="some-org")
    process = await asyncio.create_subprocess_exec(
        str(ALIEN), "tail", env=env, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    await _wait_for_subscriber(nats_server, "alien-tail", 2)
    process.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(process.communicate(), 15)
    assert (process.returncode, out, err) == (0, b"", b"")


async def test_simulate_flies_a_fleet_over_one_connection_and_obeys_return_to_base(
    make_emulator: Any, nats_server: Any, tmp_path: Path
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    env = _cli_env(emulator, nats_server.url, tmp_path)
    before = {c["cid"] for c in _connections(nats_server)}
    simulate = asyncio.create_task(
        _alien("simulate", "--entities", "3", "--duration", "10", "--interval", "0.2", env=env, cwd=tmp_path)
    )
    identity_file = tmp_path / "data" / "fleet" / "SIM-001" / "identity.json"

    def flying() -> bool:  # its first status_changed comes after its command intake is up
        if not identity_file.exists():
            return False
        entity_id = json.loads(identity_file.read_text())["entity_id"]
        return any(
            m.subject.endswith(".status_changed") and m.json()["entity_id"] == entity_id for m in emulator.events()
        )

    await emulator.wait_for_async(flying, 20, "SIM-001 flying")
    ids = json.loads(identity_file.read_text())
    argv = ("send-command", "--type", "return_to_base", "--org-id", ids["org_id"], "--entity-id", ids["entity_id"])
    code, out, err = await _alien(*argv, env=env, cwd=tmp_path)
    assert code == 0, err
    final = json.loads(out.splitlines()[-1])
    assert final["event_type"] == "command_completed" and final["data"]["result"]["returning"] is True

    code, out, err = await simulate
    assert code == 0, err
    fleet_dir = tmp_path / "data" / "fleet"
    names = {
        name: json.loads((fleet_dir / name / "identity.json").read_text()) for name in ("SIM-000", "SIM-001", "SIM-002")
    }
    assert {e["entity_id"] for e in emulator.entities()} == {ids["entity_id"] for ids in names.values()}
    assert len({ids["org_id"] for ids in names.values()}) == 1
    assert len([o for o in emulator.organizations() if o["name"] == "Simulated Fleet"]) == 1
    summary = out.splitlines()
    assert summary[-1].startswith("fleet of 3 over one NATS connection:") and " 0 waiting" in summary[-1]
    for name, entity in names.items():
        (row,) = [line for line in summary if line.startswith(name)]
        assert entity["entity_id"] in row and int(row.split()[2]) >= 5  # acknowledged
    statuses = [
        m.json()["data"]["status"]
        for m in emulator.events()
        if m.subject.endswith(".status_changed") and m.json()["entity_id"] == ids["entity_id"]
    ]
    assert statuses[0] == "active" and "returning" in statuses and statuses[-1] == "inactive"
    # one NATS connection for the whole fleet (nats-server's own count of this run's clients)
    (fleet_connection,) = [
        c for c in _connections(nats_server) if c["cid"] not in before and c.get("name") != "alien-cli"
    ]
    assert fleet_connection["name"] == "alien-fleet"

    # again, without --duration: it flies until Ctrl-C, then flushes, sums up and exits 0
    def took_off() -> int:  # status_changed "active" is sent once the fleet is up (after registration)
        changes = [m.json()["data"] for m in emulator.events() if m.subject.endswith(".status_changed")]
        return len([change for change in changes if change["status"] == "active"])

    before_rerun = took_off()
    process = await asyncio.create_subprocess_exec(
        str(ALIEN),
        "simulate",
        "--entities",
        "3",
        "--interval",
        "0.2",
        "--json",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    await emulator.wait_for_async(lambda: took_off() >= before_rerun + 3, 20, "the second run flying")
    process.send_signal(signal.SIGINT)
    out_bytes, err_bytes = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err_bytes.decode()
    again = json.loads(out_bytes)
    assert again["all_acknowledged"] and {n: r["entity_id"] for n, r in again["entities"].items()} == {
        n: e["entity_id"] for n, e in names.items()
    }
    assert len(emulator.entities()) == 3  # the second run reused the saved identities
    code, out, err = await _alien("status", "--json", env=env, cwd=tmp_path)
    assert (code, err) == (0, "")
    fleet_outboxes = json.loads(out)["fleet_outboxes"]
    assert set(fleet_outboxes) == set(names) and all(
        o["state"] == "ok" and o["waiting"] == 0 for o in fleet_outboxes.values()
    )


async def test_simulate_with_nats_down_is_one_line_and_exit_1(make_emulator: Any, tmp_path: Path) -> None:
    from alien_testing.nats_server import free_port

    emulator = make_emulator(dialect="v0.0.1")
    env = _cli_env(emulator, f"nats://127.0.0.1:{free_port()}", tmp_path)
    code, out, err = await _alien("simulate", "--entities", "2", "--connect-timeout", "1", env=env, cwd=tmp_path)
    assert (code, out) == (1, "") and "check NATS_URL" in _one_error_line(err)
    code, _, err = await _alien("simulate", "--entities", "0", env=env, cwd=tmp_path)
    assert code == 2 and "--entities" in _one_error_line(err)


@pytest.mark.parametrize(
    ("subject", "payload", "summary"),
    [
        (  # docs/contract.md#mavlink-style-telemetry: degE7, mm, cdeg on the wire; degrees, metres on screen
            "constellation.telemetry.o.e",
            {"message_type": "GLOBAL_POSITION_INT", "data": {"lat": 475000000, "lon": 85000000, "alt": 120500}},
            "GLOBAL_POSITION_INT lat=47.5000000 lon=8.5000000 alt=120.5m",
        ),
        (
            "constellation.telemetry.o.e",
            {"message_type": "BATTERY_STATUS", "data": {"battery_remaining": 77, "voltages": [12600, 65535]}},
            "BATTERY_STATUS battery=77% voltage=12.60V",
        ),
        (
            "constellation.telemetry.o.e",
            {"message_type": "HEARTBEAT", "data": {"type": 2, "system_status": 4}},
            "HEARTBEAT state=ACTIVE type=2",
        ),
        ("constellation.telemetry.o.e", {"entity_id": "e", "data": {"battery_level": 80}}, "seed battery_level=80"),
        (
            "constellation.events.o.shutdown",
            {"event_type": "shutdown", "device_id": "HAWK-1"},
            "shutdown device_id=HAWK-1",
        ),
        (
            "constellation.events.o.x",
            {"event_type": "x", "data": {"a": [1, 2], "b": "two\nlines"}},
            "x a=[1,2] b=two lines",
        ),
        ("constellation.events.o.x", [1, 2, 3], "[1,2,3]"),
        (
            "constellation.telemetry.o.e",
            {"message_type": "GLOBAL_POSITION_INT", "data": {"lat": "bad"}},
            "GLOBAL_POSITION_INT",
        ),
    ],
)
def test_tail_summaries(subject: str, payload: Any, summary: str) -> None:
    from alien.cli import payloads

    assert payloads.summarize(subject, payload) == summary


def test_tail_decodes_anything_without_raising() -> None:
    from alien.cli import payloads

    assert payloads.decode(b'{"a": NaN}')[1] is None
    assert payloads.decode(b"\xff")[1] == "not UTF-8 (1 bytes)"
    assert payloads.decode(b"plain text")[1] == "not JSON (10 bytes)"
    assert len(payloads.summarize("constellation.events.o.x", {"data": {"k": "v" * 1000}})) <= 160


def test_a_simulated_drone_circles_its_base_drains_and_flies_home() -> None:
    from alien.cli.flight import DRAIN_PER_STEP, LOOP_RADIUS_DEG, Flight

    flight = Flight(client=None, base=(47.0, 8.0), altitude=50.0)  # type: ignore[arg-type]  # no I/O in advance()
    loop = [flight.advance()["position"] for _ in range(10)]
    assert all(abs(math.dist((p["latitude"], p["longitude"]), (47.0, 8.0)) - LOOP_RADIUS_DEG) < 1e-9 for p in loop)
    assert len({(p["latitude"], p["longitude"]) for p in loop}) == 10 and all(0 <= p["heading"] < 360 for p in loop)
    flight.returning = True
    home = [flight.advance() for _ in range(30)][-1]
    assert math.dist((home["position"]["latitude"], home["position"]["longitude"]), (47.0, 8.0)) < 1e-8
    assert home["battery_level"] == 100 - 40 * DRAIN_PER_STEP
