"""`alien register` and `alien status`: ids saved and reused, what status reports, the spinner only on a terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_support import ALIEN, _alien, _cli_env, _connections, _one_error_line

from alien import AlienClient, AlienConfig


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
