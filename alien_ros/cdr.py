"""The bridge's three input types read straight from their serialized bytes (CDR), without rclpy's message objects.

A raw subscription (`raw=True`) hands its callback the bytes DDS delivered: rclpy builds no Python
message, which is most of what a message costs it (docs/performance.md#the-bridges-ros-path). The
layouts of NavSatFix, BatteryState and DiagnosticArray are fixed by their definitions, so a few
`struct` reads give every field. What this returns carries the same attribute names as the ROS
message (`msg.header.stamp.sec`, `msg.status.service`, ...), so `alien_ros.conversions` reads
either. Bytes in an encapsulation other than plain CDR, or that end early, raise `CdrError`: the
caller then lets rclpy deserialize them (`rclpy.serialization.deserialize_message`).

Plain little-endian CDR (XCDR1), as rmw_fastrtps writes it: a 4-byte encapsulation header
(0x0001), then the fields in order, each aligned to its own size counted from the end of the
header; a string is a uint32 length (its NUL included), its UTF-8 bytes and a NUL; a sequence a
uint32 count and its elements; a fixed array only its elements. Big-endian CDR (0x0000) and the
other encapsulations are left to rclpy.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

__all__ = [
    "Battery",
    "CdrError",
    "Diagnostics",
    "Fix",
    "FixStatus",
    "Header",
    "KeyValuePair",
    "Stamp",
    "Status",
    "decode_battery",
    "decode_diagnostics",
    "decode_fix",
]


class CdrError(ValueError):
    """Bytes this decoder does not read: another encapsulation, or a message that ends early."""


class Stamp(NamedTuple):
    sec: int
    nanosec: int


class Header(NamedTuple):
    stamp: Stamp
    frame_id: str


class FixStatus(NamedTuple):
    status: int
    service: int


class Fix(NamedTuple):
    """sensor_msgs/msg/NavSatFix."""

    header: Header
    status: FixStatus
    latitude: float
    longitude: float
    altitude: float
    position_covariance: tuple[float, ...]
    position_covariance_type: int


class Battery(NamedTuple):
    """sensor_msgs/msg/BatteryState."""

    header: Header
    voltage: float
    temperature: float
    current: float
    charge: float
    capacity: float
    design_capacity: float
    percentage: float
    power_supply_status: int
    power_supply_health: int
    power_supply_technology: int
    present: bool
    cell_voltage: tuple[float, ...]
    cell_temperature: tuple[float, ...]
    location: str
    serial_number: str


class KeyValuePair(NamedTuple):
    key: str
    value: str


class Status(NamedTuple):
    """diagnostic_msgs/msg/DiagnosticStatus (`level` an int, where rclpy gives a 1-byte bytes)."""

    level: int
    name: str
    message: str
    hardware_id: str
    values: list[KeyValuePair]


class Diagnostics(NamedTuple):
    """diagnostic_msgs/msg/DiagnosticArray."""

    header: Header
    status: list[Status]


_STAMP = struct.Struct("<iI")  # header.stamp: sec, nanosec
_UINT32 = struct.Struct("<I")
_INT8 = struct.Struct("<b")
_UINT16 = struct.Struct("<H")
_FIX = struct.Struct("<12dB")  # latitude, longitude, altitude, covariance[9], its type
_BATTERY = struct.Struct("<7f3B?")  # seven float32, three uint8, present
_CDR_LE = b"\x00\x01"
_START = 4  # the encapsulation header; alignment counts from its end


def _check_encapsulation(data: bytes) -> None:
    if data[:2] != _CDR_LE:
        raise CdrError(f"encapsulation {data[:2].hex() or 'missing'} is not little-endian plain CDR")


def _aligned(offset: int, size: int) -> int:
    return _START + ((offset - _START + size - 1) & -size)


def _header(data: bytes) -> tuple[Header, int]:
    """The header (after checking the encapsulation), and the offset after it."""
    _check_encapsulation(data)
    sec, nanosec = _STAMP.unpack_from(data, _START)
    (frame_id,), offset = _strings(data, _START + 8, 1)
    return Header(Stamp(sec, nanosec), frame_id), offset


def _count(data: bytes, offset: int) -> tuple[int, int]:
    """A sequence's element count at `offset` (aligned here), and the offset after it."""
    offset = _aligned(offset, 4)
    (count,) = _UINT32.unpack_from(data, offset)
    # every element takes at least 4 bytes: a count beyond that is garbage, not a reason to loop
    if offset + 4 + 4 * count > len(data):
        raise CdrError(f"a sequence of {count} elements at {offset} runs past the end ({len(data)} bytes)")
    return count, offset + 4


def _strings(data: bytes, offset: int, count: int) -> tuple[list[str], int]:
    """`count` strings one after the other from `offset`, and the offset after them (one call, not one per string)."""
    unpack, size, texts = _UINT32.unpack_from, len(data), []
    for _ in range(count):
        offset = (offset + 3) & -4  # 4-aligned from the data's start is 4-aligned in the buffer: it starts at 4
        (length,) = unpack(data, offset)
        offset += 4
        end = offset + length
        if end > size:
            raise CdrError(f"a string of {length} bytes at {offset} runs past the end ({size} bytes)")
        # the length counts the terminating NUL; an empty string may also be written with length 0
        texts.append(data[offset : end - 1].decode("utf-8", "replace") if length else "")
        offset = end
    return texts, offset


def _floats(data: bytes, offset: int) -> tuple[tuple[float, ...], int]:
    """A sequence<float32> at `offset`, and the offset after it."""
    count, offset = _count(data, offset)
    return struct.unpack_from(f"<{count}f", data, offset), offset + 4 * count


def decode_fix(data: bytes) -> Fix:
    """sensor_msgs/msg/NavSatFix from its CDR bytes; CdrError when they are not such bytes."""
    try:
        header, offset = _header(data)
        (status,) = _INT8.unpack_from(data, offset)
        service_at = _aligned(offset + 1, 2)
        (service,) = _UINT16.unpack_from(data, service_at)
        values = _FIX.unpack_from(data, _aligned(service_at + 2, 8))
    except struct.error as exc:
        raise CdrError(f"NavSatFix ends early ({len(data)} bytes): {exc}") from None
    return Fix(header, FixStatus(status, service), values[0], values[1], values[2], values[3:12], values[12])


def decode_battery(data: bytes) -> Battery:
    """sensor_msgs/msg/BatteryState from its CDR bytes; CdrError when they are not such bytes."""
    try:
        header, offset = _header(data)
        offset = _aligned(offset, 4)
        v = _BATTERY.unpack_from(data, offset)
        cell_voltage, offset = _floats(data, offset + _BATTERY.size)
        cell_temperature, offset = _floats(data, offset)
        (location, serial_number), _ = _strings(data, offset, 2)
    except struct.error as exc:
        raise CdrError(f"BatteryState ends early ({len(data)} bytes): {exc}") from None
    return Battery(
        header, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10],
        cell_voltage, cell_temperature, location, serial_number,
    )  # fmt: skip


def decode_diagnostics(data: bytes) -> Diagnostics:
    """diagnostic_msgs/msg/DiagnosticArray from its CDR bytes; CdrError when they are not such bytes."""
    try:
        header, offset = _header(data)
        count, offset = _count(data, offset)
        statuses = []
        for _ in range(count):
            level = data[offset]
            (name, message, hardware_id), offset = _strings(data, offset + 1, 3)
            pairs, offset = _count(data, offset)
            texts, offset = _strings(data, offset, 2 * pairs)
            values = [KeyValuePair(texts[i], texts[i + 1]) for i in range(0, 2 * pairs, 2)]
            statuses.append(Status(level, name, message, hardware_id, values))
    except (struct.error, IndexError) as exc:
        raise CdrError(f"DiagnosticArray ends early ({len(data)} bytes): {exc}") from None
    return Diagnostics(header, statuses)
