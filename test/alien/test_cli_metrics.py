"""`alien metrics`: the installed console script against a real client's endpoint, as an operator runs it."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cli_support import _alien, _cli_env, _one_error_line

from alien import AlienClient, AlienConfig


def _reading(step: int) -> dict[str, Any]:
    return {"position": {"latitude": 47.39 + step / 1e4, "longitude": 8.54, "altitude": 400.0}}


async def _publishing(client: AlienClient, period_s: float) -> None:
    step = 0
    while True:
        await client.publish_telemetry(_reading(step))
        step += 1
        await asyncio.sleep(period_s)  # the reading rate, not a wait for state


async def test_metrics_summarises_rates_depth_and_latencies_of_a_live_client(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], tmp_path: Path
) -> None:
    emulator = make_emulator(dialect="v0.1")
    config = make_config(emulator, nats_server, entity_name="HAWK-1", metrics_addr="127.0.0.1:0", heartbeat_period_s=0)
    async with AlienClient(config) as client:
        assert client.metrics_endpoint is not None and client.metrics_endpoint.url is not None
        url = client.metrics_endpoint.url
        env = _cli_env(emulator, nats_server.url, tmp_path / "cli")
        producer = asyncio.create_task(_publishing(client, 0.02))
        try:
            before = client.stats().published
            code, out, err = await _alien("metrics", url, "--interval", "1", env=env, cwd=tmp_path)
            assert (code, err) == (0, ""), err
            code, raw, err = await _alien("metrics", url, "--interval", "1", "--json", env=env, cwd=tmp_path)
            after = client.stats().published
        finally:
            producer.cancel()
    lines = out.splitlines()
    assert re.fullmatch(rf"{re.escape(url)} · rates over 1\.\ds", lines[0]), lines[0]  # 1 s and the second scrape
    assert lines[1].startswith(f"HAWK-1 ({client.config.entity_id}) · registered, connected, dialect v0.1 (mavlink)")
    rate = re.match(r"  messages  ([\d.]+)/s enqueued, ([\d.]+)/s published, 0\.0/s dropped · totals", lines[2])
    assert rate is not None and 10 <= float(rate.group(2)) <= 60, lines[2]  # 50 readings/s at most, on a busy machine
    publish = r"  publish   enqueue -> PubAck p50 [\d.]+ ms, p99 [\d.]+ ms, mean [\d.]+ ms \(\d+\)$"
    assert re.match(publish, lines[4]), lines[4]
    assert lines[-1].startswith("process   CPU ")
    summary = json.loads(raw)
    (entity,) = summary["entities"].values()
    assert before <= entity["totals"]["published"] <= after  # what the client itself counted meanwhile
    assert entity["registered"] and entity["connected"] and entity["dialect"] == "v0.1"
    publishing = entity["latency_s"]["publish"]
    assert publishing["count"] > 0 and 0 < publishing["p50"] < 1 and 0 < publishing["mean"] < 1
    assert entity["latency_s"]["rest"]["window"] == "since start"  # no REST call within the interval


async def test_metrics_reads_the_endpoint_from_the_environment_and_says_what_is_wrong(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], tmp_path: Path
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    config = make_config(emulator, nats_server, metrics_addr="127.0.0.1:0", heartbeat_period_s=0)
    async with AlienClient(config) as client:
        assert client.metrics_endpoint is not None and client.metrics_endpoint.url is not None
        address = client.metrics_endpoint.url.removeprefix("http://").removesuffix("/metrics")
        env = _cli_env(emulator, nats_server.url, tmp_path / "cli", ALIEN_METRICS_ADDR=address)
        code, out, err = await _alien("metrics", "--interval", "0", env=env, cwd=tmp_path)
        assert (code, err) == (0, "")
        assert out.splitlines()[0] == f"http://{address}/metrics · one scrape: totals only"
        # a bare HOST:PORT is the endpoint at /metrics
        code, out, _ = await _alien("metrics", address, "--interval", "0", "--json", env=env, cwd=tmp_path)
        assert code == 0 and json.loads(out)["url"] == f"http://{address}/metrics"
        # the mothership's REST API is no metrics endpoint
        code, _, err = await _alien("metrics", f"{emulator.url}/health", "--interval", "0", env=env, cwd=tmp_path)
        assert code == 2 and "did not answer in Prometheus' text format" in _one_error_line(err)
        code, _, err = await _alien("metrics", f"{emulator.url}/metrics", "--interval", "0", env=env, cwd=tmp_path)
        assert code == 2 and "answered 404" in _one_error_line(err)
    # the client closed: nothing listens there any more
    code, _, err = await _alien("metrics", "--interval", "0", env=env, cwd=tmp_path)
    assert code == 1 and f"the metrics endpoint http://{address}/metrics is not reachable" in _one_error_line(err)
    env.pop("ALIEN_METRICS_ADDR")
    code, _, err = await _alien("metrics", env=env, cwd=tmp_path)
    assert code == 2 and "set ALIEN_METRICS_ADDR" in _one_error_line(err)
    env["ALIEN_METRICS_ADDR"] = "127.0.0.1:0"
    code, _, err = await _alien("metrics", env=env, cwd=tmp_path)
    assert code == 2 and "picks a free port; give the endpoint's URL" in _one_error_line(err)
    code, _, err = await _alien("metrics", "ftp://127.0.0.1:9/metrics", env=env, cwd=tmp_path)
    assert code == 2 and "is not an http:// URL" in _one_error_line(err)
