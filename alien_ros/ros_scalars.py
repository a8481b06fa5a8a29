"""Pure conversions of ROS scalars and stamps to JSON-safe values (no NaN, no infinity, zoned times)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from builtin_interfaces.msg import Duration, Time

_NS_PER_S = 1_000_000_000
_NS_PER_US = 1_000
# Naive on purpose: isoformat() of a naive datetime has no offset, so "Z" can be appended directly.
_EPOCH_UTC = datetime(1970, 1, 1)


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


def finite(value: float) -> float | None:
    """The value, or None when it is NaN or infinite (JSON has no spelling for them)."""
    return value if math.isfinite(value) else None


def finite_list(values: Any) -> list[float | None]:
    """Float array (numpy, array.array, list) -> list with every non-finite element as None."""
    items: list[float] = values.tolist() if hasattr(values, "tolist") else list(values)
    if all(map(math.isfinite, items)):  # the common case: no second pass, no new list
        return items  # type: ignore[return-value]
    return [item if math.isfinite(item) else None for item in items]


def float32(value: float) -> float | None:
    """A float32 field as the number it was written as: 7 significant digits, no binary noise.

    (24.3 stored as float32 reads back as 24.299999237060547; float32 carries ~7 digits.)
    """
    return float(f"{value:.7g}") if math.isfinite(value) else None


def float32_list(values: Any) -> list[float | None]:
    items: list[float] = values.tolist() if hasattr(values, "tolist") else list(values)
    return [float32(item) for item in items]


def enum_names(cls: type, prefix: str) -> dict[int, str]:
    """Value -> name for the constants of a message class, e.g. BatteryState 'POWER_SUPPLY_STATUS_'.

    Read from the installed class so names added by newer message definitions are covered.
    rosidl's '<FIELD>__DEFAULT' attributes are default values, not enum members, and are skipped.
    """
    names: dict[int, str] = {}
    for attribute in sorted(dir(cls)):
        suffix = attribute[len(prefix) :]
        if attribute.startswith(prefix) and suffix and not suffix.startswith("_"):
            names.setdefault(as_int(getattr(cls, attribute)), suffix)
    return names


def as_int(value: bytes | int) -> int:
    """Level or 'byte' value as int: rclpy gives octet values as 1-byte bytes, everything else as int."""
    return value[0] if isinstance(value, bytes | bytearray) else int(value)
