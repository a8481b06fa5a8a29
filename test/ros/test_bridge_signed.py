"""Signed commands (docs/commands.md#signed-commands) end to end through a running ROS bridge.

A real bridge node (rclpy over DDS), a real nats-server and the emulator. `move` is critical
(ALIEN_COMMAND_CRITICAL_TYPES) and mapped to `cmd_vel`; the operator's public key is trusted
(ALIEN_COMMAND_TRUSTED_KEYS). A signed `move` reaches the ROS topic and completes; unsigned,
tampered, replayed, expired, foreign-entity and untrusted ones are rejected with their reason
and never reach the topic. The operator CLI (`alien keys generate`, `alien send-command`) drives
the same bridge.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import nats
import pytest
from geometry_msgs.msg import Twist
from ros_support import spin_until
from std_msgs.msg import Empty

from alien.signing import generate_keypair, sign_command

COMMANDS = {
    "commands": ["move", "stop"],
    "commands.move.kind": "topic",
    "commands.move.type": "geometry_msgs/msg/Twist",
    "commands.move.target": "cmd_vel",
    "commands.stop.kind": "topic",
    "commands.stop.type": "std_msgs/msg/Empty",
    "commands.stop.target": "cmd/stop",
}
ROOT = Path(__file__).resolve().parents[2]
FINAL = {"command_completed", "command_failed", "command_rejected"}


def _send(nats_url: str, subject: str, *commands: dict[str, Any]) -> None:
    async def send() -> None:
        nc = await nats.connect(nats_url)
        for command in commands:
            await nc.publish(subject, json.dumps(command).encode())
        await nc.flush()
        await nc.close()

    asyncio.run(send())


def _finals(emulator: Any, command_id: str) -> list[dict[str, Any]]:
    ordered = (m.json() for m in sorted(emulator.events(), key=lambda m: m.stream_seq))
    return [e for e in ordered if e["event_type"] in FINAL and (e.get("data") or {}).get("command_id") == command_id]


def test_signed_critical_command_runs_and_bad_ones_are_rejected(
    ros: dict[str, Any],
    make_emulator: Any,
    start_bridge: Any,
    nats_server: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    operator, stranger = generate_keypair(), generate_keypair()
    monkeypatch.setenv("ALIEN_COMMAND_TRUSTED_KEYS", operator.public_key)
    monkeypatch.setenv("ALIEN_COMMAND_CRITICAL_TYPES", "move")
    emulator = make_emulator(dialect="v0.0.1")
    node = start_bridge(emulator, **COMMANDS)
    config = node.alien.client.config
    assert config.entity_id is not None
    entity_id = config.entity_id
    subject = f"constellation.commands.{config.org_id}.{entity_id}"
    executor, helper = ros["executor"], ros["helper"]
    twists: list[Twist] = []
    stops: list[Empty] = []
    helper.create_subscription(Twist, "cmd_vel", twists.append, 10)
    helper.create_subscription(Empty, "cmd/stop", stops.append, 10)
    spin_until(executor, lambda: helper.count_publishers("cmd_vel") > 0, 5, "the cmd_vel publisher")

    def outcome(command_id: str, nth: int = 1) -> dict[str, Any]:
        spin_until(executor, lambda: len(_finals(emulator, command_id)) >= nth, 15, f"outcome {nth} of {command_id}")
        return _finals(emulator, command_id)[nth - 1]

    move = {"type": "move", "params": {"linear": {"x": 0.5}, "angular": {"z": -0.2}}, "ttl_s": 60}

    # 1. signed by the trusted operator: executed on the ROS topic, completed
    signed = sign_command({**move, "command_id": "sig-1"}, operator.seed, entity_id)
    _send(nats_server.url, subject, signed)
    done = outcome("sig-1")
    assert done["event_type"] == "command_completed" and done["data"]["result"] == {"published": "/cmd_vel"}
    spin_until(executor, lambda: bool(twists), 5, "the Twist")
    assert (twists[0].linear.x, twists[0].angular.z) == (0.5, -0.2)

    # 2. the rejections, each with its reason
    tampered = sign_command({**move, "command_id": "tam-1"}, operator.seed, entity_id)
    tampered["params"] = {"linear": {"x": 5.0}}  # someone on the path speeds the robot up
    old = (datetime.now(timezone.utc) - timedelta(minutes=2)).isoformat().replace("+00:00", "Z")
    expired = sign_command({"type": "move", "command_id": "exp-1", "issued_at": old}, operator.seed, entity_id)
    bad = {
        "uns-1": ({"type": "move", "command_id": "uns-1", "params": move["params"]}, "unsigned"),
        "tam-1": (tampered, "bad_signature"),
        "exp-1": (expired, "expired"),  # no ttl_s: ALIEN_COMMAND_MAX_AGE_S (30 s) applies
        "oth-1": (sign_command({**move, "command_id": "oth-1"}, operator.seed, "another-robot"), "wrong_entity"),
        "str-1": (sign_command({**move, "command_id": "str-1"}, stranger.seed, entity_id), "untrusted_key"),
    }
    _send(nats_server.url, subject, signed, *(command for command, _ in bad.values()))
    replayed = outcome("sig-1", nth=2)
    assert replayed["event_type"] == "command_rejected" and replayed["data"]["reason"] == "replayed"
    for command_id, (_, reason) in bad.items():
        event = outcome(command_id)
        assert (event["event_type"], event["data"]["reason"]) == ("command_rejected", reason), command_id
        assert event["entity_id"] == entity_id

    # 3. a non-critical command needs no signature; once it has arrived, nothing else reached cmd_vel
    _send(nats_server.url, subject, {"type": "stop", "command_id": "stop-1"})
    assert outcome("stop-1")["event_type"] == "command_completed"
    spin_until(executor, lambda: bool(stops), 5, "the Empty")
    assert len(twists) == 1
    counts = node.alien.client._dispatcher.counts
    assert counts["accepted"] == 2 and counts["rejected"] == 6


def test_the_operator_cli_drives_the_bridge(
    ros: dict[str, Any],
    make_emulator: Any,
    start_bridge: Any,
    nats_server: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """`alien keys generate` then `alien send-command --seed-file` against the running bridge."""
    seed_file = tmp_path / "operator.nk"
    generated = subprocess.run(
        [sys.executable, "-m", "alien", "keys", "generate", "--out", str(seed_file)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    monkeypatch.setenv("ALIEN_COMMAND_TRUSTED_KEYS", generated.stdout.strip())
    monkeypatch.setenv("ALIEN_COMMAND_CRITICAL_TYPES", "move")
    node = start_bridge(make_emulator(dialect="v0.0.1"), **COMMANDS)
    config = node.alien.client.config
    assert config.org_id and config.entity_id
    executor, helper = ros["executor"], ros["helper"]
    twists: list[Twist] = []
    helper.create_subscription(Twist, "cmd_vel", twists.append, 10)
    spin_until(executor, lambda: helper.count_publishers("cmd_vel") > 0, 5, "the cmd_vel publisher")

    def send(*extra: str) -> tuple[int, list[str]]:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "NATS_URL": nats_server.url}
        env.update(ALIEN_ORG_ID=config.org_id or "", ALIEN_ENTITY_ID=config.entity_id or "")
        argv = ["send-command", "--type", "move", "--params", '{"linear": {"x": 0.25}}', "--ttl", "30", *extra]
        process = subprocess.Popen(
            [sys.executable, "-m", "alien", *argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        # the bridge publishes on the ROS thread: keep spinning while the operator waits
        spin_until(executor, lambda: process.poll() is not None, 30, "alien send-command to finish")
        out, _ = process.communicate()
        return process.returncode, [json.loads(line)["event_type"] for line in out.splitlines()]

    assert send("--seed-file", str(seed_file)) == (0, ["command_received", "command_completed"])
    spin_until(executor, lambda: bool(twists), 5, "the Twist")
    assert twists[0].linear.x == 0.25
    assert send() == (3, ["command_rejected"])  # unsigned
    assert len(twists) == 1
