"""What one entity sends at the bridge's default rates, per wire format: messages and bytes per second.

    .venv/bin/python bench/fleet_rates.py      # the table of docs/capacity.md#per-entity-at-the-default-rates

The rates are the shipped ones (config/bridge.yaml: fix 1 Hz, battery 1 Hz, diagnostics 0.2 Hz;
AlienConfig: heartbeat 1 s, KV entity state at most once a second) and the readings have the
shapes the bridge's conversions give a NavSatFix, a BatteryState and a DiagnosticArray. Each
reading is encoded by the library's own encoders; what a format cannot carry goes as a
`telemetry` event, as the client sends it. "Wire" adds what NATS carries besides the payload:
the HPUB line with subject and reply inbox, and the `Nats-Msg-Id` header.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alien.config import AlienConfig  # noqa: E402
from alien.entity_state import merge_owned, state_from_telemetry  # noqa: E402
from alien.telemetry.encoders import TELEMETRY_FORMATS, EncoderIds, TelemetryFormat, make_encoder  # noqa: E402
from alien.telemetry.readings import encode_event  # noqa: E402
from alien.wire import dumps, event_subject, new_message_id, telemetry_subject, utc_timestamp  # noqa: E402

ORG_ID = "5f2b7c1e-8a4d-4c3b-9e6f-1a2b3c4d5e6f"  # uuid-sized ids, as real servers give
ENTITY_ID = "0c9d8e7f-6a5b-4c3d-2e1f-0a9b8c7d6e5f"
REPLY_INBOX = "_INBOX.AbCdEfGhIjKlMnOpQrStUv.AbCdEfGhIjKlMnOpQrStUv"  # nats-py's async-publish inbox length
# The server that reads each format, and whether its edge clients write the KV entity state
# (docs/contract.md#operator-map-kv: v0.1.1 yes; the release candidate writes it itself).
KV_WRITTEN = {"seed": False, "mavlink": True, "envelope_v1": False}


def default_rates() -> dict[str, float]:
    """Readings per second of each input with the shipped settings."""
    params = yaml.safe_load((ROOT / "config" / "bridge.yaml").read_text())
    node = next(iter(params.values()))["ros__parameters"]
    return {"position": node["fix.rate_hz"], "power": node["battery.rate_hz"], "health": node["diagnostics.rate_hz"]}


def heartbeat_hz() -> float:
    period = AlienConfig.model_fields["heartbeat_period_s"].default
    return 1.0 / period if period else 0.0


def kv_hz() -> float:
    return 1.0 / AlienConfig.model_fields["entity_state_period_s"].default


def reading(kind: str, n: int) -> dict[str, Any]:
    """A reading as the bridge's conversions build it from a NavSatFix, BatteryState or DiagnosticArray."""
    stamp = utc_timestamp()
    if kind == "position":
        return {
            "position": {
                "latitude": 47.3769 + n * 1e-6,
                "longitude": 8.5417 + n * 1e-6,
                "altitude": 408.2 + n % 10,
                "fix": "FIX",
                "services": ["GPS", "GALILEO"],
                "covariance_type": "DIAGONAL_KNOWN",
                "covariance_diagonal": [0.25, 0.25, 0.64],
                "stamp": stamp,
                "frame_id": "gps",
            }
        }
    if kind == "power":
        return {
            "power": {
                "voltage": 24.6,
                "current": -3.2,
                "charge": 18.5,
                "capacity": 22.0,
                "design_capacity": 22.0,
                "percentage": 84.1 - (n % 50) * 0.1,
                "status": "DISCHARGING",
                "health": "GOOD",
                "technology": "LIPO",
                "present": True,
                "temperature": 31.5,
                "cell_voltage": [4.1, 4.1, 4.1, 4.1, 4.1, 4.1],
                "cell_temperature": [],
                "location": "main",
                "serial_number": "",
                "stamp": stamp,
            }
        }
    statuses = [
        {"name": f"{name}", "level": "OK", "message": "running", "hardware_id": name, "values": {"rate": "10.0"}}
        for name in ("gps_driver", "battery_monitor", "motor_controller")
    ]
    return {"health": {"stamp": stamp, "level": "OK", "statuses": statuses}}


def wire_bytes(subject: str, payload: bytes, msg_id: str) -> int:
    """What an HPUB with a Nats-Msg-Id header and a reply inbox puts on the connection."""
    header = f"NATS/1.0\r\nNats-Msg-Id: {msg_id}\r\n\r\n".encode()
    line = f"HPUB {subject} {REPLY_INBOX} {len(header)} {len(header) + len(payload)}\r\n".encode()
    return len(line) + len(header) + len(payload) + 2


@dataclass
class Flow:
    """Messages and bytes per second into one stream."""

    messages: float = 0.0
    payload: float = 0.0
    wire: float = 0.0

    def add(self, hz: float, subject: str, payload: bytes, msg_id: str) -> None:
        self.messages += hz
        self.payload += hz * len(payload)
        self.wire += hz * wire_bytes(subject, payload, msg_id)


@dataclass
class EntityRates:
    fmt: TelemetryFormat
    streams: dict[str, Flow] = field(default_factory=dict)

    def flow(self, stream: str) -> Flow:
        return self.streams.setdefault(stream, Flow())

    @property
    def total(self) -> Flow:
        return Flow(*(sum(getattr(f, name) for f in self.streams.values()) for name in ("messages", "payload", "wire")))


def entity_rates(fmt: TelemetryFormat) -> EntityRates:
    """One entity at the default rates in format `fmt`, from the library's encoders."""
    encoder = make_encoder(fmt, entity_type="rover")
    ids = EncoderIds(ORG_ID, ENTITY_ID)
    rates = EntityRates(fmt)
    telemetry, events = telemetry_subject(ORG_ID, ENTITY_ID), event_subject(ORG_ID, "telemetry")
    state: dict[str, Any] = {}
    for kind, hz in default_rates().items():
        data = reading(kind, 7)
        encoded = encoder.encode(data, ids)
        for message in encoded.messages:
            rates.flow("telemetry").add(hz, telemetry, message.payload, message.msg_id)
        if encoded.leftover:
            event = encode_event(ENTITY_ID, "telemetry", encoded.leftover)
            rates.flow("events").add(hz, events, event, new_message_id())
        state = merge_owned(state, state_from_telemetry(data))
    beat = encoder.heartbeat("active", "OK", ids)
    if beat is not None and heartbeat_hz():
        rates.flow("telemetry").add(heartbeat_hz(), telemetry, beat.payload, beat.msg_id)
    if KV_WRITTEN[fmt]:
        owned = {"entity_id": ENTITY_ID, "org_id": ORG_ID, "entity_type": "ground_vehicle_wheeled", "status": "active"}
        value = dumps(
            {**merge_owned(state, owned), "is_live": True, "name": "rover-0001", "last_seen": utc_timestamp()}
        )
        rates.flow("KV").add(kv_hz(), f"$KV.CONSTELLATION_GLOBAL_STATE.{ENTITY_ID}", value, "")
    return rates


def markdown() -> str:
    rows = [
        "| wire format (server) | stream | messages/s | payload bytes/s | on the wire, bytes/s |",
        "|---|---|---|---|---|",
    ]
    servers = {"seed": "v0.0.1", "mavlink": "v0.1.1", "envelope_v1": "release candidate"}
    for fmt in TELEMETRY_FORMATS:
        rates = entity_rates(fmt)
        for stream, flow in [*rates.streams.items(), ("all", rates.total)]:
            shown = f"**{stream}**" if stream == "all" else stream
            rows.append(
                f"| `{fmt}` ({servers[fmt]}) | {shown} | {flow.messages:.1f} | {flow.payload:,.0f} | {flow.wire:,.0f} |"
            )
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown())
