"""The rc telemetry worker's entity state beyond its cache (docs/contract.md#telemetry-payloads).

Modelled on Constellation-Overwatch/constellation-overwatch pkg/services/workers/telemetry.go:
the state it builds from the database row for an entity with no KV entry yet
(``initializeEntityFromDB``), how it merges its fields into the KV value other writers left
(``mergeTelemetryWithDetections``), and the bytes it writes.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from alien_testing.emulator.entity_state import encode_state
from alien_testing.emulator.gojson import GoJSONError, GoTime, later
from alien_testing.emulator.store import Row

_TELEMETRY_OWNED = ("position", "attitude", "power", "vfr", "vehicle_status", "mission", "actuators", "environment")


def merge_telemetry(existing: dict[str, Any], telemetry: dict[str, Any]) -> dict[str, Any]:
    """telemetry.go mergeTelemetryWithDetections: other writers' fields kept, telemetry's replaced."""
    merged = copy.copy(existing)
    for name in _TELEMETRY_OWNED:
        if telemetry.get(name) is not None:
            merged[name] = telemetry[name]
    zero = GoTime.zero()
    merged["updated_at"] = later(existing.get("updated_at", zero), telemetry.get("updated_at", zero))
    merged["is_live"] = telemetry.get("is_live", False)
    merged["system_id"] = telemetry.get("system_id", 0)
    merged["component_id"] = telemetry.get("component_id", 0)
    merged["last_seen"] = later(existing.get("last_seen", zero), telemetry.get("last_seen", zero))
    merged["telemetry_cursors"] = telemetry.get("telemetry_cursors")
    return merged


def state_from_row(row: Row, org: Row | None) -> dict[str, Any]:
    """An entity row as initializeEntityFromDB turns it into EntityState."""
    state: dict[str, Any] = {
        "entity_id": row["entity_id"],
        "org_id": row["org_id"],
        "org_name": (org or {}).get("name", ""),
        "name": row.get("name") or "",
        "entity_type": row["entity_type"],
        "status": row["status"],
        "priority": row["priority"],
        "is_live": bool(row.get("is_live")),
        "components": _json_column(row.get("components")),
        "aliases": {},
        "tags": _json_column(row.get("tags"), default=[]),
        "metadata": _json_column(row.get("metadata")),
        "created_at": _row_time(row.get("created_at")),
        "updated_at": _row_time(row.get("updated_at")),
    }
    if row.get("latitude") is not None and row.get("longitude") is not None:
        point = {"latitude": float(row["latitude"]), "longitude": float(row["longitude"]), "timestamp": GoTime.now()}
        if row.get("altitude") is not None:
            point["altitude_msl"] = float(row["altitude"])
        state["position"] = {"global": point}
    return state


def _json_column(text: Any, default: Any = None) -> Any:
    try:
        value = json.loads(text) if text else None
    except ValueError:
        value = None
    if value is None:
        return {} if default is None else default
    return value


def _row_time(text: Any) -> GoTime:
    try:
        return GoTime.parse(str(text))
    except GoJSONError:
        return GoTime.zero()


def dump_state(state: dict[str, Any]) -> bytes:
    return json.dumps(encode_state(state)).encode()
