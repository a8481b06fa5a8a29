"""BatteryState -> power and DiagnosticArray -> health, with their level-change events (alien_ros.conversions).

Pure conversions with the real generated message classes (docs/bridge.md#what-reaches-the-mothership):
every unmeasured value becomes null, never NaN on the wire (docs/contract.md#telemetry-payloads), and
the overall health level follows ROS's diagnostic aggregator.
"""

from __future__ import annotations

from typing import Any

import pytest
from conversions_support import (
    ERROR,
    INF,
    NAN,
    OK,
    STALE,
    T0_TEXT,
    WARN,
    battery,
    constants,
    diagnostics,
    json_safe,
    status,
)
from diagnostic_msgs.msg import KeyValue
from sensor_msgs.msg import BatteryState

from alien_ros.conversions import DiagnosticLevelTracker, battery_state_to_power, diagnostic_array_to_health

# ---------------------------------------------------------------- BatteryState


def test_battery_state_to_power_full_shape() -> None:
    assert battery_state_to_power(battery()) == {
        "voltage": 12.5,
        "current": -1.25,
        "charge": 4.5,
        "capacity": 5.0,
        "design_capacity": 5.5,
        "percentage": 75.0,
        "status": "DISCHARGING",
        "health": "GOOD",
        "technology": "LIPO",
        "present": True,
        "temperature": 31.5,
        "cell_voltage": [4.25, 4.0, 4.25],
        "cell_temperature": [30.5, 31.0, 31.5],
        "location": "bay-1",
        "serial_number": "SN-42",
        "stamp": T0_TEXT,
    }


@pytest.mark.parametrize("bad", [NAN, INF, -INF])
def test_every_unmeasured_battery_value_becomes_none(bad: float) -> None:
    # BatteryState.msg: NaN marks every unmeasured float, cells included.
    floats = ["voltage", "temperature", "current", "charge", "capacity", "design_capacity", "percentage"]
    power = battery_state_to_power(
        battery(**dict.fromkeys(floats, bad), cell_voltage=[bad, 4.0], cell_temperature=[bad, bad])
    )
    assert all(power[name] is None for name in floats)
    assert power["cell_voltage"] == [None, 4.0]
    assert power["cell_temperature"] == [None, None]
    json_safe(power)


def test_default_battery_state_is_json_safe() -> None:
    power = battery_state_to_power(BatteryState())
    json_safe(power)
    assert power["stamp"] is None
    assert power["status"] == power["health"] == power["technology"] == "UNKNOWN"
    assert power["cell_voltage"] == []


@pytest.mark.parametrize(
    ("fraction", "expected"),
    [
        (0.87, 87.0),  # float32 0.87 is 0.8700000047...: rounding hides the noise
        (0.0, 0.0),
        (1.0, 100.0),
        (0.12345, 12.35),
        (1.05, 105.0),  # out of range but finite: converted, not clamped
        (-0.1, -10.0),
    ],
)
def test_percentage_is_scaled_to_0_100(fraction: float, expected: float | None) -> None:
    power = battery_state_to_power(battery(percentage=fraction))
    assert power["percentage"] == expected
    json_safe(power)


@pytest.mark.parametrize(
    ("field", "key", "prefix", "required"),
    [
        (
            "power_supply_status",
            "status",
            "POWER_SUPPLY_STATUS_",
            {"UNKNOWN", "CHARGING", "DISCHARGING", "NOT_CHARGING", "FULL"},
        ),
        (
            "power_supply_health",
            "health",
            "POWER_SUPPLY_HEALTH_",
            {
                "UNKNOWN",
                "GOOD",
                "OVERHEAT",
                "DEAD",
                "OVERVOLTAGE",
                "UNSPEC_FAILURE",
                "COLD",
                "WATCHDOG_TIMER_EXPIRE",
                "SAFETY_TIMER_EXPIRE",
            },
        ),
        (
            "power_supply_technology",
            "technology",
            "POWER_SUPPLY_TECHNOLOGY_",
            {"UNKNOWN", "NIMH", "LION", "LIPO", "LIFE", "NICD", "LIMN"},
        ),
    ],
)
def test_every_battery_enum_name_is_covered(field: str, key: str, prefix: str, required: set[str]) -> None:
    members = constants(BatteryState, prefix)
    assert required <= set(members)  # newer definitions may add more (TERNARY, VRLA): covered below too
    for name, value in members.items():
        assert battery_state_to_power(battery(**{field: value}))[key] == name
    out_of_enum = max(members.values()) + 1
    assert battery_state_to_power(battery(**{field: out_of_enum}))[key] == "UNKNOWN"


def test_battery_not_present() -> None:
    assert battery_state_to_power(battery(present=False))["present"] is False


# ---------------------------------------------------------------- DiagnosticArray


def test_diagnostic_array_to_health_full_shape() -> None:
    motor = status("motor", WARN, "hot", "esc-1")
    motor.values = [KeyValue(key="temp_c", value="81"), KeyValue(key="rpm", value="1200")]
    health = diagnostic_array_to_health(diagnostics(status("gps", OK, "fix", "ublox"), motor))
    assert health == {
        "stamp": T0_TEXT,
        "level": "WARN",
        "statuses": [
            {"name": "gps", "level": "OK", "message": "fix", "hardware_id": "ublox", "values": {}},
            {
                "name": "motor",
                "level": "WARN",
                "message": "hot",
                "hardware_id": "esc-1",
                "values": {"temp_c": "81", "rpm": "1200"},
            },
        ],
    }
    json_safe(health)


@pytest.mark.parametrize(
    ("levels", "expected"),
    [
        ([], "OK"),  # nothing reported: aggregator reports OK
        ([OK], "OK"),
        ([OK, WARN], "WARN"),
        ([WARN, ERROR, OK], "ERROR"),
        ([STALE], "STALE"),
        ([STALE, STALE], "STALE"),  # all stale: the whole is stale
        ([OK, STALE], "ERROR"),  # some stale: something stopped reporting, which is an error
        ([WARN, STALE], "ERROR"),
        ([ERROR, STALE], "ERROR"),  # not STALE: the real error keeps its name
        ([OK, 7], "ERROR"),  # a level outside the enum is a misbehaving publisher
        ([0, 1], "WARN"),  # plain ints work like the bytes constants
        ([2, 3], "ERROR"),
        ([3, 3], "STALE"),
    ],
)
def test_overall_level_follows_the_diagnostic_aggregator(levels: list[bytes | int], expected: str) -> None:
    msg = diagnostics(*(status(f"s{index}", level) for index, level in enumerate(levels)))
    assert diagnostic_array_to_health(msg)["level"] == expected


@pytest.mark.parametrize(
    ("level", "name"),
    [(OK, "OK"), (WARN, "WARN"), (ERROR, "ERROR"), (STALE, "STALE"), (0, "OK"), (2, "ERROR"), (9, "UNKNOWN")],
)
def test_status_level_names_from_bytes_or_int(level: bytes | int, name: str) -> None:
    assert diagnostic_array_to_health(diagnostics(status("x", level)))["statuses"][0]["level"] == name


def test_repeated_key_value_last_wins() -> None:
    item = status("x", OK)
    item.values = [KeyValue(key="k", value="1"), KeyValue(key="k", value="2")]
    assert diagnostic_array_to_health(diagnostics(item))["statuses"][0]["values"] == {"k": "2"}


# ---------------------------------------------------------------- DiagnosticLevelTracker


def change(name: str, previous: str | None, level: str, message: str = "", hardware_id: str = "hw") -> dict[str, Any]:
    return {
        "event": "diagnostic_level_changed",
        "name": name,
        "hardware_id": hardware_id,
        "previous": previous,
        "level": level,
        "message": message,
        "stamp": T0_TEXT,
    }


def test_diagnostic_level_tracker_sequence() -> None:
    tracker = DiagnosticLevelTracker()
    first = tracker.update(diagnostics(status("gps", OK), status("motor", WARN, "hot")))
    assert first == [change("motor", None, "WARN", "hot")]  # first seen OK: no event
    second = tracker.update(diagnostics(status("gps", ERROR, "no data"), status("motor", WARN, "still hot")))
    assert second == [change("gps", "OK", "ERROR", "no data")]
    assert tracker.update(diagnostics(status("gps", ERROR), status("motor", WARN))) == []
    assert tracker.update(diagnostics(status("gps", OK), status("motor", STALE))) == [
        change("gps", "ERROR", "OK"),
        change("motor", "WARN", "STALE"),
    ]


def test_diagnostic_level_tracker_keys_by_hardware_and_name() -> None:
    tracker = DiagnosticLevelTracker()
    tracker.update(
        diagnostics(status("battery", OK, hardware_id="pack-a"), status("battery", OK, hardware_id="pack-b"))
    )
    events = tracker.update(
        diagnostics(status("battery", OK, hardware_id="pack-a"), status("battery", ERROR, hardware_id="pack-b"))
    )
    assert events == [change("battery", "OK", "ERROR", hardware_id="pack-b")]
    # Same name, different hardware: the two packs must not overwrite each other's level.
    again = diagnostics(status("battery", OK, hardware_id="pack-a"), status("battery", ERROR, hardware_id="pack-b"))
    assert tracker.update(again) == []


def test_diagnostic_level_tracker_absent_status_is_not_forgotten() -> None:
    tracker = DiagnosticLevelTracker()
    tracker.update(diagnostics(status("lidar", WARN)))
    tracker.update(diagnostics(status("gps", OK)))  # lidar not in this message
    assert tracker.update(diagnostics(status("lidar", WARN))) == []


def test_diagnostic_level_tracker_int_and_bytes_levels_compare_equal() -> None:
    tracker = DiagnosticLevelTracker()
    tracker.update(diagnostics(status("x", WARN)))
    assert tracker.update(diagnostics(status("x", 1))) == []


def test_battery_float32_fields_carry_no_binary_noise() -> None:
    msg = BatteryState(voltage=24.3, current=-3.1, cell_voltage=[4.2, 4.05, float("nan")])
    power = battery_state_to_power(msg)
    assert (power["voltage"], power["current"]) == (24.3, -3.1)  # not 24.299999237060547
    assert power["cell_voltage"] == [4.2, 4.05, None]
