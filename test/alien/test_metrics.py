"""The metrics endpoint, scraped over HTTP from a real client against nats-server and the emulator.

Each scrape is parsed with prometheus_client's own parser and held against what the client
itself says (`stats()`, `command_counts`, its link): during publishing, commands, an outage, a
message refused for good, denied publishes and registration retries.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
import pytest
from metrics_support import assert_matches_client, by_label, fetch, parse, poll, scrape, value

from alien import AlienClient, AlienConfig, AlienFleet, ConfigError
from alien.metrics.endpoint import MetricsEndpoint, check_address
from alien_testing.deployment import V01Deployment

LOOPBACK_ANY_PORT = "127.0.0.1:0"
REST = ["organizations:read", "entities:read", "entities:write"]


def _reading(step: int) -> dict[str, Any]:
    return {"position": {"latitude": 47.39 + step / 1e4, "longitude": 8.54, "altitude": 400.0}}


async def _command(nats_url: str, client: AlienClient, payload: bytes) -> None:
    nc = await nats.connect(nats_url)
    try:
        await nc.publish(f"constellation.commands.{client.config.org_id}.{client.config.entity_id}", payload)
        await nc.flush()
    finally:
        await nc.close()


def _event_types(emulator: Any) -> Counter[str]:
    return Counter(m.json()["event_type"] for m in emulator.events())


async def test_every_metric_matches_the_client_through_publishing_commands_an_outage_and_a_refusal(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig]
) -> None:
    emulator = make_emulator(dialect="v0.1")
    config = make_config(
        emulator,
        nats_server,
        entity_name="HAWK-1",
        metrics_addr=LOOPBACK_ANY_PORT,
        heartbeat_period_s=0,  # only the test's messages: the counters hold still between scrapes
        outbox_max_messages=40,
        telemetry_rate_limit_hz=0,
        telemetry_rate_limit_per_key_hz=0,
    )
    client = AlienClient(config)

    async def fail(command: dict[str, Any]) -> None:
        raise RuntimeError("the gripper is stuck")

    client.register_command_handler("grip", lambda command: {"gripped": True})
    client.register_command_handler("release", fail)
    try:
        await asyncio.wait_for(client.initialize(), 20)
        assert client.metrics_endpoint is not None and client.metrics_endpoint.url is not None
        url = client.metrics_endpoint.url
        assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")

        # --- publishing
        for step in range(20):
            await client.publish_telemetry(_reading(step))
        assert await client.flush(10)
        samples = await scrape(url)
        assert_matches_client(samples, client, "HAWK-1")
        assert client.stats().published >= 21  # bootsequence and the readings
        assert value(samples, "alien_server_dialect_info", entity="HAWK-1", dialect="v0.1") == 1
        # every REST attempt observed once, by method (the emulator saw each of them)
        methods = Counter(r.method for r in emulator.requests())
        assert by_label(samples, "alien_rest_request_duration_seconds_count", "method", entity="HAWK-1") == methods

        # --- commands: completed, failed, of an unknown type, malformed
        for payload in (
            {"type": "grip", "command_id": "c-1"},
            {"type": "release", "command_id": "c-2"},
            {"type": "fly_to_moon", "command_id": "c-3"},
        ):
            await _command(nats_server.url, client, json.dumps(payload).encode())
        await _command(nats_server.url, client, b"{not json")
        await emulator.wait_for_async(
            lambda: (
                _event_types(emulator)["command_rejected"] == 2
                and _event_types(emulator)["command_completed"] == 1
                and _event_types(emulator)["command_failed"] == 1
            ),
            10,
            "every command's final event",
        )
        assert await client.flush(10)
        samples = await scrape(url)
        assert_matches_client(samples, client, "HAWK-1")
        assert by_label(samples, "alien_commands_total", "outcome", entity="HAWK-1") == {
            "accepted": 2,
            "rejected": 2,
            "rate_limited": 0,
            "completed": 1,
            "failed": 1,
        }
        assert set(by_label(samples, "alien_commands_rejected_total", "reason", entity="HAWK-1")) == {
            "unknown_type",
            "malformed_json",
        }

        # --- an outage longer than the outbox: readings wait, then the oldest are dropped, counted
        nats_server.kill()

        async def link_down_and_settled() -> bool:
            now = await scrape(url)
            return value(now, "alien_nats_connected", entity="HAWK-1") == 0 and client.stats().in_flight == 0

        await poll(link_down_and_settled, 15, "the endpoint to say the link is down")
        for step in range(60):
            await client.publish_telemetry(_reading(100 + step))
        samples = await scrape(url)
        assert_matches_client(samples, client, "HAWK-1")
        assert value(samples, "alien_messages_dropped_total", entity="HAWK-1", reason="full_telemetry") >= 20
        assert value(samples, "alien_outbox_messages", entity="HAWK-1") == 40
        assert value(samples, "alien_outbox_oldest_age_seconds", entity="HAWK-1") > 0

        nats_server.restart()
        assert await client.flush(20)
        samples = await scrape(url)
        assert_matches_client(samples, client, "HAWK-1")
        assert value(samples, "alien_nats_reconnects_total", entity="HAWK-1") >= 1
        assert value(samples, "alien_outbox_messages", entity="HAWK-1") == 0

        # --- a message the server can never take (over its max_payload): refused for good, parked
        await client.publish_event("core_dump", {"blob": "x" * 1_100_000})
        assert await client.flush(10)
        samples = await scrape(url)
        assert_matches_client(samples, client, "HAWK-1")
        assert value(samples, "alien_messages_parked_total", entity="HAWK-1") == 1
        assert value(samples, "alien_messages_rejected_total", entity="HAWK-1") == 1
    finally:
        await client.close()
    with pytest.raises(OSError):  # close() stops the endpoint
        fetch(url)


TELEMETRY_ONLY = {"scopes": [*REST, "nats:telemetry"]}


@pytest.mark.parametrize("v01_deployment", [TELEMETRY_ONLY], indirect=True)
async def test_denied_publishes_are_counted_as_drops_and_as_refusals(
    v01_deployment: V01Deployment, tmp_path: Path
) -> None:
    config = AlienConfig(
        **v01_deployment.edge_settings(),
        entity_name="rover-denied",
        config_file=str(tmp_path / "identity.json"),
        data_dir=tmp_path / "data",
        heartbeat_period_s=0,
        request_attempts=2,
        retry_backoff_s=0.01,
        metrics_addr=LOOPBACK_ANY_PORT,
    )
    client = AlienClient(config)
    try:
        await asyncio.wait_for(client.initialize(), 20)
        assert client.metrics_endpoint is not None and client.metrics_endpoint.url is not None
        await client.publish_event("door_opened", {"door": 1})  # this key may not publish events
        await client.publish_telemetry(_reading(0))
        assert await client.flush(10)
        samples = await scrape(client.metrics_endpoint.url)
        assert_matches_client(samples, client, "rover-denied")
        assert value(samples, "alien_messages_dropped_total", entity="rover-denied", reason="denied") >= 2
        assert value(samples, "alien_nats_denials_total", entity="rover-denied", operation="publish") >= 2
        assert value(samples, "alien_nats_denials_total", entity="rover-denied", operation="subscribe") >= 1
    finally:
        await client.close()


async def test_the_endpoint_is_up_while_registration_is_retried(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig]
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    emulator.set_unavailable(True)
    client = AlienClient(
        make_config(emulator, nats_server, metrics_addr=LOOPBACK_ANY_PORT, retry_backoff_s=0.05, heartbeat_period_s=0)
    )
    starting = asyncio.create_task(client.initialize())
    try:
        await poll(lambda: _started(client), 10, "the endpoint to listen")
        assert client.metrics_endpoint is not None and client.metrics_endpoint.url is not None
        url = client.metrics_endpoint.url
        entity = "alien-drone"  # no ENTITY_NAME: the name registration uses

        async def refused_twice() -> bool:
            counts = by_label(await scrape(url), "alien_rest_request_duration_seconds_count", "method", entity=entity)
            return sum(counts.values()) >= 2

        await poll(refused_twice, 10, "REST attempts answered 503")
        samples = await scrape(url)
        assert value(samples, "alien_registered", entity=entity) == 0
        assert value(samples, "alien_nats_connected", entity=entity) == 0
        assert value(samples, "alien_server_dialect_info", entity=entity, dialect="unknown") == 1
        emulator.set_unavailable(False)
        await asyncio.wait_for(starting, 20)
        samples = await scrape(url)
        assert value(samples, "alien_registered", entity=entity) == 1
        assert_matches_client(samples, client, entity)
    finally:
        starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        await client.close()


async def _started(client: AlienClient) -> bool:
    return client.metrics_endpoint is not None and client.metrics_endpoint.url is not None


async def test_a_fleet_serves_every_entity_on_one_endpoint(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig]
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    fleet = AlienFleet(
        make_config(
            emulator,
            nats_server,
            metrics_addr=LOOPBACK_ANY_PORT,
            heartbeat_period_s=0,
            telemetry_rate_limit_per_key_hz=0.001,  # a burst of 5 per key, then (practically) nothing
            telemetry_burst_per_key=5,
        )
    )
    hawk = fleet.add(entity_name="HAWK-1")
    rover = fleet.add(entity_name="ROVER-1", entity_type="rover")
    try:
        await asyncio.wait_for(fleet.initialize(), 20)
        assert hawk.metrics_endpoint is None and rover.metrics_endpoint is None  # the fleet's serves them
        assert fleet.metrics_endpoint is not None and fleet.metrics_endpoint.url is not None
        for step in range(8):  # 5 pass, 3 over the per-key limit
            await hawk.publish_telemetry(_reading(step))
        await rover.publish_telemetry(_reading(0))
        assert await fleet.flush(10)
        samples = await scrape(fleet.metrics_endpoint.url)
        assert_matches_client(samples, hawk, "HAWK-1")
        assert_matches_client(samples, rover, "ROVER-1")
        assert value(samples, "alien_messages_dropped_total", entity="HAWK-1", reason="rate_limited") == 3
        assert by_label(samples, "alien_messages_published_total", "entity") == {
            name: stats.published for name, stats in fleet.stats().items()
        }
    finally:
        await fleet.close()


async def test_metrics_are_off_unless_an_address_is_set(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig]
) -> None:
    client = AlienClient(make_config(make_emulator(dialect="v0.0.1"), nats_server))
    try:
        await asyncio.wait_for(client.initialize(), 20)
        assert client.metrics is None and client.metrics_endpoint is None
        assert client.outbox.ack_latency is None  # nothing observed on the way
    finally:
        await client.close()


async def test_an_address_beyond_loopback_is_refused_before_anything_else(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig]
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    client = AlienClient(make_config(emulator, nats_server, metrics_addr="0.0.0.0:9464"))
    refused = r"ALIEN_METRICS_ADDR 0\.0\.0\.0:9464 is not loopback.*ALIEN_METRICS_ALLOW_REMOTE"
    with pytest.raises(ConfigError, match=refused):
        await client.initialize()
    await client.close()
    assert emulator.requests() == []  # refused before registering


def test_an_address_beyond_loopback_is_served_only_when_allowed_and_then_said(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ConfigError, match="not loopback"):
        check_address("192.0.2.7", "192.0.2.7:9464", allow_remote=False)
    with caplog.at_level(logging.WARNING, logger="alien.metrics"):
        check_address("0.0.0.0", "0.0.0.0:9464", allow_remote=True)
        check_address("::1", "[::1]:9464", allow_remote=False)  # loopback: nothing to say
    assert [r.getMessage() for r in caplog.records] == [
        "ALIEN_METRICS_ADDR 0.0.0.0:9464 is not loopback; serving metrics without authentication because "
        "ALIEN_METRICS_ALLOW_REMOTE=true (anyone who reaches it reads this device's ids and counters)"
    ]


async def test_a_taken_port_is_a_clear_error() -> None:
    first = MetricsEndpoint(LOOPBACK_ANY_PORT)
    await first.start()
    try:
        assert first.url is not None
        taken = first.url.removeprefix("http://").removesuffix("/metrics")
        with pytest.raises(ConfigError, match=rf"ALIEN_METRICS_ADDR {taken}: cannot listen there .*another"):
            await MetricsEndpoint(taken).start()
    finally:
        await first.stop()


async def test_openmetrics_is_served_to_a_scraper_that_asks_for_it() -> None:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families

    endpoint = MetricsEndpoint(LOOPBACK_ANY_PORT)
    await endpoint.start()
    try:
        assert endpoint.url is not None
        text, content_type = await asyncio.to_thread(fetch, endpoint.url, "application/openmetrics-text; version=1.0.0")
        assert content_type.startswith("application/openmetrics-text; version=1.0.0")
        assert text.endswith("# EOF\n")
        assert "process_cpu_seconds" in {f.name for f in openmetrics_families(text)}
        plain, content_type = await asyncio.to_thread(fetch, endpoint.url)
        assert content_type.startswith("text/plain; version=0.0.4")
        assert parse(plain)[1]["process_cpu_seconds"] == "counter"
    finally:
        await endpoint.stop()
