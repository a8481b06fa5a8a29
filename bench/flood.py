"""A flood of hostile commands: commands/s handled, log bytes per command, and no older event lost.

A client (bench/flood_child.py, a process of its own, outbox of markers + 50 messages) queues N
marker events while the mothership's events stream is withheld, so they wait in its outbox. Then
the harness publishes the flood on the entity's command subject over core NATS (as anyone on an
unauthenticated v0.0.1 network can): malformed JSON, unsigned critical commands, unknown types,
forged log lines, and 1 in 100 with a 30 KB field. Once the client has received every command the
stream is given back, and every marker must reach the server. Twice: with the shipped intake
limit (ALIEN_COMMAND_RATE_LIMIT_HZ=100, ALIEN_COMMAND_BURST=200: most of the flood dropped unread),
and with it off (every command parsed and rejected). The rejection log lines aggregate beyond 10
per 10 s in both (ALIEN_COMMAND_REJECTIONS_LOGGED).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import time
import uuid
from typing import Any

import nats
from common import PYTHON, Figure, Servers, Settings, at_most

from alien_testing.hostile import hostile_command

EVENTS_STREAM = "CONSTELLATION_EVENTS"


class Child:
    """bench/flood_child.py, spoken to in JSON lines."""

    def __init__(self, env: dict[str, str], markers: int, tag: str) -> None:
        self.process = subprocess.Popen(
            [PYTHON, "bench/flood_child.py", "--markers", str(markers), "--tag", tag],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def tell(self, **fields: Any) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(fields) + "\n")
        self.process.stdin.flush()

    def hear(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # the child bounds each of its steps
        if not line:
            self.process.wait(10)
            assert self.process.stderr is not None
            raise RuntimeError(
                f"flood_child.py exited ({self.process.returncode}): {self.process.stderr.read()[-2000:]}"
            )
        return dict(json.loads(line))

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


async def publish(nats_url: str, subject: str, count: int) -> None:
    nc = await nats.connect(nats_url)
    try:
        for number in range(count):
            await nc.publish(subject, hostile_command(number))
        await nc.flush()
    finally:
        await nc.close()


def one_flood(servers: Servers, settings: Settings, name: str, limits: dict[str, str]) -> dict[str, Any]:
    tag = f"{name}-{uuid.uuid4().hex[:8]}"
    env = servers.client_env(
        ALIEN_CONFIG_FILE=str(servers.workdir / f"flood-{name}.identity.json"),
        ALIEN_DATA_DIR=str(servers.workdir / f"flood-{name}.data"),
        ENTITY_NAME=f"bench-flood-{name}",
        ENTITY_TYPE="rover",
        ALIEN_COMMAND_INTAKE="core",
        ALIEN_HEARTBEAT_PERIOD_S="0",
        ALIEN_STATS_LOG_INTERVAL_S="0",
        ALIEN_COMMAND_CRITICAL_TYPES="return_to_base",
        ALIEN_OUTBOX_MAX_MESSAGES=str(settings.flood_markers + 50),
        **limits,
    )
    emulator = servers.emulator
    emulator.withhold_stream(EVENTS_STREAM, True)
    child = Child(env, settings.flood_markers, tag)
    try:
        queued = child.hear()
        if queued["queued"] < settings.flood_markers:
            raise RuntimeError(f"only {queued['queued']} of {settings.flood_markers} markers waited in the outbox")
        child.tell(expect=settings.flood_commands, started=time.time())
        asyncio.run(publish(servers.nats.url, queued["subject"], settings.flood_commands))
        handled = child.hear()
        emulator.withhold_stream(EVENTS_STREAM, False)
        child.tell(drain=True)
        done = child.hear()
        child.process.wait(60)
    finally:
        emulator.withhold_stream(EVENTS_STREAM, False)
        child.close()

    def markers() -> int:
        return sum(1 for m in emulator.events() if m.subject.endswith(".flood_marker") and tag.encode() in m.data)

    try:
        emulator.wait_for(lambda: markers() >= settings.flood_markers, 60, "markers")
    except TimeoutError:
        pass  # counted as lost below
    return {
        "rate": settings.flood_commands / handled["handled_s"],
        "log_bytes_per_command": done["log_bytes"] / settings.flood_commands,
        "log_lines": done["log_lines"],
        "lost": settings.flood_markers - markers(),
        "counts": handled["counts"],
        "dropped": done["dropped"],
        "flushed": done["flushed"],
    }


def run(servers: Servers, settings: Settings, done: dict[str, Figure]) -> list[Figure]:
    variants = {
        "limited": {},
        "unlimited": {"ALIEN_COMMAND_RATE_LIMIT_HZ": "0"},
        # the baseline: every rejection logged and reported on its own (no digest, docs/commands.md#floods)
        "every": {"ALIEN_COMMAND_RATE_LIMIT_HZ": "0", "ALIEN_COMMAND_REJECTIONS_LOGGED": str(10**9)},
    }
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    for _ in range(settings.repeats):
        for name, limits in variants.items():
            results[name].append(one_flood(servers, settings, name, limits))
    count, markers = settings.flood_commands, settings.flood_markers
    every = results["every"]
    every_log = statistics.median(r["log_bytes_per_command"] for r in every)
    figures: list[Figure] = [
        Figure(
            "flood_every_log",
            f"command flood ({count}), limit off, every rejection logged: log per command",
            "bytes",
            [r["log_bytes_per_command"] for r in every],
            higher_is_better=False,
        ),
        at_most(
            Figure(
                "flood_every_lost",
                f"command flood ({count}), limit off, every rejection reported: earlier events lost (of {markers})",
                "events",
                [float(r["lost"]) for r in every],
                extra={"dropped": every[-1]["dropped"]},
            ),
            0,
        ),
    ]
    for name, title in (("limited", "shipped intake limit"), ("unlimited", "intake limit off")):
        runs = results[name]
        last = runs[-1]
        extra = {"counts": last["counts"], "dropped": last["dropped"], "log_lines": [r["log_lines"] for r in runs]}
        figures += [
            Figure(
                f"flood_{name}_rate",
                f"command flood ({count}), {title}: handled",
                "commands/s",
                [r["rate"] for r in runs],
                extra=extra,
            ),
            at_most(
                Figure(
                    f"flood_{name}_log",
                    f"command flood ({count}), {title}: log per command",
                    "bytes",
                    [r["log_bytes_per_command"] for r in runs],
                    every_log,
                    "every rejection logged",
                ),
                1,
            ),
            at_most(
                Figure(
                    f"flood_{name}_lost",
                    f"command flood ({count}), {title}: earlier events lost (of {markers})",
                    "events",
                    [float(r["lost"]) for r in runs],
                ),
                0,
            ),
        ]
    return figures
