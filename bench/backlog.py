"""Draining the backlog an outage left in the durable outbox: msg/s and memory."""

from __future__ import annotations

import asyncio

from common import Figure, Servers, Settings, at_least, at_most, run_json, stored_since, stream_last_seq


def run(servers: Servers, settings: Settings, done: dict[str, Figure]) -> list[Figure]:
    env = servers.client_env(
        ALIEN_CONFIG_FILE=str(servers.workdir / "drain.identity.json"),
        ALIEN_DATA_DIR=str(servers.workdir / "drain.data"),
        ENTITY_NAME="bench-drain",
        ENTITY_TYPE="rover",
        ALIEN_HEARTBEAT_PERIOD_S="0",
        ALIEN_OUTBOX_MAX_MESSAGES=str(settings.backlog * 2),
    )
    run_json(["bench/nats_child.py", "library", "--count", "1"], env, timeout=60)  # registers the entity
    rates, peaks, growth = [], [], []
    for _ in range(settings.repeats):
        before = asyncio.run(stream_last_seq(servers.nats.url))
        out = run_json(["bench/nats_child.py", "drain", "--count", str(settings.backlog)], env, timeout=600)
        stored = asyncio.run(stored_since(servers.nats.url, before, settle_s=0.5))
        if stored["count"] < settings.backlog or not out["flushed"]:
            raise RuntimeError(f"drain: {stored['count']} of {settings.backlog} stored")
        rates.append(stored["rate"])
        peaks.append(out["rss_peak_mib"])
        growth.append(out["rss_peak_mib"] - out["rss_start_mib"])
    bare = done.get("nats_publish_async")
    return [
        at_least(
            Figure(
                "backlog_drain",
                f"backlog drain after an outage ({settings.backlog} messages)",
                "msg/s",
                rates,
                bare.median if bare else None,
                "publish_async",
            ),
            ratio=0.7,
        ),
        Figure("backlog_rss_peak", "backlog drain: peak RSS of the client process", "MiB", peaks),
        at_most(Figure("backlog_rss_growth", "backlog drain: RSS growth while draining", "MiB", growth), 20),
    ]
