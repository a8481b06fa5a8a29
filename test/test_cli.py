"""The operator CLI: key generation, signing, and sending a command to a running client."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from alien import AlienClient, AlienConfig
from alien.cli import main
from alien.signing import verify

ROOT = Path(__file__).resolve().parents[1]


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
