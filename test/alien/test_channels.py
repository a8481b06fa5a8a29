"""TelemetryChannels on a real event loop: held until registered, rate-limited, latest wins."""

from __future__ import annotations

import asyncio
from typing import Any

from alien.telemetry.channels import TelemetryChannels


class Recorder:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.changed = asyncio.Event()

    def __call__(self, reading: dict[str, Any]) -> None:
        self.sent.append(reading)
        self.changed.set()

    async def wait_for(self, count: int, timeout: float = 5.0) -> None:
        async def until() -> None:
            while len(self.sent) < count:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(until(), timeout)


async def test_readings_before_registration_are_held_latest_only() -> None:
    recorder = Recorder()
    channels = TelemetryChannels(recorder, asyncio.get_running_loop())
    channels.add("power", rate_hz=0)
    for percent in (90, 89, 88):
        channels.submit("power", {"power": {"percentage": percent}})
    assert recorder.sent == []
    channels.set_ready()
    assert recorder.sent == [{"power": {"percentage": 88}}]


async def test_latest_reading_of_each_period_goes_out() -> None:
    recorder = Recorder()
    channels = TelemetryChannels(recorder, asyncio.get_running_loop(), ready=True)
    channels.add("position", rate_hz=20)  # 50 ms period
    for i in range(5):
        channels.submit("position", {"i": i})
    assert recorder.sent == [{"i": 0}]  # the first goes at once
    await recorder.wait_for(2)
    assert recorder.sent == [{"i": 0}, {"i": 4}]  # then the latest, not the second
    assert channels.stats()["position"] == {"sent": 2, "coalesced": 3}
    channels.stop()


async def test_a_failing_send_is_counted_and_the_channel_keeps_working() -> None:
    calls: list[dict[str, Any]] = []

    def flaky(reading: dict[str, Any]) -> None:
        calls.append(reading)
        if reading.get("bad"):
            raise ValueError("cannot encode")

    channels = TelemetryChannels(flaky, asyncio.get_running_loop(), ready=True)
    channels.submit("imu", {"bad": True})
    channels.submit("imu", {"ok": True})
    assert calls == [{"bad": True}, {"ok": True}]
    assert channels.errors["imu"] == 1
    assert channels.stats()["imu"]["sent"] == 1
