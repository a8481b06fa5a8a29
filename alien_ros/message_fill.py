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
from collections.abc import Callable, Mapping
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

__all__ = ["MAX_DEPTH", "FieldError", "describe_fields", "fill_message"]

MAX_DEPTH = 32
"""Default limit on message nesting below the top message (real ROS types stay under ~10)."""

_NS_PER_S = 1_000_000_000
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=timezone.utc)

# (JSON value, path, nested message levels still allowed) -> value ready to assign to the field.
_Filler = Callable[[Any, str, int], Any]


class FieldError(ValueError):
    """A command parameter that does not fit the message: wrong type, out of range, unknown field.

    ``path`` locates it (``params.pose.position.x``, ``params.poses[3]``), ``expected`` describes
    what the field takes (``float64 (a number)``), ``got`` what was sent (``'fast' (str)``). The
    message is one line: ``<path>: expected <expected>, got <got>``.
    """

    def __init__(self, path: str, expected: str, got: str) -> None:
        super().__init__(f"{path}: expected {expected}, got {got}")
        self.path = path
        self.expected = expected
        self.got = got


class _DepthExceeded(Exception):
    """Raised deep in the walk; fill_message turns it into a FieldError naming its own limit."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


class _Field(NamedTuple):
    label: str  # the ROS type as a .msg file spells it, e.g. 'float64[36]', 'geometry_msgs/msg/Pose'
    fill: _Filler


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
    except _DepthExceeded as exc:
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
        raise FieldError(path, f"{plan.type_name} (an object)", _show(value))
    msg = cls()
    for key, item in value.items():
        field = plan.fields.get(key) if isinstance(key, str) else None
        if field is None:
            raise FieldError(_key_path(path, key), _field_list(plan), "an unknown field")
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

# IDL names rosidl uses -> the names operators know from .msg files and `ros2 interface show`.
_MSG_NAMES = {
    "boolean": "bool",
    "octet": "byte",
    "float": "float32",
    "double": "float64",
    "short": "int16",
    "unsigned short": "uint16",
    "long": "int32",
    "unsigned long": "uint32",
    "long long": "int64",
    "unsigned long long": "uint64",
}


def _label(slot: AbstractType) -> str:
    if isinstance(slot, AbstractNestedType):
        element = _label(slot.value_type)
        if isinstance(slot, Array):
            return f"{element}[{slot.size}]"
        if isinstance(slot, BoundedSequence):
            return f"{element}[<={slot.maximum_size}]"
        return f"{element}[]"
    if isinstance(slot, BasicType):
        return _MSG_NAMES.get(slot.typename, slot.typename)
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


def _filler(owner: type, slot: AbstractType) -> _Filler:
    if isinstance(slot, AbstractNestedType):
        return _array_filler(owner, slot)
    return _scalar_filler(owner, slot)


def _scalar_filler(owner: type, slot: AbstractType) -> _Filler:
    if isinstance(slot, BasicType):
        return _basic_filler(slot.typename)
    if isinstance(slot, AbstractString | AbstractWString):
        return _string_filler(slot)
    if isinstance(slot, NamespacedType):
        return _message_filler(owner, slot)
    label = _label(slot)

    def unsupported(value: Any, path: str, levels: int) -> Any:
        raise FieldError(path, f"a supported field type ({label} is not)", _show(value))

    return unsupported


def _basic_filler(typename: str) -> _Filler:
    name = _MSG_NAMES.get(typename, typename)
    if name == "bool":
        return _fill_bool
    if name in _INT_RANGES:
        return _int_filler(name)
    if name in ("float32", "float64", "long double"):
        return _float_filler(name)
    if name in ("char", "wchar"):  # IDL characters (not .msg 'char', which is uint8): one-character text
        return _char_filler(name)
    raise TypeError(f"unknown rosidl basic type {typename!r}")  # every name in rosidl's BASIC_TYPES is handled


def _fill_bool(value: Any, path: str, levels: int) -> bool:
    if not isinstance(value, bool):
        raise FieldError(path, "bool (true or false)", _show(value))
    return value


_INT_RANGES = {
    "int8": (-(2**7), 2**7 - 1),
    "uint8": (0, 2**8 - 1),
    "byte": (0, 2**8 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}


def _int_filler(name: str) -> _Filler:
    low, high = _INT_RANGES[name]
    expected = f"{name} (an integer in [{low}, {high}])"
    octet = name == "byte"  # rclpy holds a 'byte' as a 1-byte bytes object; message_to_dict emits an int

    def fill(value: Any, path: str, levels: int) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise FieldError(path, expected, _show(value))
        return bytes((value,)) if octet else int(value)

    return fill


# rosidl's own float32 bound (FLT_MAX as it writes it); larger finite values would become infinity.
_FLOAT32_MAX = 3.402823466e38


def _float_filler(name: str) -> _Filler:
    float32 = name == "float32"
    expected = f"{name} (a number between -3.4028235e+38 and 3.4028235e+38)" if float32 else f"{name} (a number)"

    def fill(value: Any, path: str, levels: int) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FieldError(path, expected, _show(value))
        try:
            number = float(value)
        except OverflowError:  # an integer beyond float64
            raise FieldError(path, expected, _show(value)) from None
        # JSON cannot carry NaN or infinity, so a non-finite value is a caller bug, not a command.
        if not math.isfinite(number) or (float32 and abs(number) > _FLOAT32_MAX):
            raise FieldError(path, expected, _show(value))
        return number

    return fill


def _char_filler(name: str) -> _Filler:
    limit = 0x80 if name == "char" else 0x10000  # char goes out as one UTF-8 byte, wchar as one UTF-16 unit
    expected = f"{name} (a single {'ASCII ' if name == 'char' else ''}character)"

    def fill(value: Any, path: str, levels: int) -> str:
        if not isinstance(value, str) or len(value) != 1 or ord(value) >= limit:
            raise FieldError(path, expected, _show(value))
        return value

    return fill


def _string_filler(slot: AbstractString | AbstractWString) -> _Filler:
    wide = isinstance(slot, AbstractWString)
    label = _label(slot)
    maximum: int | None = getattr(slot, "maximum_size", None)
    encoding = "utf-16-le" if wide else "utf-8"
    unit_size = 2 if wide else 1
    units = "UTF-16 units" if wide else "bytes of UTF-8"

    def fill(value: Any, path: str, levels: int) -> str:
        if not isinstance(value, str):
            raise FieldError(path, f"{label} (a string)", _show(value))
        if "\x00" in value:  # the C type support copies up to the first NUL: the rest would vanish
            raise FieldError(path, f"{label} (text without NUL characters)", _show(value))
        try:
            encoded = value.encode(encoding)
        except UnicodeEncodeError:  # lone surrogates ("\ud800" is valid JSON) cannot be sent
            raise FieldError(path, f"{label} (valid Unicode text)", _show(value)) from None
        if maximum is not None and len(encoded) // unit_size > maximum:
            raise FieldError(path, f"{label} (at most {maximum} {units})", f"{len(encoded) // unit_size} {units}")
        return value

    return fill


# ---------------------------------------------------------------- nested messages, Time, Duration


def _message_filler(owner: type, slot: NamespacedType) -> _Filler:
    type_name = _label(slot)
    if type_name == "builtin_interfaces/msg/Time":
        return _fill_time
    if type_name == "builtin_interfaces/msg/Duration":
        return _fill_duration
    resolved: list[tuple[type, _Plan]] = []  # resolved on first use: a field never sent imports nothing

    def fill(value: Any, path: str, levels: int) -> Any:
        if levels <= 0:
            raise _DepthExceeded(path)
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
_INT32_MIN, _INT32_MAX = _INT_RANGES["int32"]
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
    raise FieldError(path, _TIME_EXPECTED, _show(value))


def _parse_rfc3339(text: str, path: str) -> tuple[int, int]:
    match = _RFC3339_RE.fullmatch(text)
    if match is None:
        raise FieldError(path, _TIME_EXPECTED, _show(text))
    year, month, day, hour, minute, second = (
        int(match[name]) for name in ("year", "month", "day", "hour", "minute", "second")
    )
    offset = timedelta(hours=int(match["offset_hour"] or 0), minutes=int(match["offset_minute"] or 0))
    try:
        zone = timezone(-offset if match["sign"] == "-" else offset)
        moment = datetime(year, month, day, hour, minute, second, tzinfo=zone)
    except ValueError:  # month 13, 24:00, a leap second, an offset of 24 hours or more...
        raise FieldError(path, f"{_TIME_EXPECTED[:-1]}; a real date and time)", _show(text)) from None
    sec = (moment - _EPOCH_UTC) // timedelta(seconds=1)
    # Digits past nanoseconds cannot be represented: truncated, as message_to_dict truncates.
    nanosec = int((match["fraction"] or "0")[:9].ljust(9, "0"))
    if not _INT32_MIN <= sec <= _INT32_MAX:  # Time.sec is int32: 1901-12-13T20:45:52Z .. 2038-01-19T03:14:07Z
        raise FieldError(
            path, "a time from 1901-12-13T20:45:52Z to 2038-01-19T03:14:07Z (Time.sec is int32)", _show(text)
        )
    return sec, nanosec


def _fill_duration(value: Any, path: str, levels: int) -> Duration:
    if isinstance(value, Mapping):
        return _fill_sec_nanosec(Duration, value, path, levels)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FieldError(path, _DURATION_EXPECTED, _show(value))
    # A float via its shortest decimal text (what the JSON said): 0.1 s is exactly 100000000 ns.
    total = value * _NS_PER_S if isinstance(value, int) else round(Decimal(repr(value)) * _NS_PER_S)
    sec, nanosec = divmod(total, _NS_PER_S)  # floor: -0.5 s is sec=-1, nanosec=500000000, as in rclpy
    if not _INT32_MIN <= sec <= _INT32_MAX:
        raise FieldError(
            path, f"a duration in [{_INT32_MIN}, {_INT32_MAX + 1}) seconds (Duration.sec is int32)", _show(value)
        )
    return Duration(sec=sec, nanosec=nanosec)


def _fill_sec_nanosec(cls: type, value: Mapping[str, Any], path: str, levels: int) -> Any:
    """Time/Duration as a plain {sec, nanosec} object; nanosec must be below one second (its documented range)."""
    if levels <= 0:
        raise _DepthExceeded(path)
    msg = _fill(cls, _plan(cls), value, path, levels - 1)
    if msg.nanosec >= _NS_PER_S:
        raise FieldError(
            f"{path}.nanosec", f"uint32 (nanoseconds, an integer in [0, {_NS_PER_S - 1}])", _show(msg.nanosec)
        )
    return msg


# ---------------------------------------------------------------- arrays

_BYTE_LIKE = frozenset({"uint8", "octet"})


def _array_filler(owner: type, slot: AbstractNestedType) -> _Filler:
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
                raise FieldError(path, expected, f"text that is not base64: {_show(value)}") from None
            check_length(len(raw), path, f"{len(raw)} bytes of base64 data")
            if octet:  # rclpy holds octets as 1-byte bytes objects
                return [raw[index : index + 1] for index in range(len(raw))]
            return array.array("B", raw) if sequence else list(raw)
        if not isinstance(value, list | tuple):
            raise FieldError(path, expected, _show(value))
        check_length(len(value), path, f"a list of {len(value)} items")  # before the elements: fail fast
        return [element(item, f"{path}[{index}]", levels) for index, item in enumerate(value)]

    return fill


# ---------------------------------------------------------------- error text

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_SHOWN_CHARS = 40


def _key_path(path: str, key: Any) -> str:
    """Path of a (possibly hostile) key: 'params.name', or "params['two words']" when not a plain name."""
    if isinstance(key, str) and _NAME_RE.fullmatch(key):
        return f"{path}.{key}"
    return f"{path}[{_show_value(key)}]"


def _show(value: Any) -> str:
    """A short, one-line description of a received value: "'fast' (str)", '256 (int)', 'a list of 3 items'."""
    if value is None:
        return "null"
    if isinstance(value, list | tuple):
        return f"a list of {len(value)} items"
    if isinstance(value, Mapping):
        return "an object"
    return f"{_show_value(value)} ({type(value).__name__})"


def _show_value(value: Any) -> str:
    if isinstance(value, str):
        shown = repr(value[:_SHOWN_CHARS])  # repr escapes newlines: the message stays on one line
        return shown + "..." if len(value) > _SHOWN_CHARS else shown
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"an integer of {value.bit_length()} bits"  # str() of a huge int is slow (and limited)
    if isinstance(value, bool | int | float | bytes):
        return repr(value)[:_SHOWN_CHARS]
    return f"a {type(value).__name__}"
