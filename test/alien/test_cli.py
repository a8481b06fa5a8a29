"""The operator CLI: key generation, signing, and sending a command to a running client."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from installed import console_script

from alien import AlienClient, AlienConfig
from alien.cli import main
from alien.signing import generate_keypair, verify

ROOT = Path(__file__).resolve().parents[2]


def _generate(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str = "operator.nk") -> tuple[Path, str]:
    seed_file = tmp_path / name
    assert main(["keys", "generate", "--out", str(seed_file)]) == 0
    return seed_file, capsys.readouterr().out.strip()


def test_keys_generate_writes_a_private_seed_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seed_file, public_key = _generate(tmp_path, capsys)
    assert public_key.startswith("O") and len(public_key) == 56
    assert stat.S_IMODE(seed_file.stat().st_mode) == 0o600
    seed = seed_file.read_text().strip()
    assert seed.startswith("SO") and seed not in public_key
    assert main(["keys", "generate", "--out", str(seed_file)]) == 2  # never overwritten
    assert "exists" in capsys.readouterr().err
    assert seed_file.read_text().strip() == seed


def test_sign_prints_a_verifiable_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seed_file, public_key = _generate(tmp_path, capsys)
    argv = ["sign", "--seed-file", str(seed_file), "--entity-id", "e-1", "--type", "move"]
    assert main([*argv, "--params", '{"linear": {"x": 1}}', "--ttl", "20", "--command-id", "c-1"]) == 0
    command = json.loads(capsys.readouterr().out)
    assert command["command_id"] == "c-1" and command["ttl_s"] == 20 and command["params"] == {"linear": {"x": 1}}
    assert verify(command, "e-1", [public_key]) == public_key
    assert main([*argv, "--params", "[1]"]) == 2
    user_seed = tmp_path / "user.nk"
    user_seed.write_text("not a seed at all")
    assert main(["sign", "--seed-file", str(user_seed), "--entity-id", "e-1", "--type", "move"]) == 2
    assert "not a seed at all" not in capsys.readouterr().err


async def _cli(*argv: str, env: dict[str, str]) -> tuple[int, list[dict[str, Any]], str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "alien",
        *argv,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, [json.loads(line) for line in out.decode().splitlines()], err.decode()


async def test_send_command_signed_unsigned_and_timeout(
    make_emulator: Any,
    nats_server: Any,
    make_config: Callable[..., AlienConfig],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed_file, public_key = _generate(tmp_path, capsys)
    emulator = make_emulator(dialect="v0.0.1")
    config = make_config(emulator, nats_server, command_trusted_keys=[public_key], command_critical_types=["move"])
    moves: list[dict[str, Any]] = []
    async with AlienClient(config) as client:
        client.register_command_handler("move", lambda command: moves.append(command) or {"moved": True})
        assert client.config.org_id and client.config.entity_id
        env = {"NATS_URL": nats_server.url, "ALIEN_ORG_ID": client.config.org_id}
        env["ALIEN_ENTITY_ID"] = client.config.entity_id
        send = ("send-command", "--type", "move", "--params", '{"speed": 2}')

        code, events, _ = await _cli(*send, "--seed-file", str(seed_file), "--ttl", "30", env=env)
        assert code == 0
        assert [e["event_type"] for e in events] == ["command_received", "command_completed"]
        assert events[-1]["data"]["result"] == {"moved": True}
        assert moves[0]["params"] == {"speed": 2} and moves[0]["signature"]["key"] == public_key

        code, events, _ = await _cli(*send, env=env)
        assert code == 3
        assert [(e["event_type"], e["data"]["reason"]) for e in events] == [("command_rejected", "unsigned")]

        code, events, err = await _cli(*send, "--entity-id", "nobody-listens", "--timeout", "0.5", env=env)
        assert (code, events) == (5, []) and "no final event" in err
    assert len(moves) == 1


def test_send_command_needs_ids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["send-command", "--type", "stop"]) == 2
    assert "--entity-id" in capsys.readouterr().err


# --- every command through the installed console script `alien` (setup.py entry point) ---

ALIEN = console_script("alien")  # wherever this install put it (pip, editable, colcon)


def _cli_env(emulator: Any, nats_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIEN_") and k not in ("ORG_NAME", "ENTITY_NAME")}
    env.update(
        MOTHERSHIP_URL=emulator.url,
        NATS_URL=nats_url,
        ALIEN_CONFIG_FILE=str(tmp_path / "identity.json"),
        ALIEN_DATA_DIR=str(tmp_path / "data"),
        ALIEN_REQUEST_ATTEMPTS="3",
        ALIEN_RETRY_BACKOFF_S="0.05",
    )
    env.update(extra)
    if emulator.dialect == "v0.1":
        env["ALIEN_API_KEY"] = next(iter(emulator.api_keys))
    return env


async def _alien(*argv: str, env: dict[str, str], cwd: Path, timeout: float = 60) -> tuple[int, str, str]:
    """Run the console script; (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        str(ALIEN), *argv, env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("alien: "), err
    return lines[0]


def _connections(nats_server: Any, state: str = "all") -> list[dict[str, Any]]:
    """nats-server's own record of client connections (monitoring endpoint /connz)."""
    url = f"http://127.0.0.1:{nats_server.monitor_port}/connz?state={state}&subs=1&limit=1000"
    with urllib.request.urlopen(url, timeout=5) as response:
        connections: list[dict[str, Any]] = json.load(response)["connections"]
        return connections


async def _wait_for_subscriber(
    nats_server: Any, name: str, subscriptions: int, clients: int = 1, timeout: float = 15
) -> None:
    """Bounded poll of /connz until `clients` clients of this name have their subscriptions in place."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        ready = [
            c
            for c in _connections(nats_server, "open")
            if c.get("name") == name and c.get("subscriptions", 0) >= subscriptions
        ]
        if len(ready) >= clients:
            return
        assert asyncio.get_running_loop().time() < deadline, f"{name} never subscribed"
        await asyncio.sleep(0.05)


def test_the_console_script_is_installed() -> None:
    for command in ([str(ALIEN)], [sys.executable, "-m", "alien"]):
        run = subprocess.run([*command, "--version"], capture_output=True, text=True, check=False)
        assert run.returncode == 0 and run.stdout.startswith("alien "), command


@pytest.mark.parametrize("dialect", ["v0.0.1", "v0.1"])
async def test_register_prints_ids_and_reuses_them(
    make_emulator: Any, nats_server: Any, tmp_path: Path, dialect: str
) -> None:
    emulator = make_emulator(dialect=dialect)
    env = _cli_env(emulator, nats_server.url, tmp_path)
    code, out, err = await _alien("register", env=env, cwd=tmp_path)
    assert code == 0, err
    first = json.loads(out)
    assert first["dialect"] == dialect and first["identity_file"] == str(tmp_path / "identity.json")
    (entity,) = emulator.entities()
    assert first["entity_id"] == entity["entity_id"]
    saved = json.loads((tmp_path / "identity.json").read_text())
    assert (saved["org_id"], saved["entity_id"]) == (first["org_id"], first["entity_id"])

    code, out, err = await _alien("register", env=env, cwd=tmp_path)
    assert code == 0, err
    assert json.loads(out) == first and len(emulator.entities()) == 1  # reused, not registered again


async def test_register_with_the_mothership_down_is_one_line_and_exit_1(
    make_emulator: Any, nats_server: Any, tmp_path: Path
) -> None:
    from alien_testing.nats_server import free_port

    emulator = make_emulator(dialect="v0.0.1")
    env = _cli_env(emulator, nats_server.url, tmp_path, MOTHERSHIP_URL=f"http://127.0.0.1:{free_port()}")
    code, out, err = await _alien("register", env=env, cwd=tmp_path)
    assert (code, out) == (1, "")
    assert "check MOTHERSHIP_URL" in _one_error_line(err)


@pytest.mark.parametrize("dialect", ["v0.0.1", "v0.1"])
async def test_status_reports_identity_dialect_nats_and_streams(
    make_emulator: Any, nats_server: Any, tmp_path: Path, dialect: str
) -> None:
    emulator = make_emulator(dialect=dialect)
    env = _cli_env(emulator, nats_server.url, tmp_path)
    assert (await _alien("register", env=env, cwd=tmp_path))[0] == 0
    before = {c["cid"] for c in _connections(nats_server)}

    code, out, err = await _alien("status", "--json", env=env, cwd=tmp_path)
    assert (code, err) == (0, "")
    report = json.loads(out)
    (entity,) = emulator.entities()
    assert report["identity"]["saved"] and report["identity"]["entity_id"] == entity["entity_id"]
    assert report["mothership"]["reachable"] and report["mothership"]["dialect"] == dialect
    nats = report["nats"]
    assert nats["reachable"] and nats["url"] == nats_server.url and nats["server"]["version"]
    assert nats["jetstream"]["reachable"] and nats["jetstream"]["domain"] == "constellation"
    assert {"CONSTELLATION_TELEMETRY", "CONSTELLATION_EVENTS", "CONSTELLATION_COMMANDS"} <= set(
        nats["jetstream"]["streams"]
    )
    assert report["outbox"]["state"] == "absent" and report["outbox"]["waiting"] == 0
    assert report["fleet_outboxes"] == {}
    # one short-lived connection, which created nothing and sent nothing on the mothership's subjects
    (status_connection,) = [c for c in _connections(nats_server) if c["cid"] not in before]
    assert status_connection["name"] == "alien-status"

    code, out, err = await _alien("status", env=env, cwd=tmp_path)
    assert (code, err) == (0, "")
    rows = {line.split()[0]: line for line in out.splitlines()}
    assert set(rows) == {"identity", "mothership", "nats", "jetstream", "outbox"}
    assert entity["entity_id"] in rows["identity"] and f"dialect {dialect}" in rows["mothership"]
    assert "CONSTELLATION_TELEMETRY" in rows["jetstream"]


async def test_status_with_nats_down_names_it_in_one_line_and_exits_1(
    make_emulator: Any, nats_server: Any, tmp_path: Path
) -> None:
    from alien_testing.nats_server import free_port

    emulator = make_emulator(dialect="v0.0.1")
    down = f"nats://operator:s3cret-pass@127.0.0.1:{free_port()}"
    env = _cli_env(emulator, down, tmp_path)
    code, out, err = await _alien("status", "--timeout", "1", env=env, cwd=tmp_path)
    assert code == 1
    line = _one_error_line(err)
    assert "NATS at nats://***@127.0.0.1:" in line and "check NATS_URL" in line
    assert "s3cret" not in out + err
    assert "UNREACHABLE" in next(row for row in out.splitlines() if row.startswith("nats"))
    assert "dialect v0.0.1" in out  # the mothership is still reported

    code, out, err = await _alien("status", "--json", "--timeout", "1", env=env, cwd=tmp_path)
    assert code == 1 and "NATS at" in _one_error_line(err)
    report = json.loads(out)
    assert report["mothership"]["reachable"] and not report["nats"]["reachable"]


async def test_status_counts_the_outbox_an_earlier_run_left_without_sending_it(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], tmp_path: Path
) -> None:
    from alien.delivery.outbox_store import SqliteStore

    emulator = make_emulator(dialect="v0.0.1")
    config = make_config(emulator, nats_server)
    client = AlienClient(config)
    await client.initialize()
    assert await client.flush(5)
    env = _cli_env(emulator, nats_server.url, tmp_path)
    code, out, err = await _alien("status", "--json", env=env, cwd=tmp_path)
    assert (code, err) == (0, "")
    assert json.loads(out)["outbox"]["state"] == "in_use"  # the running client holds it; status waits for nothing
    nats_server.stop()  # the link goes down: what follows waits in the durable outbox
    for step in range(5):
        await client.publish_telemetry({"battery_level": 90 - step})
    await client.close(timeout=0.5)
    nats_server.restart()
    await emulator.wait_for_async(lambda: emulator.nats_connected, 15, "the emulator back on NATS")  # else unhealthy
    sent_before = len(emulator.telemetry())

    code, out, err = await _alien("status", "--json", env=env, cwd=tmp_path)
    assert (code, err) == (0, "")
    outbox = json.loads(out)["outbox"]
    assert outbox["state"] == "ok" and outbox["path"] == str(config.outbox_path)
    assert outbox["waiting"] >= 5 and outbox["parked"] == 0
    assert 0 <= outbox["oldest_age_s"] < 60

    store = SqliteStore(config.outbox_path)  # the store's own view agrees, and nothing was sent
    queued, _ = store.load()
    store.close()
    assert outbox["waiting"] == len(queued) and outbox["bytes"] == sum(len(m.payload) for m in queued)
    assert len(emulator.telemetry()) == sent_before


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
        _alien("simulate", "--entities", "3", "--duration", "4", "--interval", "0.2", env=env, cwd=tmp_path)
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


def test_keys_and_sign_through_the_console_script(tmp_path: Path) -> None:
    def alien(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(ALIEN), *argv], cwd=tmp_path, capture_output=True, text=True, check=False)

    generated = alien("keys", "generate", "--out", "op.nk")
    assert generated.returncode == 0 and "op.nk" in generated.stderr
    public_key = generated.stdout.strip()
    assert public_key.startswith("O") and stat.S_IMODE((tmp_path / "op.nk").stat().st_mode) == 0o600
    assert alien("keys", "public", "--seed-file", "op.nk").stdout.strip() == public_key
    again = alien("keys", "generate", "--out", "op.nk")
    assert again.returncode == 2 and "exists" in _one_error_line(again.stderr)

    signed = alien("sign", "--seed-file", "op.nk", "--entity-id", "e-9", "--type", "land", "--params", '{"h": 0}')
    assert signed.returncode == 0
    assert verify(json.loads(signed.stdout), "e-9", [public_key]) == public_key
    seed = (tmp_path / "op.nk").read_text().strip()
    (tmp_path / "bad.nk").write_text("not-a-seed")
    bad = alien("keys", "public", "--seed-file", "bad.nk")
    assert bad.returncode == 2 and "bad.nk" in _one_error_line(bad.stderr) and seed not in bad.stderr


# A bad value for an option of `sign` / `send-command`: (the option, the value).
_SEED = generate_keypair().seed  # given by mistake where a value goes: never echoed
_BAD_ARGUMENTS = {
    "params-not-json": ("--params", '{"x": }'),
    "params-an-array": ("--params", "[1]"),
    "params-a-string": ("--params", '"go"'),
    "params-nan": ("--params", '{"x": NaN}'),
    "params-infinity": ("--params", '{"x": Infinity}'),
    "params-minus-infinity": ("--params", '{"x": [-Infinity]}'),
    "params-float-overflow": ("--params", '{"x": 1e999}'),
    "params-surrogate-value": ("--params", '{"x": "\\ud800"}'),
    "params-surrogate-key": ("--params", '{"a": {"\\udfff": 1}}'),
    "params-not-utf8-bytes": ("--params", b'{"x": "\xff"}'),
    "params-5000-digit-integer": ("--params", '{"x": ' + "9" * 5000 + "}"),
    "params-nested-too-deep": ("--params", "[" * 50_000 + "]" * 50_000),
    "params-deeper-than-an-entity-takes": ("--params", '{"x": ' + "[" * 40 + "]" * 40 + "}"),
    "params-bigger-than-an-entity-takes": ("--params", json.dumps({"x": "a" * 40_000})),
    "params-a-seed": ("--params", _SEED),
    "type-with-a-space": ("--type", "move it"),
    "type-too-long": ("--type", "t" * 65),
    "type-not-utf8-bytes": ("--type", b"mov\xe9"),
    "entity-id-a-wildcard": ("--entity-id", "robot.*"),
    "entity-id-huge": ("--entity-id", "e " * 30_000),
    "command-id-too-long": ("--command-id", "c" * 129),
    "command-id-surrogate": ("--command-id", b"c-\xff"),
    "ttl-negative": ("--ttl", "-5"),
    "ttl-nan": ("--ttl", "nan"),
    "ttl-more-than-a-year": ("--ttl", "1e9"),
    "ttl-a-seed": ("--ttl", _SEED),
    "ttl-huge-text": ("--ttl", "x" * 100_000),
    "seed-file-not-text": ("--seed-file", sys.executable),
}


@pytest.fixture(scope="module")
def operator_seed_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    seed_file = tmp_path_factory.mktemp("keys") / "op.nk"
    seed_file.write_text(generate_keypair().seed + "\n")
    return seed_file


@pytest.mark.parametrize("command", ["sign", "send-command"])
@pytest.mark.parametrize(("option", "value"), list(_BAD_ARGUMENTS.values()), ids=list(_BAD_ARGUMENTS))
def test_a_bad_argument_is_one_line_naming_the_option_and_exit_2(
    command: str, option: str, value: str | bytes, operator_seed_file: Path, tmp_path: Path
) -> None:
    from alien_testing.nats_server import free_port

    given: dict[str, str | bytes] = {"--type": "move", "--entity-id": "ent-1", "--seed-file": str(operator_seed_file)}
    given[option] = value  # bytes: argv that is not UTF-8
    argv = [str(ALIEN), command, *(part for pair in given.items() for part in pair)]
    if command == "send-command":  # nothing listens: the old code could only fail, never hang
        argv += ["--org-id", "org-1", "--timeout", "1"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIEN_")}
    env.update(NATS_URL=f"nats://127.0.0.1:{free_port()}", ALIEN_CONFIG_FILE=str(tmp_path / "identity.json"))
    run = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, check=False, timeout=60)
    err = run.stderr.decode(errors="replace")
    assert "Traceback" not in err, err
    line = _one_error_line(err)
    assert (run.returncode, run.stdout) == (2, b""), err
    assert option in line and len(line) < 300, line  # a huge input is not echoed whole
    assert _SEED not in err and operator_seed_file.read_text().strip() not in err


def test_bad_usage_is_one_line_too() -> None:
    run = subprocess.run([str(ALIEN), "sign", "--type", "move"], capture_output=True, text=True, check=False)
    assert run.returncode == 2 and "--seed-file" in _one_error_line(run.stderr) and "alien sign --help" in run.stderr


def _run_with_terminal_stderr(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, bytes]:
    """Run with stdout piped and stderr on a pseudo-terminal: (exit code, stdout, what the terminal got)."""
    import pty

    controller, terminal = pty.openpty()
    process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=terminal)
    os.close(terminal)
    out, _ = process.communicate(timeout=60)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 65536)  # everything is buffered: the child has exited
        except OSError:  # EIO: the terminal's other end is closed and drained
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    return process.returncode, out.decode(), shown


def test_the_spinner_goes_to_a_terminal_only_never_into_output(
    make_emulator: Any, nats_server: Any, tmp_path: Path
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    env = _cli_env(emulator, nats_server.url, tmp_path)
    code, out, shown = _run_with_terminal_stderr([str(ALIEN), "status"], env, tmp_path)
    assert code == 0 and "checking the mothership and NATS" in shown.decode(errors="replace")
    assert "\x1b" not in out and out.splitlines()[0].startswith("identity")
    code, out, shown = _run_with_terminal_stderr([str(ALIEN), "status", "--json"], env, tmp_path)
    assert code == 0 and json.loads(out)["nats"]["reachable"] and shown == b""


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


@pytest.mark.parametrize("v01_deployment", [{"release": "rc"}], indirect=True)
async def test_status_of_an_edge_user_without_jetstream_api_rights_is_ok_and_quick(
    v01_deployment: Any, tmp_path: Path
) -> None:
    emulator = v01_deployment.emulator
    env = _cli_env(
        emulator, v01_deployment.nats_server.url, tmp_path, ALIEN_NATS_NKEY_SEED=v01_deployment.edge.nkey_seed
    )
    began = time.monotonic()
    code, out, err = await _alien("status", "--json", "--timeout", "30", env=env, cwd=tmp_path)
    assert (code, err) == (0, "")
    # the server refuses $JS.API at once and never answers: status notices the refusal, not the timeout
    assert time.monotonic() - began < 15
    jetstream = json.loads(out)["nats"]["jetstream"]
    assert jetstream["reachable"] is None and "may not use the JetStream API" in jetstream["note"]
    assert v01_deployment.edge.nkey_seed not in out
