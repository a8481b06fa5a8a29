"""fill_message undoes message_to_dict (alien_ros.message_fill, alien_ros.conversions).

Exercised with the real generated message classes and every test_msgs fixture: a message turned into
JSON and filled back is the same message, serializes as rclpy expects, passes rosidl's own field
checks, and the module stays importable without rclpy (docs/commands.md#commands-into-ros).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pytest
from builtin_interfaces.msg import Duration, Time
from conversions_support import T0, fill_error
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point, Pose, PoseStamped, Twist, Vector3
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import BatteryState, Image, JointState, NavSatFix, NavSatStatus
from std_msgs.msg import Header
from std_srvs.srv import SetBool
from test_msgs import message_fixtures
from test_msgs.action import Fibonacci
from test_msgs.msg import Arrays, Builtins, Nested, UnboundedSequences

from alien_ros.conversions import message_to_dict
from alien_ros.message_fill import fill_message

# ---------------------------------------------------------------- round trips with message_to_dict


def _navsat() -> NavSatFix:
    return NavSatFix(
        header=Header(stamp=Time(sec=T0, nanosec=123_456_000), frame_id="gps"),
        status=NavSatStatus(status=NavSatStatus.STATUS_FIX, service=NavSatStatus.SERVICE_GPS),
        latitude=32.94881,
        longitude=-96.80132,
        altitude=152.4,
        position_covariance=[1.0, 0, 0, 0, 2.0, 0, 0, 0, 4.0],
        position_covariance_type=NavSatFix.COVARIANCE_TYPE_DIAGONAL_KNOWN,
    )


ROUND_TRIP = [
    PoseStamped(header=Header(stamp=Time(sec=T0, nanosec=5_000), frame_id="map"), pose=Pose(position=Point(x=1.5))),
    PoseStamped(),  # zero stamp: None in the dict, zero again here
    Twist(linear=Vector3(x=-0.5, y=1e-9), angular=Vector3(z=3.25)),
    _navsat(),
    Image(height=2, width=3, encoding="mono8", step=3, data=list(range(6))),
    JointState(name=["a", "b"], position=[0.1, 0.2], velocity=[], effort=[-1.0, 2.0]),
    BatteryState(voltage=24.3, percentage=0.87, cell_voltage=[4.2, 4.05], location="bay", present=True),
    DiagnosticArray(
        status=[DiagnosticStatus(level=DiagnosticStatus.WARN, name="motor", values=[KeyValue(key="t", value="80")])]
    ),
    Builtins(duration_value=Duration(sec=5, nanosec=250_000_000), time_value=Time(sec=T0, nanosec=999_999_000)),
    Fibonacci.Goal(order=12),
    SetBool.Request(data=True),
]


@pytest.mark.parametrize("msg", ROUND_TRIP, ids=lambda msg: type(msg).__name__)
def test_round_trip_through_message_to_dict(msg: Any) -> None:
    assert fill_message(type(msg), message_to_dict(msg)) == msg


def _fixtures() -> list[Any]:
    names = sorted(name for name in dir(message_fixtures) if name.startswith("get_msg_"))
    # Builtins' fixture has nanosecond stamps and a 2e9 s duration: message_to_dict keeps microseconds
    # and float seconds by design, so it cannot round-trip exactly (covered above with exact values).
    return [msg for name in names if name != "get_msg_builtins" for msg in getattr(message_fixtures, name)()]


@pytest.mark.parametrize("msg", _fixtures(), ids=lambda msg: type(msg).__name__)
def test_round_trip_of_test_msgs_fixtures(msg: Any) -> None:
    # The fixtures hold every type's extremes (uint64 max, float32 max, long and bounded strings).
    assert fill_message(type(msg), message_to_dict(msg)) == msg


@pytest.mark.parametrize("msg", [*ROUND_TRIP, *_fixtures()[:20]], ids=lambda msg: type(msg).__name__)
def test_filled_messages_serialize(msg: Any) -> None:
    # The C type support accepts what fill_message builds (octets as bytes, uint8 arrays, Time objects)
    # and what arrives is what the original message would deliver. (Not a byte comparison: CDR padding
    # bytes are not initialised; not `== msg`: a float32 field holds a float64 until it is sent.)
    filled = fill_message(type(msg), message_to_dict(msg))
    received = deserialize_message(serialize_message(filled), type(msg))
    assert received == deserialize_message(serialize_message(msg), type(msg))


def test_unbounded_sequences_from_lists() -> None:
    params = {"uint8_values": [1, 2], "byte_values": [3], "float32_values": [1.5], "bool_values": [True, False]}
    msg = fill_message(UnboundedSequences, params)
    assert (msg.uint8_values.tolist(), msg.byte_values) == ([1, 2], [b"\x03"])
    assert (msg.float32_values.tolist(), msg.bool_values) == ([1.5], [True, False])
    assert fill_error(UnboundedSequences, {"bool_values": [True, 1]}).path == "params.bool_values[1]"


def test_nested_fixed_array_of_messages() -> None:
    msg = fill_message(Nested, {"basic_types_value": {"int64_value": -5}})
    assert msg.basic_types_value.int64_value == -5
    error = fill_error(Arrays, {"basic_types_values": [{}, {}, {"uint16_value": -1}]})
    assert error.path == "params.basic_types_values[2].uint16_value"


def test_values_pass_rosidl_field_checks() -> None:
    # rosidl's setters only check types with ROS_PYTHON_CHECK_FIELDS=1 (read at import): in a fresh
    # interpreter with the checks on, everything fill_message builds must be accepted.
    code = textwrap.dedent(
        """
        from test_msgs import message_fixtures
        from sensor_msgs.msg import Image, JointState
        from alien_ros.conversions import message_to_dict
        from alien_ros.message_fill import fill_message
        names = [name for name in dir(message_fixtures) if name.startswith("get_msg_")]
        for msg in [m for name in names for m in getattr(message_fixtures, name)()]:
            assert msg._check_fields
            fill_message(type(msg), message_to_dict(msg))
        fill_message(Image, {"data": "AQID", "header": {"stamp": "2026-07-21T20:00:00Z"}})
        fill_message(JointState, {"name": ["a"], "position": [1]})
        """
    )
    env = {**os.environ, "ROS_PYTHON_CHECK_FIELDS": "1", "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False, timeout=60)
    assert run.returncode == 0, run.stderr


def test_module_does_not_import_rclpy() -> None:
    code = "import sys, alien_ros.message_fill; sys.exit('rclpy' in sys.modules)"
    env = {**os.environ, "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    assert subprocess.run([sys.executable, "-c", code], env=env, check=False, timeout=60).returncode == 0


def test_numpy_arrays_are_what_rclpy_expects() -> None:
    msg = fill_message(Arrays, {"float64_values": [1, 2, 3], "int8_values": [-1, 0, 1]})
    assert msg.float64_values.dtype == np.float64
    assert msg.int8_values.tolist() == [-1, 0, 1]
