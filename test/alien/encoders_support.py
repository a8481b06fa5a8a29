"""Shared pieces of the telemetry encoder tests (test_encoders_*.py): the contract's example and helpers.

The example position is the one of docs/contract.md#telemetry-envelope-v1, the power reading what
alien_ros.conversions makes of a discharging 4S LiPo; `encoder()` encodes at a frozen instant.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from alien.telemetry.encoders import EncoderIds, TelemetryEncoder, TelemetryFormat, WireMessage, make_encoder

GOLDEN = Path(__file__).resolve().parent / "golden"
FROZEN = datetime(2026, 7, 21, 20, 0, 0, tzinfo=timezone.utc)
IDS = EncoderIds("org-galaxy", "gc35-e4b")
IDS_PAIR = (IDS.org_id, IDS.entity_id)
UID = re.compile(r"[A-Za-z0-9_-]{1,128}")
ENVELOPE_KEYS = {
    "schema_version",
    "message_uid",
    "org_id",
    "entity_id",
    "source",
    "message_id",
    "message_type",
    "system_id",
    "component_id",
    "data",
    "timestamp",
}
MAVLINK_KEYS = {"message_type", "message_id", "system_id", "component_id", "data", "timestamp"}
# common.xml's "unknown" values: never sent (hdg/voltage_battery/cells, temperature, currents/remaining)
SENTINELS = {65535, 32767, -1}
POWER_TYPES = ["SYS_STATUS", "BATTERY_STATUS"]  # SYS_STATUS first: the map's current ends in A

# The contract's example envelope, as the semantic input the library receives.
CONTRACT_POSITION = {
    "latitude": 32.94881,
    "longitude": -96.80132,
    "altitude": 152.4,
    "relative_altitude": 30.48,
    "heading": 90.0,
    "velocity": {"north": 1.23, "east": -0.45, "down": 0.06},
}
# What alien_ros.conversions.battery_state_to_power produces for a discharging 4S LiPo.
ROS_POWER: dict[str, Any] = {
    "voltage": 16.66,
    "current": -12.5,
    "charge": 3.1,
    "capacity": 5.0,
    "design_capacity": 5.2,
    "percentage": 87.0,
    "status": "DISCHARGING",
    "health": "GOOD",
    "technology": "LIPO",
    "present": True,
    "temperature": 31.2,
    "cell_voltage": [4.15, 4.16, 4.17, 4.18],
    "cell_temperature": [],
    "location": "slot0",
    "serial_number": "",
    "stamp": "2026-07-21T20:00:00.000000Z",
}


def encoder(fmt: TelemetryFormat = "envelope_v1", clock: Any = None, **options: Any) -> TelemetryEncoder:
    options.setdefault("entity_type", "aircraft_multirotor")
    return make_encoder(fmt, clock=clock or (lambda: FROZEN), **options)


def body(message: WireMessage) -> dict[str, Any]:
    def refuse(constant: str) -> None:
        raise AssertionError(f"payload holds non-JSON {constant}")

    return json.loads(message.payload, parse_constant=refuse)  # type: ignore[no-any-return]


def instant(timestamp: str) -> datetime:
    moment = datetime.fromisoformat(timestamp)
    assert moment.tzinfo is not None, timestamp
    return moment


def encode_one(data: dict[str, Any], message_type: str, **options: Any) -> dict[str, Any]:
    """The data of the one message of `message_type` that encoding `data` yields."""
    found = [body(m) for m in encoder(**options).encode(data, IDS).messages if m.message_type == message_type]
    assert len(found) == 1, found
    return found[0]["data"]  # type: ignore[no-any-return]


def position(**changes: Any) -> dict[str, Any]:
    return {"position": {**CONTRACT_POSITION, **changes}}


def power(**changes: Any) -> dict[str, Any]:
    return {"power": {**ROS_POWER, **changes}}
