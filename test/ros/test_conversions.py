"""Pure ROS -> alien conversions, exercised with the real generated message classes."""

from __future__ import annotations

import array
import base64
import json
import math
import os
import subprocess
import sys
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pytest
from builtin_interfaces.msg import Duration, Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import BatteryState, CompressedImage, Image, Imu, JointState, NavSatFix, NavSatStatus
from std_msgs.msg import Header
from test_msgs import message_fixtures
from test_msgs.msg import Arrays, BasicTypes, Builtins, UnboundedSequences

from alien_ros import message_dict
from alien_ros.conversions import (
    DiagnosticLevelTracker,
    FixTracker,
    battery_state_to_power,
    diagnostic_array_to_health,
    duration_to_seconds,
    message_to_dict,
    navsat_fix_to_position,
    stamp_to_rfc3339,
)

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


# ---------------------------------------------------------------- time


def test_zero_stamp_is_none() -> None:
    assert stamp_to_rfc3339(Time()) is None


@pytest.mark.parametrize(
    ("sec", "nanosec", "expected"),
    [
        (T0, 0, T0_TEXT),
        (T0, 123_456_789, "2026-07-21T20:00:00.123456Z"),  # microseconds, truncated not rounded
        (T0, 999_999_999, "2026-07-21T20:00:00.999999Z"),
        (T0, 1_500_000_000, "2026-07-21T20:00:01.500000Z"),  # over-full nanosec carries into seconds
        (0, 1_000, "1970-01-01T00:00:00.000001Z"),  # only (0, 0) means "unset"
        (1, 0, "1970-01-01T00:00:01.000000Z"),
    ],
)
def test_stamp_is_rfc3339_utc_with_zone(sec: int, nanosec: int, expected: str) -> None:
    text = stamp_to_rfc3339(Time(sec=sec, nanosec=nanosec))
    assert text == expected
    assert text is not None
    parsed = datetime.fromisoformat(text)
    assert parsed.utcoffset() is not None  # a zone is mandatory on the wire (docs/contract.md#timestamps)
    assert parsed.timestamp() == pytest.approx(sec + nanosec / 1e9, abs=1e-6)


def test_duration_to_seconds() -> None:
    assert duration_to_seconds(Duration(sec=3, nanosec=250_000_000)) == 3.25
    assert duration_to_seconds(Duration(sec=-2, nanosec=500_000_000)) == -1.5


# ---------------------------------------------------------------- NavSatFix


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


def test_navsat_fix_to_position_full_shape() -> None:
    position = navsat_fix_to_position(navsat(service=NavSatStatus.SERVICE_GPS | NavSatStatus.SERVICE_GALILEO))
    assert position == {
        "latitude": 32.94881,
        "longitude": -96.80132,
        "altitude": 152.4,
        "fix": "FIX",
        "services": ["GPS", "GALILEO"],
        "covariance_type": "DIAGONAL_KNOWN",
        "covariance_diagonal": [1.0, 2.0, 4.0],
        "stamp": T0_TEXT,
        "frame_id": "gps",
    }
    json_safe(position)


def test_no_fix_is_none() -> None:
    assert navsat_fix_to_position(navsat(status=NavSatStatus.STATUS_NO_FIX)) is None


@pytest.mark.parametrize("bad", [NAN, INF, -INF])
@pytest.mark.parametrize("field", ["latitude", "longitude"])
def test_non_finite_coordinates_are_none(field: str, bad: float) -> None:
    assert navsat_fix_to_position(navsat(**{field: bad})) is None


@pytest.mark.parametrize("name", sorted(set(constants(NavSatStatus, "STATUS_")) - {"NO_FIX"}))
def test_every_usable_fix_status_is_named(name: str) -> None:
    position = navsat_fix_to_position(navsat(status=constants(NavSatStatus, "STATUS_")[name]))
    assert position is not None
    assert position["fix"] == name


def test_fix_status_names_include_the_documented_ones() -> None:
    assert {"NO_FIX", "FIX", "SBAS_FIX", "GBAS_FIX"} <= set(constants(NavSatStatus, "STATUS_"))


def test_status_unknown_passes_as_unknown_and_out_of_enum_status_too() -> None:
    # STATUS_UNKNOWN (-2, "not yet set") is not a refusal to fix; 7 is not in any definition.
    for status in (NavSatStatus.STATUS_UNKNOWN, 7):
        position = navsat_fix_to_position(navsat(status=status))
        assert position is not None
        assert position["fix"] == "UNKNOWN"


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        (NavSatStatus.SERVICE_UNKNOWN, []),
        (NavSatStatus.SERVICE_GPS, ["GPS"]),
        (NavSatStatus.SERVICE_GLONASS, ["GLONASS"]),
        (NavSatStatus.SERVICE_COMPASS, ["COMPASS"]),
        (NavSatStatus.SERVICE_GALILEO, ["GALILEO"]),
        (NavSatStatus.SERVICE_GLONASS | NavSatStatus.SERVICE_GALILEO, ["GLONASS", "GALILEO"]),
        (0b1111, ["GPS", "GLONASS", "COMPASS", "GALILEO"]),  # always in bit order
        (0b1111 | 0x100, ["GPS", "GLONASS", "COMPASS", "GALILEO"]),  # undefined bits are ignored
    ],
)
def test_service_bitmask_is_decoded_in_order(service: int, expected: list[str]) -> None:
    position = navsat_fix_to_position(navsat(service=service))
    assert position is not None
    assert position["services"] == expected


@pytest.mark.parametrize("name", sorted(constants(NavSatFix, "COVARIANCE_TYPE_")))
def test_every_covariance_type_is_named(name: str) -> None:
    position = navsat_fix_to_position(navsat(covariance_type=constants(NavSatFix, "COVARIANCE_TYPE_")[name]))
    assert position is not None
    assert position["covariance_type"] == name
    expected_diagonal = None if name == "UNKNOWN" else [1.0, 2.0, 4.0]
    assert position["covariance_diagonal"] == expected_diagonal


def test_out_of_enum_covariance_type_is_unknown_without_diagonal() -> None:
    position = navsat_fix_to_position(navsat(covariance_type=9))
    assert position is not None
    assert position["covariance_type"] == "UNKNOWN"
    assert position["covariance_diagonal"] is None


def test_non_finite_altitude_and_covariance_become_none() -> None:
    position = navsat_fix_to_position(navsat(altitude=NAN, covariance=[NAN, 0, 0, 0, INF, 0, 0, 0, 3.0]))
    assert position is not None
    assert position["altitude"] is None
    assert position["covariance_diagonal"] == [None, None, 3.0]
    json_safe(position)


def test_zero_header_stamp_gives_none_stamp() -> None:
    position = navsat_fix_to_position(navsat(sec=0))
    assert position is not None
    assert position["stamp"] is None


# ---------------------------------------------------------------- FixTracker


GOOD = navsat()
NO_FIX = navsat(status=NavSatStatus.STATUS_NO_FIX)
NON_FINITE = navsat(latitude=NAN)


def test_fix_tracker_good_bad_bad_good() -> None:
    tracker = FixTracker()
    results = [tracker.update(msg) for msg in (GOOD, NO_FIX, NON_FINITE, GOOD)]
    positions = [position for position, _ in results]
    events = [event for _, event in results]
    assert positions[0] == navsat_fix_to_position(GOOD)
    assert positions[1:3] == [None, None]
    assert positions[3] == navsat_fix_to_position(GOOD)
    assert events == [
        None,
        {"event": "fix_lost", "reason": "no_fix", "stamp": T0_TEXT},
        None,  # still lost: no repeat, whatever the new reason
        {"event": "fix_regained", "fix": "FIX", "stamp": T0_TEXT},
    ]
    assert tracker.dropped == 2
    assert tracker.has_fix is True


def test_fix_tracker_first_message_bad_is_a_loss() -> None:
    tracker = FixTracker()
    assert tracker.has_fix is None
    assert tracker.update(NON_FINITE) == (None, {"event": "fix_lost", "reason": "non_finite", "stamp": T0_TEXT})
    assert tracker.update(NO_FIX) == (None, None)
    assert tracker.dropped == 2
    assert tracker.has_fix is False


def test_fix_tracker_steady_fix_has_no_events() -> None:
    tracker = FixTracker()
    assert all(tracker.update(GOOD)[1] is None for _ in range(5))
    assert tracker.dropped == 0


def test_fix_tracker_reports_each_outage_once() -> None:
    tracker = FixTracker()
    kinds = [event["event"] for _, event in map(tracker.update, [GOOD, NO_FIX, GOOD, NO_FIX, NO_FIX, GOOD]) if event]
    assert kinds == ["fix_lost", "fix_regained", "fix_lost", "fix_regained"]
    assert tracker.dropped == 3


def test_fix_regained_names_the_new_fix_kind() -> None:
    tracker = FixTracker()
    tracker.update(NO_FIX)
    _, event = tracker.update(navsat(status=NavSatStatus.STATUS_GBAS_FIX))
    assert event == {"event": "fix_regained", "fix": "GBAS_FIX", "stamp": T0_TEXT}


# ---------------------------------------------------------------- BatteryState


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

OK, WARN, ERROR, STALE = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR, DiagnosticStatus.STALE


def status(name: str, level: bytes | int, message: str = "", hardware_id: str = "hw") -> DiagnosticStatus:
    return DiagnosticStatus(name=name, level=level, message=message, hardware_id=hardware_id)


def diagnostics(*statuses: DiagnosticStatus, sec: int = T0) -> DiagnosticArray:
    return DiagnosticArray(header=header(sec=sec, frame_id=""), status=list(statuses))


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


# ---------------------------------------------------------------- message_to_dict


def test_imu_covariances_are_lists_and_nan_becomes_none() -> None:
    imu = Imu(header=header(frame_id="imu"))
    imu.orientation.w = 1.0
    imu.orientation_covariance = [-1.0, 0, 0, 0, 0, 0, 0, 0, 0]  # -1: "orientation not provided"
    imu.angular_velocity_covariance = [NAN, 0, 0, 0, INF, 0, 0, 0, 0.5]
    imu.linear_acceleration.z = 9.81
    out = message_to_dict(imu)
    assert out["header"] == {"stamp": T0_TEXT, "frame_id": "imu"}
    assert out["orientation"] == {"x": 0.0, "y": 0.0, "z": 0.0, "w": 1.0}
    assert out["orientation_covariance"] == [-1.0, 0, 0, 0, 0, 0, 0, 0, 0]
    assert out["angular_velocity_covariance"] == [None, 0, 0, 0, None, 0, 0, 0, 0.5]
    assert out["linear_acceleration"] == {"x": 0.0, "y": 0.0, "z": 9.81}
    assert all(type(value) is float for value in out["orientation_covariance"])  # not numpy scalars
    json_safe(out)


def test_image_data_is_base64_that_decodes_back() -> None:
    pixels = bytes(range(256)) * 3
    image = Image(header=header(), height=16, width=48, encoding="mono8", step=48, data=pixels)
    out = message_to_dict(image)
    assert base64.b64decode(out["data"]) == pixels
    assert {key: out[key] for key in ("height", "width", "encoding", "is_bigendian", "step")} == {
        "height": 16,
        "width": 48,
        "encoding": "mono8",
        "is_bigendian": 0,
        "step": 48,
    }
    json_safe(out)


def test_compressed_image_data_is_base64() -> None:
    jpeg_start = b"\xff\xd8\xff\xe0\x00\x10JFIF"
    out = message_to_dict(CompressedImage(header=header(), format="jpeg", data=jpeg_start))
    assert out == {
        "header": {"stamp": T0_TEXT, "frame_id": "gps"},
        "format": "jpeg",
        "data": base64.b64encode(jpeg_start).decode(),
    }


def test_pose_stamped_nests_dicts() -> None:
    pose = PoseStamped(header=header(nanosec=500_000_000, frame_id="map"))
    pose.pose.position.x, pose.pose.position.y = 1.5, NAN
    pose.pose.orientation.w = 1.0
    assert message_to_dict(pose) == {
        "header": {"stamp": "2026-07-21T20:00:00.500000Z", "frame_id": "map"},
        "pose": {
            "position": {"x": 1.5, "y": None, "z": 0.0},
            "orientation": {"x": 0.0, "y": 0.0, "z": 0.0, "w": 1.0},
        },
    }


def test_header_alone_and_zero_stamp() -> None:
    assert message_to_dict(header(frame_id="base_link")) == {"stamp": T0_TEXT, "frame_id": "base_link"}
    assert message_to_dict(Header()) == {"stamp": None, "frame_id": ""}


def test_duration_and_time_fields() -> None:
    msg = Builtins(duration_value=Duration(sec=1, nanosec=500_000_000), time_value=Time(sec=T0, nanosec=0))
    assert message_to_dict(msg) == {"duration_value": 1.5, "time_value": T0_TEXT}


def test_top_level_time_is_a_plain_message() -> None:
    assert message_to_dict(Time(sec=5, nanosec=6)) == {"sec": 5, "nanosec": 6}


def test_diagnostic_array_nested_arrays_of_messages() -> None:
    item = status("motor", WARN, "hot", "esc-1")
    item.values = [KeyValue(key="temp_c", value="81")]
    assert message_to_dict(diagnostics(item, status("gps", OK))) == {
        "header": {"stamp": T0_TEXT, "frame_id": ""},
        "status": [
            {
                "level": 1,  # a 'byte' field: int, not b'\x01'
                "name": "motor",
                "message": "hot",
                "hardware_id": "esc-1",
                "values": [{"key": "temp_c", "value": "81"}],
            },
            {"level": 0, "name": "gps", "message": "", "hardware_id": "hw", "values": []},
        ],
    }


def test_joint_state_arrays_with_nan() -> None:
    joints = JointState(
        header=header(frame_id=""),
        name=["shoulder", "elbow"],
        position=[0.5, NAN],
        velocity=[INF, -0.25],
        effort=[],
    )
    out = message_to_dict(joints)
    assert out == {
        "header": {"stamp": T0_TEXT, "frame_id": ""},
        "name": ["shoulder", "elbow"],
        "position": [0.5, None],
        "velocity": [None, -0.25],
        "effort": [],
    }
    json_safe(out)


def test_basic_types_byte_scalar_is_int_and_large_ints_survive() -> None:
    out = message_to_dict(message_fixtures.get_msg_basic_types()[1])  # the max-values fixture
    assert out["byte_value"] == 255
    assert out["char_value"] == 255
    assert out["uint64_value"] == 2**64 - 1
    assert out["int64_value"] == 2**63 - 1
    assert out["bool_value"] is True


def test_basic_types_non_finite_scalars() -> None:
    out = message_to_dict(BasicTypes(float32_value=NAN, float64_value=-INF))
    assert out["float32_value"] is None
    assert out["float64_value"] is None


def test_fixed_arrays_every_element_kind() -> None:
    msg = Arrays(
        byte_values=[b"\x00", b"\x7f", b"\xff"],
        char_values=[65, 66, 67],
        uint8_values=np.array([1, 2, 3], dtype=np.uint8),
        float64_values=[1.0, NAN, -INF],
        int64_values=[-(2**63), 0, 2**63 - 1],
        bool_values=[True, False, True],
        string_values=["a", "b", "c"],
    )
    out = message_to_dict(msg)
    assert base64.b64decode(out["byte_values"]) == b"\x00\x7f\xff"
    assert base64.b64decode(out["char_values"]) == b"ABC"
    assert base64.b64decode(out["uint8_values"]) == b"\x01\x02\x03"
    assert out["float64_values"] == [1.0, None, None]
    assert out["int64_values"] == [-(2**63), 0, 2**63 - 1]
    assert out["bool_values"] == [True, False, True]
    assert out["string_values"] == ["a", "b", "c"]
    assert len(out["basic_types_values"]) == 3
    assert out["basic_types_values"][0]["byte_value"] == 0
    json_safe(out)


def test_unbounded_sequences_from_array_array() -> None:
    msg = UnboundedSequences(
        uint8_values=array.array("B", b"\x10\x20"),
        float32_values=array.array("f", [0.5, NAN]),
        uint64_values=array.array("Q", [2**64 - 1]),
        byte_values=[],
    )
    out = message_to_dict(msg)
    assert base64.b64decode(out["uint8_values"]) == b"\x10\x20"
    assert out["float32_values"] == [0.5, None]
    assert out["uint64_values"] == [2**64 - 1]
    assert out["byte_values"] == ""


@pytest.mark.parametrize(
    "raw",
    [
        b"\x00\x01\xfe",
        bytearray(b"\x00\x01\xfe"),
        memoryview(b"\x00\x01\xfe"),
        array.array("B", b"\x00\x01\xfe"),
        np.array([0, 1, 254], dtype=np.uint8),
        [b"\x00", b"\x01", b"\xfe"],
        [0, 1, 254],
        (0, 1, 254),
    ],
    ids=["bytes", "bytearray", "memoryview", "array", "numpy", "list-of-bytes", "list-of-ints", "tuple"],
)
def test_every_byte_array_shape_encodes_the_same(raw: Any) -> None:
    assert message_dict.bytes_to_base64(raw) == base64.b64encode(b"\x00\x01\xfe").decode()


FIXTURE_MESSAGES = [
    pytest.param(msg, id=f"{name}-{index}")
    for name in sorted(dir(message_fixtures))
    if name.startswith("get_msg_")
    for index, msg in enumerate(getattr(message_fixtures, name)())
]


@pytest.mark.parametrize("msg", FIXTURE_MESSAGES)
def test_every_test_msgs_fixture_is_json_safe(msg: Any) -> None:
    out = message_to_dict(msg)
    assert set(out) == set(type(msg).get_fields_and_field_types())
    json_safe(out)


def test_non_finite_elements_keep_their_position() -> None:
    # Non-finite elements become None in place: the list keeps its length and positions.
    msg = UnboundedSequences(float64_values=[math.pi, NAN, INF, -INF])
    assert message_to_dict(msg)["float64_values"] == [math.pi, None, None, None]


def test_output_is_independent_of_the_message() -> None:
    # Lists handed to the encoder must not alias message buffers the publisher may reuse.
    joints = JointState(name=["a"], position=[1.0])
    out = message_to_dict(joints)
    joints.name.append("b")
    joints.position = [2.0]
    assert out["name"] == ["a"]
    assert out["position"] == [1.0]


def test_zone_in_every_timestamp_for_contract() -> None:
    # A v0.1.1 server rejects naive timestamps (docs/contract.md#timestamps): a sample of outputs, all zoned.
    stamps = [
        navsat_fix_to_position(GOOD)["stamp"],  # type: ignore[index]
        battery_state_to_power(battery())["stamp"],
        diagnostic_array_to_health(diagnostics())["stamp"],
        message_to_dict(header())["stamp"],
    ]
    for stamp in stamps:
        assert stamp.endswith("Z")
        assert datetime.fromisoformat(stamp).tzinfo == timezone.utc


def test_modules_do_not_import_rclpy() -> None:
    # The pure layer must stay importable and cheap without rclpy (only message packages are needed).
    code = "import sys, alien_ros.conversions, alien_ros.message_types; sys.exit('rclpy' in sys.modules)"
    env = {**os.environ, "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    assert subprocess.run([sys.executable, "-c", code], env=env, check=False, timeout=60).returncode == 0


def test_battery_float32_fields_carry_no_binary_noise() -> None:
    msg = BatteryState(voltage=24.3, current=-3.1, cell_voltage=[4.2, 4.05, float("nan")])
    power = battery_state_to_power(msg)
    assert (power["voltage"], power["current"]) == (24.3, -3.1)  # not 24.299999237060547
    assert power["cell_voltage"] == [4.2, 4.05, None]


@pytest.mark.parametrize(("latitude", "longitude"), [(91.0, 0.0), (-90.5, 0.0), (0.0, 180.5), (1e9, 1e9)])
def test_out_of_range_fix_is_not_a_position(latitude: float, longitude: float) -> None:
    msg = NavSatFix(latitude=latitude, longitude=longitude)
    msg.status.status = NavSatStatus.STATUS_FIX
    assert navsat_fix_to_position(msg) is None
    tracker = FixTracker()
    position, event = tracker.update(msg)
    assert position is None and event is not None and event["reason"] == "out_of_range"
