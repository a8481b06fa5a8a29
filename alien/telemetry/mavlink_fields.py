"""MAVLink fields: the message tuple, common.xml ids and integer ranges, and one reading into one field.

Pure functions, no I/O; the message builders (alien.telemetry.mavlink, alien.telemetry.mavlink_power) use them.
Every number that is given is range-checked before it is built into a message; a violation raises
TelemetryEncodeError naming the semantic field, the value and what is allowed. Rounding is half
away from zero (0.5 -> 1, -0.5 -> -1), not Python's round() (which rounds 0.5 to the even 0), so
positive and negative readings round symmetrically.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any, NamedTuple

from alien.errors import AlienError


class TelemetryEncodeError(AlienError, ValueError):
    """Telemetry that cannot be encoded; names the field, the value and what is allowed.

    e.g. "power.percentage 102.0 -> battery_remaining 102 is outside -1..100".
    """


class Message(NamedTuple):
    message_type: str
    message_id: int
    data: dict[str, Any]


# common.xml message ids
HEARTBEAT, SYS_STATUS, GPS_RAW_INT, GLOBAL_POSITION_INT, BATTERY_STATUS = 0, 1, 24, 33, 147

INT16 = (-(2**15), 2**15 - 1)
INT32 = (-(2**31), 2**31 - 1)
UINT16_MAX = 2**16 - 1  # common.xml "unknown" for hdg and voltage_battery, "no cell" in voltages
INT16_MAX = 2**15 - 1  # common.xml "unknown" for BATTERY_STATUS.temperature

# ---------------------------------------------------------------- numbers


def round_half_away(value: float) -> int:
    """Round half away from zero; exact for floats (no `floor(x + 0.5)` error near 0.5)."""
    magnitude = abs(value)
    whole = math.floor(magnitude)
    if magnitude - whole >= 0.5:
        whole += 1
    return -whole if value < 0 else whole


def number(field: str, value: Any) -> float | None:
    """The value as a float; None when it is None, NaN or infinite (an optional value left unknown)."""
    kind = type(value)
    if kind is float:  # the common cases first: the ABC check below is most of this function's cost
        return value if math.isfinite(value) else None
    if kind is int:
        return float(value)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TelemetryEncodeError(f"{field} {value!r} is not a number")
    result = float(value)
    return result if math.isfinite(result) else None


def required(field: str, value: Any, low: float, high: float) -> float:
    """A finite number within low..high, else TelemetryEncodeError."""
    result = number(field, value)
    if result is None:
        raise TelemetryEncodeError(f"{field} {value!r} is required and must be a finite number in {low:g}..{high:g}")
    if not low <= result <= high:
        raise TelemetryEncodeError(f"{field} {result!r} is outside {low:g}..{high:g}")
    return result


def scaled(field: str, value: float, scale: float, wire: str, low: int, high: int) -> int:
    """round(value * scale) as the integer MAVLink field `wire`, checked against low..high."""
    product = value * scale
    result = round_half_away(product) if math.isfinite(product) else None
    if result is None or not low <= result <= high:
        raise TelemetryEncodeError(f"{field} {value!r} -> {wire} {result} is outside {low}..{high}")
    return result
