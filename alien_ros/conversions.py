"""Pure conversions from ROS 2 messages to alien telemetry dicts.

These run in the rclpy executor thread on every message, so they do no I/O, no logging and no JSON
encoding; the ``alien`` library encodes the dicts later. Every dict they return is JSON-safe: no NaN
or infinity (the C2 server's JSON decoder rejects them), timestamps are RFC 3339 strings with a zone
because a naive timestamp makes a v0.1.1 server drop the message (docs/contract.md#timestamps).
"""

from __future__ import annotations

import math
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from sensor_msgs.msg import BatteryState, NavSatFix, NavSatStatus

from alien_ros.message_dict import message_to_dict
from alien_ros.ros_scalars import (
    as_int,
    duration_to_seconds,
    enum_names,
    finite,
    float32,
    float32_list,
    stamp_to_rfc3339,
)

__all__ = [
    "DiagnosticLevelTracker",
    "FixTracker",
    "JsonDict",
    "battery_state_to_power",
    "diagnostic_array_to_health",
    "duration_to_seconds",
    "message_to_dict",
    "navsat_fix_to_position",
    "stamp_to_rfc3339",
]

JsonDict = dict[str, Any]


# ---------------------------------------------------------------- NavSatFix -> position

_FIX_NAMES = enum_names(NavSatStatus, "STATUS_")
_SERVICE_BITS = sorted((bit, name) for bit, name in enum_names(NavSatStatus, "SERVICE_").items() if bit > 0)
_COVARIANCE_TYPE_NAMES = enum_names(NavSatFix, "COVARIANCE_TYPE_")
_STATUS_NO_FIX = NavSatStatus.STATUS_NO_FIX
_COVARIANCE_DIAGONAL = (0, 4, 8)  # row-major 3x3 ENU covariance: east, north, up variances


def _fix_problem(msg: NavSatFix) -> str | None:
    """Why this fix must not be sent ('no_fix', 'non_finite', 'out_of_range'), or None when usable."""
    if msg.status.status == _STATUS_NO_FIX:
        return "no_fix"
    if not (math.isfinite(msg.latitude) and math.isfinite(msg.longitude)):
        return "non_finite"
    if not (-90.0 <= msg.latitude <= 90.0 and -180.0 <= msg.longitude <= 180.0):
        return "out_of_range"  # a driver bug; the server would place the robot nowhere
    return None


def navsat_fix_to_position(msg: NavSatFix) -> JsonDict | None:
    """NavSatFix -> position dict, or None when there is no fix or latitude/longitude are not finite.

    STATUS_UNKNOWN ("not yet set", the default in newer definitions) is not a refusal to fix, so
    such messages pass with fix "UNKNOWN" and the consumer decides.
    """
    if _fix_problem(msg) is not None:
        return None
    return _position(msg, stamp_to_rfc3339(msg.header.stamp))


def _position(msg: NavSatFix, stamp: str | None) -> JsonDict:
    covariance_type = _COVARIANCE_TYPE_NAMES.get(msg.position_covariance_type, "UNKNOWN")
    diagonal = None
    if covariance_type != "UNKNOWN":  # an out-of-enum type is as meaningless as UNKNOWN's zeros
        covariance = msg.position_covariance  # numpy (a ROS message) or a tuple (alien_ros.cdr)
        diagonal = [finite(float(covariance[index])) for index in _COVARIANCE_DIAGONAL]
    service = msg.status.service
    return {
        "latitude": msg.latitude,
        "longitude": msg.longitude,
        "altitude": finite(msg.altitude),
        "fix": _FIX_NAMES.get(msg.status.status, "UNKNOWN"),
        "services": [name for bit, name in _SERVICE_BITS if service & bit],
        "covariance_type": covariance_type,
        "covariance_diagonal": diagonal,
        "stamp": stamp,
        "frame_id": msg.header.frame_id,
    }


class FixTracker:
    """Turns a NavSatFix stream into positions plus fix_lost / fix_regained transition events.

    The first bad message after good ones (or the very first message, if bad) yields one
    ``fix_lost``; the first good one after that yields one ``fix_regained``. Messages in between
    yield nothing, so an operator sees each outage once, not at the GPS rate.
    """

    def __init__(self) -> None:
        self._has_fix: bool | None = None  # None: no message seen yet
        self._dropped = 0

    @property
    def dropped(self) -> int:
        """How many messages produced no position (no fix or non-finite coordinates)."""
        return self._dropped

    @property
    def has_fix(self) -> bool | None:
        """Whether the last message was usable; None before the first message."""
        return self._has_fix

    def update(self, msg: NavSatFix) -> tuple[JsonDict | None, JsonDict | None]:
        """Return (position or None, transition event or None) for one message."""
        stamp = stamp_to_rfc3339(msg.header.stamp)
        problem = _fix_problem(msg)
        if problem is not None:
            self._dropped += 1
            lost = None
            if self._has_fix is not False:
                lost = {"event": "fix_lost", "reason": problem, "stamp": stamp}
            self._has_fix = False
            return None, lost
        position = _position(msg, stamp)
        regained = None
        if self._has_fix is False:
            regained = {"event": "fix_regained", "fix": position["fix"], "stamp": stamp}
        self._has_fix = True
        return position, regained


# ---------------------------------------------------------------- BatteryState -> power

_POWER_STATUS_NAMES = enum_names(BatteryState, "POWER_SUPPLY_STATUS_")
_POWER_HEALTH_NAMES = enum_names(BatteryState, "POWER_SUPPLY_HEALTH_")
_POWER_TECHNOLOGY_NAMES = enum_names(BatteryState, "POWER_SUPPLY_TECHNOLOGY_")


def battery_state_to_power(msg: BatteryState) -> JsonDict:
    """BatteryState -> power dict; unmeasured (NaN) values become None, percentage is 0..100.

    Percentages outside 0..1 are converted, not clamped: hiding a miscalibrated gauge would be worse.
    """
    return {
        # BatteryState's numbers are float32: shown with the digits they carry (see float32)
        "voltage": float32(msg.voltage),
        "current": float32(msg.current),
        "charge": float32(msg.charge),
        "capacity": float32(msg.capacity),
        "design_capacity": float32(msg.design_capacity),
        # Two decimals drop float32 noise (0.87 is 0.8700000047...); round() keeps NaN/inf for finite.
        "percentage": finite(round(msg.percentage * 100.0, 2)),
        "status": _POWER_STATUS_NAMES.get(msg.power_supply_status, "UNKNOWN"),
        "health": _POWER_HEALTH_NAMES.get(msg.power_supply_health, "UNKNOWN"),
        "technology": _POWER_TECHNOLOGY_NAMES.get(msg.power_supply_technology, "UNKNOWN"),
        "present": bool(msg.present),
        "temperature": float32(msg.temperature),
        "cell_voltage": float32_list(msg.cell_voltage),
        "cell_temperature": float32_list(msg.cell_temperature),
        "location": msg.location,
        "serial_number": msg.serial_number,
        "stamp": stamp_to_rfc3339(msg.header.stamp),
    }


# ---------------------------------------------------------------- DiagnosticArray -> health

_OK = as_int(DiagnosticStatus.OK)
_WARN = as_int(DiagnosticStatus.WARN)
_ERROR = as_int(DiagnosticStatus.ERROR)
_STALE = as_int(DiagnosticStatus.STALE)
_LEVEL_NAMES = {_OK: "OK", _WARN: "WARN", _ERROR: "ERROR", _STALE: "STALE"}
_SEVERITY = {_OK: 0, _WARN: 1, _ERROR: 2}  # STALE and unknown levels rank as ERROR (see _worst_level)
_SEVERITY_NAMES = ("OK", "WARN", "ERROR")


def _level_name(level: bytes | int) -> str:
    return _LEVEL_NAMES.get(as_int(level), "UNKNOWN")


def _worst_level(levels: list[int]) -> str:
    """Overall level of a set of statuses, following ROS's own diagnostic_aggregator rule.

    Severity order: OK < WARN < ERROR, with STALE treated as ERROR unless *every* status is STALE
    (then the whole is STALE); no statuses at all is OK. This is GenericAnalyzerBase::report() in
    ros/diagnostics, so the C2 operator sees the same roll-up as rqt_robot_monitor. Why not the raw
    numeric max (STALE=3 > ERROR=2)? A stale component would hide a real ERROR's name. Why not
    STALE below WARN? A component that stopped reporting (a dead driver) is not a mere warning.
    Levels outside 0..3 come from a misbehaving publisher and also count as ERROR.
    """
    if not levels:
        return "OK"
    if all(level == _STALE for level in levels):
        return "STALE"
    return _SEVERITY_NAMES[max(_SEVERITY.get(level, 2) for level in levels)]


def _status_to_dict(status: DiagnosticStatus, level: int) -> JsonDict:
    return {
        "name": status.name,
        "level": _LEVEL_NAMES.get(level, "UNKNOWN"),
        "message": status.message,
        "hardware_id": status.hardware_id,
        "values": {pair.key: pair.value for pair in status.values},  # a repeated key: last one wins
    }


def diagnostic_array_to_health(msg: DiagnosticArray) -> JsonDict:
    """DiagnosticArray -> {"stamp", "level" (overall, see _worst_level), "statuses": [...]}."""
    levels = [as_int(status.level) for status in msg.status]
    return {
        "stamp": stamp_to_rfc3339(msg.header.stamp),
        "level": _worst_level(levels),
        "statuses": [_status_to_dict(status, level) for status, level in zip(msg.status, levels, strict=True)],
    }


class DiagnosticLevelTracker:
    """Emits one ``diagnostic_level_changed`` event per status whose level changed.

    Statuses are keyed by (hardware_id, name). A status first seen at OK is the normal start and
    emits nothing; first seen at any other level it is a change from ``previous: None``.
    """

    def __init__(self) -> None:
        self._levels: dict[tuple[str, str], str] = {}

    def update(self, msg: DiagnosticArray) -> list[JsonDict]:
        """Record the levels in ``msg`` and return the change events (empty when nothing changed)."""
        stamp = stamp_to_rfc3339(msg.header.stamp)
        events: list[JsonDict] = []
        for status in msg.status:
            key = (status.hardware_id, status.name)
            level = _level_name(status.level)
            previous = self._levels.get(key)
            self._levels[key] = level
            if level == previous or (previous is None and level == "OK"):
                continue
            events.append(
                {
                    "event": "diagnostic_level_changed",
                    "name": status.name,
                    "hardware_id": status.hardware_id,
                    "previous": previous,
                    "level": level,
                    "message": status.message,
                    "stamp": stamp,
                }
            )
        return events
