"""Telemetry wire encoders (alien.telemetry.encoders, alien.telemetry.mavlink): the values, no NATS.

Goldens under test/alien/golden/ are written from docs/contract.md#telemetry-payloads (the
envelope_v1 GLOBAL_POSITION_INT one is the page's own example envelope; GPS_RAW_INT's values by hand);
message_uid is checked against the WireMessage's msg_id and timestamps as instants, everything else
must match exactly. Then the units, the unknown values and the range errors: unknown values are left
out of `data`, never sent as MAVLink's binary sentinels (alien.telemetry.mavlink's docstring says
why); the emulator's model of the newest server's worker (alien_testing.emulator.telemetry_v01,
telemetry_projection) checks what the operator map makes of the result.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from encoders_support import (
    FROZEN,
    GOLDEN,
    IDS,
    POWER_TYPES,
    SENTINELS,
    body,
    encode_one,
    encoder,
    instant,
    position,
    power,
)

from alien.errors import AlienError
from alien.telemetry.encoders import TelemetryEncodeError, TelemetryFormat
from alien.telemetry.mavlink import round_half_away
from alien_testing.emulator.gojson import GoTime
from alien_testing.emulator.telemetry_projection import project
from alien_testing.emulator.telemetry_v01 import decode_envelope

# ---------------------------------------------------------------- goldens


@pytest.mark.parametrize(
    ("fmt", "data", "message_type", "golden"),
    [
        ("envelope_v1", position(fix="FIX", frame_id="gps"), "GLOBAL_POSITION_INT", "envelope_v1_global_position_int"),
        (
            "mavlink",
            position(fix="FIX", covariance_type="DIAGONAL_KNOWN", covariance_diagonal=[4.0, 2.25, 9.0]),
            "GPS_RAW_INT",
            "mavlink_gps_raw_int",
        ),
        ("envelope_v1", power(), "BATTERY_STATUS", "envelope_v1_battery_status"),
        ("envelope_v1", power(), "SYS_STATUS", "envelope_v1_sys_status"),
        ("envelope_v1", None, "HEARTBEAT", "envelope_v1_heartbeat"),
    ],
)
def test_payload_matches_golden(fmt: TelemetryFormat, data: Any, message_type: str, golden: str) -> None:
    coder = encoder(fmt, source="GC35-E4B")
    if data is None:
        heartbeat = coder.heartbeat("active", "OK", IDS)
        assert heartbeat is not None
        messages = [heartbeat]
    else:
        messages = [m for m in coder.encode(data, IDS).messages if m.message_type == message_type]
    assert len(messages) == 1
    got, want = body(messages[0]), json.loads((GOLDEN / f"{golden}.json").read_text())
    assert instant(got.pop("timestamp")) == instant(want.pop("timestamp")) == FROZEN
    if fmt == "envelope_v1":
        assert got.pop("message_uid") == messages[0].msg_id
        want.pop("message_uid")
    assert got == want
    assert messages[0].message_type == message_type


@pytest.mark.parametrize(
    ("changes", "expected"),
    [  # GPS_RAW_INT: every field sent, unknown ones as common.xml's "unknown" values
        ({"velocity": None, "heading": None}, {"vel": 65535, "cog": 65535, "yaw": 0, "eph": 65535, "epv": 65535}),
        ({"altitude": None}, {"alt": 0, "fix_type": 2}),  # no altitude: a 2D fix
        ({"fix": "SBAS_FIX"}, {"fix_type": 4}),
        ({"fix": "GBAS_FIX"}, {"fix_type": 4}),
        ({"fix": "UNKNOWN"}, {"fix_type": 3}),  # coordinates given: something fixed them
        ({"velocity": {"north": 0.0, "east": 0.0}}, {"vel": 0, "cog": 65535}),  # standing still: no course
        ({"velocity": {"north": 0.0, "east": 2.0}}, {"vel": 200, "cog": 9000}),
        ({"velocity": {"north": 700.0, "east": 0.0}}, {"vel": 65534, "cog": 0}),  # capped below "unknown"
        ({"heading": 0.0}, {"yaw": 36000}),  # north; 0 means "no yaw"
        ({"satellites": 12}, {"satellites_visible": 12}),
        ({"covariance_diagonal": [1.0, 1.0, None]}, {"eph": 100, "epv": 65535}),
    ],
)
def test_gps_raw_int_fields(changes: dict[str, Any], expected: dict[str, int]) -> None:
    data = encode_one(position(**changes), "GPS_RAW_INT", fmt="mavlink")
    assert {key: data[key] for key in expected} == expected
    assert set(data) == {"fix_type", "lat", "lon", "alt", "eph", "epv", "vel", "cog", "satellites_visible", "yaw"}


def test_mavlink_sends_no_global_position_int_and_envelope_v1_no_gps_raw_int() -> None:
    mavlink_types = [m.message_type for m in encoder("mavlink").encode(position(), IDS).messages]
    envelope_types = [m.message_type for m in encoder("envelope_v1").encode(position(), IDS).messages]
    assert (mavlink_types, envelope_types) == (["GPS_RAW_INT"], ["GLOBAL_POSITION_INT"])


@pytest.mark.parametrize("satellites", [-1, 255, 3.5, True])
def test_gps_raw_int_refuses_a_satellite_count_it_cannot_carry(satellites: Any) -> None:
    with pytest.raises(TelemetryEncodeError, match=r"position\.satellites"):
        encoder("mavlink").encode(position(satellites=satellites), IDS)


def test_contract_golden_round_trips_through_the_strict_worker() -> None:
    """The contract's example envelope: encoded from its semantic values, decoded back to them."""
    raw = (GOLDEN / "envelope_v1_global_position_int.json").read_bytes()
    (message,) = encoder(source="GC35-E4B").encode(position(), IDS).messages
    for payload in (raw, message.payload):
        envelope = decode_envelope(payload)
        assert envelope.data is not None and envelope.data["hdg"] == 9000
        state: dict[str, Any] = {}
        assert project(state, envelope.message_type, envelope.data, envelope.timestamp) == []
        assert {k: v for k, v in state["position"]["global"].items() if k != "timestamp"} == pytest.approx(
            {"latitude": 32.94881, "longitude": -96.80132, "altitude_msl": 152.4, "altitude_relative": 30.48}
        )
        local = {k: v for k, v in state["position"]["local"].items() if k != "timestamp"}
        assert local == pytest.approx({"vx": 1.23, "vy": -0.45, "vz": 0.06})


# ---------------------------------------------------------------- units


@pytest.mark.parametrize(
    ("data", "message_type", "field", "expected"),
    [
        (position(latitude=90.0), "GLOBAL_POSITION_INT", "lat", 900_000_000),  # degE7
        (position(longitude=-180.0), "GLOBAL_POSITION_INT", "lon", -1_800_000_000),
        (position(latitude=-33.8688197), "GLOBAL_POSITION_INT", "lat", -338_688_197),
        (position(altitude=-0.0005), "GLOBAL_POSITION_INT", "alt", -1),  # mm, half away from zero
        (position(altitude=8848.86), "GLOBAL_POSITION_INT", "alt", 8_848_860),
        (position(relative_altitude=0.0015), "GLOBAL_POSITION_INT", "relative_alt", 2),
        (position(heading=0.125), "GLOBAL_POSITION_INT", "hdg", 13),  # cdeg; Python round() gives 12
        (position(heading=-90.0), "GLOBAL_POSITION_INT", "hdg", 27000),  # normalised into 0..360 first
        (position(heading=360.0), "GLOBAL_POSITION_INT", "hdg", 0),
        (position(heading=720.5), "GLOBAL_POSITION_INT", "hdg", 50),
        (position(heading=359.994), "GLOBAL_POSITION_INT", "hdg", 35999),
        (position(heading=359.996), "GLOBAL_POSITION_INT", "hdg", 0),  # rounds to 360.00 == 0
        (position(velocity={"north": 0.125}), "GLOBAL_POSITION_INT", "vx", 13),  # cm/s
        (position(velocity={"east": -0.125}), "GLOBAL_POSITION_INT", "vy", -13),
        (position(velocity={"down": -327.67}), "GLOBAL_POSITION_INT", "vz", -32767),
        (power(voltage=16.8), "SYS_STATUS", "voltage_battery", 16800),  # mV
        (power(current=-12.5), "SYS_STATUS", "current_battery", 1250),  # ROS discharging -> positive cA
        (power(current=-12.5), "BATTERY_STATUS", "current_battery", 1250),
        (power(current=2.0), "BATTERY_STATUS", "current_battery", -200),  # charging -> negative
        (power(current=-0.125), "BATTERY_STATUS", "current_battery", 13),
        (power(current=0.01), "BATTERY_STATUS", "current_battery", 0),  # -1 would mean "not measured"
        (power(temperature=-40.0), "BATTERY_STATUS", "temperature", -4000),  # cdegC
        (power(temperature=327.66), "BATTERY_STATUS", "temperature", 32766),
        (power(percentage=99.5), "BATTERY_STATUS", "battery_remaining", 100),
        (power(percentage=0.0), "SYS_STATUS", "battery_remaining", 0),
        (power(technology="LION"), "BATTERY_STATUS", "type", 3),  # MAV_BATTERY_TYPE
        (power(technology="NICD"), "BATTERY_STATUS", "type", 0),
        ({"battery_level": 55.5}, "BATTERY_STATUS", "battery_remaining", 56),
        ({"battery_level": 40, "power": {"percentage": None}}, "SYS_STATUS", "battery_remaining", 40),
        ({"battery_level": 40, "power": {"percentage": 80}}, "SYS_STATUS", "battery_remaining", 80),
    ],
)
def test_units(data: dict[str, Any], message_type: str, field: str, expected: int) -> None:
    assert encode_one(data, message_type)[field] == expected


@pytest.mark.parametrize(
    ("power_data", "voltages", "voltage_battery"),
    [  # None: left out of the message; no UINT16_MAX padding for unused cells
        ({"cell_voltage": [3.7, 3.75, 3.8]}, [3700, 3750, 3800], 16660),
        ({"cell_voltage": [4.2] * 10}, [4200] * 10, 16660),
        ({"cell_voltage": [3.7, None, 3.8]}, [16660], 16660),  # a gap would shift cells: the pack
        ({"cell_voltage": [3.7, math.nan], "voltage": None}, None, None),
        ({"cell_voltage": [3.7, 3.8], "voltage": None}, [3700, 3800], None),
        ({"cell_voltage": []}, [16660], 16660),  # no cells: pack voltage in cell 0
        ({"cell_voltage": [math.nan, math.nan]}, [16660], 16660),
        ({"cell_voltage": [4.0] * 11}, [16660], 16660),  # more cells than the message holds
        ({"cell_voltage": None, "voltage": 65.534}, [65534], 65534),
        ({"cell_voltage": None, "voltage": 100.0}, [65534, 34466], None),  # split; SYS_STATUS can't
        ({"cell_voltage": None, "voltage": 131.068}, [65534, 65534], None),
        ({"cell_voltage": None, "voltage": 0.0}, [0], 0),
        ({"cell_voltage": None, "voltage": None}, None, None),
        ({"cell_voltage": None, "voltage": math.nan}, None, None),
    ],
)
def test_battery_voltages(power_data: dict[str, Any], voltages: list[int] | None, voltage_battery: int | None) -> None:
    data = power(**power_data)
    assert encode_one(data, "BATTERY_STATUS").get("voltages") == voltages
    assert encode_one(data, "SYS_STATUS").get("voltage_battery") == voltage_battery


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.5, 1), (-0.5, -1), (2.5, 3), (-2.5, -3), (1.4999999999999998, 1), (0.49999999999999994, 0), (-0.0, 0)],
)
def test_round_half_away_from_zero(value: float, expected: int) -> None:
    assert round_half_away(value) == expected


# ---------------------------------------------------------------- unknown values


@pytest.mark.parametrize(
    ("data", "message_type", "expected", "absent"),
    [
        (position(altitude=None, relative_altitude=math.nan), "GLOBAL_POSITION_INT", {}, {"alt", "relative_alt"}),
        (position(altitude=math.inf), "GLOBAL_POSITION_INT", {"relative_alt": 30480}, {"alt"}),
        (position(heading=None), "GLOBAL_POSITION_INT", {"lat": 329488100}, {"hdg"}),
        (position(heading=math.nan), "GLOBAL_POSITION_INT", {"vx": 123}, {"hdg"}),
        (position(velocity=None), "GLOBAL_POSITION_INT", {}, {"vx", "vy", "vz"}),
        (position(velocity={"north": math.nan, "east": 1.0}), "GLOBAL_POSITION_INT", {"vy": 100}, {"vx", "vz"}),
        (power(temperature=math.nan), "BATTERY_STATUS", {"current_battery": 1250}, {"temperature"}),
        (power(current=None), "BATTERY_STATUS", {"battery_remaining": 87}, {"current_battery"}),
        (power(current=math.nan), "SYS_STATUS", {"voltage_battery": 16660}, {"current_battery"}),
        (power(percentage=math.nan), "BATTERY_STATUS", {"temperature": 3120}, {"battery_remaining"}),
        (power(percentage=None), "SYS_STATUS", {"current_battery": 1250}, {"battery_remaining"}),
        (power(), "BATTERY_STATUS", {"battery_remaining": 87}, {"current_consumed", "energy_consumed"}),
        (
            {"battery_level": 20},
            "BATTERY_STATUS",
            {"battery_remaining": 20},
            {"temperature", "voltages", "current_battery", "current_consumed", "energy_consumed"},
        ),
        ({"battery_level": 20}, "SYS_STATUS", {"battery_remaining": 20}, {"voltage_battery", "current_battery"}),
    ],
)
def test_unknown_values_are_left_out(
    data: dict[str, Any], message_type: str, expected: dict[str, Any], absent: set[str]
) -> None:
    got = encode_one(data, message_type)
    assert {key: got[key] for key in expected} == expected
    assert not absent & got.keys()


def test_unknowns_are_left_out_not_zero_nor_a_sentinel() -> None:
    data = encode_one({"position": {"latitude": 1.0, "longitude": 2.0, "altitude": None}}, "GLOBAL_POSITION_INT")
    assert data == {"lat": 10_000_000, "lon": 20_000_000}
    assert encode_one({"battery_level": 20}, "BATTERY_STATUS") == {
        "id": 0,
        "battery_function": 0,
        "type": 0,
        "battery_remaining": 20,
    }
    assert encode_one({"battery_level": 20}, "SYS_STATUS") == {"battery_remaining": 20}


@pytest.mark.parametrize(
    ("key", "value"),
    [("voltage", 12.6), ("voltage", 100.0), ("current", -1.5), ("percentage", 50.0), ("temperature", 25.0)],
)
@pytest.mark.parametrize("fmt", ["mavlink", "envelope_v1"])
def test_one_known_power_value_sends_no_sentinel(fmt: TelemetryFormat, key: str, value: float) -> None:
    nothing = {name: None for name in ("voltage", "current", "percentage", "temperature", "cell_voltage")}
    messages = encoder(fmt).encode({"power": {**nothing, key: value}}, IDS).messages
    assert messages
    for message in messages:
        data = body(message)["data"]
        numbers = [n for v in data.values() for n in (v if isinstance(v, list) else [v])]
        assert not SENTINELS & set(numbers), (message.message_type, data)


@pytest.mark.parametrize(
    ("data", "types"),
    [
        ({"power": {}}, []),
        ({"power": {"voltage": None, "current": math.nan, "cell_voltage": [None], "technology": "LIPO"}}, []),
        ({"power": {"percentage": None}, "battery_level": None}, []),
        ({"power": {"voltage": 100.0}}, ["BATTERY_STATUS"]),  # above SYS_STATUS's uint16: only the cells
        ({"power": {"temperature": 20.0}}, ["BATTERY_STATUS"]),
        ({"power": {"voltage": 12.0}}, POWER_TYPES),
        ({"battery_level": 0}, POWER_TYPES),
    ],
)
def test_a_message_with_nothing_known_is_not_sent(data: dict[str, Any], types: list[str]) -> None:
    encoded = encoder().encode(data, IDS)
    assert [m.message_type for m in encoded.messages] == types
    assert encoded.leftover is None


def test_power_leaves_the_newest_servers_map_in_proper_units_without_sentinels() -> None:
    """SYS_STATUS (copied as mV/cA) then BATTERY_STATUS (current converted to A): the map ends in A."""
    state: dict[str, Any] = {}
    reading = {"power": {"voltage": 16.66, "current": -12.5, "percentage": 87.0, "temperature": None}}
    for message in encoder().encode(reading, IDS).messages:
        envelope = decode_envelope(message.payload)
        assert envelope.data is not None
        assert project(state, envelope.message_type, envelope.data, envelope.timestamp) == []
    power_state = {k: v for k, v in state["power"].items() if k != "timestamp"}
    assert power_state == {"voltage": 16660, "current": 12.5, "battery_remaining": 87, "cells": [16660]}
    # a later reading without a temperature or current keeps the map's values, not a sentinel
    state["power"]["temperature"] = 3120
    for message in encoder().encode({"battery_level": 80}, IDS).messages:
        envelope = decode_envelope(message.payload)
        assert envelope.data is not None
        project(state, envelope.message_type, envelope.data, GoTime.now())
    assert (state["power"]["temperature"], state["power"]["current"]) == (3120, 12.5)
    assert state["power"]["battery_remaining"] == 80


# ---------------------------------------------------------------- range errors


@pytest.mark.parametrize(
    ("data", "parts"),
    [
        (position(latitude=91.0), ("position.latitude 91.0", "-90..90")),
        (position(latitude=-90.5), ("position.latitude -90.5", "-90..90")),
        (position(longitude=180.1), ("position.longitude 180.1", "-180..180")),
        (position(latitude=math.nan), ("position.latitude nan", "finite", "-90..90")),
        (position(longitude=-math.inf), ("position.longitude -inf", "finite", "-180..180")),
        (position(latitude=None), ("position.latitude None", "required")),
        (position(latitude="32.9"), ("position.latitude '32.9'", "not a number")),
        (position(latitude=True), ("position.latitude True", "not a number")),
        (position(altitude=3e6), ("position.altitude 3000000.0", "alt 3000000000", "-2147483648..2147483647")),
        (position(relative_altitude=-3e6), ("position.relative_altitude", "relative_alt", "-2147483648..")),
        (position(velocity={"north": 400}), ("position.velocity.north 400.0", "vx 40000", "-32768..32767")),
        (position(velocity={"down": -327.685}), ("position.velocity.down", "vz -32769", "-32768..32767")),
        (position(velocity=[1, 2, 3]), ("position.velocity [1, 2, 3]", "mapping")),
        (position(heading="north"), ("position.heading 'north'", "not a number")),
        (power(percentage=102.0), ("power.percentage 102.0 -> battery_remaining 102 is outside -1..100",)),
        (power(percentage=-5), ("power.percentage -5.0", "battery_remaining -5", "-1..100")),
        ({"battery_level": 150}, ("battery_level 150.0", "battery_remaining 150", "-1..100")),
        (power(current=-400.0), ("power.current", "current_battery 40000", "-32768..32767")),
        (power(temperature=327.67), ("power.temperature 327.67", "temperature 32767", "-32768..32766")),
        (power(voltage=-1.0), ("power.voltage -1.0", "voltages -1000", "0..655340")),
        (power(voltage=700.0, cell_voltage=None), ("power.voltage 700.0", "0..655340")),
        (power(cell_voltage=[4.2, 70.0]), ("power.cell_voltage[1] 70.0", "voltages 70000", "0..65534")),
        (power(cell_voltage=[4.2, -0.1]), ("power.cell_voltage[1] -0.1", "0..65534")),
        (power(cell_voltage=[None, 70.0]), ("power.cell_voltage[1] 70.0", "0..65534")),  # checked, not sent
        (power(cell_voltage="4.2"), ("power.cell_voltage '4.2'", "list")),
        ({"position": 5}, ("position 5", "mapping")),
        ({"power": "full"}, ("power 'full'", "mapping")),
    ],
)
def test_range_errors_name_field_value_and_range(data: dict[str, Any], parts: tuple[str, ...]) -> None:
    with pytest.raises(TelemetryEncodeError) as raised:
        encoder().encode(data, IDS)
    for part in parts:
        assert part in str(raised.value)
    assert isinstance(raised.value, AlienError)
    assert isinstance(raised.value, ValueError)


def test_an_error_builds_nothing_and_consumes_no_timestamp() -> None:
    coder = encoder()
    with pytest.raises(TelemetryEncodeError, match=r"power\.percentage"):
        coder.encode({**position(), **power(percentage=101)}, IDS)
    (message,) = coder.encode(position(), IDS).messages
    assert instant(body(message)["timestamp"]) == FROZEN  # not bumped by the failed call
