"""Telemetry channels: named streams of readings, each rate-limited, sent through one client.

A channel (e.g. "position", "power", "health", or a mapped ROS topic) takes readings as fast as
they come and sends at most `rate_hz` of them, always including the latest of each period
(`LatestValueThrottle`). Readings that arrive before the device is registered are held (the
latest per channel) and sent once it is. Everything here runs on the client's event loop: other
threads hand readings over with `loop.call_soon_threadsafe(channels.submit, name, reading)`.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from alien.logs import get_logger
from alien.rate_limits import LatestValueThrottle

logger = get_logger("alien.channels")

Send = Callable[[dict[str, Any]], object]


@dataclass
class _Channel:
    name: str
    throttle: LatestValueThrottle[dict[str, Any]]
    handle: asyncio.TimerHandle | None = None
    sent: int = 0


@dataclass
class TelemetryChannels:
    """Rate-limited channels feeding `send` (normally `AlienClient.queue_telemetry`)."""

    send: Send
    loop: asyncio.AbstractEventLoop
    ready: bool = False
    _channels: dict[str, _Channel] = field(default_factory=dict)
    _held: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    _said: set[tuple[str, str]] = field(default_factory=set)

    def add(self, name: str, rate_hz: float) -> None:
        self._channels[name] = _Channel(name, LatestValueThrottle(rate_hz))

    def submit(self, name: str, reading: dict[str, Any]) -> None:
        """Offer a reading (a complete telemetry `data` dict) on channel `name`."""
        channel = self._channels.get(name)
        if channel is None:
            channel = self._channels[name] = _Channel(name, LatestValueThrottle(0))
        if not self.ready:
            self._held[name] = reading  # the latest wins; sent once registered
            return
        decision = channel.throttle.offer(reading, self.loop.time())
        if decision.send_now is not None:
            self._send(channel, decision.send_now)
        if decision.flush_at is not None:
            channel.handle = self.loop.call_at(decision.flush_at, self._flush, channel)

    def set_ready(self) -> None:
        """The device is registered: send what was held, then pass readings through."""
        self.ready = True
        held, self._held = self._held, {}
        for name, reading in held.items():
            self.submit(name, reading)

    def stop(self) -> None:
        for channel in self._channels.values():
            if channel.handle is not None:
                channel.handle.cancel()
                channel.handle = None

    def stats(self) -> dict[str, dict[str, int]]:
        return {name: {"sent": ch.sent, "coalesced": ch.throttle.coalesced} for name, ch in self._channels.items()}

    def _flush(self, channel: _Channel) -> None:
        channel.handle = None
        reading = channel.throttle.flush(self.loop.time())
        if reading is not None:
            self._send(channel, reading)

    def _send(self, channel: _Channel, reading: dict[str, Any]) -> None:
        try:
            self.send(reading)
            channel.sent += 1
        except Exception as exc:  # noqa: BLE001 - one bad reading must not stop the channel
            self.errors[channel.name] += 1
            # A sensor that keeps producing the same bad value is said once, then counted.
            said = (channel.name, str(exc))
            log = logger.debug if said in self._said else logger.warning
            self._said.add(said)
            log("telemetry on channel %r not sent: %s", channel.name, exc)
