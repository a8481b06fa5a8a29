"""A batch of 100 readings (`publish_telemetry_batch`) against 100 single calls: msg/s and CPU per message.

Both through the durable outbox into the stream, in a process of their own (bench/batch_child.py),
alternating repetition by repetition so both see the same machine. The rate is counted in the
stream from the server's timestamps; CPU is the child's own, from the first reading to the last
PubAck, divided by the readings.
"""

from __future__ import annotations

import asyncio

from common import Figure, Servers, Settings, run_json, stored_since, stream_last_seq

GROUP = 100


def once(servers: Servers, settings: Settings, mode: str) -> tuple[float, float]:
    count = max(GROUP, settings.nats_count // GROUP * GROUP)
    env = servers.client_env(
        ALIEN_CONFIG_FILE=str(servers.workdir / "batch.identity.json"),
        ALIEN_DATA_DIR=str(servers.workdir / "batch.data"),
        ENTITY_NAME="bench-batch",
        ENTITY_TYPE="rover",
        ALIEN_HEARTBEAT_PERIOD_S="0",
        ALIEN_OUTBOX_MAX_MESSAGES=str(count * 2),
    )
    before = asyncio.run(stream_last_seq(servers.nats.url))
    result = run_json(["bench/batch_child.py", mode, "--count", str(count)], env, timeout=300)
    stored = asyncio.run(stored_since(servers.nats.url, before, settle_s=0.5))
    if stored["count"] < count or not result["flushed"] or result["dropped"]:
        raise RuntimeError(f"{mode}: {stored['count']} of {count} stored, {result}")
    return float(stored["rate"]), 1e6 * float(result["cpu_s"]) / count


def run(servers: Servers, settings: Settings, done: dict[str, Figure]) -> list[Figure]:
    singles: list[tuple[float, float]] = []
    batches: list[tuple[float, float]] = []
    for _ in range(1 if settings.smoke else settings.repeats):  # the smoke run checks the harness only
        singles.append(once(servers, settings, "singles"))
        batches.append(once(servers, settings, "batch"))
    single_rate = Figure(
        "batch_singles_rate", "100 single publish_telemetry calls, durable outbox", "msg/s", [r for r, _ in singles]
    )
    single_cpu = Figure(
        "batch_singles_cpu", "100 single publish_telemetry calls: CPU per message", "us", [c for _, c in singles]
    )
    single_cpu.higher_is_better = False
    batch_rate = Figure(
        "batch_rate",
        "publish_telemetry_batch of 100, durable outbox",
        "msg/s",
        [r for r, _ in batches],
        single_rate.median,
        "100 single calls",
    )
    batch_cpu = Figure(
        "batch_cpu",
        "publish_telemetry_batch of 100: CPU per message",
        "us",
        [c for _, c in batches],
        single_cpu.median,
        "100 single calls",
    )
    batch_cpu.higher_is_better = False
    batch_rate.note = (
        "one SQLite transaction for the 100 rows instead of one autocommit per reading; each reading stays its "
        "own message with its own Nats-Msg-Id (docs/library.md#batches-of-readings)"
    )
    return [single_rate, batch_rate, single_cpu, batch_cpu]
