"""ROS -> JetStream throughput, and the ROS-free path, against same-run baselines."""

from __future__ import annotations

import asyncio
import json
import subprocess
from typing import Any

import psutil
from common import (
    PYTHON,
    Figure,
    Servers,
    Settings,
    at_least,
    at_most,
    bridge_params,
    bridge_process,
    run_json,
    say,
    stored_since,
    stream_last_seq,
)


def flood_args(settings: Settings, *extra: str) -> list[str]:
    return ["bench/ros_flood.py", "--count", str(settings.flood_count), "--rate", str(settings.flood_rate), *extra]


def rclpy_ceiling(servers: Servers, settings: Settings, executor: str) -> list[float]:
    rates = []
    env = servers.client_env()
    for _ in range(settings.repeats):
        sink = subprocess.Popen(
            [PYTHON, "bench/ros_sink.py", "--executor", executor], env=env, stdout=subprocess.PIPE, text=True
        )
        try:
            assert sink.stdout is not None
            sink.stdout.readline()  # {"ready": true}
            run_json(flood_args(settings), env, timeout=120)
            out, _ = sink.communicate(timeout=60)
        finally:
            if sink.poll() is None:
                sink.kill()
                sink.wait()
        rates.append(float(json.loads(out.strip().splitlines()[-1])["rate"]))
    return rates


def bridge_flood(servers: Servers, settings: Settings) -> tuple[list[float], list[float], list[dict[str, Any]]]:
    """Rates counted in the stream, and loss = fixes the bridge received minus positions stored."""
    params = bridge_params(servers, "flood", **{"fix.rate_hz": 0.0, "fix.qos": "reliable"})
    rates: list[float] = []
    losses: list[float] = []
    last: dict[str, Any] = {}
    details: list[dict[str, Any]] = []
    harness = psutil.Process()
    with bridge_process(servers, params, ALIEN_HEARTBEAT_PERIOD_S="0") as proc:
        bridge_proc = psutil.Process(proc.pid)
        for _ in range(settings.repeats):
            before = asyncio.run(stream_last_seq(servers.nats.url))
            cpu_before = (sum(harness.cpu_times()[:2]), sum(bridge_proc.cpu_times()[:2]))
            flood = run_json(flood_args(settings, "--watch-bridge"), servers.client_env(), timeout=300)
            stored = asyncio.run(stored_since(servers.nats.url, before))
            cpu = (sum(harness.cpu_times()[:2]) - cpu_before[0], sum(bridge_proc.cpu_times()[:2]) - cpu_before[1])
            bridge = flood["bridge"]
            received = int(bridge.get("received.fix", 0)) - int(last.get("received.fix", 0))
            dropped = int(bridge.get("dropped", 0))
            rates.append(stored["rate"])
            losses.append(float(received - stored["count"] + dropped))
            last = bridge
            details.append(
                {
                    "offered": round(flood["offered_rate"]),
                    "received": received,
                    "stored": stored["count"],
                    "dropped": dropped,
                    "depth": bridge.get("queue_depth"),
                    "cpu_s_harness_incl_emulator": round(cpu[0], 2),
                    "cpu_s_bridge": round(cpu[1], 2),
                }
            )
            say(f"bridge flood: {details[-1]}, stored {stored}")
    return rates, losses, details


def nats_rates(servers: Servers, settings: Settings, mode: str) -> list[float]:
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
    rates = []
    for _ in range(settings.repeats):
        before = asyncio.run(stream_last_seq(servers.nats.url))
        run_json(["bench/nats_child.py", mode, "--count", str(settings.nats_count)], env, timeout=300)
        stored = asyncio.run(stored_since(servers.nats.url, before, settle_s=0.5))
        if stored["count"] < settings.nats_count:
            raise RuntimeError(f"{mode}: {stored['count']} of {settings.nats_count} stored")
        rates.append(stored["rate"])
    return rates


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
    rates, losses, details = bridge_flood(servers, settings)
    bridge = at_least(
        Figure(
            "ros_to_jetstream",
            "ROS -> JetStream through the bridge (NavSatFix flood)",
            "msg/s",
            rates,
            single.median,
            "rclpy ceiling",
        ),
        ratio=0.9,
    )
    bridge.extra["repetitions"] = details
    bridge.note = (
        "the bridge is one Python process: rclpy's executor thread and the client's asyncio thread share one GIL "
        "(about 0.8 core of CPU in the flood), so it pays rclpy's receive cost plus the library path per message; "
        "see bench/README.md (profile)"
    )
    events.note = (
        "cannot run the bridge with these wheels: RuntimeError 'Guard conditions not supported', and its spin() "
        "dispatches nothing (measured with a spin_once loop); the bridge keeps SingleThreadedExecutor"
    )
    loss = at_most(Figure("ros_to_jetstream_loss", "messages the bridge received but did not store", "msg", losses), 0)
    library = at_least(
        Figure(
            "library_throughput",
            "publish_telemetry through the durable outbox",
            "msg/s",
            nats_rates(servers, settings, "library"),
            bare.median,
            "publish_async",
        ),
        ratio=0.7,
    )
    library.note = (
        "each call writes its row to SQLite before it returns (the durable outbox's guarantee, ~26 us) and encodes "
        "the reading (~20 us): more than the whole per-message budget of 0.7 x bare publish_async; see bench/README.md"
    )
    return [single, events, bare, bridge, loss, library]
