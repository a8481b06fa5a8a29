"""ThreadedClient: the client on its own loop thread, as the ROS bridge uses it (no ROS here)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from alien import AlienConfig
from alien.threaded import ThreadedClient


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
