"""`alien firmware upload|list` and `alien send-command --type firmware_update`, run as the console script."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_support import ALIEN, _alien, _cli_env, _one_error_line
from firmware_support import OPERATOR, write_firmware

from alien import AlienClient, AlienConfig, FirmwareUpdate
from alien.cli import main
from alien_testing.nats_auth import generate_nkey_user


def test_upload_signs_a_manifest_list_shows_it_and_a_version_is_never_replaced(
    make_emulator: Any,
    nats_server: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    env = _cli_env(emulator, nats_server.url, tmp_path)
    seed_file = tmp_path / "operator.nk"
    seed_file.write_text(OPERATOR.seed + "\n")
    image = tmp_path / "robot-fw.bin"
    sha256 = write_firmware(image, 3 * 1024 * 1024 + 17)
    monkeypatch.setenv("NATS_URL", nats_server.url)

    assert main(["firmware", "list"]) == 0
    assert "no bucket alien_firmware" in capsys.readouterr().out

    # the console script, as an operator runs it
    upload = ("firmware", "upload", str(image), "--version", "1.2.0", "--seed-file", str(seed_file))
    run = subprocess.run(
        [str(ALIEN), *upload, "--entity-type", "drone", "--entity-id", "e-7"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {
        "bucket": "alien_firmware",
        "object": "robot-fw.bin/1.2.0",
        "name": "robot-fw.bin",
        "version": "1.2.0",
        "size": 3 * 1024 * 1024 + 17,
        "sha256": sha256,
        "targets": {"entity_ids": ["e-7"], "entity_types": ["aircraft_multirotor"]},
        "signed_by": OPERATOR.public_key,
    }
    run = subprocess.run(
        [str(ALIEN), "firmware", "list", "--json"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    (listed,) = [json.loads(line) for line in run.stdout.splitlines()]
    assert listed["name"] == "robot-fw.bin" and listed["version"] == "1.2.0" and listed["sha256"] == sha256
    assert listed["signed_by"] == OPERATOR.public_key and listed["signature"] == "valid"

    assert main(["firmware", "list"]) == 0
    table = capsys.readouterr().out
    assert "robot-fw.bin" in table and "1.2.0" in table and "(valid)" in table
    assert main([*upload, "--entity-type", "drone"]) == 1
    assert "never replaced" in capsys.readouterr().err


def test_upload_refuses_what_no_device_could_install(
    nats_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NATS_URL", nats_server.url)
    seed_file, user_seed = tmp_path / "operator.nk", tmp_path / "user.nk"
    seed_file.write_text(OPERATOR.seed)
    login_seed, _ = generate_nkey_user()  # a NATS login seed (SU...), not a signing key
    user_seed.write_text(login_seed)
    image, empty = tmp_path / "fw.bin", tmp_path / "empty.bin"
    write_firmware(image, 1000)
    empty.write_bytes(b"")
    base = ["firmware", "upload", str(image), "--version", "1.0", "--seed-file", str(seed_file)]
    cases = {
        "no target": (base, "--entity-id E and/or --entity-type T"),
        "unknown type": ([*base, "--entity-type", "submarine-ish"], "not an entity type"),
        "bad version": (["firmware", "upload", str(image), "--version", "../1", "--entity-type", "drone"], "--version"),
        "empty file": (
            ["firmware", "upload", str(empty), "--version", "1", "--seed-file", str(seed_file), "--entity-id", "e"],
            "empty",
        ),
        "user seed": (
            ["firmware", "upload", str(image), "--version", "1", "--seed-file", str(user_seed), "--entity-id", "e"],
            "not an operator seed",
        ),
    }
    for what, (argv, message) in cases.items():
        assert main(argv) == 2, what
        captured = capsys.readouterr()
        line = _one_error_line(captured.err)
        assert message in line and captured.out == "", (what, line)
        assert login_seed[:8] not in line
    assert main(["firmware", "list"]) == 0
    assert "no bucket" in capsys.readouterr().out  # nothing was created by a refused upload


async def test_send_command_asks_an_entity_to_update(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], tmp_path: Path
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    seed_file = tmp_path / "operator.nk"
    seed_file.write_text(OPERATOR.seed)
    image = tmp_path / "fw.bin"
    sha256 = write_firmware(image, 2 * 1024 * 1024)
    config = make_config(emulator, nats_server, entity_type="rover", command_trusted_keys=[OPERATOR.public_key])
    installed: list[FirmwareUpdate] = []
    async with AlienClient(config) as client:
        client.on_firmware(installed.append)
        assert client.config.org_id and client.config.entity_id
        env = _cli_env(emulator, nats_server.url, tmp_path / "operator")
        (tmp_path / "operator").mkdir()
        upload = (
            "firmware",
            "upload",
            str(image),
            "--name",
            "rover-fw",
            "--version",
            "7",
            "--seed-file",
            str(seed_file),
        )
        code, _, err = await _alien(*upload, "--entity-id", client.config.entity_id, env=env, cwd=tmp_path)
        assert code == 0, err
        params = json.dumps({"name": "rover-fw", "version": "7"})
        ids = ("--org-id", client.config.org_id, "--entity-id", client.config.entity_id)
        send = ("send-command", "--type", "firmware_update", "--params", params, *ids, "--timeout", "60")
        code, out, err = await _alien(*send, "--seed-file", str(seed_file), env=env, cwd=tmp_path)
        assert code == 0, err
        events = [json.loads(line) for line in out.splitlines()]
        code, out, _ = await _alien(*send, env=env, cwd=tmp_path)  # unsigned: refused, whatever the settings
        unsigned = [json.loads(line) for line in out.splitlines()]
    assert events[0]["event_type"] == "command_received" and events[-1]["event_type"] == "command_completed"
    assert events[-1]["data"]["result"]["sha256"] == sha256
    assert [u.sha256 for u in installed] == [sha256]
    assert code == 3 and unsigned[-1]["data"]["reason"] == "unsigned"
