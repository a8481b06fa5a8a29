"""Pure conversion from a mothership command's JSON object to a typed ROS 2 message.

The reverse of :func:`alien_ros.conversions.message_to_dict`. Parameters arrive from the C2 server,
so they are untrusted: every value is checked against the field's ROS type *before* it is assigned,
because rosidl's own setter checks are plain ``assert`` statements that are off unless
``ROS_PYTHON_CHECK_FIELDS=1`` (and vanish under ``python -O``); an unchecked wrong value would
otherwise fail later, deep inside the C type support at publish time, or be silently truncated.

Only the first problem is reported (a :class:`FieldError` naming its path, e.g.
``params.poses[3].position.x``): commands are small and written by hand or by a UI, so one precise
message is more useful than a list, and the walk can stop at once on a hostile payload.

Accepted JSON for each field type:

* bool: ``true``/``false`` only (not 1/0).
* integers (int8..uint64, byte, char): JSON integers in the type's range; not booleans and not
  floats, even whole ones (``1.0``): a float in an integer field usually means a wrong field.
* float32/float64: integers or floats, finite; float32 also within its range. Not booleans.
* string/wstring: text without NUL characters (C strings would end there), valid Unicode, and for
  bounded strings ``string<=N`` at most N bytes of UTF-8 (the wire limit; wstring: N UTF-16 units).
* nested message: an object; fields not given keep the message defaults, unknown fields are errors.
* arrays: lists, element by element; ``T[N]`` exactly N items, ``T[<=N]`` at most N; uint8/byte
  arrays also accept base64 text (what ``message_to_dict`` emits for them).
* builtin_interfaces/Time: RFC 3339 text with a zone (``2026-07-21T20:00:00.5Z``, up to nanoseconds),
  ``null`` (the zero "unset" stamp, as ``message_to_dict`` emits it) or ``{sec, nanosec}``.
* builtin_interfaces/Duration: a number of seconds (may be negative) or ``{sec, nanosec}``.
"""

from __future__ import annotations

import array
import base64
import importlib
import math
import re
import sys
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, NamedTuple

from builtin_interfaces.msg import Duration, Time
from rosidl_parser.definition import (
    AbstractNestedType,
    AbstractSequence,
    AbstractString,
    AbstractType,
    AbstractWString,
    Array,
    BasicType,
    BoundedSequence,
    BoundedString,
    BoundedWString,
    NamespacedType,
)

from alien_ros.field_errors import DepthExceeded, FieldError, Filler, key_path, show
from alien_ros.scalar_fillers import INT_RANGES, MSG_NAMES, basic_filler, string_filler

__all__ = ["MAX_DEPTH", "FieldError", "describe_fields", "fill_message"]

MAX_DEPTH = 32
"""Default limit on message nesting below the top message (real ROS types stay under ~10)."""

_NS_PER_S = 1_000_000_000
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=timezone.utc)


class _Field(NamedTuple):
    label: str  # the ROS type as a .msg file spells it, e.g. 'float64[36]', 'geometry_msgs/msg/Pose'
    fill: Filler


class _Plan(NamedTuple):
    type_name: str
    fields: dict[str, _Field]


# Per message class, built once; the GIL makes the dict assignment atomic and a racing rebuild is harmless.
_PLANS: dict[type, _Plan] = {}


# ---------------------------------------------------------------- public API


def fill_message(msg_type: type, params: Mapping[str, Any], *, path: str = "params", max_depth: int = MAX_DEPTH) -> Any:
    """Build a ``msg_type`` instance from a JSON object, checking every value (see the module doc).

    ``msg_type`` is any generated message class, including service ``Request`` and action ``Goal``
    classes. ``path`` prefixes the paths in errors. ``max_depth`` limits how many levels of nested
    messages (arrays of messages included) may be given below the top one, so a payload cannot make
    the walk recurse without bound. Raises :class:`FieldError` for the first problem found.
    """
    plan = _plan(msg_type)  # before the try: a non-message class is a programming error (TypeError)
    try:
        return _fill(msg_type, plan, params, path, max_depth)
    except DepthExceeded as exc:
        raise FieldError(exc.path, f"at most {max_depth} levels of nested messages", "deeper nesting") from None


def describe_fields(msg_type: type) -> dict[str, str]:
    """Field name -> ROS type as a .msg file spells it, e.g. ``{'x': 'float64'}``, ``'uint8[]'``, ``'string<=22'``."""
    return {name: field.label for name, field in _plan(msg_type).fields.items()}


# ---------------------------------------------------------------- per-class plans


def _plan(cls: type) -> _Plan:
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = _build_plan(cls)
    return plan


def _build_plan(cls: type) -> _Plan:
    if not isinstance(cls, type) or not hasattr(cls, "get_fields_and_field_types") or not hasattr(cls, "SLOT_TYPES"):
        raise TypeError(f"{cls!r} is not a ROS message class")
    names = cls.get_fields_and_field_types()
    # The type strings of get_fields_and_field_types() drop the interface kind of nested types
    # ('test_msgs/Fibonacci_Goal' lives in test_msgs.action) and cannot tell IDL char from uint8;
    # SLOT_TYPES, in the same order, carries the full rosidl definition of each field.
    fields = {name: _Field(_label(slot), _filler(cls, slot)) for name, slot in zip(names, cls.SLOT_TYPES, strict=True)}
    return _Plan(_class_type_name(cls), fields)


def _fill(cls: type, plan: _Plan, value: Any, path: str, levels: int) -> Any:
    if not isinstance(value, Mapping):
        raise FieldError(path, f"{plan.type_name} (an object)", show(value))
    msg = cls()
    for key, item in value.items():
        field = plan.fields.get(key) if isinstance(key, str) else None
        if field is None:
            raise FieldError(key_path(path, key), _field_list(plan), "an unknown field")
        setattr(msg, key, field.fill(item, f"{path}.{key}", levels))
    return msg


def _field_list(plan: _Plan) -> str:
    if not plan.fields:
        return f"no fields ({plan.type_name} has none)"
    return f"a field of {plan.type_name} ({', '.join(plan.fields)})"


def _class_type_name(cls: type) -> str:
    """'geometry_msgs.msg._pose' + 'Pose' -> 'geometry_msgs/msg/Pose' (generated modules are pkg.kind._x)."""
    parts = cls.__module__.split(".")
    return "/".join([*parts[:2], cls.__name__]) if len(parts) >= 2 else cls.__name__


# ---------------------------------------------------------------- type labels (.msg spelling)


def _label(slot: AbstractType) -> str:
    if isinstance(slot, AbstractNestedType):
        element = _label(slot.value_type)
        if isinstance(slot, Array):
            return f"{element}[{slot.size}]"
        if isinstance(slot, BoundedSequence):
            return f"{element}[<={slot.maximum_size}]"
        return f"{element}[]"
    if isinstance(slot, BasicType):
        return MSG_NAMES.get(slot.typename, slot.typename)
    if isinstance(slot, NamespacedType):
        return "/".join([*slot.namespaces, slot.name])
    if isinstance(slot, BoundedString):
        return f"string<={slot.maximum_size}"
    if isinstance(slot, BoundedWString):
        return f"wstring<={slot.maximum_size}"
    if isinstance(slot, AbstractWString):
        return "wstring"
    if isinstance(slot, AbstractString):
        return "string"
    return type(slot).__name__


# ---------------------------------------------------------------- fillers


def _filler(owner: type, slot: AbstractType) -> Filler:
    if isinstance(slot, AbstractNestedType):
        return _array_filler(owner, slot)
    return _scalar_filler(owner, slot)


def _scalar_filler(owner: type, slot: AbstractType) -> Filler:
    if isinstance(slot, BasicType):
        return basic_filler(slot.typename)
    if isinstance(slot, AbstractString | AbstractWString):
        return string_filler(slot, _label(slot))
    if isinstance(slot, NamespacedType):
        return _message_filler(owner, slot)
    label = _label(slot)

    def unsupported(value: Any, path: str, levels: int) -> Any:
        raise FieldError(path, f"a supported field type ({label} is not)", show(value))

    return unsupported


# ---------------------------------------------------------------- nested messages, Time, Duration


def _message_filler(owner: type, slot: NamespacedType) -> Filler:
    type_name = _label(slot)
    if type_name == "builtin_interfaces/msg/Time":
        return _fill_time
    if type_name == "builtin_interfaces/msg/Duration":
        return _fill_duration
    resolved: list[tuple[type, _Plan]] = []  # resolved on first use: a field never sent imports nothing

    def fill(value: Any, path: str, levels: int) -> Any:
        if levels <= 0:
            raise DepthExceeded(path)
        if not resolved:
            cls = _nested_class(owner, slot)
            resolved.append((cls, _plan(cls)))
        cls, plan = resolved[0]
        return _fill(cls, plan, value, path, levels - 1)

    return fill


def _nested_class(owner: type, slot: NamespacedType) -> type:
    """The class of a nested field, from the installed definition (never from the payload).

    Public types are attributes of '<pkg>.<kind>'; an action's own Goal/Result/Feedback, nested in
    its internal service messages, are only in the private module that defines the owner.
    """
    module_name = ".".join(slot.namespaces)
    cls = getattr(importlib.import_module(module_name), slot.name, None)
    if cls is None and owner.__module__.startswith(module_name + "."):
        cls = getattr(sys.modules[owner.__module__], slot.name, None)
    if not isinstance(cls, type):
        raise TypeError(f"cannot find the class of {_label(slot)} (a field of {_class_type_name(owner)})")
    return cls


_TIME_EXPECTED = "builtin_interfaces/msg/Time (RFC 3339 text with a zone, null, or {sec, nanosec})"
_DURATION_EXPECTED = "builtin_interfaces/msg/Duration (a number of seconds, or {sec, nanosec})"
_INT32_MIN, _INT32_MAX = INT_RANGES["int32"]
# RFC 3339 date-time (section 5.6); 'T' may be a space, digits are ASCII only.
_RFC3339_RE = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})[Tt ]"
    r"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})(?:\.(?P<fraction>[0-9]+))?"
    r"(?:(?P<utc>[Zz])|(?P<sign>[+-])(?P<offset_hour>[0-9]{2}):(?P<offset_minute>[0-9]{2}))"
)


def _fill_time(value: Any, path: str, levels: int) -> Time:
    if value is None:  # message_to_dict's spelling of the zero ("never set") stamp
        return Time()
    if isinstance(value, str):
        sec, nanosec = _parse_rfc3339(value, path)
        return Time(sec=sec, nanosec=nanosec)
    if isinstance(value, Mapping):
        return _fill_sec_nanosec(Time, value, path, levels)
    raise FieldError(path, _TIME_EXPECTED, show(value))


def _parse_rfc3339(text: str, path: str) -> tuple[int, int]:
    match = _RFC3339_RE.fullmatch(text)
    if match is None:
        raise FieldError(path, _TIME_EXPECTED, show(text))
    year, month, day, hour, minute, second = (
        int(match[name]) for name in ("year", "month", "day", "hour", "minute", "second")
    )
    offset = timedelta(hours=int(match["offset_hour"] or 0), minutes=int(match["offset_minute"] or 0))
    try:
        zone = timezone(-offset if match["sign"] == "-" else offset)
        moment = datetime(year, month, day, hour, minute, second, tzinfo=zone)
    except ValueError:  # month 13, 24:00, a leap second, an offset of 24 hours or more...
        raise FieldError(path, f"{_TIME_EXPECTED[:-1]}; a real date and time)", show(text)) from None
    sec = (moment - _EPOCH_UTC) // timedelta(seconds=1)
    # Digits past nanoseconds cannot be represented: truncated, as message_to_dict truncates.
    nanosec = int((match["fraction"] or "0")[:9].ljust(9, "0"))
    if not _INT32_MIN <= sec <= _INT32_MAX:  # Time.sec is int32: 1901-12-13T20:45:52Z .. 2038-01-19T03:14:07Z
        raise FieldError(
            path, "a time from 1901-12-13T20:45:52Z to 2038-01-19T03:14:07Z (Time.sec is int32)", show(text)
        )
    return sec, nanosec


def _fill_duration(value: Any, path: str, levels: int) -> Duration:
    if isinstance(value, Mapping):
        return _fill_sec_nanosec(Duration, value, path, levels)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FieldError(path, _DURATION_EXPECTED, show(value))
    # A float via its shortest decimal text (what the JSON said): 0.1 s is exactly 100000000 ns.
    total = value * _NS_PER_S if isinstance(value, int) else round(Decimal(repr(value)) * _NS_PER_S)
    sec, nanosec = divmod(total, _NS_PER_S)  # floor: -0.5 s is sec=-1, nanosec=500000000, as in rclpy
    if not _INT32_MIN <= sec <= _INT32_MAX:
        raise FieldError(
            path, f"a duration in [{_INT32_MIN}, {_INT32_MAX + 1}) seconds (Duration.sec is int32)", show(value)
        )
    return Duration(sec=sec, nanosec=nanosec)


def _fill_sec_nanosec(cls: type, value: Mapping[str, Any], path: str, levels: int) -> Any:
    """Time/Duration as a plain {sec, nanosec} object; nanosec must be below one second (its documented range)."""
    if levels <= 0:
        raise DepthExceeded(path)
    msg = _fill(cls, _plan(cls), value, path, levels - 1)
    if msg.nanosec >= _NS_PER_S:
        raise FieldError(
            f"{path}.nanosec", f"uint32 (nanoseconds, an integer in [0, {_NS_PER_S - 1}])", show(msg.nanosec)
        )
    return msg


# ---------------------------------------------------------------- arrays

_BYTE_LIKE = frozenset({"uint8", "octet"})


def _array_filler(owner: type, slot: AbstractNestedType) -> Filler:
    element = _scalar_filler(owner, slot.value_type)
    label = _label(slot)
    exact: int | None = slot.size if isinstance(slot, Array) else None
    maximum: int | None = slot.maximum_size if isinstance(slot, BoundedSequence) else None
    count = f"exactly {exact} items" if exact is not None else f"at most {maximum} items" if maximum else "items"
    value_type = slot.value_type
    byte_like = isinstance(value_type, BasicType) and value_type.typename in _BYTE_LIKE
    octet = byte_like and isinstance(value_type, BasicType) and value_type.typename == "octet"
    sequence = isinstance(slot, AbstractSequence)
    expected = f"{label} (a list of {count}{', or base64 text' if byte_like else ''})"

    def check_length(length: int, path: str, got: str) -> None:
        if (exact is not None and length != exact) or (maximum is not None and length > maximum):
            raise FieldError(path, expected, got)

    def fill(value: Any, path: str, levels: int) -> Any:
        if byte_like and isinstance(value, str):
            try:
                raw = base64.b64decode(value, validate=True)
            except ValueError:  # binascii.Error, or non-ASCII text
                raise FieldError(path, expected, f"text that is not base64: {show(value)}") from None
            check_length(len(raw), path, f"{len(raw)} bytes of base64 data")
            if octet:  # rclpy holds octets as 1-byte bytes objects
                return [raw[index : index + 1] for index in range(len(raw))]
            return array.array("B", raw) if sequence else list(raw)
        if not isinstance(value, list | tuple):
            raise FieldError(path, expected, show(value))
        check_length(len(value), path, f"a list of {len(value)} items")  # before the elements: fail fast
        return [element(item, f"{path}[{index}]", levels) for index, item in enumerate(value)]

    return fill
