"""What the mothership received, digested for the view and the summary.

`MothershipDigest.add_*` take the decoded messages (pure: the tests feed them dicts);
`MothershipWatch` reads the emulator's records and feeds the new ones in. Both dialects: the
seed shape (v0.0.1: `data.position`, `data.power`, `data.health`) and MAVLink-style
telemetry (v0.1: GPS_RAW_INT, BATTERY_STATUS, the health as a `telemetry` event).
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from alien_testing import MothershipEmulator

COMMAND_EVENTS = ("command_received", "command_progress", "command_completed", "command_failed", "command_rejected")


@dataclass
class MothershipDigest:
    ids: set[str] = field(default_factory=set)  # distinct Nats-Msg-Id of telemetry and events
    positions: int = 0
    last_position: tuple[float, float, float] | None = None
    battery_first: float | None = None
    battery_last: float | None = None
    health_level: str | None = None
    warn_seen: bool = False
    event_counts: dict[str, int] = field(default_factory=dict)
    recent_events: deque[str] = field(default_factory=lambda: deque(maxlen=8))
    command_result: dict[str, Any] | None = None

    @property
    def received(self) -> int:
        return len(self.ids)

    def _first_time(self, msg_id: str) -> bool:
        if not msg_id or msg_id in self.ids:
            return False  # a redelivery after the outage is the same message
        self.ids.add(msg_id)
        return True

    def add_telemetry(self, msg_id: str, body: Any) -> None:
        if not self._first_time(msg_id) or not isinstance(body, dict):
            return
        data = _object(body.get("data"))
        kind = body.get("message_type")
        if kind in ("GLOBAL_POSITION_INT", "GPS_RAW_INT"):
            self._position(data["lat"] / 1e7, data["lon"] / 1e7, data.get("alt", 0) / 1000)
        elif kind == "BATTERY_STATUS" and "battery_remaining" in data:
            self._battery(float(data["battery_remaining"]))
        if isinstance(data.get("position"), dict):
            p = data["position"]
            self._position(p["latitude"], p["longitude"], p.get("altitude") or 0.0)
        if isinstance(data.get("power"), dict) and data["power"].get("percentage") is not None:
            self._battery(float(data["power"]["percentage"]))
        if isinstance(data.get("health"), dict):
            self._health(data["health"])

    def add_event(self, msg_id: str, body: Any) -> None:
        if not self._first_time(msg_id) or not isinstance(body, dict):
            return
        kind = str(body.get("event_type"))
        data = _object(body.get("data"))
        if kind == "telemetry":  # v0.1: what has no MAVLink message (the health) comes as an event
            if isinstance(data.get("health"), dict):
                self._health(data["health"])
            return
        self.event_counts[kind] = self.event_counts.get(kind, 0) + 1
        if kind == "diagnostic_level_changed" and data.get("level") in ("WARN", "ERROR"):
            self.warn_seen = True
        if kind in ("command_completed", "command_failed", "command_rejected"):
            self.command_result = {"event": kind, **data}
        self.recent_events.append(_describe(kind, data))

    def _position(self, lat: float, lon: float, alt: float) -> None:
        self.positions += 1
        self.last_position = (lat, lon, alt)

    def _battery(self, percent: float) -> None:
        if self.battery_first is None:
            self.battery_first = percent
        self.battery_last = percent

    def _health(self, health: dict[str, Any]) -> None:
        self.health_level = health.get("level")
        if self.health_level in ("WARN", "ERROR"):
            self.warn_seen = True


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _describe(kind: str, data: dict[str, Any]) -> str:
    if kind == "diagnostic_level_changed":
        return f"{kind}: {data.get('name')} {data.get('previous')} -> {data.get('level')} ({data.get('message')})"
    if kind == "command_progress":
        return f"{kind}: {data.get('command_id')} {json.dumps(data.get('progress'))}"
    if kind == "command_completed":
        return f"{kind}: {data.get('command_id')} {json.dumps(data.get('result'))}"
    if kind in ("command_failed", "command_rejected"):
        return f"{kind}: {data.get('command_id')} {data.get('error') or data.get('reason')}"
    if kind == "command_received":
        return f"{kind}: {data.get('command_id')} ({data.get('type')})"
    return kind


class MothershipWatch:
    """Feeds the emulator's new records into a digest; safe to call from the view's thread."""

    def __init__(self, emulator: MothershipEmulator) -> None:
        self.emulator = emulator
        self.digest = MothershipDigest()
        self._seen = {"telemetry": 0, "events": 0}
        self._lock = threading.Lock()

    def update(self) -> MothershipDigest:
        with self._lock:
            telemetry = self.emulator.telemetry()
            for message in telemetry[self._seen["telemetry"] :]:
                self.digest.add_telemetry(message.headers.get("Nats-Msg-Id", ""), message.json())
            events = self.emulator.events()
            for message in events[self._seen["events"] :]:
                self.digest.add_event(message.headers.get("Nats-Msg-Id", ""), message.json())
            self._seen = {"telemetry": len(telemetry), "events": len(events)}
            return self.digest
