"""Telemetry and event payloads.

The seed shapes (docs/index.md#the-seed-api), which v0.0.1 servers accept as any JSON
(docs/contract.md#seed-telemetry); timestamps always carry a zone so the same payloads also decode on v0.1.1.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any, NamedTuple

from alien.wire import dumps, utc_timestamp


class Reading(NamedTuple):
    """A telemetry reading and, when it has one, its own time (`publish_telemetry_batch`).

    `timestamp`: a datetime with a zone, or POSIX seconds; None: read now. A reading with its own
    time (e.g. logged offline and replayed) keeps it on every wire format.
    """

    data: dict[str, Any]
    timestamp: datetime | float | None = None


def reading_time(timestamp: datetime | float | None) -> datetime | None:
    """A reading's own time as a UTC datetime; ValueError for a naive datetime or a number that is no time."""
    if timestamp is None:
        return None
    if isinstance(timestamp, datetime):
        if timestamp.tzinfo is None:
            raise ValueError(f"timestamp {timestamp.isoformat()} has no time zone (give it one, e.g. timezone.utc)")
        return timestamp.astimezone(timezone.utc)
    if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float)) or not math.isfinite(timestamp):
        raise ValueError(f"timestamp {timestamp!r:.60} is neither a datetime nor POSIX seconds")
    try:
        return datetime.fromtimestamp(timestamp, timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"timestamp {timestamp!r} is outside the dates a datetime holds") from None


def encode_telemetry(entity_id: str, data: dict[str, Any], timestamp: str | None = None) -> bytes:
    """The seed telemetry: `{"entity_id", "timestamp", "data"}`."""
    if not isinstance(data, dict):
        raise TypeError(f"telemetry data must be a dict, got {type(data).__name__}")
    return dumps({"entity_id": entity_id, "timestamp": timestamp or utc_timestamp(), "data": data})


def encode_event(entity_id: str, event_type: str, data: dict[str, Any], timestamp: str | None = None) -> bytes:
    """The seed event: `{"entity_id", "event_type", "timestamp", "data"}`."""
    if not isinstance(data, dict):
        raise TypeError(f"event data must be a dict, got {type(data).__name__}")
    return dumps(
        {"entity_id": entity_id, "event_type": event_type, "timestamp": timestamp or utc_timestamp(), "data": data}
    )


def position(latitude: float, longitude: float, altitude: float = 0) -> dict[str, Any]:
    """The seed position telemetry, range-checked before it is queued."""
    if not -90.0 <= latitude <= 90.0:
        raise ValueError(f"latitude {latitude} is outside -90..90")
    if not -180.0 <= longitude <= 180.0:
        raise ValueError(f"longitude {longitude} is outside -180..180")
    return {"position": {"latitude": float(latitude), "longitude": float(longitude), "altitude": float(altitude)}}


# docs/contract.md#lifecycle-events: the server acts on these two event types (bootsequence admits the entity for
# telemetry, shutdown removes it) and reads this flat shape, not the seed event's `data`.
LIFECYCLE_EVENTS = ("bootsequence", "shutdown")


def encode_lifecycle(event_type: str, entity_id: str, device_id: str, timestamp: str | None = None) -> bytes:
    """A lifecycle event: `{"event_type", "entity_id", "device_id", "timestamp"}`."""
    if event_type not in LIFECYCLE_EVENTS:
        raise ValueError(f"lifecycle event must be one of {LIFECYCLE_EVENTS}, not {event_type!r}")
    return dumps(
        {
            "event_type": event_type,
            "entity_id": entity_id,
            "device_id": device_id,
            "timestamp": timestamp or utc_timestamp(),
        }
    )
