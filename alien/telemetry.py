"""Telemetry and event payloads.

This issue ships the design document's ("seed") shapes, which v0.0.1 servers accept as any JSON
(contract §3); timestamps always carry a zone so the same payloads also decode on v0.1.1.
"""

from __future__ import annotations

from typing import Any

from alien.wire import dumps, utc_timestamp


def encode_telemetry(entity_id: str, data: dict[str, Any], timestamp: str | None = None) -> bytes:
    """The design document's telemetry: `{"entity_id", "timestamp", "data"}`."""
    if not isinstance(data, dict):
        raise TypeError(f"telemetry data must be a dict, got {type(data).__name__}")
    return dumps({"entity_id": entity_id, "timestamp": timestamp or utc_timestamp(), "data": data})


def encode_event(entity_id: str, event_type: str, data: dict[str, Any], timestamp: str | None = None) -> bytes:
    """The design document's event: `{"entity_id", "event_type", "timestamp", "data"}`."""
    if not isinstance(data, dict):
        raise TypeError(f"event data must be a dict, got {type(data).__name__}")
    return dumps(
        {"entity_id": entity_id, "event_type": event_type, "timestamp": timestamp or utc_timestamp(), "data": data}
    )


def position(latitude: float, longitude: float, altitude: float = 0) -> dict[str, Any]:
    """The design document's position telemetry, range-checked before it is queued."""
    if not -90.0 <= latitude <= 90.0:
        raise ValueError(f"latitude {latitude} is outside -90..90")
    if not -180.0 <= longitude <= 180.0:
        raise ValueError(f"longitude {longitude} is outside -180..180")
    return {"position": {"latitude": float(latitude), "longitude": float(longitude), "altitude": float(altitude)}}
