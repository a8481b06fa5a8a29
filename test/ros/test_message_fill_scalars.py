"""JSON command parameters -> typed ROS scalars, times and durations (alien_ros.message_fill).

Exercised with the real generated message classes: booleans, integers in their type's range,
finite floats, strings counted in UTF-8 bytes, and Time as RFC 3339 text with a zone
(docs/contract.md#timestamps) or {sec, nanosec}, Duration as seconds (docs/commands.md#commands-into-ros).
"""

from __future__ import annotations

from typing import Any

import pytest
from builtin_interfaces.msg import Duration, Time
from conversions_support import T0, fill_error
from geometry_msgs.msg import Vector3
from std_msgs.msg import Header
from std_srvs.srv import SetBool
from test_msgs.action import Fibonacci
from test_msgs.msg import BasicTypes, Builtins, Strings, WStrings

from alien_ros.message_fill import fill_message

# ---------------------------------------------------------------- scalar types


@pytest.mark.parametrize("value", [1, 0, "true", None, 1.0])
def test_bool_takes_only_json_booleans(value: Any) -> None:
    error = fill_error(SetBool.Request, {"data": value})
    assert error.path == "params.data"
    assert error.expected == "bool (true or false)"


@pytest.mark.parametrize("value", [True, False, 1.0, 1.5, "5", None])
def test_int_takes_only_json_integers(value: Any) -> None:
    error = fill_error(Fibonacci.Goal, {"order": value})
    assert error.expected == "int32 (an integer in [-2147483648, 2147483647])"


@pytest.mark.parametrize("value", [True, "1.5", None, [1.0]])
def test_float_rejects_non_numbers(value: Any) -> None:
    assert fill_error(Vector3, {"x": value}).expected == "float64 (a number)"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 10**400])
def test_float_rejects_non_finite_and_huge(value: Any) -> None:
    assert fill_error(Vector3, {"x": value}).path == "params.x"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("uint8_value", 256),
        ("uint8_value", -1),
        ("char_value", 256),  # .msg 'char' is uint8
        ("int8_value", -129),
        ("int8_value", 128),
        ("int16_value", 2**15),
        ("uint16_value", 2**16),
        ("int32_value", -(2**31) - 1),
        ("uint32_value", 2**32),
        ("int64_value", 2**63),
        ("uint64_value", 2**64),
        ("uint64_value", -1),
    ],
)
def test_int_out_of_range_names_the_range(field: str, value: int) -> None:
    error = fill_error(BasicTypes, {field: value})
    assert error.path == f"params.{field}"
    assert error.got == f"{value} (int)"
    assert " (an integer in [" in error.expected


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("int8_value", -128),
        ("int8_value", 127),
        ("uint8_value", 255),
        ("uint64_value", 2**64 - 1),
        ("int64_value", -(2**63)),
    ],
)
def test_int_range_boundaries_accepted(field: str, value: int) -> None:
    assert getattr(fill_message(BasicTypes, {field: value}), field) == value


def test_int_range_message() -> None:
    assert str(fill_error(BasicTypes, {"uint8_value": 256})) == (
        "params.uint8_value: expected uint8 (an integer in [0, 255]), got 256 (int)"
    )
    assert fill_error(BasicTypes, {"int8_value": -129}).expected == "int8 (an integer in [-128, 127])"


def test_float32_range() -> None:
    assert fill_message(BasicTypes, {"float32_value": 3.4e38}).float32_value == 3.4e38
    error = fill_error(BasicTypes, {"float32_value": 3.5e38})
    assert str(error) == (
        "params.float32_value: expected float32 (a number between -3.4028235e+38 and 3.4028235e+38), "
        "got 3.5e+38 (float)"
    )
    assert fill_error(BasicTypes, {"float32_value": -1e39}).path == "params.float32_value"
    assert fill_message(BasicTypes, {"float64_value": 1e300}).float64_value == 1e300


def test_strings() -> None:
    msg = fill_message(Strings, {"string_value": "Hellö", "bounded_string_value": "x" * 22})
    assert (msg.string_value, msg.bounded_string_value) == ("Hellö", "x" * 22)
    assert (
        str(fill_error(Strings, {"string_value": 5})) == "params.string_value: expected string (a string), got 5 (int)"
    )


def test_bounded_string_counts_utf8_bytes() -> None:
    error = fill_error(Strings, {"bounded_string_value": "x" * 23})
    assert str(error) == (
        "params.bounded_string_value: expected string<=22 (at most 22 bytes of UTF-8), got 23 bytes of UTF-8"
    )
    # 12 characters but 24 bytes on the wire, where the bound applies
    assert fill_error(Strings, {"bounded_string_value": "ö" * 12}).got == "24 bytes of UTF-8"
    assert fill_message(Strings, {"bounded_string_value": "ö" * 11}).bounded_string_value == "ö" * 11


def test_string_without_nul_and_with_valid_unicode() -> None:
    assert fill_error(Strings, {"string_value": "a\x00b"}).expected == "string (text without NUL characters)"
    assert fill_error(Strings, {"string_value": "\ud800"}).expected == "string (valid Unicode text)"


def test_wstrings() -> None:
    params = {"wstring_value": "Hellö", "array_of_wstrings": ["a", "b", "c"], "bounded_sequence_of_wstrings": ["x"]}
    msg = fill_message(WStrings, params)
    assert (msg.wstring_value, msg.array_of_wstrings, msg.bounded_sequence_of_wstrings) == (
        "Hellö",
        ["a", "b", "c"],
        ["x"],
    )
    assert fill_error(WStrings, {"wstring_value": 1}).expected == "wstring (a string)"


# ---------------------------------------------------------------- Time and Duration


@pytest.mark.parametrize(
    ("text", "sec", "nanosec"),
    [
        ("2026-07-21T20:00:00Z", T0, 0),
        ("2026-07-21T20:00:00.5Z", T0, 500_000_000),
        ("2026-07-21T20:00:00.123456789Z", T0, 123_456_789),
        ("2026-07-21T20:00:00.1234567891234Z", T0, 123_456_789),  # beyond nanoseconds: truncated
        ("2026-07-21T22:30:00.25+02:30", T0, 250_000_000),
        ("2026-07-21T15:00:00-05:00", T0, 0),
        ("2026-07-21t20:00:00z", T0, 0),
        ("2026-07-21 20:00:00Z", T0, 0),
        ("1970-01-01T00:00:01Z", 1, 0),
        ("1960-01-01T00:00:00Z", -315_619_200, 0),
    ],
)
def test_time_from_rfc3339(text: str, sec: int, nanosec: int) -> None:
    assert fill_message(Header, {"stamp": text}).stamp == Time(sec=sec, nanosec=nanosec)


@pytest.mark.parametrize(
    "text",
    [
        "2026-07-21T20:00:00",  # no zone: ambiguous
        "2026-07-21",
        "2026-07-21T20:00Z",
        "20260721T200000Z",
        "2026-07-21T20:00:00+0200",
        "2026-07-21T20:00:00.Z",
        "\uff12\uff10\uff12\uff16-07-21T20:00:00Z",  # fullwidth (non-ASCII) digits
        "1784664000",
    ],
)
def test_time_needs_rfc3339_with_zone(text: str) -> None:
    error = fill_error(Header, {"stamp": text})
    assert str(error) == (
        f"params.stamp: expected builtin_interfaces/msg/Time (RFC 3339 text with a zone, null, or {{sec, nanosec}}), "
        f"got {text!r} (str)"
    )


@pytest.mark.parametrize(
    "text", ["2026-02-30T00:00:00Z", "2026-07-21T24:00:00Z", "2016-12-31T23:59:60Z", "2026-07-21T20:00:00+24:00"]
)
def test_time_must_be_a_real_instant(text: str) -> None:
    error = fill_error(Header, {"stamp": text})
    assert error.path == "params.stamp"
    assert error.expected.endswith("; a real date and time)")


@pytest.mark.parametrize(
    "text",
    ["2038-01-19T03:14:08Z", "1901-12-13T20:45:51Z", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"],
)
def test_time_must_fit_int32_seconds(text: str) -> None:
    error = fill_error(Header, {"stamp": text})
    assert error.expected == "a time from 1901-12-13T20:45:52Z to 2038-01-19T03:14:07Z (Time.sec is int32)"
    assert fill_message(Header, {"stamp": "2038-01-19T03:14:07Z"}).stamp.sec == 2**31 - 1


def test_time_as_object_and_null() -> None:
    assert fill_message(Header, {"stamp": {"sec": T0, "nanosec": 5}}).stamp == Time(sec=T0, nanosec=5)
    assert fill_message(Header, {"stamp": {"sec": T0}}).stamp == Time(sec=T0)
    assert fill_message(Header, {"stamp": None}).stamp == Time()  # message_to_dict's "unset"
    error = fill_error(Header, {"stamp": {"sec": T0, "nanosec": 1_000_000_000}})
    assert str(error) == (
        "params.stamp.nanosec: expected uint32 (nanoseconds, an integer in [0, 999999999]), got 1000000000 (int)"
    )
    assert fill_error(Header, {"stamp": {"sec": 1.5}}).path == "params.stamp.sec"
    assert fill_error(Header, {"stamp": {"secs": 1}}).path == "params.stamp.secs"
    assert fill_error(Header, {"stamp": T0}).got == f"{T0} (int)"


@pytest.mark.parametrize(
    ("seconds", "sec", "nanosec"),
    [
        (3, 3, 0),
        (1.5, 1, 500_000_000),
        (0.1, 0, 100_000_000),  # from the decimal text, not the binary float (which is 0.1000000000000000055...)
        (-0.5, -1, 500_000_000),  # floor, as rclpy's Duration.to_msg() stores negatives
        (1e-9, 0, 1),
        (2**31 - 1, 2**31 - 1, 0),
    ],
)
def test_duration_from_seconds(seconds: float, sec: int, nanosec: int) -> None:
    assert fill_message(Builtins, {"duration_value": seconds}).duration_value == Duration(sec=sec, nanosec=nanosec)


@pytest.mark.parametrize("value", ["5s", True, None, float("inf"), [1]])
def test_duration_rejects_non_numbers(value: Any) -> None:
    error = fill_error(Builtins, {"duration_value": value})
    assert error.expected == "builtin_interfaces/msg/Duration (a number of seconds, or {sec, nanosec})"


@pytest.mark.parametrize("value", [2**31, -(2**31) - 1, 1e12])
def test_duration_must_fit_int32_seconds(value: float) -> None:
    error = fill_error(Builtins, {"duration_value": value})
    assert error.expected == "a duration in [-2147483648, 2147483648) seconds (Duration.sec is int32)"


def test_duration_as_object() -> None:
    msg = fill_message(Builtins, {"duration_value": {"sec": -2, "nanosec": 500_000_000}})
    assert msg.duration_value == Duration(sec=-2, nanosec=500_000_000)
    assert fill_error(Builtins, {"duration_value": {"nanosec": 10**9}}).path == "params.duration_value.nanosec"
