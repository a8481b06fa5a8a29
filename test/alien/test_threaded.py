"""ThreadedClient: the client on its own loop thread, as the ROS bridge uses it (no ROS here)."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from alien import AlienConfig
from alien.errors import (
    AlienError,
    AuthenticationError,
    ConfigError,
    MothershipUnavailableError,
    NatsAuthError,
    PermissionDeniedError,
    ServerError,
)
from alien.threaded import HANDOVER_MAX, ThreadedClient, failure_line, transient


def _until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_waits_for_the_mothership_saying_why_then_sends_what_it_held(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig]
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    emulator.set_unavailable(True)
    client = ThreadedClient(make_config(emulator, nats_server, retry_backoff_s=0.05, retry_backoff_max_s=0.2))
    client.start()
    try:
        client.submit("power", {"power": {"percentage": 90}})
        client.submit("power", {"power": {"percentage": 80}})  # held: the latest wins
        client.event("note", {"early": True})
        _until(lambda: client.snapshot().error is not None, 10, "the reason to show")
        snapshot = client.snapshot()
        assert snapshot.state == "registering" and "503" in (snapshot.error or "")
        emulator.set_unavailable(False)
        assert client.ready.wait(20)
        assert client.snapshot().state == "connected" and client.snapshot().error is None
        emulator.wait_for(lambda: bool(emulator.telemetry()) and len(emulator.events()) >= 2, 10, "held data")
        assert [m.json()["data"] for m in emulator.telemetry()] == [{"power": {"percentage": 80}}]
        assert {m.json()["event_type"] for m in emulator.events()} >= {"bootsequence", "note"}
    finally:
        client.shutdown(3)
    assert client.snapshot().state == "closed"


def test_a_5xx_that_initialize_raises_is_retried_with_backoff(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], caplog: pytest.LogCaptureFixture
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    emulator.fail_next_requests(7, 500)  # 3 attempts per initialize(): it raises twice, then gets through
    client = ThreadedClient(make_config(emulator, nats_server))
    client.start()
    try:
        assert client.ready.wait(20), client.snapshot()
    finally:
        client.shutdown(3)
    retries = [r.getMessage() for r in caplog.records if r.name == "alien.threaded" and r.levelno == logging.WARNING]
    assert len(retries) == 2 and all(
        m.startswith("cannot start yet: GET /api/v1/organizations: HTTP 500") for m in retries
    )
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_what_retrying_cannot_fix_fails_once_in_one_line_naming_the_setting(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], caplog: pytest.LogCaptureFixture
) -> None:
    emulator = make_emulator(dialect="v0.1")
    client = ThreadedClient(make_config(emulator, nats_server, api_key=None))  # v0.1 needs one
    client.start()
    try:
        _until(lambda: client.snapshot().state == "failed", 10, "the start to fail")
        assert client._startup is not None and client._startup.done()  # nothing left retrying
        asked = len(emulator.requests())
    finally:
        client.shutdown(3)
    error = client.snapshot().error or ""
    assert error.startswith(
        "GET /api/v1/organizations: HTTP 401 [Unauthorized] Invalid API key; ALIEN_API_KEY is not set"
    )
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.getMessage() == failure_line(error) and record.exc_info is None
    assert len(emulator.requests()) == asked


def test_readings_handed_over_together_arrive_and_the_snapshot_is_published_whole(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig]
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    client = ThreadedClient(make_config(emulator, nats_server))
    before = client.snapshot()
    assert before.state == "starting"
    client.start()
    try:
        assert client.ready.wait(20)
        client.submit_many([("a", {"a": 1}), ("b", {"b": 2}), ("c", {"c": 3})])
        emulator.wait_for(lambda: len(emulator.telemetry()) >= 3, 10, "the readings handed over together")
        assert sorted(json.dumps(m.json()["data"]) for m in emulator.telemetry()) == [
            '{"a": 1}',
            '{"b": 2}',
            '{"c": 3}',
        ]
        _until(lambda: client.snapshot().published >= 4, 10, "the counters in a snapshot")  # and bootsequence
        snapshot = client.snapshot()
        with pytest.raises(dataclasses.FrozenInstanceError):
            snapshot.published = 0  # type: ignore[misc]
        assert before.state == "starting"  # a snapshot never changes: the loop makes a new one
    finally:
        client.shutdown(3)
    assert client.snapshot().state == "closed"


def test_a_thread_handing_over_faster_than_the_stream_takes_waits_and_nothing_is_dropped(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig]
) -> None:
    """Flow control: while JetStream answers nothing, the loop takes no more than two windows, then the thread waits."""
    emulator = make_emulator(dialect="v0.0.1")
    config = make_config(
        emulator, nats_server, telemetry_rate_limit_hz=0, telemetry_rate_limit_per_key_hz=0, publish_window=16
    )
    client = ThreadedClient(config)
    client.add_channel("n", 0.0)
    client.start()
    total = HANDOVER_MAX + 500
    handed: list[int] = []
    try:
        assert client.ready.wait(20)
        emulator.withhold_stream("CONSTELLATION_TELEMETRY", True)

        def produce() -> None:
            for i in range(total):
                client.submit("n", {"n": i})
                handed.append(i)

        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        _until(lambda: len(handed) >= HANDOVER_MAX, 10, "the hand-over to fill")
        time.sleep(0.5)  # the producer, blocked, hands over nothing more meanwhile
        assert producer.is_alive() and HANDOVER_MAX <= len(handed) < total
        assert client.client.outbox.unsettled <= 2 * 16  # the loop took no more than two windows
        emulator.withhold_stream("CONSTELLATION_TELEMETRY", False)
        producer.join(60)
        assert not producer.is_alive() and len(handed) == total
        emulator.wait_for(lambda: len(emulator.telemetry()) >= total, 60, "every reading")
        assert sorted(m.json()["data"]["n"] for m in emulator.telemetry()) == list(range(total))
        assert client.client.stats().dropped == {}
    finally:
        client.shutdown(5)


@pytest.mark.parametrize(
    ("settings", "device_id"),
    [({"device_id": "dev-1", "entity_name": "rover-7"}, "dev-1"), ({"entity_name": "rover-7"}, "rover-7"), ({}, "")],
)
def test_device_id_is_alien_device_id_else_the_entity_name_else_its_id(
    make_config: Callable[..., AlienConfig], settings: dict[str, str], device_id: str
) -> None:
    client = ThreadedClient(make_config(**settings))
    assert client.device_id == device_id  # "" until registered: then the entity id
    client.client.config.identity.entity_id = "e-1"  # as registration learns it
    assert client.device_id == (device_id or "e-1")


class _NotYetKnown(AlienError):
    """An error alien may add later (e.g. credentials that cannot publish the entity's telemetry)."""


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (MothershipUnavailableError("cannot reach http://127.0.0.1:9"), True),
        (ServerError("boom", status=500), True),
        (ServerError("busy", status=503), True),
        (AuthenticationError("Invalid API key", status=401), False),
        (PermissionDeniedError("Insufficient scope", status=403), False),
        (ConfigError("invalid configuration: ENTITY_TYPE"), False),
        (NatsAuthError("authorization violation"), False),
        (_NotYetKnown("cannot publish constellation.telemetry.o.e"), False),
        (RuntimeError("a bug"), False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_only_an_unreachable_or_5xx_mothership_is_retried(error: BaseException, retried: bool) -> None:
    assert transient(error) is retried


def test_the_callers_config_is_not_changed_underneath_it(make_config: Callable[..., AlienConfig]) -> None:
    """The loop thread learns ids into its own config's identity, never into the caller's."""
    config = make_config()
    client = ThreadedClient(config, device_id="robot-7")
    assert client.client.config is not config
    assert client.client.config.device_id == "robot-7" and config.device_id is None
    client.client.config.identity.entity_id = "e-1"  # as registration learns it
    assert config.entity_id is None
