"""What a v0.1.x server's telemetry worker writes into the entity state for one message's ``data``.

Read from Constellation-Overwatch/constellation-overwatch pkg/services/workers/telemetry.go
(``updateEntityState``, docs/contract.md#telemetry-payloads): one handler per supported
``message_type``; out-of-range MAVLink integer fields (e.g. ``battery_remaining`` outside -1..100)
are dropped one by one with a warning and the rest of the message is still applied; the source has
no range check on lat/lon at all. Decoding the message itself is
:mod:`alien_testing.emulator.telemetry_v01`'s job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from alien_testing.emulator.gojson import GoTime

SUPPORTED_TYPES = (
    "HEARTBEAT",
    "SYS_STATUS",
    "GPS_RAW_INT",
    "GLOBAL_POSITION_INT",
    "ATTITUDE",
    "ATTITUDE_QUATERNION",
    "LOCAL_POSITION_NED",
    "ALTITUDE",
    "VFR_HUD",
    "MISSION_CURRENT",
    "BATTERY_STATUS",
    "SERVO_OUTPUT_RAW",
    "SCALED_PRESSURE",
    "EXTENDED_SYS_STATE",
)

# v0.1.1's worker knows these only: GLOBAL_POSITION_INT came with the strict envelope (rc), so
# on v0.1.1 it is acked and lands in metadata, never in the position.
V011_TYPES = tuple(t for t in SUPPORTED_TYPES if t != "GLOBAL_POSITION_INT")

ARDUPILOT_MODES = {
    0: "STABILIZE",
    1: "ACRO",
    2: "ALT_HOLD",
    3: "AUTO",
    4: "GUIDED",
    5: "LOITER",
    6: "RTL",
    7: "CIRCLE",
    9: "LAND",
    11: "DRIFT",
    13: "SPORT",
    14: "FLIP",
    15: "AUTOTUNE",
    16: "POSHOLD",
    17: "BRAKE",
    18: "THROW",
    19: "AVOID_ADSB",
    20: "GUIDED_NOGPS",
    21: "SMART_RTL",
    22: "FLOWHOLD",
    23: "FOLLOW",
    24: "ZIGZAG",
    25: "SYSTEMID",
    26: "AUTOROTATE",
    27: "AUTO_RTL",
}


@dataclass
class _Fields:
    """Typed reads from ``data`` with the worker's range checks; rejected fields become warnings."""

    data: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    def number(self, key: str) -> float | None:
        value = self.data.get(key)
        if isinstance(value, float) or (isinstance(value, int) and not isinstance(value, bool)):
            return float(value)
        return None

    def integer(self, key: str, low: int, high: int) -> int | None:
        value = self.number(key)
        return None if value is None else self.check(key, value, low, high)

    def check(self, key: str, value: float, low: int, high: int) -> int | None:
        if math.isnan(value) or math.isinf(value) or math.trunc(value) != value or not low <= value <= high:
            self.warnings.append(f"Rejected out-of-range MAVLink integer {key}={value:g} (allowed {low}..{high})")
            return None
        return int(value)


def _sub(state: dict[str, Any], *path: str) -> dict[str, Any]:
    """state[path...], creating empty structs on the way (``if x == nil { x = &T{} }``)."""
    node = state
    for key in path:
        child = node.get(key)
        if child is None:
            child = {}
            node[key] = child
        node = child
    return node


def project(state: dict[str, Any], message_type: str, data: dict[str, Any], ts: GoTime) -> list[str] | None:
    """Apply one message to ``state`` (decoded EntityState). None: unsupported message type.

    Returns the warnings (fields dropped as out of range).
    """
    handler = _HANDLERS.get(message_type)
    if handler is None:
        return None
    fields = _Fields(data)
    handler(state, fields, ts)
    return fields.warnings


U8, U16, U32 = (0, (1 << 8) - 1), (0, (1 << 16) - 1), (0, (1 << 32) - 1)
I16, I32 = (-(1 << 15), (1 << 15) - 1), (-(1 << 31), (1 << 31) - 1)


def _set(target: dict[str, Any], name: str, value: Any) -> None:
    if value is not None:
        target[name] = value


def _heartbeat(state: dict[str, Any], f: _Fields, ts: GoTime) -> None:
    vs = _sub(state, "vehicle_status")
    custom = f.integer("custom_mode", *U32)
    if custom is not None:
        vs["custom_mode"] = custom
        vs["mode"] = ARDUPILOT_MODES.get(custom, f"UNKNOWN_{custom}")
    base = f.integer("base_mode", *U8)
    if base is not None:
        vs["armed"] = bool(base & 128)
    _set(vs, "autopilot", f.integer("autopilot", *U8))
    _set(vs, "system_status", f.integer("system_status", *U8))
    _set(vs, "vehicle_type", f.integer("type", *U8))
    vs["timestamp"] = ts


def _sys_status(state: dict[str, Any], f: _Fields, ts: GoTime) -> None:
    vs, power = _sub(state, "vehicle_status"), _sub(state, "power")
    _set(vs, "load", f.integer("load", *U16))
    _set(vs, "sensors_enabled", f.integer("onboard_control_sensors_enabled", *U32))
    _set(vs, "sensors_health", f.integer("onboard_control_sensors_health", *U32))
    _set(power, "voltage", f.number("voltage_battery"))  # copied as sent (mV), no conversion
    _set(power, "current", f.number("current_battery"))  # copied as sent (cA), no conversion
    _set(power, "battery_remaining", f.integer("battery_remaining", -1, 100))
    vs["timestamp"] = power["timestamp"] = ts


def _scaled(f: _Fields, key: str, divisor: float) -> float | None:
    value = f.number(key)
    return None if value is None else value / divisor


def _gps_raw(state: dict[str, Any], f: _Fields, ts: GoTime) -> None:
    g = _sub(state, "position", "global")
    _set(g, "latitude", _scaled(f, "lat", 1e7))
    _set(g, "longitude", _scaled(f, "lon", 1e7))
    _set(g, "altitude_msl", _scaled(f, "alt", 1000.0))
    _set(g, "accuracy_h", _scaled(f, "eph", 100.0))
    _set(g, "accuracy_v", _scaled(f, "epv", 100.0))
    _set(g, "satellites_visible", f.integer("satellites_visible", *U8))
    _set(g, "fix_type", f.integer("fix_type", *U8))
    g["timestamp"] = ts


def _global_position(state: dict[str, Any], f: _Fields, ts: GoTime) -> None:
    g, local = _sub(state, "position", "global"), _sub(state, "position", "local")
    _set(g, "latitude", _scaled(f, "lat", 1e7))
    _set(g, "longitude", _scaled(f, "lon", 1e7))
    _set(g, "altitude_msl", _scaled(f, "alt", 1000.0))
    _set(g, "altitude_relative", _scaled(f, "relative_alt", 1000.0))
    for axis in ("vx", "vy", "vz"):
        _set(local, axis, _scaled(f, axis, 100.0))
    g["timestamp"] = local["timestamp"] = ts  # hdg is not read by the worker


def _copy(target: dict[str, Any], f: _Fields, names: dict[str, str], ts: GoTime) -> None:
    for source, name in names.items():
        _set(target, name, f.number(source))
    target["timestamp"] = ts


def _attitude(state: dict[str, Any], f: _Fields, ts: GoTime) -> None:
    names = ("roll", "pitch", "yaw", "rollspeed", "pitchspeed", "yawspeed")
    _copy(_sub(state, "attitude", "euler"), f, {n: n for n in names}, ts)


def _attitude_quaternion(state: dict[str, Any], f: _Fields, ts: GoTime) -> None:
    names = ("q1", "q2", "q3", "q4", "rollspeed", "pitchspeed", "yawspeed")
    _copy(_sub(state, "attitude", "quaternion"), f, {n: n for n in names}, ts)


def _local_position(state: dict[str, Any], f: _Fields, ts: GoTime) -> None:
    _copy(_sub(state, "position", "local"), f, {n: n for n in ("x", "y", "z", "vx", "vy", "vz")}, ts)


def _altitude(state: dict[str, Any], f: _Fields, ts: GoTime) -> None:
    names = {
        "altitude_amsl": "altitude_msl",
        "altitude_relative": "altitude_relative",
        "altitude_terrain": "altitude_terrain",
    }
    _copy(_sub(state, "position", "global"), f, names, ts)


def _vfr(state: dict[str, Any], f: _Fields, ts: GoTime) -> None:
    vfr = _sub(state, "vfr")
    _set(vfr, "airspeed", f.number("airspeed"))
    _set(vfr, "groundspeed", f.number("groundspeed"))
    _set(vfr, "heading", f.integer("heading", 0, 360))
    _set(vfr, "climb_rate", f.number("climb"))
    _set(vfr, "throttle", f.integer("throttle", 0, 100))
    _set(vfr, "altitude", f.number("alt"))
    vfr["timestamp"] = ts


def _mission(state: dict[str, Any], f: _Fields, ts: GoTime) -> None:
    mission = _sub(state, "mission")
    _set(mission, "current_waypoint", f.integer("seq", *U16))
    mission["timestamp"] = ts


def _battery(state: dict[str, Any], f: _Fields, ts: GoTime) -> None:
    power = _sub(state, "power")
    _set(power, "battery_remaining", f.integer("battery_remaining", -1, 100))
    _set(power, "current", _scaled(f, "current_battery", 100.0))  # cA -> A
    _set(power, "consumed", f.integer("current_consumed", *I32))
    _set(power, "energy_consumed", f.integer("energy_consumed", *I32))
    _set(power, "temperature", f.integer("temperature", *I16))
    voltages = f.data.get("voltages")
    if isinstance(voltages, list):  # all cells valid, or the old cells stay
        cells: list[int] = []
        for i, volts in enumerate(voltages):
            cell = f.check(f"voltages[{i}]", volts, *U16) if isinstance(volts, float) else None
            if cell is None:
                break
            cells.append(cell)
        else:
            power["cells"] = cells
    power["timestamp"] = ts


def _servos(state: dict[str, Any], f: _Fields, ts: GoTime) -> None:
    actuators = _sub(state, "actuators")
    actuators["servos"] = [f.integer(f"servo{i}_raw", *U16) or 0 for i in range(1, 9)]
    actuators["timestamp"] = ts


def _pressure(state: dict[str, Any], f: _Fields, ts: GoTime) -> None:
    env = _sub(state, "environment")
    _set(env, "pressure_abs", f.number("press_abs"))
    _set(env, "pressure_diff", f.number("press_diff"))
    _set(env, "temperature", f.integer("temperature", *I16))
    env["timestamp"] = ts


def _extended_sys_state(state: dict[str, Any], f: _Fields, ts: GoTime) -> None:
    vs = _sub(state, "vehicle_status")
    _set(vs, "landed_state", f.integer("landed_state", *U8))
    _set(vs, "vtol_state", f.integer("vtol_state", *U8))
    vs["timestamp"] = ts


_HANDLERS = {
    "HEARTBEAT": _heartbeat,
    "SYS_STATUS": _sys_status,
    "GPS_RAW_INT": _gps_raw,
    "GLOBAL_POSITION_INT": _global_position,
    "ATTITUDE": _attitude,
    "ATTITUDE_QUATERNION": _attitude_quaternion,
    "LOCAL_POSITION_NED": _local_position,
    "ALTITUDE": _altitude,
    "VFR_HUD": _vfr,
    "MISSION_CURRENT": _mission,
    "BATTERY_STATUS": _battery,
    "SERVO_OUTPUT_RAW": _servos,
    "SCALED_PRESSURE": _pressure,
    "EXTENDED_SYS_STATE": _extended_sys_state,
}
assert tuple(_HANDLERS) == SUPPORTED_TYPES
