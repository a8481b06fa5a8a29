"""A small but valid OpenAPI 3.1 document for ``GET /api/openapi.json`` (docs/contract.md#telling-the-dialects-apart).

Shaped like the Huma-generated one of the real server: server URL ``/api``, paths relative to
it, API-key and bearer security schemes, request schemas from v01_schema.
"""

from __future__ import annotations

from typing import Any

from alien_testing.emulator import v01_schema

_ERROR_DETAIL = {
    "type": "object",
    "properties": {"location": {"type": "string"}, "message": {"type": "string"}, "value": {}},
}
_ERROR_MODEL = {
    "type": "object",
    "properties": {
        "type": {"type": "string", "format": "uri", "default": "about:blank"},
        "title": {"type": "string"},
        "status": {"type": "integer", "format": "int64"},
        "detail": {"type": "string"},
        "instance": {"type": "string", "format": "uri"},
        "errors": {"type": "array", "items": {"$ref": "#/components/schemas/ErrorDetail"}},
    },
}
_ENTITY = {
    "type": "object",
    "required": [
        "entity_id",
        "org_id",
        "name",
        "entity_type",
        "status",
        "priority",
        "is_live",
        "created_at",
        "updated_at",
    ],
    "properties": {
        **{
            k: {"type": "string"}
            for k in (
                "entity_id",
                "org_id",
                "name",
                "entity_type",
                "status",
                "priority",
                "components",
                "tags",
                "metadata",
                "video_config",
            )
        },
        "is_live": {"type": "boolean"},
        **{
            k: {"type": "number", "format": "double"}
            for k in ("latitude", "longitude", "altitude", "heading", "velocity")
        },
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}
_ORGANIZATION = {
    "type": "object",
    "required": ["org_id", "name", "org_type", "created_at", "updated_at"],
    "properties": {
        **{k: {"type": "string"} for k in ("org_id", "name", "org_type", "metadata")},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}
_HEALTH = {
    "type": "object",
    "required": ["status", "service", "timestamp"],
    "properties": {
        "status": {"type": "string"},
        "service": {"type": "string"},
        "timestamp": {"type": "string", "format": "date-time"},
        "details": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
_DELETED = {"type": "object", "required": ["message"], "properties": {"message": {"type": "string"}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _op(
    op_id: str,
    scope: str,
    ok: str,
    schema: str | None,
    body: str | None = None,
    params: tuple[str, ...] = (),
    status: str = "200",
    array: bool = False,
) -> dict[str, Any]:
    content_schema: dict[str, Any] = (
        {"type": "array", "items": _ref(schema)} if array and schema else (_ref(schema) if schema else {})
    )
    op: dict[str, Any] = {
        "operationId": op_id,
        "security": [{"APIKeyAuth": [scope]}],
        "parameters": [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in params],
        "responses": {
            status: {"description": ok, "content": {"application/json": {"schema": content_schema}}},
            "default": {
                "description": "Error",
                "content": {"application/problem+json": {"schema": _ref("ErrorModel")}},
            },
        },
    }
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    return op


def openapi_document() -> dict[str, Any]:
    org, ent = ("org_id",), ("org_id", "entity_id")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Constellation Overwatch API",
            "version": "1.0.0",
            "description": "Emulated by alien_testing (docs/contract.md#path-scoped-rest)",
        },
        "servers": [{"url": "/api"}],
        "paths": {
            "/v1/health": {"get": _op("health-check", "admin", "OK", "HealthStatus")},
            "/v1/organizations": {
                "post": _op(
                    "create-organization",
                    "organizations:write",
                    "Created",
                    "Organization",
                    body="CreateOrganizationRequest",
                    status="201",
                ),
                "get": _op("list-organizations", "organizations:read", "OK", "Organization", array=True),
            },
            "/v1/organizations/{org_id}": {
                "get": _op("get-organization", "organizations:read", "OK", "Organization", params=org),
                "delete": _op("delete-organization", "organizations:write", "OK", "DeletedOutput", params=org),
            },
            "/v1/organizations/{org_id}/entities": {
                "post": _op(
                    "create-entity",
                    "entities:write",
                    "Created",
                    "Entity",
                    body="CreateEntityRequest",
                    params=org,
                    status="201",
                ),
                "get": _op("list-entities", "entities:read", "OK", "Entity", params=org, array=True),
            },
            "/v1/organizations/{org_id}/entities/{entity_id}": {
                "get": _op("get-entity", "entities:read", "OK", "Entity", params=ent),
                "put": _op("update-entity", "entities:write", "OK", "Entity", body="UpdateEntityRequest", params=ent),
                "delete": _op("delete-entity", "entities:write", "OK", "DeletedOutput", params=ent),
            },
        },
        "components": {
            "schemas": {
                "CreateEntityRequest": v01_schema.CREATE_ENTITY,
                "UpdateEntityRequest": v01_schema.UPDATE_ENTITY,
                "CreateOrganizationRequest": v01_schema.CREATE_ORGANIZATION,
                "Entity": _ENTITY,
                "Organization": _ORGANIZATION,
                "HealthStatus": _HEALTH,
                "DeletedOutput": _DELETED,
                "ErrorModel": _ERROR_MODEL,
                "ErrorDetail": _ERROR_DETAIL,
            },
            "securitySchemes": {
                "APIKeyAuth": {"type": "apiKey", "name": "X-API-Key", "in": "header"},
                "BearerAuth": {"type": "http", "scheme": "bearer"},
            },
        },
    }
