"""The operator CLI's keys, sign and send-command: seed files, verifiable commands, a bad argument is one line."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_support import ALIEN, _one_error_line

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
