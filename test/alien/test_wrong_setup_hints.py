"""What the CLI and the example tell a user to do next: the ids to command, an emptied stream, how to watch."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wrong_setup_support import ALIEN, API_KEY, EXAMPLE, TIMEOUT_S, _run, _working_env


async def test_simulate_says_the_organization_and_ids_commands_must_address(
    nats_server: Any, make_emulator: Callable[..., Any], tmp_path: Path
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    env = _working_env(emulator, nats_server.url, tmp_path)
    argv = [str(ALIEN), "simulate", "--entities", "2", "--duration", "0.2", "--interval", "0.1", "--json"]
    code, out, err = await _run(argv, env, tmp_path, None)
    assert code == 0, err
    summary = json.loads(out)
    org_id, first = summary["org_id"], summary["entities"]["SIM-000"]["entity_id"]
    assert org_id and first
    assert err.splitlines() == [
        f"fleet up in organization 'Simulated Fleet', org id {org_id}: SIM-000 = {first}, "
        f"SIM-001 = {summary['entities']['SIM-001']['entity_id']}; command one with "
        f"`alien send-command --org-id {org_id} --entity-id {first} --type return_to_base`"
    ]


async def test_status_says_a_work_queue_stream_is_empty_because_its_events_were_consumed(
    nats_server: Any, make_emulator: Callable[..., Any], tmp_path: Path
) -> None:
    emulator = make_emulator(dialect="v0.0.1")  # CONSTELLATION_EVENTS: work queue, consumed by the emulator
    env = _working_env(emulator, nats_server.url, tmp_path)
    code, _, err = await _run([sys.executable, str(EXAMPLE)], env, tmp_path, None)
    assert code == 0, err
    deadline = asyncio.get_running_loop().time() + TIMEOUT_S
    while len(emulator.events()) < 4:  # bootsequence, two status changes, shutdown: a bounded poll
        assert asyncio.get_running_loop().time() < deadline, emulator.events()
        await asyncio.sleep(0.02)

    code, out, err = await _run([str(ALIEN), "status"], env, tmp_path, None)
    assert code == 0, err
    found = re.search(r"CONSTELLATION_EVENTS \((\d+) stored, work queue: removed once consumed; last seq (\d+)\)", out)
    assert found is not None, out
    assert int(found.group(2)) >= 4
    code, out, _ = await _run([str(ALIEN), "status", "--json"], env, tmp_path, None)
    state = json.loads(out)["nats"]["jetstream"]["stream_state"]["CONSTELLATION_EVENTS"]
    assert state["retention"] == "workqueue" and state["last_seq"] >= 4


async def test_the_example_says_when_connected_and_how_to_watch_its_telemetry(
    nats_server: Any, make_emulator: Callable[..., Any], tmp_path: Path
) -> None:
    emulator = make_emulator(dialect="v0.1", api_keys={API_KEY: {"admin"}})
    env = _working_env(emulator, nats_server.url, tmp_path)
    env.update(ALIEN_EXAMPLE_ITERATIONS="1000", ALIEN_EXAMPLE_INTERVAL_S="0.05")
    example = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert example.stdout is not None
    try:
        line = (await asyncio.wait_for(example.stdout.readline(), TIMEOUT_S)).decode()
        (entity,) = emulator.entities()
        assert line.startswith(f"connected: entity {entity['entity_id']} in organization "), line
        watch = line.rsplit(": ", 1)[1].split()
        assert watch[:2] == ["alien", "tail"], line
        # the printed command, as printed, shows the example's telemetry
        code, out, err = await _run([str(ALIEN), *watch[1:], "--count", "1", "--timeout", "20"], env, tmp_path, None)
        assert (code, err) == (0, "") and entity["entity_id"][:8] in out, (line, out, err)  # tail abbreviates ids
    finally:
        example.send_signal(signal.SIGINT)
        _, err_bytes = await asyncio.wait_for(example.communicate(), TIMEOUT_S)
    assert example.returncode == 130 and err_bytes.decode().splitlines()[-1] == "interrupted"
