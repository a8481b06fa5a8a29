"""Telemetry wire encoders, one per server generation (docs/contract.md#telemetry-payloads).

- ``seed``: the seed API's ``{"entity_id", "timestamp", "data"}``; v0.0.1 accepts any JSON.
- ``mavlink``: v0.1.1's ``{message_type, message_id, system_id, component_id, data, timestamp}``,
  position as GPS_RAW_INT (v0.1.1's worker does not read GLOBAL_POSITION_INT).
- ``envelope_v1``: the strict release candidate's envelope; unknown fields are rejected there, so it
  carries exactly the schema's keys.

The MAVLink formats turn the semantic keys ``position``, ``power`` and ``battery_level`` into
MAVLink messages (alien.telemetry.mavlink); whatever they cannot carry is returned as ``leftover`` for the
client to send as an event. Unknown values are left out of ``data`` rather than sent as MAVLink's
binary "unknown" sentinels, which the newest server would store as readings (docs/contract.md#telemetry-envelope-v1, and
alien.telemetry.mavlink's docstring for the worker's field-by-field behaviour); a message with nothing
known is not sent. An encoder remembers the last timestamp per message type, so use one
per client and from one thread.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, Protocol, get_args

from alien.telemetry import mavlink
from alien.telemetry.mavlink import TelemetryEncodeError
from alien.telemetry.readings import encode_telemetry
from alien.wire import dumps, new_message_id, utc_timestamp

__all__ = [
    "SCHEMA_VERSION",
    "TELEMETRY_FORMATS",
    "Encoded",
    "EncoderIds",
    "EnvelopeV1Encoder",
    "MavlinkEncoder",
    "SeedEncoder",
    "TelemetryEncodeError",
    "TelemetryEncoder",
    "TelemetryFormat",
    "WireMessage",
    "make_encoder",
    "to_mavlink",
]

TelemetryFormat = Literal["seed", "mavlink", "envelope_v1"]
TELEMETRY_FORMATS: tuple[TelemetryFormat, ...] = get_args(TelemetryFormat)
SCHEMA_VERSION = "1.0.0"  # docs/contract.md#telemetry-envelope-v1: the strict server rejects any other
_TICK = timedelta(microseconds=1)  # the timestamps' resolution (alien.wire.utc_timestamp)
_POSITION_KNOWN = mavlink.POSITION_KEYS | mavlink.POSITION_DESCRIPTIVE
_POWER_KNOWN = mavlink.POWER_KEYS | mavlink.POWER_DESCRIPTIVE


@dataclass(frozen=True)
class WireMessage:
    msg_id: str  # the message's id for its whole life (Nats-Msg-Id); envelope_v1's message_uid
    payload: bytes
    message_type: str  # e.g. "GLOBAL_POSITION_INT"; "seed" for the seed format


@dataclass(frozen=True)
class Encoded:
    messages: list[WireMessage]
    leftover: dict[str, Any] | None  # data this format cannot carry; the client sends it as an event


@dataclass
class EncoderIds:
    """The registered ids: a message is encoded only once they are known (alien.telemetry.composer)."""

    org_id: str
    entity_id: str


class TelemetryEncoder(Protocol):
    format: TelemetryFormat

    def encode(
        self,
        data: dict[str, Any],
        ids: EncoderIds,
        *,
        at: datetime | None = None,
        first_id: str | None = None,
        own_time: bool = False,
    ) -> Encoded:
        """`at`: when it was read (default: now); `first_id`: the first message's id (default: a new one).

        `own_time`: `at` is the reading's own timestamp (e.g. logged offline): sent exactly as it is.
        """
        ...

    def heartbeat(self, status: str | None, health_level: str | None, ids: EncoderIds) -> WireMessage | None: ...


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _check_data(data: Any) -> None:
    if not isinstance(data, dict):
        raise TypeError(f"telemetry data must be a dict, got {type(data).__name__}")


def _section(data: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    value = data.get(key)
    if value is not None and not isinstance(value, Mapping):
        raise TelemetryEncodeError(f"{key} {value!r:.80} must be a mapping")
    return value


def _extra(section: Mapping[str, Any], known: frozenset[str]) -> dict[str, Any]:
    return {key: value for key, value in section.items() if key not in known}


def to_mavlink(
    data: Mapping[str, Any], position_message: str = "GLOBAL_POSITION_INT"
) -> tuple[list[mavlink.Message], dict[str, Any] | None]:
    """Semantic telemetry -> (MAVLink messages, leftover or None); raises before any wire message exists.

    Recognized: ``position`` -> `position_message`: GPS_RAW_INT (what v0.1.1 reads; the ``mavlink``
    format) or GLOBAL_POSITION_INT (the newest servers; ``envelope_v1``); ``power`` and/or
    ``battery_level`` (the seed API's flat percentage, used when power has none) ->
    SYS_STATUS then BATTERY_STATUS (that order leaves the newest server's map with the current in A:
    mavlink.power_messages), each only when it has a known value. Unknown keys, also unknown keys
    inside position/power, are leftover; the ROS bridge's descriptive keys
    (mavlink.POSITION_DESCRIPTIVE / POWER_DESCRIPTIVE) are dropped.
    """
    messages: list[mavlink.Message] = []
    leftover = {key: value for key, value in data.items() if key not in ("position", "power", "battery_level")}
    position = _section(data, "position")
    if position is not None:
        build = mavlink.gps_raw_int if position_message == "GPS_RAW_INT" else mavlink.global_position_int
        messages.append(build(position))
        extra = _extra(position, _POSITION_KNOWN)
        if extra:
            leftover["position"] = extra
    power = _section(data, "power")
    level = data.get("battery_level")
    if power is not None or level is not None:
        power = power or {}
        percentage, field = power.get("percentage"), "power.percentage"
        if mavlink.number(field, percentage) is None and level is not None:
            percentage, field = level, "battery_level"
        messages.extend(mavlink.power_messages(power, percentage, field))
        extra = _extra(power, _POWER_KNOWN)
        if extra:
            leftover["power"] = extra
    return messages, (leftover or None)


class SeedEncoder:
    """The seed shape, byte for byte alien.telemetry.readings.encode_telemetry (docs/contract.md#seed-telemetry)."""

    format: TelemetryFormat = "seed"

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self._clock = clock

    def encode(
        self,
        data: dict[str, Any],
        ids: EncoderIds,
        *,
        at: datetime | None = None,
        first_id: str | None = None,
        own_time: bool = False,
    ) -> Encoded:
        moment = at or (self._clock() if self._clock is not None else None)
        payload = encode_telemetry(ids.entity_id, data, utc_timestamp(moment) if moment is not None else None)
        return Encoded([WireMessage(first_id or new_message_id(), payload, "seed")], None)

    def heartbeat(self, status: str | None, health_level: str | None, ids: EncoderIds) -> WireMessage | None:
        return None  # v0.0.1 has no heartbeat


class _MavlinkEncoder:
    format: TelemetryFormat

    def __init__(self, *, entity_type: str, system_id: int, component_id: int, clock: Callable[[], datetime]) -> None:
        self.entity_type = entity_type
        self.system_id = system_id
        self.component_id = component_id
        self._clock = clock
        self._last: dict[str, datetime] = {}

    position_message = "GLOBAL_POSITION_INT"

    def encode(
        self,
        data: dict[str, Any],
        ids: EncoderIds,
        *,
        at: datetime | None = None,
        first_id: str | None = None,
        own_time: bool = False,
    ) -> Encoded:
        _check_data(data)
        messages, leftover = to_mavlink(data, self.position_message)
        wire = [
            self._wire(m, ids, self._timestamp(m.message_type, at, own_time), (i == 0 and first_id) or new_message_id())
            for i, m in enumerate(messages)
        ]
        return Encoded(wire, leftover)

    def heartbeat(self, status: str | None, health_level: str | None, ids: EncoderIds) -> WireMessage | None:
        message = mavlink.heartbeat(self.entity_type, status, health_level)
        return self._wire(message, ids, self._timestamp(message.message_type), new_message_id())

    def _timestamp(self, message_type: str, at: datetime | None = None, own_time: bool = False) -> str:
        """The clock's time, bumped 1 µs past the last one of `message_type` when not later.

        The strict server ignores a message whose timestamp is not after the last one of its type
        (docs/contract.md#telemetry-envelope-v1); two readings within one clock tick must both count.
        A reading's own time (`own_time`) is kept as it is, even when earlier: it says when it
        was read; it still moves the clock's readings of this type past it.
        """
        moment = at or self._clock()
        if moment.tzinfo is None:
            raise ValueError("the encoder's clock returned a naive datetime; timestamps need a zone")
        if moment.tzinfo is not timezone.utc:
            moment = moment.astimezone(timezone.utc)
        last = self._last.get(message_type)
        if own_time:
            self._last[message_type] = moment if last is None else max(last, moment)
            return utc_timestamp(moment)
        if last is not None and moment <= last:
            moment = last + _TICK
        self._last[message_type] = moment
        return utc_timestamp(moment)

    def _wire(self, message: mavlink.Message, ids: EncoderIds, timestamp: str, msg_id: str) -> WireMessage:
        return WireMessage(msg_id, dumps(self._body(message, msg_id, ids, timestamp)), message.message_type)

    def _body(self, message: mavlink.Message, msg_id: str, ids: EncoderIds, timestamp: str) -> dict[str, Any]:
        # docs/contract.md#mavlink-style-telemetry: timestamp RFC 3339 with a zone; free-form keys would be ignored
        return {
            "message_type": message.message_type,
            "message_id": message.message_id,
            "system_id": self.system_id,
            "component_id": self.component_id,
            "data": message.data,
            "timestamp": timestamp,
        }


class MavlinkEncoder(_MavlinkEncoder):
    format: TelemetryFormat = "mavlink"
    # v0.1.1's worker has no GLOBAL_POSITION_INT (docs/contract.md#mavlink-style-telemetry)
    position_message = "GPS_RAW_INT"


class EnvelopeV1Encoder(_MavlinkEncoder):
    format: TelemetryFormat = "envelope_v1"

    def __init__(
        self,
        *,
        entity_type: str,
        system_id: int,
        component_id: int,
        clock: Callable[[], datetime],
        source: str | None,
    ) -> None:
        super().__init__(entity_type=entity_type, system_id=system_id, component_id=component_id, clock=clock)
        self.source = source

    def _body(self, message: mavlink.Message, msg_id: str, ids: EncoderIds, timestamp: str) -> dict[str, Any]:
        # docs/contract.md#telemetry-envelope-v1: exactly the schema's keys (unknown ones are
        # rejected); message_uid is the Nats-Msg-Id so a replay is recognisably the same message;
        # ids repeat the subject's.
        body: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "message_uid": msg_id,
            "org_id": ids.org_id,
            "entity_id": ids.entity_id,
        }
        if self.source:  # optional in the schema; an empty one would say nothing
            body["source"] = self.source
        return body | super()._body(message, msg_id, ids, timestamp)


def make_encoder(
    fmt: TelemetryFormat,
    *,
    entity_type: str,
    system_id: int = 1,
    component_id: int = 1,
    source: str | None = None,
    clock: Callable[[], datetime] | None = None,
) -> TelemetryEncoder:
    """The encoder for `fmt`; `clock` (default: now, UTC) must return zone-aware datetimes."""
    for name, value in (("system_id", system_id), ("component_id", component_id)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
            raise ValueError(f"{name} {value!r} is outside 0..255 (a MAVLink uint8)")
    if fmt == "seed":
        return SeedEncoder(clock)
    now = clock or _utc_now
    if fmt == "mavlink":
        return MavlinkEncoder(entity_type=entity_type, system_id=system_id, component_id=component_id, clock=now)
    if fmt == "envelope_v1":
        return EnvelopeV1Encoder(
            entity_type=entity_type, system_id=system_id, component_id=component_id, clock=now, source=source
        )
    raise ValueError(f"telemetry format {fmt!r} is not one of {', '.join(TELEMETRY_FORMATS)}")
