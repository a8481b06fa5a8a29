"""NATS command publish -> ROS topic message received, and -> action goal accepted."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time

import nats
from common import PYTHON, Figure, Servers, Settings, at_most, bridge_params, bridge_process, percentile

from alien.wire import command_subject


async def send(servers: Servers, subject: str, count: int) -> tuple[dict[int, float], dict[int, float]]:
    """`count` move commands, then `count` fib goals, 20 ms apart (not a flood: a latency figure)."""
    nc = await nats.connect(servers.nats.url)
    sent: tuple[dict[int, float], dict[int, float]] = ({}, {})
    try:
        for kind, times in (("move", sent[0]), ("fib", sent[1])):
            for i in range(count):
                params = {"linear": {"x": float(i)}} if kind == "move" else {"order": i}
                body = json.dumps({"type": kind, "command_id": f"{kind}-{time.time_ns()}-{i}", "params": params})
                times[i] = time.time()
                await nc.publish(subject, body.encode())
                await nc.flush()
                await asyncio.sleep(0.02)  # spacing between commands: each is timed on its own
    finally:
        await nc.close()
    return sent


def run(servers: Servers, settings: Settings, done: dict[str, Figure]) -> list[Figure]:
    params = bridge_params(
        servers,
        "commands",
        commands=["move", "fib"],
        **{
            "commands.move.kind": "topic",
            "commands.move.type": "geometry_msgs/msg/Twist",
            "commands.move.target": "cmd_vel",
            "commands.fib.kind": "action",
            "commands.fib.type": "test_msgs/action/Fibonacci",
            "commands.fib.target": "fib",
        },
    )
    topic_p99, action_p99, topic_p50, action_p50 = [], [], [], []
    with bridge_process(servers, params):
        identity = json.loads((servers.workdir / "commands.identity.json").read_text())
        subject = command_subject(identity["org_id"], identity["entity_id"])
        for _ in range(settings.repeats):
            robot = subprocess.Popen(
                [PYTHON, "bench/ros_commands.py", "--count", str(settings.commands)],
                env=servers.client_env(),
                stdout=subprocess.PIPE,
                text=True,
            )
            try:
                assert robot.stdout is not None
                robot.stdout.readline()
                sent_topic, sent_action = asyncio.run(send(servers, subject, settings.commands))
                out, _ = robot.communicate(timeout=120)
            finally:
                if robot.poll() is None:
                    robot.kill()
                    robot.wait()
            got = json.loads(out.strip().splitlines()[-1])
            topic_ms = [(t - sent_topic[int(i)]) * 1000 for i, t in got["topic"].items()]
            action_ms = [(t - sent_action[int(i)]) * 1000 for i, t in got["action"].items()]
            if len(topic_ms) < settings.commands or len(action_ms) < settings.commands:
                raise RuntimeError(f"commands lost: {len(topic_ms)} topic, {len(action_ms)} action received")
            topic_p50.append(percentile(topic_ms, 50))
            topic_p99.append(percentile(topic_ms, 99))
            action_p50.append(percentile(action_ms, 50))
            action_p99.append(percentile(action_ms, 99))
    return [
        Figure("command_topic_p50", "command -> ROS topic message, p50", "ms", topic_p50),
        at_most(Figure("command_topic_p99", "command -> ROS topic message, p99", "ms", topic_p99), 10),
        Figure("command_action_p50", "command -> action goal accepted, p50", "ms", action_p50),
        at_most(Figure("command_action_p99", "command -> action goal accepted, p99", "ms", action_p99), 10),
    ]
