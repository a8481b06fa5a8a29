"""Telemetry wire encoders (alien.telemetry.encoders): everything around the values, no NATS.

Timestamps that increase per message type (docs/contract.md#telemetry-envelope-v1) and keep a
reading's own time (docs/library.md#batches-of-readings), the envelope's exact keys and ids, what
goes to the leftover, the seed format, HEARTBEATs and make_encoder's checks
(docs/contract.md#telemetry-payloads).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from encoders_support import (
    ENVELOPE_KEYS,
    FROZEN,
    IDS,
    IDS_PAIR,
    MAVLINK_KEYS,
    POWER_TYPES,
    UID,
    body,
    encoder,
    instant,
    position,
    power,
)

from alien.delivery.outbox import Lane, Outbox, OutgoingMessage
from alien.rate_limits import TelemetryLimiter
from alien.settings import TelemetrySettings
from alien.telemetry.composer import Composer
from alien.telemetry.encoders import SCHEMA_VERSION, EncoderIds, TelemetryFormat, make_encoder
from alien.telemetry.readings import encode_telemetry
from alien.telemetry.wire_format import WireFormat
from alien.wire import utc_timestamp

# ---------------------------------------------------------------- timestamps


@pytest.mark.parametrize("fmt", ["mavlink", "envelope_v1"])
def test_timestamps_strictly_increase_per_message_type(fmt: TelemetryFormat) -> None:
    coder = encoder(fmt)
    stamps = [body(coder.encode(position(), IDS).messages[0])["timestamp"] for _ in range(3)]
    assert stamps == ["2026-07-21T20:00:00.000000Z", "2026-07-21T20:00:00.000001Z", "2026-07-21T20:00:00.000002Z"]
    # other types keep their own sequence: both power messages of one reading start at the clock
    power_stamps = {m.message_type: body(m)["timestamp"] for m in coder.encode(power(), IDS).messages}
    assert power_stamps == {"SYS_STATUS": stamps[0], "BATTERY_STATUS": stamps[0]}
    heartbeat = coder.heartbeat(None, None, IDS)
    assert heartbeat is not None and body(heartbeat)["timestamp"] == stamps[0]


def test_clock_going_backwards_is_bumped_past_the_last_and_forward_is_kept() -> None:
    readings = iter([FROZEN, FROZEN - timedelta(seconds=5), FROZEN + timedelta(seconds=1)])
    coder = encoder(clock=lambda: next(readings))
    stamps = [instant(body(coder.encode(position(), IDS).messages[0])["timestamp"]) for _ in range(3)]
    assert stamps == [FROZEN, FROZEN + timedelta(microseconds=1), FROZEN + timedelta(seconds=1)]


@pytest.mark.parametrize("fmt", ["seed", "mavlink", "envelope_v1"])
def test_a_readings_own_time_is_kept_and_the_clocks_stay_after_it(fmt: TelemetryFormat) -> None:
    """docs/library.md#batches-of-readings: an earlier (replayed) time is sent as it is, never moved."""
    coder = encoder(fmt)

    def stamp(at: datetime | None = None, own_time: bool = False) -> datetime:
        return instant(body(coder.encode(position(), IDS, at=at, own_time=own_time).messages[0])["timestamp"])

    assert stamp() == FROZEN
    earlier, later = FROZEN - timedelta(hours=3), FROZEN + timedelta(seconds=5)
    assert [stamp(earlier, own_time=True) for _ in range(2)] == [earlier, earlier]  # as given, twice
    if fmt == "seed":
        return  # the seed format keeps no order per type: every time is the clock's or the reading's
    assert stamp() == FROZEN + timedelta(microseconds=1)  # the clock's still after the last of its type
    assert stamp(later, own_time=True) == later
    assert stamp() == later + timedelta(microseconds=1)  # never before a reading already sent


def test_timestamps_are_utc_with_a_zone() -> None:
    local = datetime(2026, 7, 21, 22, 0, tzinfo=timezone(timedelta(hours=2)))
    (message,) = encoder(clock=lambda: local).encode(position(), IDS).messages
    assert body(message)["timestamp"] == "2026-07-21T20:00:00.000000Z"
    with pytest.raises(ValueError, match="naive"):
        encoder(clock=lambda: datetime(2026, 7, 21, 20, 0)).encode(position(), IDS)


# ---------------------------------------------------------------- envelope shape and ids


@pytest.mark.parametrize(("source", "keys"), [("GC35-E4B", ENVELOPE_KEYS), (None, ENVELOPE_KEYS - {"source"})])
def test_envelope_has_exactly_the_schema_keys(source: str | None, keys: set[str]) -> None:
    coder = encoder(source=source)
    messages = [*coder.encode({**position(), **power(), "extra": 1}, IDS).messages, coder.heartbeat(None, None, IDS)]
    assert [m.message_type for m in messages if m] == ["GLOBAL_POSITION_INT", *POWER_TYPES, "HEARTBEAT"]
    for message in messages:
        assert message is not None
        got = body(message)
        assert set(got) == keys
        assert got["schema_version"] == SCHEMA_VERSION == "1.0.0"
        assert (got["org_id"], got["entity_id"]) == (IDS.org_id, IDS.entity_id)
        assert got["message_uid"] == message.msg_id and UID.fullmatch(message.msg_id)
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", got["message_type"])  # the strict server's pattern
    assert len({m.msg_id for m in messages if m}) == 4


def test_mavlink_format_has_exactly_the_v011_keys() -> None:
    coder = encoder("mavlink", source="ignored-here", system_id=7, component_id=191)
    for message in coder.encode({**position(), **power()}, IDS).messages:
        got = body(message)
        assert set(got) == MAVLINK_KEYS
        assert (got["system_id"], got["component_id"]) == (7, 191)
        assert UID.fullmatch(message.msg_id)


async def test_placeholders_of_an_earlier_version_pass_through_and_fill_the_envelope_once_registered() -> None:
    """An outbox an earlier version left on disk may hold messages queued with placeholder ids."""
    ids = EncoderIds("@org_id@", "@entity_id@")
    (message,) = encoder().encode(position(), ids).messages
    assert (body(message)["org_id"], body(message)["entity_id"]) == ("@org_id@", "@entity_id@")
    (seed,) = encoder("seed").encode({"a": 1}, ids).messages
    assert body(seed)["entity_id"] == "@entity_id@"
    outbox = Outbox(10)
    for queued in (message, seed):
        subject = "constellation.telemetry.@org_id@.@entity_id@"
        outbox.put(OutgoingMessage(queued.msg_id, subject, queued.payload, Lane.TELEMETRY))
    wire_format = WireFormat(TelemetrySettings(telemetry_format="envelope_v1"), lambda: None)
    Composer(outbox, wire_format, lambda: IDS_PAIR, TelemetryLimiter(0, 0, 0, 0)).resolve()
    filled, filled_seed = await outbox.take(10)
    assert filled.subject == f"constellation.telemetry.{IDS.org_id}.{IDS.entity_id}"
    assert (json.loads(filled.payload)["org_id"], json.loads(filled.payload)["entity_id"]) == IDS_PAIR
    assert json.loads(filled_seed.payload)["entity_id"] == IDS.entity_id and filled.msg_id == message.msg_id


def test_a_reading_encoded_later_keeps_its_time_and_id() -> None:
    at = FROZEN - timedelta(minutes=5)
    for fmt in ("seed", "mavlink", "envelope_v1"):
        first, *rest = encoder(fmt).encode({**position(), **power()}, IDS, at=at, first_id="kept-id").messages
        assert first.msg_id == "kept-id" and all(m.msg_id != "kept-id" for m in rest)
        assert datetime.fromisoformat(body(first)["timestamp"]) == at


# ---------------------------------------------------------------- leftover


@pytest.mark.parametrize(
    ("data", "types", "leftover"),
    [
        ({"mission": "survey", "health": {"level": "OK"}}, [], {"mission": "survey", "health": {"level": "OK"}}),
        (
            {**position(fix="FIX", stamp="x", services=["GPS"]), "health": {"level": "WARN"}},
            ["GLOBAL_POSITION_INT"],
            {"health": {"level": "WARN"}},
        ),
        (
            position(fix="FIX", covariance_type="KNOWN", covariance_diagonal=[1, 1, 4], frame_id="gps"),
            ["GLOBAL_POSITION_INT"],
            None,
        ),
        (position(speed_over_ground=3.2), ["GLOBAL_POSITION_INT"], {"position": {"speed_over_ground": 3.2}}),
        (power(), POWER_TYPES, None),  # the ROS bridge's descriptive keys: dropped
        (power(cycle_count=12), POWER_TYPES, {"power": {"cycle_count": 12}}),
        ({"battery_level": 50, "speed": 3}, POWER_TYPES, {"speed": 3}),
        ({"power": {"cycle_count": 12}}, [], {"power": {"cycle_count": 12}}),  # nothing known: no message
        ({}, [], None),
    ],
)
def test_free_form_data_goes_to_leftover(data: dict[str, Any], types: list[str], leftover: Any) -> None:
    encoded = encoder().encode(data, IDS)
    assert [m.message_type for m in encoded.messages] == types
    assert encoded.leftover == leftover


# ---------------------------------------------------------------- seed


def test_seed_is_byte_compatible_with_encode_telemetry() -> None:
    data = {"battery_level": 150, "position": {"latitude": 1.0, "longitude": 2.0}, "x": [1, 2]}
    encoded = encoder("seed").encode(data, IDS)
    (message,) = encoded.messages
    assert message.payload == encode_telemetry(IDS.entity_id, data, utc_timestamp(FROZEN))
    assert message.message_type == "seed" and UID.fullmatch(message.msg_id)
    assert encoded.leftover is None  # the seed shape carries anything, unvalidated
    assert encoder("seed").heartbeat("active", "OK", IDS) is None


def test_seed_without_a_clock_stamps_now() -> None:
    (message,) = make_encoder("seed", entity_type="sensor_platform").encode({"a": 1}, IDS).messages
    got = body(message)
    assert abs(instant(got.pop("timestamp")) - datetime.now(timezone.utc)) < timedelta(seconds=5)
    assert got == {"entity_id": IDS.entity_id, "data": {"a": 1}}


@pytest.mark.parametrize("fmt", ["seed", "mavlink", "envelope_v1"])
def test_data_must_be_a_dict(fmt: TelemetryFormat) -> None:
    with pytest.raises(TypeError, match="must be a dict"):
        encoder(fmt).encode([("latitude", 1.0)], IDS)  # type: ignore[arg-type]


# ---------------------------------------------------------------- heartbeat


@pytest.mark.parametrize(
    ("entity_type", "mav_type"),
    [
        ("aircraft_multirotor", 2),
        ("aircraft_fixed_wing", 1),
        ("aircraft_vtol", 22),
        ("aircraft_helicopter", 4),
        ("aircraft_airship", 7),
        ("ground_vehicle_wheeled", 10),
        ("ground_vehicle_tracked", 10),
        ("surface_vessel_usv", 11),
        ("underwater_vehicle", 12),
        ("operator_station", 6),
        ("sensor_platform", 0),
        ("payload_system", 0),
    ],
)
def test_heartbeat_mav_type(entity_type: str, mav_type: int) -> None:
    message = encoder(entity_type=entity_type).heartbeat("active", None, IDS)
    assert message is not None and message.message_type == "HEARTBEAT"
    got = body(message)
    assert got["message_id"] == 0
    assert got["data"] == {"type": mav_type, "autopilot": 8, "base_mode": 0, "system_status": 4, "mavlink_version": 3}


@pytest.mark.parametrize(
    ("status", "health", "mav_state"),
    [
        (None, None, 0),
        ("unknown", "OK", 0),
        ("something-new", None, 0),
        ("pending", None, 1),
        ("maintenance", "WARN", 2),
        ("inactive", None, 3),
        ("idle", "OK", 3),
        ("active", None, 4),
        ("Active", "WARN", 4),
        ("active", "ERROR", 5),
        ("inactive", "STALE", 5),
        (None, "error", 5),
        ("error", None, 5),
        ("emergency", "ERROR", 6),
        ("shutdown", "STALE", 7),
    ],
)
def test_heartbeat_system_status(status: str | None, health: str | None, mav_state: int) -> None:
    message = encoder("mavlink").heartbeat(status, health, IDS)
    assert message is not None
    assert body(message)["data"]["system_status"] == mav_state


# ---------------------------------------------------------------- make_encoder


@pytest.mark.parametrize("fmt", ["seed", "mavlink", "envelope_v1"])
def test_make_encoder_format(fmt: TelemetryFormat) -> None:
    assert encoder(fmt).format == fmt


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"fmt": "protobuf"}, "telemetry format 'protobuf' is not one of seed, mavlink, envelope_v1"),
        ({"system_id": 256}, "system_id 256 is outside 0..255"),
        ({"component_id": -1}, "component_id -1 is outside 0..255"),
    ],
)
def test_make_encoder_rejects(options: dict[str, Any], message: str) -> None:
    fmt = options.pop("fmt", "envelope_v1")
    with pytest.raises(ValueError, match=re.escape(message)):
        make_encoder(fmt, entity_type="aircraft_multirotor", **options)
