"""What a v0.1.x server's telemetry worker makes of one message (docs/contract.md#telemetry-payloads).

Read from Constellation-Overwatch/constellation-overwatch:

- v0.1.1 (pkg/services/workers/telemetry.go of that release): ``json.Unmarshal`` into
  ``shared.MAVLinkTelemetry`` ``{message_id uint32, message_type, system_id uint8,
  component_id uint8, data map, timestamp time.Time}``; unknown keys are ignored, a decode error
  (a zone-less timestamp, a float message_id, ...) fails the message. A missing timestamp falls
  back to ``data.timestamp``, then to now. The subject must have at least four tokens. Every
  message type is acked, but only those in ``V011_TYPES`` are decoded into the worker's state,
  which it keeps in process memory only ("KV write disabled": edge clients write the KV entity
  state themselves); any other type lands in metadata only.
- rc (pkg/protocol/telemetry.go ``DecodeTelemetry`` / ``ParseTelemetrySubject``,
  pkg/services/workers/telemetry.go): the strict envelope v1 (unknown fields rejected,
  ``schema_version`` ``1.0.0``, identity tokens ``[A-Za-z0-9_-]{1,128}``, ``message_type``
  ``^[A-Z][A-Z0-9_]*$``, ``data`` and ``timestamp`` required), subject exactly
  ``constellation.telemetry.{org}.{entity}`` matching the body, and then
  :func:`alien_testing.emulator.telemetry_projection.project` of the ``data`` into the entity
  state (out-of-range fields dropped one by one). An unsupported ``message_type`` fails the message.

This module decodes a message and its subject; what the ``data`` does to the entity state is
:mod:`alien_testing.emulator.telemetry_projection`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from alien_testing.emulator.gojson import (
    GoJSONError,
    GoTime,
    loads,
    match_fields,
    string,
    string_map,
    time_field,
    type_error,
    unsigned,
)

SCHEMA_VERSION = "1.0.0"
TELEMETRY_PREFIX = "constellation.telemetry."
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
_MESSAGE_TYPE = re.compile(r"[A-Z][A-Z0-9_]*")
_ENVELOPE_FIELDS = [
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
]
_MAVLINK_FIELDS = ["message_id", "message_type", "system_id", "component_id", "data", "timestamp"]


class TelemetryError(ValueError):
    """The worker's handler returns an error for this message (it is NAKed, or quarantined)."""


@dataclass(frozen=True)
class Telemetry:
    """A decoded message: the v1 envelope's fields (identity fields empty on v0.1.1)."""

    message_type: str
    message_id: int
    system_id: int
    component_id: int
    data: dict[str, Any] | None
    timestamp: GoTime
    schema_version: str = ""
    message_uid: str = ""
    org_id: str = ""
    entity_id: str = ""
    source: str = ""


def decode_v011(raw: bytes) -> Telemetry:
    """v0.1.1: json.Unmarshal into shared.MAVLinkTelemetry, then the timestamp fallbacks."""
    try:
        value = loads(raw)
        if value is None:
            fields: dict[str, Any] = {}
        elif isinstance(value, dict):
            fields = match_fields(value, _MAVLINK_FIELDS, strict=False, struct="MAVLinkTelemetry")
        else:
            raise type_error(value, "shared.MAVLinkTelemetry", "", "MAVLinkTelemetry")
        decoded = _decode_common(fields, "MAVLinkTelemetry")
    except GoJSONError as exc:
        raise TelemetryError(f"failed to unmarshal telemetry: {exc}") from None
    stamp = decoded["timestamp"]
    if stamp is None or stamp.is_zero():
        data = decoded["data"] or {}
        stamp = None
        if isinstance(data.get("timestamp"), str):
            try:
                stamp = GoTime.parse(data["timestamp"])
            except GoJSONError:
                stamp = None
        if stamp is None or stamp.is_zero():
            stamp = GoTime.now()
    return Telemetry(
        decoded["message_type"] or "",
        decoded["message_id"] or 0,
        decoded["system_id"] or 0,
        decoded["component_id"] or 0,
        decoded["data"],
        stamp,
    )


def parse_subject_v011(subject: str) -> tuple[str, str]:
    """v0.1.1's parseSubject: (entity_id, org_id); it takes token 2 as the entity, org "unknown"."""
    parts = subject.split(".")
    if len(parts) < 4:
        raise TelemetryError(f"failed to parse subject: invalid subject format (too few parts): {subject}")
    if parts[2] == "":
        raise TelemetryError(f"failed to parse subject: entity_id is empty in subject: {subject}")
    return parts[2], "unknown"


def decode_envelope(raw: bytes) -> Telemetry:
    """rc: protocol.DecodeTelemetry (DisallowUnknownFields, no trailing value, then Validate)."""
    try:
        value = loads(raw)
        if value is None:
            fields: dict[str, Any] = {}
        elif isinstance(value, dict):
            fields = match_fields(value, _ENVELOPE_FIELDS, strict=True, struct="TelemetryEnvelope")
        else:
            raise type_error(value, "protocol.TelemetryEnvelope", "", "TelemetryEnvelope")
        decoded = _decode_common(fields, "TelemetryEnvelope")
        extra = {
            name: string(fields.get(name), name, "TelemetryEnvelope") or ""
            for name in ("schema_version", "message_uid", "org_id", "entity_id", "source")
        }
    except GoJSONError as exc:
        raise TelemetryError(f"decode telemetry envelope: {exc}") from None
    envelope = Telemetry(
        decoded["message_type"] or "",
        decoded["message_id"] or 0,
        decoded["system_id"] or 0,
        decoded["component_id"] or 0,
        decoded["data"],
        decoded["timestamp"] or GoTime.zero(),
        **extra,
    )
    validate_envelope(envelope)
    return envelope


def validate_envelope(e: Telemetry) -> None:
    """protocol.TelemetryEnvelope.Validate."""
    if e.schema_version != SCHEMA_VERSION:
        raise TelemetryError(f'unsupported telemetry schema_version "{e.schema_version}"')
    for name, value in (("message_uid", e.message_uid), ("org_id", e.org_id), ("entity_id", e.entity_id)):
        check_token(name, value)
    if _MESSAGE_TYPE.fullmatch(e.message_type) is None:
        raise TelemetryError(f'message_type "{e.message_type}" is not canonical MAVLink uppercase')
    if e.data is None:
        raise TelemetryError("data is required")
    if e.timestamp.is_zero():
        raise TelemetryError("timestamp is required")


def check_token(name: str, value: str) -> None:
    if not 0 < len(value) <= 128 or _TOKEN.fullmatch(value) is None:
        raise TelemetryError(f'{name} "{value}" is not a safe NATS subject token')


def parse_subject(subject: str) -> tuple[str, str]:
    """rc: protocol.ParseTelemetrySubject -> (org_id, entity_id)."""
    if not subject.startswith(TELEMETRY_PREFIX):
        raise TelemetryError("telemetry subject has invalid prefix")
    parts = subject.split(".")
    if len(parts) != 4:
        raise TelemetryError("telemetry subject must be constellation.telemetry.{org_id}.{entity_id}")
    check_token("org_id", parts[2])
    check_token("entity_id", parts[3])
    return parts[2], parts[3]


def _decode_common(fields: dict[str, Any], struct: str) -> dict[str, Any]:
    return {
        "message_id": unsigned(fields.get("message_id"), 32, "message_id", struct),
        "message_type": string(fields.get("message_type"), "message_type", struct),
        "system_id": unsigned(fields.get("system_id"), 8, "system_id", struct),
        "component_id": unsigned(fields.get("component_id"), 8, "component_id", struct),
        "data": string_map(fields.get("data"), "data", struct),
        "timestamp": time_field(fields.get("timestamp"), "timestamp", struct),
    }
