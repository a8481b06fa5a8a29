"""Telemetry and event payloads, decoded and summarised in one line for `alien tail`.

Shapes (docs/contract.md#telemetry-payloads): MAVLink-style `{message_type, data, ...}` (v0.1.x and
envelope_v1), the seed `{entity_id, timestamp, data}` ("seed", v0.0.1), events
`{entity_id, event_type, timestamp, data}` and lifecycle events `{event_type, entity_id, device_id}`.
Anything else is shown as compact JSON, and a payload that is not JSON as such: never an error.
"""

from __future__ import annotations

import json
from typing import Any

_MAX_SUMMARY = 160
_MAV_STATES = ("UNINIT", "BOOT", "CALIBRATING", "STANDBY", "ACTIVE", "CRITICAL", "EMERGENCY", "POWEROFF")
_UNKNOWN_MV = 65535  # MAVLink's "no cell" in BATTERY_STATUS.voltages


def decode(payload: bytes) -> tuple[Any, str | None]:
    """(the JSON value, None), or (None, why it is not JSON)."""
    try:
        return json.loads(payload), None
    except UnicodeDecodeError:
        return None, f"not UTF-8 ({len(payload)} bytes)"
    except ValueError:
        return None, f"not JSON ({len(payload)} bytes)"


def kind_of(subject: str) -> str:
    parts = subject.split(".")
    if parts[:2] == ["constellation", "telemetry"]:
        return "telemetry"
    if parts[:2] == ["constellation", "events"]:
        return "event"
    return "other"


def entity_of(subject: str, payload: Any) -> str | None:
    """The entity: the telemetry subject's fourth token (docs/contract.md#subjects), else the payload's entity_id."""
    parts = subject.split(".")
    if kind_of(subject) == "telemetry" and len(parts) >= 4:
        return parts[3]
    value = payload.get("entity_id") if isinstance(payload, dict) else None
    return str(value) if value is not None else None


def summarize(subject: str, payload: Any) -> str:
    """One short line: MAVLink type and key fields, the seed reading, or the event and its data."""
    if not isinstance(payload, dict):
        return _clip(compact(payload))
    if kind_of(subject) == "event":
        event_type = payload.get("event_type") or subject.rsplit(".", 1)[-1]
        rest = payload.get("data") if isinstance(payload.get("data"), dict) else None
        if rest is None:  # lifecycle events are flat (docs/contract.md#lifecycle-events)
            rest = {k: v for k, v in payload.items() if k not in ("event_type", "entity_id", "timestamp")}
        return _clip(f"{event_type} {fields(rest)}".rstrip())
    data = payload.get("data")
    if isinstance(payload.get("message_type"), str) and isinstance(data, dict):
        return _clip(f"{payload['message_type']} {mavlink_fields(payload['message_type'], data)}".rstrip())
    if isinstance(data, dict):
        return _clip(f"seed {seed_fields(data)}".rstrip())
    return _clip(compact(payload))


def mavlink_fields(message_type: str, data: dict[str, Any]) -> str:
    """Key fields in everyday units (the wire has degE7, mm, cdeg, mV; docs/contract.md#mavlink-style-telemetry)."""
    shown: dict[str, str] = {}
    if message_type in ("GLOBAL_POSITION_INT", "GPS_RAW_INT"):
        for key in ("lat", "lon"):
            if _is_number(data.get(key)):
                shown[key] = f"{data[key] / 1e7:.7f}"
        if _is_number(data.get("alt")):
            shown["alt"] = f"{data['alt'] / 1000:.1f}m"
        if _is_number(data.get("hdg")):
            shown["hdg"] = f"{data['hdg'] / 100:.1f}°"
        if _is_number(data.get("fix_type")):
            shown["fix"] = str(data["fix_type"])
        return " ".join(f"{k}={v}" for k, v in shown.items())
    if message_type in ("BATTERY_STATUS", "SYS_STATUS"):
        if _is_number(data.get("battery_remaining")):
            shown["battery"] = f"{data['battery_remaining']}%"
        cells = data.get("voltages")
        if isinstance(cells, list) and all(_is_number(c) for c in cells):
            known = [c for c in cells if c != _UNKNOWN_MV]
            if known:
                shown["voltage"] = f"{sum(known) / 1000:.2f}V"
        if _is_number(data.get("voltage_battery")):
            shown["voltage"] = f"{data['voltage_battery'] / 1000:.2f}V"
        if _is_number(data.get("current_battery")) and data["current_battery"] >= 0:
            shown["current"] = f"{data['current_battery'] / 100:.2f}A"
        return " ".join(f"{k}={v}" for k, v in shown.items())
    if message_type == "HEARTBEAT":
        state = data.get("system_status")
        if isinstance(state, int) and 0 <= state < len(_MAV_STATES):
            shown["state"] = _MAV_STATES[state]
        if _is_number(data.get("type")):
            shown["type"] = str(data["type"])
        return " ".join(f"{k}={v}" for k, v in shown.items())
    return fields(data)


def seed_fields(data: dict[str, Any]) -> str:
    """The seed reading: position first in degrees and metres, then the other keys."""
    position = data.get("position")
    parts = []
    rest = dict(data)
    if isinstance(position, dict):
        rest.pop("position")
        coords = [f"{k[:3]}={position[k]:.6f}" for k in ("latitude", "longitude") if _is_number(position.get(k))]
        if _is_number(position.get("altitude")):
            coords.append(f"alt={position['altitude']:.1f}m")
        parts.append(" ".join(coords))
    if rest:
        parts.append(fields(rest))
    return " ".join(p for p in parts if p)


def fields(data: dict[str, Any]) -> str:
    return " ".join(f"{key}={compact(value)}" for key, value in data.items())


def compact(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), default=str)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _clip(text: str) -> str:
    text = " ".join(text.split())  # one line, whatever the payload held
    return text if len(text) <= _MAX_SUMMARY else text[: _MAX_SUMMARY - 1] + "…"
