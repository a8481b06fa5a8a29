"""JSON command parameters -> typed ROS messages (alien_ros.message_fill): messages, arrays, errors.

Exercised with the real generated message classes: nested messages, fixed and bounded arrays and
base64 byte arrays, the one-line errors that name the field's path, what it expects and what it got,
the nesting depth limit and describe_fields (docs/commands.md#commands-into-ros).
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from builtin_interfaces.msg import Time
from conversions_support import T0, fill_error
from geometry_msgs.msg import PoseArray, PoseStamped, PoseWithCovariance, Twist, Vector3
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Empty, Header
from std_srvs.srv import SetBool
from test_msgs.action import Fibonacci
from test_msgs.msg import Arrays, BasicTypes, BoundedSequences, Defaults, MultiNested, Strings, WStrings

from alien_ros.message_fill import MAX_DEPTH, describe_fields, fill_message

# ---------------------------------------------------------------- happy paths


def test_twist_from_nested_objects() -> None:
    msg = fill_message(Twist, {"linear": {"x": 0.5}, "angular": {"z": 0.1}})
    assert isinstance(msg, Twist)
    assert msg == Twist(linear=Vector3(x=0.5), angular=Vector3(z=0.1))


def test_pose_stamped_with_time_string_keeps_other_defaults() -> None:
    params = {"header": {"frame_id": "map", "stamp": "2026-07-21T20:00:00.5Z"}, "pose": {"position": {"x": 1, "y": 2}}}
    msg = fill_message(PoseStamped, params)
    assert msg.header.stamp == Time(sec=T0, nanosec=500_000_000)
    assert msg.header.frame_id == "map"
    assert (msg.pose.position.x, msg.pose.position.y, msg.pose.position.z) == (1.0, 2.0, 0.0)
    assert type(msg.pose.position.x) is float  # JSON integers become floats in float fields
    assert msg.pose.orientation.w == 1.0  # the message default (identity quaternion), not 0


def test_empty_message() -> None:
    assert fill_message(Empty, {}) == Empty()


def test_action_goal() -> None:
    goal = fill_message(Fibonacci.Goal, {"order": 5})
    assert isinstance(goal, Fibonacci.Goal)
    assert goal.order == 5


def test_service_request() -> None:
    request = fill_message(SetBool.Request, {"data": True})
    assert isinstance(request, SetBool.Request)
    assert request.data is True


def test_action_internal_message_resolves_nested_goal_class() -> None:
    # SendGoal's 'goal' field is Fibonacci_Goal, which only the action's private module defines.
    request_type = Fibonacci.Impl.SendGoalService.Request
    request = fill_message(request_type, {"goal_id": {"uuid": list(range(16))}, "goal": {"order": 7}})
    assert request.goal == Fibonacci.Goal(order=7)
    assert list(request.goal_id.uuid) == list(range(16))


def test_fields_not_given_keep_message_defaults() -> None:
    msg = fill_message(Defaults, {"int32_value": 1})
    expected = Defaults()
    expected.int32_value = 1
    assert msg == expected
    assert msg.bool_value is True  # Defaults declares non-zero defaults; they survive


def test_fixed_size_covariance_array() -> None:
    covariance = [float(index) for index in range(36)]
    msg = fill_message(PoseWithCovariance, {"covariance": covariance})
    assert msg.covariance.tolist() == covariance


@pytest.mark.parametrize("length", [35, 37, 0])
def test_fixed_size_array_needs_exact_length(length: int) -> None:
    error = fill_error(PoseWithCovariance, {"covariance": [0.0] * length})
    assert error.path == "params.covariance"
    assert error.expected == "float64[36] (a list of exactly 36 items)"
    assert (
        str(error)
        == f"params.covariance: expected float64[36] (a list of exactly 36 items), got a list of {length} items"
    )


def test_uint8_sequence_from_base64_and_from_list() -> None:
    payload = bytes(range(256)) * 3
    from_base64 = fill_message(Image, {"data": base64.b64encode(payload).decode()})
    from_list = fill_message(Image, {"data": list(payload)})
    assert bytes(from_base64.data) == payload
    assert from_base64 == from_list
    assert fill_message(CompressedImage, {"data": ""}).data.tolist() == []


def test_fixed_uint8_and_octet_arrays_from_base64() -> None:
    msg = fill_message(Arrays, {"uint8_values": "AQID", "byte_values": "BAUG"})  # [1, 2, 3] and [4, 5, 6]
    assert msg.uint8_values.tolist() == [1, 2, 3]
    assert msg.byte_values == [b"\x04", b"\x05", b"\x06"]  # rclpy's form for octets
    assert fill_message(Arrays, {"byte_values": [4, 5, 6]}).byte_values == [b"\x04", b"\x05", b"\x06"]


def test_single_byte_field_takes_an_int() -> None:
    assert fill_message(BasicTypes, {"byte_value": 255}).byte_value == b"\xff"
    assert fill_error(BasicTypes, {"byte_value": 256}).expected == "byte (an integer in [0, 255])"
    assert fill_error(BasicTypes, {"byte_value": "x"}).path == "params.byte_value"


def test_base64_length_limits_apply_to_decoded_bytes() -> None:
    error = fill_error(Arrays, {"uint8_values": base64.b64encode(b"1234").decode()})
    assert str(error) == (
        "params.uint8_values: expected uint8[3] (a list of exactly 3 items, or base64 text), got 4 bytes of base64 data"
    )
    error = fill_error(BoundedSequences, {"uint8_values": base64.b64encode(b"1234").decode()})
    assert error.expected == "uint8[<=3] (a list of at most 3 items, or base64 text)"


@pytest.mark.parametrize("text", ["not base64!", "AQI", "ä"])
def test_invalid_base64_is_rejected(text: str) -> None:
    error = fill_error(Image, {"data": text})
    assert error.path == "params.data"
    assert error.got.startswith("text that is not base64")


def test_base64_only_for_byte_arrays() -> None:
    error = fill_error(PoseWithCovariance, {"covariance": "AAAA"})
    assert str(error) == "params.covariance: expected float64[36] (a list of exactly 36 items), got 'AAAA' (str)"


def test_joint_state_string_and_float_arrays() -> None:
    params = {"name": ["shoulder", "elbow"], "position": [0.5, -1], "velocity": [], "effort": [1.5, 2.5]}
    msg = fill_message(JointState, params)
    assert msg.name == ["shoulder", "elbow"]
    assert msg.position.tolist() == [0.5, -1.0]
    assert msg.velocity.tolist() == []
    assert msg.effort.tolist() == [1.5, 2.5]
    error = fill_error(JointState, {"name": ["shoulder", 7]})
    assert str(error) == "params.name[1]: expected string (a string), got 7 (int)"


def test_bounded_sequence_at_most_n() -> None:
    assert fill_message(BoundedSequences, {"int32_values": [1, 2, 3]}).int32_values.tolist() == [1, 2, 3]
    error = fill_error(BoundedSequences, {"int32_values": [1, 2, 3, 4]})
    assert str(error) == "params.int32_values: expected int32[<=3] (a list of at most 3 items), got a list of 4 items"


def test_array_of_messages_names_the_index() -> None:
    poses = [{"position": {"x": float(index)}} for index in range(5)]
    msg = fill_message(PoseArray, {"poses": poses})
    assert [pose.position.x for pose in msg.poses] == [0.0, 1.0, 2.0, 3.0, 4.0]
    poses[3] = {"position": {"x": "three"}}
    error = fill_error(PoseArray, {"poses": poses})
    assert str(error) == "params.poses[3].position.x: expected float64 (a number), got 'three' (str)"
    assert fill_error(PoseArray, {"poses": [{}, 5]}).path == "params.poses[1]"


@pytest.mark.parametrize("value", [{"x": 1}, "1,2", 3, None])
def test_array_needs_a_list(value: Any) -> None:
    error = fill_error(JointState, {"position": value})
    assert error.path == "params.position"
    assert error.expected == "float64[] (a list of items)"


# ---------------------------------------------------------------- errors: shape, path, message


def test_error_message_names_path_expected_and_got() -> None:
    error = fill_error(Twist, {"linear": {"x": "fast"}})
    assert isinstance(error, ValueError)
    assert str(error) == "params.linear.x: expected float64 (a number), got 'fast' (str)"
    assert (error.path, error.expected, error.got) == ("params.linear.x", "float64 (a number)", "'fast' (str)")


def test_unknown_field_names_path_and_lists_valid_fields() -> None:
    error = fill_error(PoseStamped, {"pose": {"positon": {"x": 1}}})
    assert error.path == "params.pose.positon"
    assert str(error) == (
        "params.pose.positon: expected a field of geometry_msgs/msg/Pose (position, orientation), got an unknown field"
    )


def test_unknown_field_of_empty_message() -> None:
    assert (
        str(fill_error(Empty, {"x": 1}))
        == "params.x: expected no fields (std_msgs/msg/Empty has none), got an unknown field"
    )


@pytest.mark.parametrize("params", [[1, 2], None, "linear", 5])
def test_params_must_be_an_object(params: Any) -> None:
    error = fill_error(Twist, params)
    assert error.path == "params"
    assert error.expected == "geometry_msgs/msg/Twist (an object)"


def test_nested_message_must_be_an_object() -> None:
    assert str(fill_error(Twist, {"linear": [1, 2, 3]})) == (
        "params.linear: expected geometry_msgs/msg/Vector3 (an object), got a list of 3 items"
    )


def test_path_prefix_is_configurable() -> None:
    assert fill_error(Fibonacci.Goal, {"order": "x"}, path="goal").path == "goal.order"


def test_hostile_keys_and_values_stay_on_one_short_line() -> None:
    error = fill_error(Twist, {"a\nb": 1})
    assert error.path == "params['a\\nb']"
    assert "\n" not in str(error)
    assert fill_error(Twist, {3: 1}).path == "params[3]"
    long_text = "x" * 10_000 + "\n"
    error = fill_error(Twist, {"linear": {"x": long_text}})
    assert "\n" not in str(error)
    assert error.got == repr("x" * 40) + "... (str)"
    assert fill_error(Twist, {"linear": {"x": 10**400}}).got == "an integer of 1329 bits (int)"


def test_first_error_is_reported() -> None:
    # Only the first problem, in the order the fields were sent.
    error = fill_error(Twist, {"linear": {"y": "b", "x": "a"}, "angular": {"z": "c"}})
    assert error.path == "params.linear.y"


def test_not_a_message_class_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        fill_message(dict, {})
    with pytest.raises(TypeError):
        describe_fields(SetBool)  # the service, not its Request


# ---------------------------------------------------------------- depth limit


def test_depth_limit_counts_nested_message_levels() -> None:
    params = {"pose": {"position": {"x": 1}}}
    assert fill_message(PoseStamped, params, max_depth=2).pose.position.x == 1.0
    error = fill_error(PoseStamped, params, max_depth=1)
    assert str(error) == "params.pose.position: expected at most 1 levels of nested messages, got deeper nesting"
    assert fill_error(PoseStamped, {"header": {"stamp": {"sec": 1}}}, max_depth=1).path == "params.header.stamp"
    assert fill_message(PoseStamped, {"header": {"stamp": "2026-07-21T20:00:00Z"}}, max_depth=1).header.stamp.sec == T0


def test_depth_limit_includes_arrays_of_messages() -> None:
    params = {"array_of_arrays": [{}, {"basic_types_values": [{}, {}, {"int8_value": 1}]}, {}]}
    assert fill_message(MultiNested, params, max_depth=2).array_of_arrays[1].basic_types_values[2].int8_value == 1
    error = fill_error(MultiNested, params, max_depth=1)
    assert error.path == "params.array_of_arrays[1].basic_types_values[0]"


def test_hostile_deep_payload_stops_at_the_type_structure() -> None:
    deep: dict[str, Any] = {}
    for _ in range(100_000):  # far beyond the recursion limit: the walk must not follow it
        deep = {"x": deep}
    error = fill_error(Twist, {"linear": deep})
    assert str(error) == "params.linear.x: expected float64 (a number), got an object"
    assert MAX_DEPTH == 32


# ---------------------------------------------------------------- describe_fields


def test_describe_fields() -> None:
    assert describe_fields(Twist) == {"linear": "geometry_msgs/msg/Vector3", "angular": "geometry_msgs/msg/Vector3"}
    assert describe_fields(PoseWithCovariance) == {"pose": "geometry_msgs/msg/Pose", "covariance": "float64[36]"}
    assert describe_fields(Empty) == {}
    assert describe_fields(Fibonacci.Goal) == {"order": "int32"}
    basic = describe_fields(BasicTypes)
    assert (basic["bool_value"], basic["byte_value"], basic["char_value"]) == ("bool", "byte", "uint8")
    assert (basic["float32_value"], basic["float64_value"], basic["uint64_value"]) == ("float32", "float64", "uint64")
    assert describe_fields(Image)["data"] == "uint8[]"
    assert describe_fields(BoundedSequences)["basic_types_values"] == "test_msgs/msg/BasicTypes[<=3]"
    assert describe_fields(Strings)["bounded_string_value"] == "string<=22"
    assert describe_fields(WStrings)["bounded_sequence_of_wstrings"] == "wstring[<=3]"
    assert describe_fields(Fibonacci.Impl.SendGoalService.Request)["goal"] == "test_msgs/action/Fibonacci_Goal"
    assert describe_fields(Header)["stamp"] == "builtin_interfaces/msg/Time"
    assert list(describe_fields(JointState)) == ["header", "name", "position", "velocity", "effort"]
