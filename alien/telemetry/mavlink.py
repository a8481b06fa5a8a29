"""MAVLink messages of the telemetry encoders: position and HEARTBEAT built here, power in mavlink_power.

Pure functions, no I/O. Field names and units follow the MAVLink common message set (common.xml);
the servers read them in those units (docs/contract.md#mavlink-style-telemetry).

Unknown values are left out (GPS_RAW_INT excepted: see gps_raw_int), never sent as MAVLink's binary
"unknown" sentinels (hdg and voltage_battery UINT16_MAX, temperature INT16_MAX, current_battery and
battery_remaining -1, unused voltages cells UINT16_MAX; docs/contract.md#mavlink-style-telemetry
lists battery_remaining -1 = unknown). Binary MAVLink has a slot for every field and so needs them;
in the JSON data every field is optional. The newest server's worker
(alien_testing.emulator.telemetry_v01 models it) goes field by field: it range-checks each field
present, updates the operator map only from the fields present, and keeps the old value for a field
left out; it does not treat a sentinel specially but stores it as a reading (temperature 32767 shows
as 327.67 °C on the map, current_battery -1 as -0.01 A, unused cells 65535 in the map's `cells`, hdg
65535 is simply not read). A message that would be left with no data field at all is not sent.
HEARTBEAT keeps all its fields (none is a sentinel).

Every number given is range-checked and rounded half away from zero (alien.telemetry.mavlink_fields). The
encoders import everything from here: the names of alien.telemetry.mavlink_fields and alien.telemetry.mavlink_power
they use are re-exported.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from alien.telemetry.mavlink_fields import (
    GLOBAL_POSITION_INT,
    GPS_RAW_INT,
    HEARTBEAT,
    INT16,
    INT32,
    UINT16_MAX,
    Message,
    TelemetryEncodeError,
    number,
    required,
    round_half_away,
    scaled,
)
from alien.telemetry.mavlink_power import POWER_DESCRIPTIVE, POWER_KEYS, power_messages

__all__ = [
    "POSITION_DESCRIPTIVE",
    "POSITION_KEYS",
    "POWER_DESCRIPTIVE",
    "POWER_KEYS",
    "Message",
    "TelemetryEncodeError",
    "global_position_int",
    "gps_raw_int",
    "heartbeat",
    "number",
    "power_messages",
    "round_half_away",
]

# ---------------------------------------------------------------- GLOBAL_POSITION_INT (33)

# What the ROS bridge adds to a position (alien_ros.conversions): GPS_RAW_INT reads fix and the
# covariance; the rest has no MAVLink field and the map does not need it: not sent, not leftover.
POSITION_DESCRIPTIVE = frozenset({"fix", "services", "covariance_type", "covariance_diagonal", "stamp", "frame_id"})
POSITION_KEYS = frozenset(
    {"latitude", "longitude", "altitude", "relative_altitude", "heading", "velocity", "satellites"}
)


def heading_cdeg(heading: Any) -> int | None:
    """Degrees (any value, e.g. -90) -> cdeg 0..35999; unknown -> None (left out, not UINT16_MAX)."""
    degrees = number("position.heading", heading)
    if degrees is None:
        return None
    return round_half_away((degrees % 360.0) * 100) % 36000  # 359.996 rounds to 36000, i.e. 0


def global_position_int(position: Mapping[str, Any]) -> Message:
    """Position dict -> GLOBAL_POSITION_INT: degE7, mm, cdeg, cm/s NED (common.xml).

    lat/lon are required; alt, relative_alt, hdg and vx/vy/vz are left out when unknown (module
    docstring). time_boot_ms is not sent: the strict schema/golden
    (docs/contract.md#telemetry-envelope-v1) have none and the envelope's timestamp carries the time.
    """
    lat = required("position.latitude", position.get("latitude"), -90, 90)
    lon = required("position.longitude", position.get("longitude"), -180, 180)
    data: dict[str, Any] = {
        "lat": scaled("position.latitude", lat, 1e7, "lat", *INT32),
        "lon": scaled("position.longitude", lon, 1e7, "lon", *INT32),
    }
    for key, wire in (("altitude", "alt"), ("relative_altitude", "relative_alt")):
        metres = number(f"position.{key}", position.get(key))
        if metres is not None:  # unknown: left out (module docstring)
            data[wire] = scaled(f"position.{key}", metres, 1000, wire, *INT32)
    hdg = heading_cdeg(position.get("heading"))
    if hdg is not None:  # unknown: left out rather than UINT16_MAX
        data["hdg"] = hdg
    velocity = position.get("velocity")
    if velocity is not None:
        if not isinstance(velocity, Mapping):
            raise TelemetryEncodeError(f"position.velocity {velocity!r:.80} must be a mapping {{north, east, down}}")
        for axis, wire in (("north", "vx"), ("east", "vy"), ("down", "vz")):
            speed = number(f"position.velocity.{axis}", velocity.get(axis))
            if speed is not None:  # unknown: left out, never 0
                data[wire] = scaled(f"position.velocity.{axis}", speed, 100, wire, *INT16)
    return Message("GLOBAL_POSITION_INT", GLOBAL_POSITION_INT, data)


# ---------------------------------------------------------------- GPS_RAW_INT (24)

UINT8_MAX = 2**8 - 1  # common.xml "unknown" for satellites_visible
# sensor_msgs/NavSatStatus (alien_ros.conversions names it) -> GPS_FIX_TYPE; SBAS and GBAS are
# corrected fixes, DGPS in MAVLink's terms.
FIX_TYPES = {"NO_FIX": 1, "SBAS_FIX": 4, "GBAS_FIX": 4}
GPS_FIX_TYPE_2D, GPS_FIX_TYPE_3D = 2, 3


def _uint16_or_unknown(field: str, value: float | None, scale: float) -> int:
    """round(value * scale) as a uint16 reading, UINT16_MAX when unknown; a reading never takes UINT16_MAX."""
    if value is None:
        return UINT16_MAX
    return min(scaled(field, value, scale, field, 0, 2**63), UINT16_MAX - 1)


def gps_raw_int(position: Mapping[str, Any]) -> Message:
    """Position dict -> GPS_RAW_INT, what v0.1.1 servers read as the position (common.xml units).

    Unlike the other messages every field is sent, an unknown one as its common.xml "unknown"
    value: v0.1.1's worker stores the whole struct, and a missing eph would read as 0 m. Left
    out: time_usec (the envelope's timestamp carries the time) and the h_acc/v_acc extensions.
    - alt: 0 when unknown (GPS_RAW_INT has no "unknown" for it); fix_type then says 2D.
    - fix_type: from the ROS fix status (FIX_TYPES); FIX, UNKNOWN or none given -> 3D_FIX, or
      2D_FIX without an altitude: a position is given, so something fixed it.
    - eph/epv: HDOP/VDOP * 100, approximated from the covariance (standard deviation in metres:
      DOP times a 1 m range error), which is how the server shows them (accuracy in metres).
    - vel/cog: from the velocity's north/east; cog only while moving.
    - satellites_visible: `satellites` when given (NavSatFix has none), else 255.
    - yaw: the heading in cdeg (36000 for north, 0 = "this GPS gives no yaw").
    """
    lat = required("position.latitude", position.get("latitude"), -90, 90)
    lon = required("position.longitude", position.get("longitude"), -180, 180)
    altitude = number("position.altitude", position.get("altitude"))
    fix = position.get("fix")
    fix_type = FIX_TYPES.get(fix, None) if isinstance(fix, str) else None
    if fix_type is None:
        fix_type = GPS_FIX_TYPE_3D if altitude is not None else GPS_FIX_TYPE_2D
    eph = epv = None
    diagonal = position.get("covariance_diagonal")
    if isinstance(diagonal, list | tuple) and len(diagonal) == 3:
        east, north, up = (number(f"position.covariance_diagonal[{i}]", v) for i, v in enumerate(diagonal))
        if east is not None and north is not None and east >= 0 and north >= 0:
            eph = math.sqrt((east + north) / 2)
        if up is not None and up >= 0:
            epv = math.sqrt(up)
    speed = course = None
    velocity = position.get("velocity")
    if velocity is not None:
        if not isinstance(velocity, Mapping):
            raise TelemetryEncodeError(f"position.velocity {velocity!r:.80} must be a mapping {{north, east, down}}")
        north_v = number("position.velocity.north", velocity.get("north"))
        east_v = number("position.velocity.east", velocity.get("east"))
        if north_v is not None and east_v is not None:
            speed = math.hypot(north_v, east_v)
            if speed > 0:
                course = math.degrees(math.atan2(east_v, north_v)) % 360.0
    satellites = position.get("satellites")
    if satellites is None:
        visible = UINT8_MAX
    elif isinstance(satellites, bool) or not isinstance(satellites, int) or not 0 <= satellites < UINT8_MAX:
        raise TelemetryEncodeError(f"position.satellites {satellites!r} is outside 0..{UINT8_MAX - 1}")
    else:
        visible = satellites
    heading = heading_cdeg(position.get("heading"))
    data: dict[str, Any] = {
        "fix_type": fix_type,
        "lat": scaled("position.latitude", lat, 1e7, "lat", *INT32),
        "lon": scaled("position.longitude", lon, 1e7, "lon", *INT32),
        "alt": 0 if altitude is None else scaled("position.altitude", altitude, 1000, "alt", *INT32),
        "eph": _uint16_or_unknown("eph", eph, 100),
        "epv": _uint16_or_unknown("epv", epv, 100),
        "vel": _uint16_or_unknown("vel", speed, 100),
        "cog": UINT16_MAX if course is None else round_half_away(course * 100) % 36000,
        "satellites_visible": visible,
        "yaw": 0 if heading is None else (heading or 36000),
    }
    return Message("GPS_RAW_INT", GPS_RAW_INT, data)


# ---------------------------------------------------------------- HEARTBEAT (0)

MAV_AUTOPILOT_INVALID = 8  # "no valid autopilot": Alien is not a flight controller
MAV_TYPE_GENERIC, MAV_TYPE_GCS = 0, 6
MAV_TYPES = {
    "aircraft_fixed_wing": 1,
    "aircraft_multirotor": 2,  # QUADROTOR, what ground stations draw as a multirotor
    "aircraft_helicopter": 4,
    "aircraft_airship": 7,
    "ground_vehicle_wheeled": 10,  # GROUND_ROVER
    "ground_vehicle_tracked": 10,
    "surface_vessel_usv": 11,  # SURFACE_BOAT
    "underwater_vehicle": 12,  # SUBMARINE
    "aircraft_vtol": 22,  # VTOL_FIXEDROTOR (quadplane), the common VTOL; common.xml has no generic VTOL
    "operator_station": MAV_TYPE_GCS,
}

# MAV_STATE: 0 UNINIT, 1 BOOT, 2 CALIBRATING, 3 STANDBY, 4 ACTIVE, 5 CRITICAL, 6 EMERGENCY, 7 POWEROFF
MAV_STATE_UNINIT, MAV_STATE_CRITICAL = 0, 5
MAV_STATES = {
    "unknown": 0,
    "pending": 1,  # registered/starting, not yet ready
    "maintenance": 2,  # CALIBRATING: "not flight-ready", unlike STANDBY which "can be launched any time"
    "inactive": 3,
    "idle": 3,
    "standby": 3,
    "active": 4,
    "returning": 4,
    "error": 5,
    "emergency": 6,
    "shutdown": 7,
    "poweroff": 7,
}
BAD_HEALTH = frozenset({"ERROR", "STALE"})  # diagnostic levels (alien_ros.conversions) -> CRITICAL


def mav_state(status: str | None, health_level: str | None) -> int:
    """Entity status + overall diagnostic level -> MAV_STATE (table above; unknown status -> UNINIT).

    A bad health level raises the state to at least CRITICAL; EMERGENCY and POWEROFF stay.
    """
    state = MAV_STATES.get(status.strip().lower(), MAV_STATE_UNINIT) if status else MAV_STATE_UNINIT
    if health_level and health_level.strip().upper() in BAD_HEALTH:
        state = max(state, MAV_STATE_CRITICAL)
    return state


def heartbeat(entity_type: str, status: str | None, health_level: str | None) -> Message:
    """HEARTBEAT for this entity; custom_mode is left out on purpose.

    The strict worker decodes custom_mode as an ArduPilot mode whatever the autopilot, so a 0 would
    show every Alien device as "STABILIZE".
    """
    data = {
        "type": MAV_TYPES.get(entity_type, MAV_TYPE_GENERIC),
        "autopilot": MAV_AUTOPILOT_INVALID,
        "base_mode": 0,  # no MAV_MODE_FLAG: not armed, no autopilot modes
        "system_status": mav_state(status, health_level),
        "mavlink_version": 3,  # the protocol version common.xml declares (MAVLink 1.0 and 2)
    }
    return Message("HEARTBEAT", HEARTBEAT, data)
