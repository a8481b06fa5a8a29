"""Checked fillers for ROS scalar fields: bool, integers, floats, IDL characters and strings.

The checks and what each type accepts are described in alien_ros.message_fill.
"""

from __future__ import annotations

import math
from typing import Any

from rosidl_parser.definition import AbstractString, AbstractWString

from alien_ros.field_errors import FieldError, Filler, show

# IDL names rosidl uses -> the names operators know from .msg files and `ros2 interface show`.
MSG_NAMES = {
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


def basic_filler(typename: str) -> Filler:
    name = MSG_NAMES.get(typename, typename)
    if name == "bool":
        return _fill_bool
    if name in INT_RANGES:
        return _int_filler(name)
    if name in ("float32", "float64", "long double"):
        return _float_filler(name)
    if name in ("char", "wchar"):  # IDL characters (not .msg 'char', which is uint8): one-character text
        return _char_filler(name)
    raise TypeError(f"unknown rosidl basic type {typename!r}")  # every name in rosidl's BASIC_TYPES is handled


def _fill_bool(value: Any, path: str, levels: int) -> bool:
    if not isinstance(value, bool):
        raise FieldError(path, "bool (true or false)", show(value))
    return value


INT_RANGES = {
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


def _int_filler(name: str) -> Filler:
    low, high = INT_RANGES[name]
    expected = f"{name} (an integer in [{low}, {high}])"
    octet = name == "byte"  # rclpy holds a 'byte' as a 1-byte bytes object; message_to_dict emits an int

    def fill(value: Any, path: str, levels: int) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise FieldError(path, expected, show(value))
        return bytes((value,)) if octet else int(value)

    return fill


# rosidl's own float32 bound (FLT_MAX as it writes it); larger finite values would become infinity.
_FLOAT32_MAX = 3.402823466e38


def _float_filler(name: str) -> Filler:
    float32 = name == "float32"
    expected = f"{name} (a number between -3.4028235e+38 and 3.4028235e+38)" if float32 else f"{name} (a number)"

    def fill(value: Any, path: str, levels: int) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FieldError(path, expected, show(value))
        try:
            number = float(value)
        except OverflowError:  # an integer beyond float64
            raise FieldError(path, expected, show(value)) from None
        # JSON cannot carry NaN or infinity, so a non-finite value is a caller bug, not a command.
        if not math.isfinite(number) or (float32 and abs(number) > _FLOAT32_MAX):
            raise FieldError(path, expected, show(value))
        return number

    return fill


def _char_filler(name: str) -> Filler:
    limit = 0x80 if name == "char" else 0x10000  # char goes out as one UTF-8 byte, wchar as one UTF-16 unit
    expected = f"{name} (a single {'ASCII ' if name == 'char' else ''}character)"

    def fill(value: Any, path: str, levels: int) -> str:
        if not isinstance(value, str) or len(value) != 1 or ord(value) >= limit:
            raise FieldError(path, expected, show(value))
        return value

    return fill


def string_filler(slot: AbstractString | AbstractWString, label: str) -> Filler:
    wide = isinstance(slot, AbstractWString)
    maximum: int | None = getattr(slot, "maximum_size", None)
    encoding = "utf-16-le" if wide else "utf-8"
    unit_size = 2 if wide else 1
    units = "UTF-16 units" if wide else "bytes of UTF-8"

    def fill(value: Any, path: str, levels: int) -> str:
        if not isinstance(value, str):
            raise FieldError(path, f"{label} (a string)", show(value))
        if "\x00" in value:  # the C type support copies up to the first NUL: the rest would vanish
            raise FieldError(path, f"{label} (text without NUL characters)", show(value))
        try:
            encoded = value.encode(encoding)
        except UnicodeEncodeError:  # lone surrogates ("\ud800" is valid JSON) cannot be sent
            raise FieldError(path, f"{label} (valid Unicode text)", show(value)) from None
        if maximum is not None and len(encoded) // unit_size > maximum:
            raise FieldError(path, f"{label} (at most {maximum} {units})", f"{len(encoded) // unit_size} {units}")
        return value

    return fill
