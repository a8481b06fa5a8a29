"""ROS -> JetStream throughput, and the ROS-free path, against same-run baselines."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from dataclasses import dataclass
from typing import Any

import nats
import psutil
from common import (
    EVENTS_STREAM,
    PYTHON,
    TELEMETRY_STREAM,
    Figure,
    Servers,
    Settings,
    at_least,
    at_most,
    bridge_params,
    bridge_process,
    processing_paused,
    run_json,
    say,
    stored_since,
    stream_last_seq,
)


@dataclass(frozen=True)
class Flood:
    """One input type of the bridge, flooded: where its readings are stored and how many messages each is."""

    kind: str  # bench/ros_messages.py
    channel: str  # the bridge's rate parameters: <channel>.rate_hz, <channel>.qos
    stream: str
    messages_per_reading: int


FLOODS = {
    "fix": Flood("fix", "fix", TELEMETRY_STREAM, 1),  # GPS_RAW_INT
    "battery": Flood("battery", "battery", TELEMETRY_STREAM, 2),  # SYS_STATUS, BATTERY_STATUS
    "diagnostics": Flood("diagnostics", "diagnostics", EVENTS_STREAM, 1),  # a `telemetry` event (no MAVLink field)
}


def flood_args(settings: Settings, kind: str, *extra: str) -> list[str]:
    count = settings.flood_count if kind == "fix" else settings.type_flood_count
    return ["bench/ros_flood.py", "--type", kind, "--count", str(count), "--rate", str(settings.flood_rate), *extra]


def rclpy_ceiling(servers: Servers, settings: Settings, executor: str, kind: str = "fix") -> list[float]:
    rates = []
    env = servers.client_env()
    for _ in range(settings.repeats):
        sink = subprocess.Popen(
            [PYTHON, "bench/ros_sink.py", "--executor", executor, "--type", kind],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert sink.stdout is not None
            sink.stdout.readline()  # {"ready": true}
            run_json(flood_args(settings, kind), env, timeout=120)
            out, _ = sink.communicate(timeout=60)
        finally:
            if sink.poll() is None:
                sink.kill()
                sink.wait()
        rates.append(float(json.loads(out.strip().splitlines()[-1])["rate"]))
    return rates


def bridge_flood(
    servers: Servers, settings: Settings, flood: Flood
) -> tuple[list[float], list[float], list[float], list[dict[str, Any]]]:
    """Readings/s counted in the stream, loss (received minus stored) and bridge CPU per reading (µs)."""
    params = bridge_params(
        servers, f"flood-{flood.kind}", **{f"{flood.channel}.rate_hz": 0.0, f"{flood.channel}.qos": "reliable"}
    )
    rates: list[float] = []
    losses: list[float] = []
    cpu_per_reading: list[float] = []
    last: dict[str, Any] = {}
    details: list[dict[str, Any]] = []
    harness = psutil.Process()
    received_key = f"received.{flood.kind}"
    # paused once the bridge is up: its bootsequence, processed, is how the harness knows it is
    with bridge_process(servers, params, ALIEN_HEARTBEAT_PERIOD_S="0") as proc, processing_paused(servers):
        bridge_proc = psutil.Process(proc.pid)
        for _ in range(settings.repeats):
            before = asyncio.run(stream_last_seq(servers.nats.url, flood.stream))
            cpu_before = (sum(harness.cpu_times()[:2]), sum(bridge_proc.cpu_times()[:2]))
            args = flood_args(settings, flood.kind, "--watch-bridge")
            if flood.stream == TELEMETRY_STREAM:
                out = run_json(args, servers.client_env(), timeout=300)
                stored = asyncio.run(stored_since(servers.nats.url, before, stream=flood.stream))
            else:
                out, stored = asyncio.run(flood_into_events(servers, args, before))
            cpu = (sum(harness.cpu_times()[:2]) - cpu_before[0], sum(bridge_proc.cpu_times()[:2]) - cpu_before[1])
            bridge = out["bridge"]
            received = int(bridge.get(received_key, 0)) - int(last.get(received_key, 0))
            dropped = int(bridge.get("dropped", 0)) - int(last.get("dropped", 0))
            readings = stored["count"] / flood.messages_per_reading
            rates.append(stored["rate"] / flood.messages_per_reading)
            losses.append(float(received - readings + dropped))
            cpu_per_reading.append(cpu[1] / max(1, received) * 1e6)
            last = bridge
            details.append(
                {
                    "offered": round(out["offered_rate"]),
                    "received": received,
                    "stored_readings": readings,
                    "dropped": dropped,
                    "depth": bridge.get("queue_depth"),
                    "cpu_s_harness_incl_emulator": round(cpu[0], 2),
                    "cpu_s_bridge": round(cpu[1], 2),
                }
            )
            say(f"bridge {flood.kind} flood: {details[-1]}, stored {stored}")
    return rates, losses, cpu_per_reading, details


async def flood_into_events(servers: Servers, args: list[str], before: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The flood, and what it stored in the events stream: counted there, timed as it passes (see below).

    The events stream is a work queue: the emulator's consumer deletes what it took, so the
    server's timestamps of the first and last message are gone by the time they would be read.
    The harness times their arrival on the subject instead (core NATS, as they are stored).
    """
    times: list[float] = []

    async def on_event(msg: Any) -> None:
        if b'"event_type":"telemetry"' in msg.data:
            times.append(time.monotonic())

    nc = await nats.connect(servers.nats.url)
    try:
        sub = await nc.subscribe("constellation.events.>", cb=on_event)
        out = await asyncio.to_thread(run_json, args, servers.client_env(), 300)
        count = await stored_since(servers.nats.url, before, stream=EVENTS_STREAM, count_only=True)
        await sub.unsubscribe()
    finally:
        await nc.close()
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return out, {"count": count["count"], "rate": (len(times) - 1) / span if span > 0 else 0.0, "span_s": span}


def nats_rates(servers: Servers, settings: Settings, mode: str, callers: int = 1) -> list[float]:
    env = servers.client_env(
        ALIEN_CONFIG_FILE=str(servers.workdir / "nats.identity.json"),
        ALIEN_DATA_DIR=str(servers.workdir / "nats.data"),
        ENTITY_NAME="bench-nats",
        ENTITY_TYPE="rover",
        ALIEN_HEARTBEAT_PERIOD_S="0",
        ALIEN_OUTBOX_MAX_MESSAGES=str(settings.nats_count * 2),
    )
    if mode == "bare":  # registers the entity once, so the bare publisher has its subject
        run_json(["bench/nats_child.py", "library", "--count", "1"], env, timeout=60)
    with processing_paused(servers):
        return [one_nats_rate(servers, settings, mode, callers, env) for _ in range(settings.repeats)]


def one_nats_rate(servers: Servers, settings: Settings, mode: str, callers: int, env: dict[str, str]) -> float:
    before = asyncio.run(stream_last_seq(servers.nats.url))
    args = ["bench/nats_child.py", mode, "--count", str(settings.nats_count), "--callers", str(callers)]
    run_json(args, env, timeout=300)
    stored = asyncio.run(stored_since(servers.nats.url, before, settle_s=0.5))
    if stored["count"] < settings.nats_count:
        raise RuntimeError(f"{mode}: {stored['count']} of {settings.nats_count} stored")
    return float(stored["rate"])


def run(servers: Servers, settings: Settings, done: dict[str, Figure]) -> list[Figure]:
    single = Figure(
        "rclpy_ceiling",
        "bare rclpy subscriber ceiling (SingleThreadedExecutor, spin)",
        "msg/s",
        rclpy_ceiling(servers, settings, "single"),
    )
    events = Figure(
        "rclpy_ceiling_events",
        "bare rclpy subscriber ceiling (EventsExecutor)",
        "msg/s",
        rclpy_ceiling(servers, settings, "events"),
        single.median,
        "SingleThreaded",
    )
    bare = Figure(
        "nats_publish_async",
        "bare nats-py publish_async into the stream",
        "msg/s",
        nats_rates(servers, settings, "bare"),
    )
    figures = [single, events, bare]
    losses: list[list[float]] = []
    for flood in FLOODS.values():
        if flood.kind == "fix":
            ceiling = single
        else:
            ceiling = Figure(
                f"rclpy_ceiling_{flood.kind}",
                f"bare rclpy subscriber ceiling, {flood.kind} (SingleThreadedExecutor, spin)",
                "msg/s",
                rclpy_ceiling(servers, settings, "single", flood.kind),
            )
            figures.append(ceiling)
        rates, loss, cpu, details = bridge_flood(servers, settings, flood)
        losses.append(loss)
        suffix, what = ("", "NavSatFix") if flood.kind == "fix" else (f"_{flood.kind}", flood.kind)
        bridge = at_least(
            Figure(
                f"ros_to_jetstream{suffix}",
                f"ROS -> JetStream through the bridge ({what} flood)",
                "msg/s",
                rates,
                ceiling.median,
                "rclpy ceiling",
            ),
            ratio=1.0,
        )
        bridge.extra["repetitions"] = details
        figures.append(bridge)
        if flood.kind == "fix":
            figures.append(
                at_least(
                    Figure(
                        "ros_to_jetstream_vs_events",
                        "ROS -> JetStream through the bridge (NavSatFix flood), stretch",
                        "msg/s",
                        rates,
                        events.median,
                        "EventsExecutor ceiling",
                    ),
                    ratio=1.0,
                )
            )
            figures.append(Figure("bridge_cpu_flood", "bridge CPU per message, NavSatFix flood", "us", cpu))
    loss = at_most(
        Figure(
            "ros_to_jetstream_loss",
            "messages the bridge received but did not store (the three floods)",
            "msg",
            [sum(values) for values in zip(*losses, strict=True)],
        ),
        0,
    )
    figures.append(loss)
    for callers in (1, settings.callers):
        library = at_least(
            Figure(
                "library_throughput" if callers == 1 else "library_throughput_concurrent",
                "publish_telemetry through the durable outbox"
                + (", one caller" if callers == 1 else f", {callers} concurrent callers"),
                "msg/s",
                nats_rates(servers, settings, "library", callers),
                bare.median,
                "publish_async",
            ),
            ratio=0.7,
        )
        figures.append(library)
    return figures
