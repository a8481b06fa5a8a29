"""The operator map's entity state as the rc server keeps it: ``shared.EntityState`` JSON.

The server decodes the KV value into a Go struct and writes it back marshalled, so only the
struct's fields survive a server write, with Go's types (an integer field refuses 55.0) and
``omitempty`` rules. Field names, types and tags are from Constellation-Overwatch/
constellation-overwatch pkg/shared/types.go; the per-type cursor map the rc worker adds
(``TelemetryCursors``, pkg/services/workers/telemetry.go) is written as ``telemetry_cursors``
``{message_type: {message_uid, timestamp}}`` (its JSON tag is not in the stored source: a guess).

Units in the state (pkg/services/workers/telemetry.go): latitude/longitude in degrees, altitudes
in metres, local velocities in m/s; ``power.voltage`` / ``power.current`` are copied unconverted
from SYS_STATUS (mV / cA) while BATTERY_STATUS current is converted to A.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alien_testing.emulator.gojson import GoJSONError, GoTime, IntLiteral, type_error

# A field: (JSON name, kind, omitempty). Kinds: "str", "bool", "float", "i8".."u32" (Go ints),
# "time" (time.Time, never omitted), "ptime" (*time.Time), "any" (map/interface kept as is),
# "map" (map[string]... : null when nil), "list" (slice: null when nil), "u16list",
# or a nested struct schema (a pointer: omitted when nil).
Field = tuple[str, Any, bool]

_INT_RANGES = {
    "i8": (-(1 << 7), (1 << 7) - 1),
    "i16": (-(1 << 15), (1 << 15) - 1),
    "i32": (-(1 << 31), (1 << 31) - 1),
    "u8": (0, (1 << 8) - 1),
    "u16": (0, (1 << 16) - 1),
    "u32": (0, (1 << 32) - 1),
    "int": (-(1 << 63), (1 << 63) - 1),
}

GLOBAL_POSITION: list[Field] = [
    ("latitude", "float", False),
    ("longitude", "float", False),
    ("altitude_msl", "float", False),
    ("altitude_relative", "float", False),
    ("altitude_terrain", "float", True),
    ("accuracy_h", "float", False),
    ("accuracy_v", "float", False),
    ("satellites_visible", "int", True),
    ("fix_type", "int", True),
    ("timestamp", "time", False),
]
LOCAL_POSITION: list[Field] = [
    *((name, "float", False) for name in ("x", "y", "z", "vx", "vy", "vz")),
    ("timestamp", "time", False),
]
POSITION: list[Field] = [("global", GLOBAL_POSITION, True), ("local", LOCAL_POSITION, True)]
EULER: list[Field] = [
    *((name, "float", False) for name in ("roll", "pitch", "yaw", "rollspeed", "pitchspeed", "yawspeed")),
    ("timestamp", "time", False),
]
QUATERNION: list[Field] = [
    *((name, "float", False) for name in ("q1", "q2", "q3", "q4")),
    *((name, "float", True) for name in ("rollspeed", "pitchspeed", "yawspeed")),
    ("timestamp", "time", False),
]
ATTITUDE: list[Field] = [("euler", EULER, True), ("quaternion", QUATERNION, True)]
VEHICLE_STATUS: list[Field] = [
    ("armed", "bool", False),
    ("mode", "str", False),
    ("custom_mode", "u32", False),
    ("autopilot", "u8", False),
    ("system_status", "u8", False),
    ("vehicle_type", "u8", False),
    ("landed_state", "u8", False),
    ("vtol_state", "u8", True),
    ("load", "u16", False),
    ("sensors_enabled", "u32", False),
    ("sensors_health", "u32", False),
    ("timestamp", "time", False),
]
POWER: list[Field] = [
    ("voltage", "float", False),
    ("current", "float", False),
    ("battery_remaining", "i8", False),
    ("consumed", "i32", False),
    ("energy_consumed", "i32", False),
    ("cells", "u16list", True),
    ("temperature", "i16", False),
    ("timestamp", "time", False),
]
VFR: list[Field] = [
    ("airspeed", "float", False),
    ("groundspeed", "float", False),
    ("heading", "i16", False),
    ("climb_rate", "float", False),
    ("throttle", "u16", False),
    ("altitude", "float", False),
    ("timestamp", "time", False),
]
MISSION: list[Field] = [
    ("current_waypoint", "u16", False),
    ("total_waypoints", "u16", True),
    ("timestamp", "time", False),
]
ACTUATORS: list[Field] = [("servos", "u16list", False), ("timestamp", "time", False)]
ENVIRONMENT: list[Field] = [
    ("pressure_abs", "float", False),
    ("pressure_diff", "float", False),
    ("temperature", "i16", False),
    ("humidity", "float", True),
    ("timestamp", "time", False),
]
CURSOR: list[Field] = [("message_uid", "str", False), ("timestamp", "time", False)]
ENTITY_STATE: list[Field] = [
    ("entity_id", "str", False),
    ("org_id", "str", False),
    ("org_name", "str", True),
    ("name", "str", True),
    ("entity_type", "str", False),
    ("status", "str", False),
    ("priority", "str", False),
    ("is_live", "bool", False),
    ("expiry_time", "ptime", True),
    ("position", POSITION, True),
    ("attitude", ATTITUDE, True),
    ("vehicle_status", VEHICLE_STATUS, True),
    ("power", POWER, True),
    ("vfr", VFR, True),
    ("mission", MISSION, True),
    ("actuators", ACTUATORS, True),
    ("environment", ENVIRONMENT, True),
    ("analytics", "any", True),
    ("detections", "any", True),
    ("threat_intel", "any", True),
    ("system_id", "u8", True),
    ("component_id", "u8", True),
    ("device_id", "str", True),
    ("stream_port", "str", True),
    ("video_config", "any", True),
    ("subject", "str", True),
    ("first_seen", "time", False),
    ("last_seen", "time", False),
    ("fingerprinted", "bool", True),
    ("components", "map", False),
    ("aliases", "map", False),
    ("tags", "list", False),
    ("source", "str", False),
    ("created_by", "str", False),
    ("classification", "str", True),
    ("metadata", "map", False),
    ("created_at", "time", False),
    ("updated_at", "time", False),
    ("telemetry_cursors", "cursors", True),
]


def decode_state(value: Any) -> dict[str, Any]:
    """json.Unmarshal(value, &shared.EntityState): unknown keys dropped, Go types enforced.

    Times become GoTime; a missing struct is absent; integers are ints. Raises GoJSONError.
    """
    if not isinstance(value, dict):
        raise GoJSONError(f"json: cannot unmarshal {type(value).__name__} into Go value of type shared.EntityState")
    return _decode_struct(value, ENTITY_STATE, "EntityState")


def encode_state(state: dict[str, Any]) -> dict[str, Any]:
    """json.Marshal(state): every non-omitempty field present, zero values included."""
    return _encode_struct(state, ENTITY_STATE)


def _decode_struct(obj: dict[str, Any], schema: list[Field], struct: str) -> dict[str, Any]:
    by_name = {name: (kind, omit) for name, kind, omit in schema}
    lower = {name.lower(): name for name in by_name}
    out: dict[str, Any] = {}
    for key, raw in obj.items():
        name = key if key in by_name else lower.get(key.lower())
        if name is None or raw is None:
            continue
        kind = by_name[name][0]
        out[name] = _decode_value(raw, kind, name, struct)
    return out


def _decode_value(raw: Any, kind: Any, name: str, struct: str) -> Any:
    if isinstance(kind, list):
        if not isinstance(raw, dict):
            raise type_error(raw, "struct", name, struct)
        return _decode_struct(raw, kind, name)
    decoder = _DECODERS.get(kind)
    if decoder is not None:
        return decoder(raw, name, struct)
    if kind in _INT_RANGES:
        low, high = _INT_RANGES[kind]
        if not isinstance(raw, int) or isinstance(raw, bool) or not low <= raw <= high:
            go_type = kind.replace("i", "int", 1).replace("u", "uint", 1) if kind != "int" else "int"
            raise type_error(raw, go_type, name, struct)
        return int(raw)
    raise AssertionError(kind)


def _decode_float(raw: Any, name: str, struct: str) -> float:
    if not isinstance(raw, (int, float)) or isinstance(raw, bool):
        raise type_error(raw, "float64", name, struct)
    return float(raw)


def _decode_str(raw: Any, name: str, struct: str) -> str:
    if not isinstance(raw, str):
        raise type_error(raw, "string", name, struct)
    return raw


def _decode_bool(raw: Any, name: str, struct: str) -> bool:
    if not isinstance(raw, bool):
        raise type_error(raw, "bool", name, struct)
    return raw


def _decode_time(raw: Any, name: str, struct: str) -> GoTime:
    if not isinstance(raw, str):
        raise type_error(raw, "time.Time", name, struct)
    return GoTime.parse(raw)


def _decode_map(raw: Any, name: str, struct: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise type_error(raw, "map", name, struct)
    return dict(_plain(raw))


def _decode_list(raw: Any, name: str, struct: str) -> list[Any]:
    if not isinstance(raw, list):
        raise type_error(raw, "slice", name, struct)
    return list(_plain(raw))


def _decode_u16list(raw: Any, name: str, struct: str) -> list[int]:
    if not isinstance(raw, list):
        raise type_error(raw, "[]uint16", name, struct)
    return [_decode_value(item, "u16", name, struct) for item in raw]


def _decode_any(raw: Any, name: str, struct: str) -> Any:
    return _plain(raw)


def _decode_cursors(raw: Any, name: str, struct: str) -> dict[str, dict[str, Any]]:
    if not isinstance(raw, dict):
        raise type_error(raw, "map[string]shared.TelemetryCursor", name, struct)
    return {str(k): _decode_value(v, CURSOR, name, struct) for k, v in raw.items() if v is not None}


def _plain(value: Any) -> Any:
    """Literal markers off (IntLiteral -> int), for values kept as they are."""
    if isinstance(value, IntLiteral):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


_DECODERS: dict[str, Callable[[Any, str, str], Any]] = {
    "float": _decode_float,
    "str": _decode_str,
    "bool": _decode_bool,
    "time": _decode_time,
    "ptime": _decode_time,
    "map": _decode_map,
    "list": _decode_list,
    "u16list": _decode_u16list,
    "any": _decode_any,
    "cursors": _decode_cursors,
}
_ZERO: dict[str, Any] = {"float": 0.0, "str": "", "bool": False, "time": GoTime.zero()}


def _encode_struct(obj: dict[str, Any], schema: list[Field]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, kind, omit in schema:
        value = obj.get(name)
        if isinstance(kind, list):
            if value is not None:
                out[name] = _encode_struct(value, kind)
            elif not omit:
                out[name] = None
            continue
        if value is None:
            value = _ZERO.get(kind, 0 if kind in _INT_RANGES else None)
        if omit and _is_empty(value):
            continue
        out[name] = _encode_value(value, kind)
    return out


def _encode_value(value: Any, kind: Any) -> Any:
    if isinstance(value, GoTime):
        return value.format()
    if kind == "cursors":
        return {k: _encode_struct(v, CURSOR) for k, v in value.items()}
    return _go_numbers(value)


def _go_numbers(value: Any) -> Any:
    """Go writes a float64 without a fraction as an integer (12600, not 12600.0)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if isinstance(value, list):
        return [_go_numbers(v) for v in value]
    if isinstance(value, dict):
        return {k: _go_numbers(v) for k, v in value.items()}
    return value


def _is_empty(value: Any) -> bool:
    """Go's omitempty: false, 0, "", nil, empty map/slice (a struct is never empty)."""
    if isinstance(value, GoTime):
        return False
    return value is None or value is False or value in (0, "", [], {})
