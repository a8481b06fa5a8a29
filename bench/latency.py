"""ROS publish -> message readable from the stream by a consumer, at 100 Hz."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import nats
from common import (
    TELEMETRY_STREAM,
    Figure,
    Servers,
    Settings,
    at_most,
    bridge_params,
    bridge_process,
    percentile,
    processing_paused,
    run_json,
)
from nats.js.api import DeliverPolicy

from alien.wire import telemetry_subject


async def one_run(servers: Servers, settings: Settings, subject: str) -> list[float]:
    count = int(settings.latency_s * 100)
    received: dict[int, float] = {}
    nc = await nats.connect(servers.nats.url)
    try:
        js = nc.jetstream()

        async def on_message(msg: Any) -> None:
            now = time.time()
            body = json.loads(msg.data)
            if body.get("message_type") in ("GLOBAL_POSITION_INT", "GPS_RAW_INT"):
                received[round(body["data"]["alt"] / 1000)] = now

        sub = await js.subscribe(
            subject, cb=on_message, ordered_consumer=True, deliver_policy=DeliverPolicy.NEW, stream=TELEMETRY_STREAM
        )
        args = ["bench/ros_flood.py", "--count", str(count), "--rate", "100", "--stamps"]
        flood = await asyncio.to_thread(run_json, args, servers.client_env(), 120)
        deadline = time.monotonic() + 10
        while len(received) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # bounded wait for the last messages
        await sub.unsubscribe()
    finally:
        await nc.close()
    stamps = flood["stamps"]
    if len(received) < count:
        raise RuntimeError(f"latency: {len(received)} of {count} messages read back from the stream")
    return [(received[i] - stamps[i]) * 1000 for i in range(count)]


def run(servers: Servers, settings: Settings, done: dict[str, Figure]) -> list[Figure]:
    params = bridge_params(servers, "latency", **{"fix.rate_hz": 0.0, "fix.qos": "reliable"})
    p50, p95, p99, worst = [], [], [], []
    with bridge_process(servers, params, ALIEN_HEARTBEAT_PERIOD_S="0"), processing_paused(servers):
        identity = json.loads((servers.workdir / "latency.identity.json").read_text())
        subject = telemetry_subject(identity["org_id"], identity["entity_id"])
        for _ in range(settings.repeats):
            samples = asyncio.run(one_run(servers, settings, subject))
            p50.append(percentile(samples, 50))
            p95.append(percentile(samples, 95))
            p99.append(percentile(samples, 99))
            worst.append(max(samples))
    return [
        at_most(Figure("latency_p50", "ROS publish -> readable from the stream, p50 (100 Hz)", "ms", p50), 2),
        Figure("latency_p95", "ROS publish -> readable from the stream, p95", "ms", p95),
        at_most(Figure("latency_p99", "ROS publish -> readable from the stream, p99", "ms", p99), 10),
        Figure("latency_max", "ROS publish -> readable from the stream, max", "ms", worst),
    ]
