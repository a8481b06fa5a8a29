"""Go's encoding/json and time.Time semantics, as far as the v0.1 server's decoders depend on them.

The real server decodes telemetry into Go structs (Constellation-Overwatch/constellation-overwatch
pkg/shared/types.go ``MAVLinkTelemetry``, pkg/protocol/telemetry.go ``TelemetryEnvelope``) and
keeps entity state as ``shared.EntityState`` JSON. What a client may send therefore follows Go:

- object keys match struct fields case-insensitively (the exact spelling wins); ``null`` leaves a
  field at its zero value; a JSON number for an integer field must be an integer literal in range
  (``33.0`` and ``1e2`` are type errors); numbers in ``map[string]any`` become float64;
- ``time.Time`` takes an RFC 3339 string only: a timestamp without a zone is a decode error;
- ``NaN`` / ``Infinity`` are not JSON; trailing data after the value is an error.
"""

from __future__ import annotations

import calendar
import json
import math
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any


class GoJSONError(ValueError):
    """What encoding/json (or time.Time) would refuse; the message reads like Go's."""


class IntLiteral(int):
    """A JSON number written without fraction or exponent."""


class FloatLiteral(float):
    """A JSON number written with a fraction or an exponent."""


def _float_literal(text: str) -> FloatLiteral:
    value = float(text)
    if math.isinf(value):
        raise GoJSONError(f"json: cannot unmarshal number {text} into Go value of type float64")
    return FloatLiteral(value)


def _no_constant(name: str) -> Any:
    raise GoJSONError(f"invalid character '{name[0]}' looking for beginning of value")


def loads(raw: bytes | str) -> Any:
    """Parse JSON keeping whether each number was an integer literal (IntLiteral / FloatLiteral)."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    try:
        return json.loads(text, parse_int=IntLiteral, parse_float=_float_literal, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise GoJSONError(f"invalid JSON: {exc.msg} at offset {exc.pos}") from None


def go_value(value: Any, where: str = "") -> Any:
    """A decoded JSON value as Go's ``any`` holds it: every number a float64."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:
            raise GoJSONError(f"json: cannot unmarshal number into Go value of type float64{where}") from None
    if isinstance(value, list):
        return [go_value(item, where) for item in value]
    if isinstance(value, dict):
        return {str(k): go_value(v, where) for k, v in value.items()}
    raise GoJSONError(f"unexpected JSON value {value!r}")


def match_fields(obj: dict[str, Any], fields: list[str], *, strict: bool, struct: str) -> dict[str, Any]:
    """Map JSON keys onto Go struct field names: exact match first, else case-insensitive (Go).

    ``strict``: DisallowUnknownFields. Later keys overwrite earlier ones, as in Go.
    """
    lower = {name.lower(): name for name in fields}
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = key if key in fields else lower.get(key.lower())
        if name is None:
            if strict:
                raise GoJSONError(f'json: unknown field "{key}"')
            continue
        out[name] = value
    return out


def type_error(value: Any, go_type: str, field: str, struct: str) -> GoJSONError:
    kind = _json_kind(value)
    return GoJSONError(f"json: cannot unmarshal {kind} into Go struct field {struct}.{field} of type {go_type}")


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return f"number {value}"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def unsigned(value: Any, bits: int, field: str, struct: str) -> int | None:
    """A Go uintN field: an integer literal in range, or None for null."""
    if value is None:
        return None
    if not isinstance(value, IntLiteral) or value < 0 or value >= 1 << bits:
        raise type_error(value, f"uint{bits}", field, struct)
    return int(value)


def string(value: Any, field: str, struct: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise type_error(value, "string", field, struct)
    return value


def string_map(value: Any, field: str, struct: str) -> dict[str, Any] | None:
    """A Go ``map[string]any`` field (null leaves it nil)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise type_error(value, "map[string]interface {}", field, struct)
    converted: dict[str, Any] = go_value(value)
    return converted


# -- time.Time -----------------------------------------------------------------------------------

_RFC3339 = re.compile(
    r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})T(?P<h>\d{2}):(?P<mi>\d{2}):(?P<s>\d{2})"
    r"(?:\.(?P<frac>\d{1,9}))?(?P<zone>Z|(?P<sign>[+-])(?P<oh>\d{2}):(?P<om>\d{2}))"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class GoTime:
    """A time.Time: nanoseconds since the epoch plus the zone offset it was written with."""

    ns: int
    offset_s: int = 0

    @classmethod
    def parse(cls, text: str) -> GoTime:
        """time.Time.UnmarshalJSON's strict RFC 3339: a zone is required."""
        found = _RFC3339.fullmatch(text)
        if found is None:
            raise GoJSONError(f'parsing time "{text}" as "2006-01-02T15:04:05Z07:00": not RFC 3339 (zone required)')
        offset = 0
        if found["sign"]:
            oh, om = int(found["oh"]), int(found["om"])
            if oh > 23 or om > 59:
                raise GoJSONError(f'parsing time "{text}": time zone offset out of range')
            offset = (oh * 3600 + om * 60) * (-1 if found["sign"] == "-" else 1)
        try:
            local = datetime(
                int(found["y"]), int(found["mo"]), int(found["d"]), int(found["h"]), int(found["mi"]), int(found["s"])
            )
        except ValueError as exc:
            raise GoJSONError(f'parsing time "{text}": {exc}') from None
        seconds = calendar.timegm(local.timetuple()) - offset
        frac = int((found["frac"] or "0").ljust(9, "0"))
        return cls(seconds * 1_000_000_000 + frac, offset)

    @classmethod
    def now(cls) -> GoTime:
        return cls(time.time_ns(), 0)

    @classmethod
    def zero(cls) -> GoTime:
        return cls(_ZERO_NS, 0)

    def is_zero(self) -> bool:
        return self.ns == _ZERO_NS

    def after(self, other: GoTime) -> bool:
        return self.ns > other.ns

    def format(self) -> str:
        """RFC3339Nano, as Go marshals a time.Time (zero offset written as Z)."""
        seconds, frac = divmod(self.ns + self.offset_s * 1_000_000_000, 1_000_000_000)
        stamp = _EPOCH + timedelta(seconds=seconds)
        text = (
            f"{stamp.year:04d}-{stamp.month:02d}-{stamp.day:02d}T{stamp.hour:02d}:{stamp.minute:02d}:{stamp.second:02d}"
        )
        if frac:
            text += "." + f"{frac:09d}".rstrip("0")
        if self.offset_s == 0:
            return text + "Z"
        sign = "-" if self.offset_s < 0 else "+"
        hours, minutes = divmod(abs(self.offset_s) // 60, 60)
        return f"{text}{sign}{hours:02d}:{minutes:02d}"


_ZERO_NS = (calendar.timegm((1, 1, 1, 0, 0, 0, 0, 0, 0))) * 1_000_000_000


def later(a: GoTime, b: GoTime) -> GoTime:
    """pkg/services/workers/event.go laterTime."""
    return b if b.after(a) else a


def time_field(value: Any, field: str, struct: str) -> GoTime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise type_error(value, "time.Time", field, struct)
    return GoTime.parse(value)
