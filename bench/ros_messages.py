"""The messages the benchmarks publish, one realistic instance per input type of the bridge.

`sample(kind)` returns (message class, topic, message, set_sequence): `set_sequence(msg, i)` marks
message `i` so that a consumer of the stream can tell which message it got (NavSatFix: altitude).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from sensor_msgs.msg import BatteryState, NavSatFix, NavSatStatus

KINDS = ("fix", "battery", "diagnostics")
TOPICS = {"fix": "fix", "battery": "battery_state", "diagnostics": "/diagnostics"}


def _fix() -> NavSatFix:
    fix = NavSatFix(latitude=47.3769, longitude=8.5417, altitude=0.0)
    fix.status.status = NavSatStatus.STATUS_FIX
    fix.status.service = NavSatStatus.SERVICE_GPS | NavSatStatus.SERVICE_GALILEO
    fix.header.frame_id = "gps"
    fix.header.stamp.sec, fix.header.stamp.nanosec = 1_780_000_000, 500_000_000
    fix.position_covariance = [0.25, 0.0, 0.0, 0.0, 0.25, 0.0, 0.0, 0.0, 1.0]
    fix.position_covariance_type = NavSatFix.COVARIANCE_TYPE_DIAGONAL_KNOWN
    return fix


def _battery() -> BatteryState:
    battery = BatteryState(voltage=24.1, current=-1.5, percentage=0.73, present=True, temperature=31.5)
    battery.power_supply_status = BatteryState.POWER_SUPPLY_STATUS_DISCHARGING
    battery.power_supply_technology = BatteryState.POWER_SUPPLY_TECHNOLOGY_LION
    battery.cell_voltage = [4.01, 4.02, 4.0, 4.03, 4.01, 4.02]
    battery.location, battery.serial_number = "base", "BAT-0042"
    battery.header.stamp.sec = 1_780_000_000
    return battery


def _diagnostics() -> DiagnosticArray:
    statuses = [
        DiagnosticStatus(
            level=DiagnosticStatus.OK,
            name=f"{part}: driver",
            message="running",
            hardware_id=part,
            values=[KeyValue(key=k, value=v) for k, v in (("temperature", "41.5"), ("load", "0.31"), ("errors", "0"))],
        )
        for part in ("motors", "lidar", "camera")
    ]
    array = DiagnosticArray(status=statuses)
    array.header.stamp.sec = 1_780_000_000
    return array


def sample(kind: str) -> tuple[type, str, Any, Callable[[Any, int], None]]:
    if kind == "fix":
        return NavSatFix, TOPICS[kind], _fix(), _set_altitude
    if kind == "battery":
        return BatteryState, TOPICS[kind], _battery(), _set_charge
    if kind == "diagnostics":
        return DiagnosticArray, TOPICS[kind], _diagnostics(), _set_stamp
    raise ValueError(f"no sample message of kind {kind!r}")


def _set_altitude(msg: NavSatFix, i: int) -> None:
    msg.altitude = float(i)


def _set_charge(msg: BatteryState, i: int) -> None:
    msg.charge = float(i % 1000)


def _set_stamp(msg: DiagnosticArray, i: int) -> None:
    msg.header.stamp.nanosec = i % 1_000_000_000
