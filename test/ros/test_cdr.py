"""alien_ros.cdr against rclpy's own serialization: every field, and every conversion, as from the message.

Each case serializes a real message with `rclpy.serialization.serialize_message` (the bytes a raw
subscription gets) and checks that the decoded object carries the values rclpy's deserialization
of the same bytes has (what a subscription without `raw` would get: float32 fields as their
float32 values), and that the conversions (alien_ros.conversions) give the same telemetry and
events as from that message,
for the edge cases test_conversions_*.py cover: non-finite values, empty and long arrays, long and
non-ASCII strings, every enum value and values outside the enums.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from hypothesis import given, settings
from hypothesis import strategies as st
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import BatteryState, NavSatFix, NavSatStatus
from std_msgs.msg import Header

from alien_ros.cdr import CdrError, decode_battery, decode_diagnostics, decode_fix
from alien_ros.conversions import (
    DiagnosticLevelTracker,
    FixTracker,
    battery_state_to_power,
    diagnostic_array_to_health,
    navsat_fix_to_position,
)
from alien_ros.ros_scalars import as_int

NAN, INF = float("nan"), float("inf")
T0 = 1_784_664_000
LONG_FRAME = "base_link/" * 500  # 5,000 characters
UNICODE = "Kühlung ⚙ 温度 🚀"


def _same(expected: Any, actual: Any, where: str) -> None:
    """Field by field: numpy arrays as tuples, octets as ints, NaN equal to NaN."""
    if hasattr(expected, "get_fields_and_field_types"):
        for name in expected.get_fields_and_field_types():
            _same(getattr(expected, name), getattr(actual, name), f"{where}.{name}")
        return
    if hasattr(expected, "tolist"):
        expected = expected.tolist()
    if isinstance(expected, bytes):
        expected = as_int(expected)
    if isinstance(expected, list | tuple):
        assert len(expected) == len(actual), where
        for index, (one, other) in enumerate(zip(expected, actual, strict=True)):
            _same(one, other, f"{where}[{index}]")
        return
    if isinstance(expected, float) and math.isnan(expected):
        assert isinstance(actual, float) and math.isnan(actual), where
        return
    assert expected == actual and type(expected) is type(actual), f"{where}: {expected!r} != {actual!r}"


def header(sec: int = T0, nanosec: int = 0, frame_id: str = "gps") -> Header:
    return Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id=frame_id)


# ---------------------------------------------------------------- NavSatFix


def fix(**fields: Any) -> NavSatFix:
    values: dict[str, Any] = {
        "header": header(),
        "status": NavSatStatus(status=NavSatStatus.STATUS_FIX, service=NavSatStatus.SERVICE_GPS),
        "latitude": 32.94881,
        "longitude": -96.80132,
        "altitude": 152.4,
        "position_covariance": [1.0, 0, 0, 0, 2.0, 0, 0, 0, 4.0],
        "position_covariance_type": NavSatFix.COVARIANCE_TYPE_DIAGONAL_KNOWN,
    }
    values.update(fields)
    return NavSatFix(**values)


def received(msg: Any) -> tuple[Any, bytes]:
    """What a subscription gets: the message as rclpy deserializes its bytes, and the bytes."""
    data = serialize_message(msg)
    return deserialize_message(data, type(msg)), data


def assert_fix(sent: NavSatFix) -> None:
    msg, data = received(sent)
    decoded = decode_fix(data)
    _same(msg, decoded, "NavSatFix")
    assert navsat_fix_to_position(decoded) == navsat_fix_to_position(msg)
    assert FixTracker().update(decoded) == FixTracker().update(msg)


FIX_CASES = [
    fix(),
    NavSatFix(),  # every default, the zero stamp and STATUS_UNKNOWN / NO_FIX included
    *(fix(status=NavSatStatus(status=s, service=1)) for s in (-128, -2, -1, 0, 1, 2, 5, 127)),
    *(fix(status=NavSatStatus(status=0, service=service)) for service in (0, 1, 2, 4, 8, 15, 16, 65535)),
    *(fix(position_covariance_type=t) for t in (0, 1, 2, 3, 4, 255)),
    *(fix(latitude=bad) for bad in (NAN, INF, -INF, 91.0, -90.5, 1e300)),
    *(fix(longitude=bad) for bad in (NAN, INF, -INF, 180.5)),
    fix(altitude=NAN),
    fix(altitude=-INF),
    fix(position_covariance=[NAN, 0, 0, 0, INF, 0, 0, 0, -INF]),
    fix(position_covariance=[-1.0, 0, 0, 0, 1e-300, 0, 0, 0, 5e-324]),
    fix(header=header(frame_id="")),
    fix(header=header(frame_id=LONG_FRAME)),
    fix(header=header(frame_id=UNICODE)),
    *(fix(header=header(frame_id="x" * n)) for n in range(1, 9)),  # every alignment after the frame id
    fix(header=header(sec=0, nanosec=0)),
    fix(header=header(sec=T0, nanosec=1_500_000_000)),  # over-full nanoseconds
    fix(header=header(sec=-1, nanosec=999_999_999)),
    fix(header=header(sec=2**31 - 1, nanosec=2**32 - 1)),
]


@pytest.mark.parametrize("msg", FIX_CASES, ids=range(len(FIX_CASES)))
def test_navsat_fix_decodes_as_rclpy_serialized_it(msg: NavSatFix) -> None:
    assert_fix(msg)


def test_fix_tracker_sees_the_same_outages_from_either() -> None:
    sequence = [fix(), fix(latitude=NAN), fix(status=NavSatStatus(status=-1, service=1)), fix(), fix()]
    from_messages, from_bytes = FixTracker(), FixTracker()
    for msg in sequence:
        assert from_bytes.update(decode_fix(serialize_message(msg))) == from_messages.update(msg)
    assert from_bytes.dropped == from_messages.dropped == 2


# ---------------------------------------------------------------- BatteryState


def battery(**fields: Any) -> BatteryState:
    values: dict[str, Any] = {
        "header": header(),
        "voltage": 24.3,
        "temperature": 31.5,
        "current": -1.25,
        "charge": 4.2,
        "capacity": 5.0,
        "design_capacity": 5.2,
        "percentage": 0.87,
        "power_supply_status": BatteryState.POWER_SUPPLY_STATUS_DISCHARGING,
        "power_supply_health": BatteryState.POWER_SUPPLY_HEALTH_GOOD,
        "power_supply_technology": BatteryState.POWER_SUPPLY_TECHNOLOGY_LION,
        "present": True,
        "cell_voltage": [4.01, 4.02, 4.0, 4.03, 4.01, 4.02],
        "cell_temperature": [30.5, 31.0],
        "location": "base",
        "serial_number": "BAT-0042",
    }
    values.update(fields)
    return BatteryState(**values)


def assert_battery(sent: BatteryState) -> None:
    msg, data = received(sent)
    decoded = decode_battery(data)
    _same(msg, decoded, "BatteryState")
    assert battery_state_to_power(decoded) == battery_state_to_power(msg)


_FLOAT_FIELDS = ("voltage", "temperature", "current", "charge", "capacity", "design_capacity", "percentage")
_ENUM_FIELDS = ("power_supply_status", "power_supply_health", "power_supply_technology")
BATTERY_CASES = [
    battery(),
    BatteryState(),  # every default: NaN-free zeros, empty arrays and strings
    *(battery(**{name: bad}) for name in _FLOAT_FIELDS for bad in (NAN, INF, -INF)),
    *(battery(**{name: value}) for name in _ENUM_FIELDS for value in range(9)),
    *(battery(**{name: 255}) for name in _ENUM_FIELDS),
    battery(present=False),
    battery(percentage=1.5),
    battery(percentage=-0.1),
    battery(cell_voltage=[], cell_temperature=[]),
    battery(cell_voltage=[NAN, 4.0, INF], cell_temperature=[NAN]),
    battery(cell_voltage=[3.7] * 200, cell_temperature=[25.0] * 199),
    battery(location="", serial_number=""),
    battery(location=UNICODE, serial_number=LONG_FRAME),
    *(battery(header=header(frame_id="x" * n), location="y" * n) for n in range(1, 9)),
    battery(header=header(sec=0, nanosec=0)),
]


@pytest.mark.parametrize("msg", BATTERY_CASES, ids=range(len(BATTERY_CASES)))
def test_battery_state_decodes_as_rclpy_serialized_it(msg: BatteryState) -> None:
    assert_battery(msg)


# ---------------------------------------------------------------- DiagnosticArray


def status(level: int = 0, name: str = "motor", pairs: list[tuple[str, str]] | None = None, **text: str) -> Any:
    values = [KeyValue(key=k, value=v) for k, v in (pairs if pairs is not None else [("temp", "41.5")])]
    return DiagnosticStatus(
        level=bytes([level]),
        name=name,
        message=text.get("message", "running"),
        hardware_id=text.get("hardware_id", "m1"),
        values=values,
    )


def diagnostics(*statuses: Any, **fields: Any) -> DiagnosticArray:
    return DiagnosticArray(header=fields.get("header", header()), status=list(statuses))


def assert_diagnostics(sent: DiagnosticArray) -> None:
    msg, data = received(sent)
    decoded = decode_diagnostics(data)
    _same(msg, decoded, "DiagnosticArray")
    assert diagnostic_array_to_health(decoded) == diagnostic_array_to_health(msg)
    assert DiagnosticLevelTracker().update(decoded) == DiagnosticLevelTracker().update(msg)


DIAGNOSTICS_CASES = [
    diagnostics(status()),
    DiagnosticArray(),  # no status at all
    diagnostics(*(status(level, name=f"part{level}") for level in (0, 1, 2, 3))),
    *(diagnostics(status(level)) for level in (4, 7, 127, 128, 255)),  # outside the enum
    diagnostics(status(pairs=[])),
    diagnostics(status(pairs=[("k", "1"), ("k", "2"), ("", "")])),  # a repeated key, an empty one
    diagnostics(status(name="", message="", hardware_id="")),
    diagnostics(status(name=UNICODE, message=LONG_FRAME, hardware_id=UNICODE, pairs=[(UNICODE, LONG_FRAME)])),
    diagnostics(*(status(i % 4, name=f"n{i}", pairs=[(f"k{j}", "v" * j) for j in range(i % 6)]) for i in range(60))),
    *(diagnostics(status(name="x" * n, message="y" * (n + 1)), header=header(frame_id="z" * n)) for n in range(1, 9)),
]


@pytest.mark.parametrize("msg", DIAGNOSTICS_CASES, ids=range(len(DIAGNOSTICS_CASES)))
def test_diagnostic_array_decodes_as_rclpy_serialized_it(msg: DiagnosticArray) -> None:
    assert_diagnostics(msg)


def test_level_changes_are_the_same_from_either() -> None:
    sequence = [diagnostics(status(0)), diagnostics(status(1)), diagnostics(status(3)), diagnostics(status(1))]
    from_messages, from_bytes = DiagnosticLevelTracker(), DiagnosticLevelTracker()
    for msg in sequence:
        assert from_bytes.update(decode_diagnostics(serialize_message(msg))) == from_messages.update(msg)


# ---------------------------------------------------------------- random messages

finite_or_not = st.floats(allow_nan=True, allow_infinity=True)
float32s = st.floats(width=32, allow_nan=True, allow_infinity=True)
texts = st.text(max_size=40)


@settings(max_examples=150, deadline=None)
@given(
    sec=st.integers(-(2**31), 2**31 - 1),
    nanosec=st.integers(0, 2**32 - 1),
    frame_id=texts,
    fix_status=st.integers(-128, 127),
    service=st.integers(0, 65535),
    numbers=st.lists(finite_or_not, min_size=12, max_size=12),
    covariance_type=st.integers(0, 255),
)
def test_random_navsat_fixes(
    sec: int, nanosec: int, frame_id: str, fix_status: int, service: int, numbers: list[float], covariance_type: int
) -> None:
    assert_fix(
        fix(
            header=header(sec, nanosec, frame_id),
            status=NavSatStatus(status=fix_status, service=service),
            latitude=numbers[0],
            longitude=numbers[1],
            altitude=numbers[2],
            position_covariance=numbers[3:],
            position_covariance_type=covariance_type,
        )
    )


@settings(max_examples=150, deadline=None)
@given(
    numbers=st.lists(float32s, min_size=7, max_size=7),
    enums=st.lists(st.integers(0, 255), min_size=3, max_size=3),
    present=st.booleans(),
    cells=st.lists(float32s, max_size=20),
    temperatures=st.lists(float32s, max_size=20),
    location=texts,
    serial=texts,
    frame_id=texts,
)
def test_random_battery_states(
    numbers: list[float],
    enums: list[int],
    present: bool,
    cells: list[float],
    temperatures: list[float],
    location: str,
    serial: str,
    frame_id: str,
) -> None:
    assert_battery(
        battery(
            header=header(frame_id=frame_id),
            **dict(zip(_FLOAT_FIELDS, numbers, strict=True)),
            **dict(zip(_ENUM_FIELDS, enums, strict=True)),
            present=present,
            cell_voltage=cells,
            cell_temperature=temperatures,
            location=location,
            serial_number=serial,
        )
    )


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 255), texts, texts, texts, st.lists(st.tuples(texts, texts), max_size=5)),
        max_size=8,
    ),
    texts,
)
def test_random_diagnostic_arrays(rows: list[tuple[int, str, str, str, list[tuple[str, str]]]], frame_id: str) -> None:
    statuses = [status(level, name, pairs, message=text, hardware_id=hw) for level, name, text, hw, pairs in rows]
    assert_diagnostics(diagnostics(*statuses, header=header(frame_id=frame_id)))


# ---------------------------------------------------------------- bytes it does not read


DECODERS = [
    (decode_fix, fix()),
    (decode_battery, battery()),
    (decode_diagnostics, diagnostics(status(), status(2, pairs=[("a", "b")]))),
]


@pytest.mark.parametrize(("decode", "msg"), DECODERS, ids=["fix", "battery", "diagnostics"])
def test_every_cut_short_message_is_refused_with_cdr_error(decode: Any, msg: Any) -> None:
    data = serialize_message(msg)
    for end in range(len(data)):
        with pytest.raises(CdrError):
            decode(data[:end])


@pytest.mark.parametrize(("decode", "msg"), DECODERS, ids=["fix", "battery", "diagnostics"])
@pytest.mark.parametrize("encapsulation", [b"\x00\x00", b"\x00\x03", b"\x00\x07", b"\x01\x00"])
def test_other_encapsulations_are_left_to_rclpy(decode: Any, msg: Any, encapsulation: bytes) -> None:
    data = serialize_message(msg)
    with pytest.raises(CdrError, match="not little-endian plain CDR"):
        decode(encapsulation + data[2:])


def test_a_garbage_count_is_refused_without_looping() -> None:
    data = bytearray(serialize_message(diagnostics(status())))
    count_at = 4 + 8 + 4 + len(b"gps\x00")  # after the stamp and the frame id
    data[count_at : count_at + 4] = (2**32 - 1).to_bytes(4, "little")
    with pytest.raises(CdrError, match="runs past the end"):
        decode_diagnostics(bytes(data))
