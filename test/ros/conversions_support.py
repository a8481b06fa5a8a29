"""Messages and helpers shared by the tests of the pure ROS <-> JSON conversions.

alien_ros.conversions (test_conversions_*.py) and alien_ros.message_fill (test_message_fill_*.py),
with the real generated message classes; the example instant is the one of
docs/contract.md#telemetry-envelope-v1. No rclpy here: the pure layer is tested without it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from sensor_msgs.msg import BatteryState, NavSatFix, NavSatStatus
from std_msgs.msg import Header

from alien_ros.message_fill import FieldError, fill_message

NAN = float("nan")
INF = float("inf")
# 2026-07-21T20:00:00Z, the example instant of docs/contract.md#telemetry-envelope-v1.
T0 = 1_784_664_000
T0_TEXT = "2026-07-21T20:00:00.000000Z"


def json_safe(value: Any) -> str:
    """The server rejects NaN/Infinity (docs/contract.md#telemetry-payloads): every output must encode
    with allow_nan=False."""
    return json.dumps(value, allow_nan=False)


def constants(cls: type, prefix: str) -> dict[str, int]:
    """Enum members of a message class as the test sees them (independent of the module's tables)."""
    return {
        name[len(prefix) :]: getattr(cls, name)
        for name in dir(cls)
        if name.startswith(prefix) and not name[len(prefix) :].startswith("_")
    }


def header(sec: int = T0, nanosec: int = 0, frame_id: str = "gps") -> Header:
    return Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id=frame_id)


def navsat(
    status: int = NavSatStatus.STATUS_FIX,
    service: int = NavSatStatus.SERVICE_GPS,
    latitude: float = 32.94881,
    longitude: float = -96.80132,
    altitude: float = 152.4,
    covariance_type: int = NavSatFix.COVARIANCE_TYPE_DIAGONAL_KNOWN,
    covariance: list[float] | None = None,
    sec: int = T0,
) -> NavSatFix:
    return NavSatFix(
        header=header(sec=sec),
        status=NavSatStatus(status=status, service=service),
        latitude=latitude,
        longitude=longitude,
        altitude=altitude,
        position_covariance=covariance or [1.0, 0, 0, 0, 2.0, 0, 0, 0, 4.0],
        position_covariance_type=covariance_type,
    )


GOOD = navsat()


def battery(**fields: Any) -> BatteryState:
    values: dict[str, Any] = {
        "header": header(frame_id="battery"),
        "voltage": 12.5,
        "temperature": 31.5,
        "current": -1.25,
        "charge": 4.5,
        "capacity": 5.0,
        "design_capacity": 5.5,
        "percentage": 0.75,
        "power_supply_status": BatteryState.POWER_SUPPLY_STATUS_DISCHARGING,
        "power_supply_health": BatteryState.POWER_SUPPLY_HEALTH_GOOD,
        "power_supply_technology": BatteryState.POWER_SUPPLY_TECHNOLOGY_LIPO,
        "present": True,
        "cell_voltage": [4.25, 4.0, 4.25],
        "cell_temperature": [30.5, 31.0, 31.5],
        "location": "bay-1",
        "serial_number": "SN-42",
    }
    values.update(fields)
    return BatteryState(**values)


OK, WARN, ERROR, STALE = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR, DiagnosticStatus.STALE


def status(name: str, level: bytes | int, message: str = "", hardware_id: str = "hw") -> DiagnosticStatus:
    return DiagnosticStatus(name=name, level=level, message=message, hardware_id=hardware_id)


def diagnostics(*statuses: DiagnosticStatus, sec: int = T0) -> DiagnosticArray:
    return DiagnosticArray(header=header(sec=sec, frame_id=""), status=list(statuses))


def fill_error(msg_type: type, params: Any, **kwargs: Any) -> FieldError:
    with pytest.raises(FieldError) as caught:
        fill_message(msg_type, params, **kwargs)
    return caught.value
