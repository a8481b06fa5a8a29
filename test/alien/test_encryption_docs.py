"""docs/encryption.md holds true: its test vector decrypts as documented, and its worked example runs.

The vector (seed, context, sealed value, plaintext) and the example (the key and settings
commands, robot.py, the three terminals) are read from the page itself, from the blocks after its
`<!-- example: NAME -->` markers: a change to the page that breaks them fails here. The example
runs as a user would, through bash and the installed `alien` script, against a real nats-server
and the emulator; the test only adds what a person does by eye (waiting until the robot listens
before following and commanding it).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import signal
from pathlib import Path
from typing import Any

import pytest
from cli_support import ALIEN, _wait_for_subscriber

from alien.e2e import E2EError, Opener, is_sealed
from alien.e2e.keys import private_key, public_key_of

PAGE = Path(__file__).resolve().parents[2] / "docs" / "encryption.md"


def _section(title: str) -> str:
    text = PAGE.read_text()
    match = re.search(rf"^#+ {re.escape(title)}\n(.*?)(?=^## )", text, flags=re.S | re.M)
    assert match is not None, f"docs/encryption.md has no section {title!r}"
    return match.group(1)


def _example(name: str) -> str:
    """The code block right after `<!-- example: NAME -->` (the marker test_docs_firmware_example.py reads too)."""
    found = re.search(rf"<!-- example: {re.escape(name)} -->\n```[a-z]*\n(.*?)^```", PAGE.read_text(), re.S | re.M)
    assert found, f"docs/encryption.md lost its example {name!r}"
    return found.group(1)


# --- the test vector ---


def _vector() -> tuple[str, bytes, dict[str, Any], str]:
    """(seed, context, sealed value, plaintext) as the page writes them."""
    sealed = _example("encryption-vector")
    vector = _section("Test vector")
    found = dict(re.findall(r"^- (seed|context|plaintext): `([^`]*)`", vector, flags=re.M))
    assert set(found) == {"seed", "context", "plaintext"}, vector
    return found["seed"], found["context"].replace("\\n", "\n").encode(), json.loads(sealed), found["plaintext"]


def test_the_documented_test_vector_decrypts_to_the_documented_plaintext() -> None:
    seed, aad, sealed, plaintext = _vector()
    assert is_sealed(sealed) and sealed["to"][0]["kid"] == public_key_of(seed)
    opened = Opener([private_key(seed)]).open(sealed, aad)
    assert json.dumps(opened, separators=(",", ":")) == plaintext
    assert aad == b"alien-e2e/1\ntelemetry\nent-7f3a\ncamera"


def test_the_documented_vector_refuses_another_context_and_any_changed_byte() -> None:
    seed, aad, sealed, _ = _vector()
    opener = Opener([private_key(seed)])
    for other in (aad.replace(b"camera", b"payload"), aad.replace(b"ent-7f3a", b"ent-7f3b"), b""):
        with pytest.raises(E2EError, match="authentication_failed"):
            opener.open(sealed, other)
    for field in ("ek", "nonce", "ct"):
        holder = sealed["to"][0] if field == "ek" else sealed
        raw = base64.urlsafe_b64decode(holder[field] + "==")
        for index in range(len(raw)):
            changed = bytearray(raw)
            changed[index] ^= 0x80
            text = base64.urlsafe_b64encode(bytes(changed)).decode().rstrip("=")
            tampered = {**sealed, "to": [{**holder, field: text}]} if field == "ek" else {**sealed, field: text}
            with pytest.raises(E2EError, match="authentication_failed"):
                opener.open(tampered, aad)


# --- the worked example ---


def _commands(block: str) -> list[str]:
    """The block's command lines (continuations joined), comments and blank lines left out."""
    joined = block.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


async def _bash(script: str, env: dict[str, str], cwd: Path, **kwargs: Any) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        "bash", "-euo", "pipefail", "-c", script, env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE, **kwargs
    )


async def _run(script: str, env: dict[str, str], cwd: Path) -> str:
    process = await _bash(script, env, cwd, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, f"{script}\n{err.decode()}"
    return out.decode()


async def test_the_worked_example_runs_as_written(make_emulator: Any, nats_server: Any, tmp_path: Path) -> None:
    setup, terminals, robot_py = (_example(f"encryption-{n}") for n in ("setup", "terminals", "robot"))
    keys = [line for line in _commands(setup) if line.startswith("alien keys generate")]
    exports = [line for line in _commands(setup) if line.startswith("export ")]
    robot, tail, send = _commands(terminals)
    assert len(keys) == 2 and len(exports) == 3 and robot == "python robot.py"
    assert tail.startswith("alien tail --decrypt") and send.startswith("alien send-command")

    emulator = make_emulator(dialect="v0.0.1")
    work = tmp_path / "example"
    work.mkdir()
    (work / "robot.py").write_text(robot_py)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIEN_") and k not in ("ORG_NAME", "ENTITY_NAME")}
    env.update(MOTHERSHIP_URL=emulator.url, NATS_URL=nats_server.url, PATH=f"{ALIEN.parent}:{env['PATH']}")
    for line in keys:
        assert (await _run(line, env, work)).startswith("X")
    robot_settings = "\n".join(exports)

    robot_process = await _bash(f"{robot_settings}\nexec {robot}", env, work)
    tail_process: asyncio.subprocess.Process | None = None
    try:
        # what a person waits for by eye: the robot listens (so its ids are saved), then the tail does
        await _wait_for_subscriber(nats_server, "alien-rover-1", 1, timeout=60)
        tail_process = await _bash(f"exec {tail}", env, work, stderr=asyncio.subprocess.PIPE)
        await _wait_for_subscriber(nats_server, "alien-tail", 2, timeout=60)
        lifecycle = [json.loads(line)["event_type"] for line in (await _run(send, env, work)).splitlines()]
        assert lifecycle == ["command_received", "command_completed"]
        robot_out, _ = await asyncio.wait_for(robot_process.communicate(), 60)
        assert robot_process.returncode == 0
        assert robot_out.decode().strip() == "geofence: [[47.37, 8.54], [47.38, 8.55]]"
        assert tail_process.stdout is not None
        line = (await asyncio.wait_for(_line_with(tail_process.stdout, "camera="), 30)).decode()
        assert ' seed lat=47.376900 lon=8.541700 alt=408.0m camera={"faces":2}' in line
    finally:
        for process in (robot_process, tail_process):
            if process is not None and process.returncode is None:
                process.send_signal(signal.SIGINT)
        await asyncio.wait_for(robot_process.wait(), 30)
        if tail_process is not None:
            _, tail_err = await asyncio.wait_for(tail_process.communicate(), 30)
    assert tail_process.returncode == 0, tail_err.decode()  # Ctrl-C is the normal end of a tail
    (reading,) = [json.loads(m.data) for m in emulator.telemetry()]
    assert is_sealed(reading["data"]["camera"]) and reading["data"]["position"]["latitude"] == 47.3769
    assert all(b"47.38" not in m.data for m in emulator.commands())  # the geofence went sealed


async def _line_with(stream: asyncio.StreamReader, words: str) -> bytes:
    while True:
        line = await stream.readline()
        assert line, f"the tail ended without a line holding {words!r}"
        if words.encode() in line:
            return line
