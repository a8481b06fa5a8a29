"""Any ROS message -> a JSON-safe dict, recursively (the reverse of alien_ros.message_fill)."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable
from typing import Any

from alien_ros.ros_scalars import as_int, duration_to_seconds, finite, finite_list, stamp_to_rfc3339

JsonDict = dict[str, Any]

_Converter = Callable[[Any], Any]

_FLOAT_TYPES = frozenset({"float", "double", "long double"})
# rosidl reports 'char' as uint8 and 'byte' as octet; both are raw bytes on the wire.
_BYTE_TYPES = frozenset({"uint8", "octet", "char", "byte"})
_TIME_TYPE = "builtin_interfaces/Time"
_DURATION_TYPE = "builtin_interfaces/Duration"
# Field type strings from get_fields_and_field_types(): 'double[9]', 'sequence<uint8>',
# 'sequence<test_msgs/BasicTypes, 3>', 'string<22>' (a bounded string is a scalar).
_SEQUENCE_RE = re.compile(r"sequence<(?P<element>.+?)(?:, *\d+)?>")
_ARRAY_RE = re.compile(r"(?P<element>.+)\[\d+\]")

# Per message class: ((field name, converter), ...). Built once per class; the GIL makes the
# dict assignment atomic, and building twice in a race is harmless.
_PLANS: dict[type, tuple[tuple[str, _Converter], ...]] = {}


def message_to_dict(msg: Any) -> JsonDict:
    """Any ROS message -> JSON-safe dict, recursively.

    Nested messages become dicts, Time fields RFC 3339 strings (None when zero), Duration fields
    seconds, non-finite floats None, byte-like arrays (uint8/char/byte) base64 strings, other arrays
    lists, and single 'byte' fields ints. A Time/Duration passed at the top level is a plain message
    ({"sec", "nanosec"}); the special forms apply to fields.
    """
    cls = type(msg)
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = _build_plan(cls)
    return {name: convert(getattr(msg, name)) for name, convert in plan}


def _build_plan(cls: type) -> tuple[tuple[str, _Converter], ...]:
    fields: dict[str, str] = cls.get_fields_and_field_types()  # type: ignore[attr-defined]
    return tuple((name, _converter_for(type_string)) for name, type_string in fields.items())


def _converter_for(type_string: str) -> _Converter:
    collection = _SEQUENCE_RE.fullmatch(type_string) or _ARRAY_RE.fullmatch(type_string)
    if collection is not None:
        return _collection_converter(collection.group("element"))
    return _scalar_converter(type_string)


def _scalar_converter(type_string: str) -> _Converter:
    if type_string in _FLOAT_TYPES:
        return finite
    if type_string in ("octet", "byte"):
        return as_int
    if type_string == _TIME_TYPE:
        return stamp_to_rfc3339
    if type_string == _DURATION_TYPE:
        return duration_to_seconds
    if "/" in type_string:
        return message_to_dict
    return _identity  # bool, integers, strings


def _collection_converter(element: str) -> _Converter:
    if element in _BYTE_TYPES:
        return bytes_to_base64
    if element in _FLOAT_TYPES:
        return finite_list
    if element == _TIME_TYPE:
        return _mapper(stamp_to_rfc3339)
    if element == _DURATION_TYPE:
        return _mapper(duration_to_seconds)
    if "/" in element:
        return _mapper(message_to_dict)
    return _plain_list


def _mapper(convert: _Converter) -> _Converter:
    def convert_all(values: Iterable[Any]) -> list[Any]:
        return [convert(value) for value in values]

    return convert_all


def _identity(value: Any) -> Any:
    return value


def _plain_list(values: Any) -> list[Any]:
    """Array -> new list of Python scalars (numpy and array.array via tolist; lists and tuples copied)."""
    return values.tolist() if hasattr(values, "tolist") else list(values)


def bytes_to_base64(values: Any) -> str:
    """Byte-like array -> base64 text, from any shape rclpy gives (or a user assigns) it."""
    if isinstance(values, bytes | bytearray | memoryview):
        raw = bytes(values)
    elif hasattr(values, "tobytes"):  # array.array('B') for sequences, numpy uint8 for fixed arrays
        raw = values.tobytes()
    elif values and isinstance(values[0], bytes):  # octet[]: a list of 1-byte bytes objects
        raw = b"".join(values)
    else:  # a list or tuple of ints
        raw = bytes(values)
    return base64.b64encode(raw).decode("ascii")
