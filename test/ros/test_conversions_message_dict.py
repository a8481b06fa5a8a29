"""Stamps, durations and any ROS message -> a JSON-safe dict (alien_ros.conversions, alien_ros.message_dict).

Pure conversions with the real generated message classes, mapped topics' included
(docs/bridge.md#what-reaches-the-mothership): non-finite floats become null, byte arrays base64,
times RFC 3339 with a zone (docs/contract.md#timestamps, docs/contract.md#telemetry-payloads).
"""

from __future__ import annotations

import array
import base64
import math
import os
import subprocess
import sys
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pytest
from builtin_interfaces.msg import Duration, Time
from conversions_support import GOOD, INF, NAN, OK, T0, T0_TEXT, WARN, battery, diagnostics, header, json_safe, status
from diagnostic_msgs.msg import KeyValue
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import CompressedImage, Image, Imu, JointState
from std_msgs.msg import Header
from test_msgs import message_fixtures
from test_msgs.msg import Arrays, BasicTypes, Builtins, UnboundedSequences

from alien_ros import message_dict
from alien_ros.conversions import (
    battery_state_to_power,
    diagnostic_array_to_health,
    duration_to_seconds,
    message_to_dict,
    navsat_fix_to_position,
    stamp_to_rfc3339,
)

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
