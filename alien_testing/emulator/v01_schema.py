"""v0.1 request schemas and the subset of Huma's JSON-Schema validation the server relies on.

The real v0.1 server declares its bodies as Go structs that Huma turns into JSON Schema
(Constellation-Overwatch/constellation-overwatch pkg/ontology/entity.go, organization.go):
fields without ``omitempty`` are required, structs reject unknown properties, ``enum`` tags
become enums. A failure is a 422 problem (docs/contract.md#path-scoped-rest) listing every error
with Huma's wording, so clients see what a real server says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alien_testing.emulator.contract import ENTITY_TYPES_V01, V01_API_STATUSES

Schema = dict[str, Any]

_SCHEMA_LINK: Schema = {
    "type": "string",
    "format": "uri",
    "readOnly": True,
    "description": "A URL to the JSON Schema for this object.",
}
_PRIORITY_ENUM = ["low", "normal", "high", "critical"]

POSITION: Schema = {
    "type": "object",
    "additionalProperties": False,
    "required": ["latitude", "longitude"],
    "properties": {
        "latitude": {"type": "number", "format": "double", "minimum": -90, "maximum": 90},
        "longitude": {"type": "number", "format": "double", "minimum": -180, "maximum": 180},
        "altitude": {"type": "number", "format": "double"},
    },
}
VIDEO_CONFIG: Schema = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "protocol": {"type": "string", "enum": ["rtsp", "rtmp", "srt", "hls"]},
        "port": {"type": "integer", "format": "int64"},
        **{
            name: {"type": "string"}
            for name in ("stream_url", "overlay_url", "webrtc_url", "overlay_webrtc_url", "hls_url")
        },
    },
}
_METADATA: Schema = {"type": "object", "additionalProperties": {}}
_COMMON_ENTITY: dict[str, Schema] = {
    "$schema": _SCHEMA_LINK,
    "name": {"type": "string", "maxLength": 255},
    "status": {"type": "string", "enum": list(V01_API_STATUSES)},
    "priority": {"type": "string", "enum": _PRIORITY_ENUM},
    "position": POSITION,
    "metadata": _METADATA,
    "video_config": VIDEO_CONFIG,
}
CREATE_ENTITY: Schema = {
    "type": "object",
    "additionalProperties": False,
    "required": ["entity_type"],
    "properties": {**_COMMON_ENTITY, "entity_type": {"type": "string", "enum": list(ENTITY_TYPES_V01)}},
}
# No entity_type here: the v0.1 update cannot change it (sending it is "unexpected property").
UPDATE_ENTITY: Schema = {
    "type": "object",
    "additionalProperties": False,
    "properties": {**_COMMON_ENTITY, "is_live": {"type": "boolean"}},
}
# org_type carries no enum tag in the v0.1 source; the database CHECK rejects bad values (500).
CREATE_ORGANIZATION: Schema = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "org_type"],
    "properties": {
        "$schema": _SCHEMA_LINK,
        "name": {"type": "string"},
        "org_type": {"type": "string"},
        "metadata": _METADATA,
    },
}


@dataclass(frozen=True)
class ErrorDetail:
    message: str
    location: str
    value: Any

    def as_json(self) -> dict[str, Any]:
        return {"message": self.message, "location": self.location, "value": self.value}


def validate(value: Any, schema: Schema, location: str = "body") -> list[ErrorDetail]:
    """All violations of ``schema`` by ``value`` (an empty list means valid)."""
    errors: list[ErrorDetail] = []
    _check(value, schema, location, errors)
    return errors


def _check(value: Any, schema: Schema, location: str, errors: list[ErrorDetail]) -> None:
    kind = schema.get("type")
    if kind is not None and not _is_type(value, kind):
        errors.append(ErrorDetail(f"expected {kind}", location, value))
        return
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(str(v) for v in schema["enum"])
        errors.append(ErrorDetail(f'expected value to be one of "{allowed}"', location, value))
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        errors.append(ErrorDetail(f"expected length <= {schema['maxLength']}", location, value))
    if "minimum" in schema and value < schema["minimum"]:
        errors.append(ErrorDetail(f"expected number >= {schema['minimum']}", location, value))
    if "maximum" in schema and value > schema["maximum"]:
        errors.append(ErrorDetail(f"expected number <= {schema['maximum']}", location, value))
    if kind == "object":
        _check_object(value, schema, location, errors)


def _check_object(value: dict[str, Any], schema: Schema, location: str, errors: list[ErrorDetail]) -> None:
    properties: dict[str, Schema] = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in value:
            errors.append(ErrorDetail(f"expected required property {name} to be present", location, value))
    for name, item in value.items():
        if name in properties:
            _check(item, properties[name], f"{location}.{name}", errors)
        elif schema.get("additionalProperties") is False:
            errors.append(ErrorDetail("unexpected property", f"{location}.{name}", item))


def _is_type(value: Any, kind: str) -> bool:
    if kind == "object":
        return isinstance(value, dict)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return True
