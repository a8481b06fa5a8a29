"""Pure conversions from ROS 2 messages to alien telemetry dicts.

These run in the rclpy executor thread on every message, so they do no I/O, no logging and no JSON
encoding; the ``alien`` library encodes the dicts later. Every dict they return is JSON-safe: no NaN
or infinity (the C2 server's JSON decoder rejects them), timestamps are RFC 3339 strings with a zone
because a naive timestamp makes a v0.1.1 server drop the message (MOTHERSHIP_CONTRACT.md §3).
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from builtin_interfaces.msg import Duration, Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from sensor_msgs.msg import BatteryState, NavSatFix, NavSatStatus

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

_NS_PER_S = 1_000_000_000
_NS_PER_US = 1_000
# Naive on purpose: isoformat() of a naive datetime has no offset, so "Z" can be appended directly.
_EPOCH_UTC = datetime(1970, 1, 1)


# ---------------------------------------------------------------- scalars and time


def stamp_to_rfc3339(stamp: Time) -> str | None:
    """ROS time -> '2026-07-21T20:00:00.123456Z' (UTC, microseconds, truncated); zero stamp -> None.

    A zero stamp means "never set" in ROS, not 1970, so it must not reach the server as a time.
    """
    sec, nanosec = stamp.sec, stamp.nanosec
    if sec == 0 and nanosec == 0:
        return None
    # nanosec is uint32 and may exceed one second in a hand-built message: normalise, don't fail.
    carry, nanosec = divmod(nanosec, _NS_PER_S)
    moment = _EPOCH_UTC + timedelta(seconds=sec + carry, microseconds=nanosec // _NS_PER_US)
    return moment.isoformat(timespec="microseconds") + "Z"


def duration_to_seconds(duration: Duration) -> float:
    """ROS duration -> seconds as a float."""
    return float(duration.sec + duration.nanosec / _NS_PER_S)


def _finite(value: float) -> float | None:
    """The value, or None when it is NaN or infinite (JSON has no spelling for them)."""
    return value if math.isfinite(value) else None


def _finite_list(values: Any) -> list[float | None]:
    """Float array (numpy, array.array, list) -> list with every non-finite element as None."""
    items: list[float] = values.tolist() if hasattr(values, "tolist") else list(values)
    if all(map(math.isfinite, items)):  # the common case: no second pass, no new list
        return items  # type: ignore[return-value]
    return [item if math.isfinite(item) else None for item in items]


def _float32(value: float) -> float | None:
    """A float32 field as the number it was written as: 7 significant digits, no binary noise.

    (24.3 stored as float32 reads back as 24.299999237060547; float32 carries ~7 digits.)
    """
    return float(f"{value:.7g}") if math.isfinite(value) else None


def _float32_list(values: Any) -> list[float | None]:
    items: list[float] = values.tolist() if hasattr(values, "tolist") else list(values)
    return [_float32(item) for item in items]


def _enum_names(cls: type, prefix: str) -> dict[int, str]:
    """Value -> name for the constants of a message class, e.g. BatteryState 'POWER_SUPPLY_STATUS_'.

    Read from the installed class so names added by newer message definitions are covered.
    rosidl's '<FIELD>__DEFAULT' attributes are default values, not enum members, and are skipped.
    """
    names: dict[int, str] = {}
    for attribute in sorted(dir(cls)):
        suffix = attribute[len(prefix) :]
        if attribute.startswith(prefix) and suffix and not suffix.startswith("_"):
            names.setdefault(_as_int(getattr(cls, attribute)), suffix)
    return names


def _as_int(value: bytes | int) -> int:
    """Level or 'byte' value as int: rclpy gives octet values as 1-byte bytes, everything else as int."""
    return value[0] if isinstance(value, bytes | bytearray) else int(value)


# ---------------------------------------------------------------- NavSatFix -> position

_FIX_NAMES = _enum_names(NavSatStatus, "STATUS_")
_SERVICE_BITS = sorted((bit, name) for bit, name in _enum_names(NavSatStatus, "SERVICE_").items() if bit > 0)
_COVARIANCE_TYPE_NAMES = _enum_names(NavSatFix, "COVARIANCE_TYPE_")
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
        covariance = msg.position_covariance.tolist()
        diagonal = [_finite(covariance[index]) for index in _COVARIANCE_DIAGONAL]
    service = msg.status.service
    return {
        "latitude": msg.latitude,
        "longitude": msg.longitude,
        "altitude": _finite(msg.altitude),
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

_POWER_STATUS_NAMES = _enum_names(BatteryState, "POWER_SUPPLY_STATUS_")
_POWER_HEALTH_NAMES = _enum_names(BatteryState, "POWER_SUPPLY_HEALTH_")
_POWER_TECHNOLOGY_NAMES = _enum_names(BatteryState, "POWER_SUPPLY_TECHNOLOGY_")


def battery_state_to_power(msg: BatteryState) -> JsonDict:
    """BatteryState -> power dict; unmeasured (NaN) values become None, percentage is 0..100.

    Percentages outside 0..1 are converted, not clamped: hiding a miscalibrated gauge would be worse.
    """
    return {
        # BatteryState's numbers are float32: shown with the digits they carry (see _float32)
        "voltage": _float32(msg.voltage),
        "current": _float32(msg.current),
        "charge": _float32(msg.charge),
        "capacity": _float32(msg.capacity),
        "design_capacity": _float32(msg.design_capacity),
        # Two decimals drop float32 noise (0.87 is 0.8700000047...); round() keeps NaN/inf for _finite.
        "percentage": _finite(round(msg.percentage * 100.0, 2)),
        "status": _POWER_STATUS_NAMES.get(msg.power_supply_status, "UNKNOWN"),
        "health": _POWER_HEALTH_NAMES.get(msg.power_supply_health, "UNKNOWN"),
        "technology": _POWER_TECHNOLOGY_NAMES.get(msg.power_supply_technology, "UNKNOWN"),
        "present": bool(msg.present),
        "temperature": _float32(msg.temperature),
        "cell_voltage": _float32_list(msg.cell_voltage),
        "cell_temperature": _float32_list(msg.cell_temperature),
        "location": msg.location,
        "serial_number": msg.serial_number,
        "stamp": stamp_to_rfc3339(msg.header.stamp),
    }


# ---------------------------------------------------------------- DiagnosticArray -> health

_OK = _as_int(DiagnosticStatus.OK)
_WARN = _as_int(DiagnosticStatus.WARN)
_ERROR = _as_int(DiagnosticStatus.ERROR)
_STALE = _as_int(DiagnosticStatus.STALE)
_LEVEL_NAMES = {_OK: "OK", _WARN: "WARN", _ERROR: "ERROR", _STALE: "STALE"}
_SEVERITY = {_OK: 0, _WARN: 1, _ERROR: 2}  # STALE and unknown levels rank as ERROR (see _worst_level)
_SEVERITY_NAMES = ("OK", "WARN", "ERROR")


def _level_name(level: bytes | int) -> str:
    return _LEVEL_NAMES.get(_as_int(level), "UNKNOWN")


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
    levels = [_as_int(status.level) for status in msg.status]
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


# ---------------------------------------------------------------- any message -> dict

_Converter = Callable[[Any], Any]

_FLOAT_TYPES = frozenset({"float", "double", "long double"})
# rosidl reports 'char' as uint8 and 'byte' as octet; both are raw bytes on the wire.
_BYTE_TYPES = frozenset({"uint8", "octet", "char", "byte"})
_TIME_TYPE = "builtin_interfaces/Time"
_DURATION_TYPE = "builtin_interfaces/Duration"
# Field type strings from get_fields_and_field_types(): 'double[9]', 'sequence<uint8>',
# 'sequence<test_msgs/BasicTypes, 3>', 'string<22>' (a bounded string is a scalar).
_SEQUENCE_RE = re.compile(r"sequence<(?P<element>.+?)(?:, *\d+)?>")
_ARRAY_RE = re.compile(r"(?P<element>.+)\[\d+\]")

# Per message class: ((field name, converter), ...). Built once per class; the GIL makes the
# dict assignment atomic, and building twice in a race is harmless.
_PLANS: dict[type, tuple[tuple[str, _Converter], ...]] = {}


def message_to_dict(msg: Any) -> JsonDict:
    """Any ROS message -> JSON-safe dict, recursively.

    Nested messages become dicts, Time fields RFC 3339 strings (None when zero), Duration fields
    seconds, non-finite floats None, byte-like arrays (uint8/char/byte) base64 strings, other arrays
    lists, and single 'byte' fields ints. A Time/Duration passed at the top level is a plain message
    ({"sec", "nanosec"}); the special forms apply to fields.
    """
    cls = type(msg)
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = _build_plan(cls)
    return {name: convert(getattr(msg, name)) for name, convert in plan}


def _build_plan(cls: type) -> tuple[tuple[str, _Converter], ...]:
    fields: dict[str, str] = cls.get_fields_and_field_types()  # type: ignore[attr-defined]
    return tuple((name, _converter_for(type_string)) for name, type_string in fields.items())


def _converter_for(type_string: str) -> _Converter:
    collection = _SEQUENCE_RE.fullmatch(type_string) or _ARRAY_RE.fullmatch(type_string)
    if collection is not None:
        return _collection_converter(collection.group("element"))
    return _scalar_converter(type_string)


def _scalar_converter(type_string: str) -> _Converter:
    if type_string in _FLOAT_TYPES:
        return _finite
    if type_string in ("octet", "byte"):
        return _as_int
    if type_string == _TIME_TYPE:
        return stamp_to_rfc3339
    if type_string == _DURATION_TYPE:
        return duration_to_seconds
    if "/" in type_string:
        return message_to_dict
    return _identity  # bool, integers, strings


def _collection_converter(element: str) -> _Converter:
    if element in _BYTE_TYPES:
        return _to_base64
    if element in _FLOAT_TYPES:
        return _finite_list
    if element == _TIME_TYPE:
        return _mapper(stamp_to_rfc3339)
    if element == _DURATION_TYPE:
        return _mapper(duration_to_seconds)
    if "/" in element:
        return _mapper(message_to_dict)
    return _plain_list


def _mapper(convert: _Converter) -> _Converter:
    def convert_all(values: Iterable[Any]) -> list[Any]:
        return [convert(value) for value in values]

    return convert_all


def _identity(value: Any) -> Any:
    return value


def _plain_list(values: Any) -> list[Any]:
    """Array -> new list of Python scalars (numpy and array.array via tolist; lists and tuples copied)."""
    return values.tolist() if hasattr(values, "tolist") else list(values)


def _to_base64(values: Any) -> str:
    """Byte-like array -> base64 text, from any shape rclpy gives (or a user assigns) it."""
    if isinstance(values, bytes | bytearray | memoryview):
        raw = bytes(values)
    elif hasattr(values, "tobytes"):  # array.array('B') for sequences, numpy uint8 for fixed arrays
        raw = values.tobytes()
    elif values and isinstance(values[0], bytes):  # octet[]: a list of 1-byte bytes objects
        raw = b"".join(values)
    else:  # a list or tuple of ints
        raw = bytes(values)
    return base64.b64encode(raw).decode("ascii")
