"""Readings into the outbox: checked, flood-limited, encoded (or held), and noted for the device's state.

What `AlienClient.publish_telemetry`, `queue_telemetry` and `publish_telemetry_batch` do
(docs/library.md#batches-of-readings).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from alien.delivery.batch import OutboxBatch
from alien.delivery.outbox import Outbox
from alien.telemetry.composer import Composer
from alien.telemetry.readings import Reading, reading_time


class TelemetryQueue:
    def __init__(self, outbox: Outbox, composer: Composer, observe: Callable[[dict[str, Any]], None]) -> None:
        """`observe(reading)`: what the heartbeat and the operator map learn from a reading of now (Presence)."""
        self.outbox = outbox
        self.composer = composer
        self.observe = observe

    def reading(self, data: dict[str, Any], timestamp: datetime | float | None = None) -> str:
        """Queue one reading; its first message's id, or "" when over a flood limit (counted as dropped)."""
        if not isinstance(data, dict):
            raise TypeError(f"telemetry data must be a dict, got {type(data).__name__}")
        own_time = reading_time(timestamp)
        if self.composer.rate_limited("+".join(sorted(map(str, data)))):
            return ""
        # Before registration (or while the format depends on a server that has not answered),
        # the reading waits in the outbox as it is (durable, bounded) and is encoded once that is known.
        msg_id = self.composer.telemetry(data, own_time)
        if own_time is None:  # a reading of another time does not say how the device is now
            self.observe(data)
        return msg_id

    def readings(self, items: Iterable[dict[str, Any] | Reading]) -> list[str]:
        """Queue readings in one batch: all of them, or none when one raises (its index named)."""
        with OutboxBatch(self.outbox):
            return [self._indexed(index, item) for index, item in enumerate(items)]

    def _indexed(self, index: int, item: dict[str, Any] | Reading) -> str:
        data, timestamp = (item, None) if isinstance(item, dict) else item
        try:
            return self.reading(data, timestamp)
        except (TypeError, ValueError) as exc:  # TelemetryEncodeError is a ValueError
            raise type(exc)(f"reading {index}: {exc}") from None
