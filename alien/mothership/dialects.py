"""The two REST dialects of the mothership (docs/contract.md#rest-dialects).

Each dialect knows its routes, its auth header, its body shapes and how to unwrap answers into
one normalized form used by the rest of alien:
- organization: `{"org_id", "name", "org_type", ...}`
- entity: `{"entity_id", "org_id", "entity_type", "status", "metadata": dict, ...}`
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from alien.mothership.enums import Dialect


class DialectSpec(Protocol):
    name: Dialect
    supports_video_config: bool  # the entity has a `video_config` object

    def auth_headers(self, bearer_token: str, api_key: str | None, *, bearer: bool = False) -> dict[str, str]: ...
    def organizations_path(self) -> tuple[str, dict[str, str]]: ...
    def organization_path(self, org_id: str) -> tuple[str, dict[str, str]]: ...
    def entities_path(self, org_id: str) -> tuple[str, dict[str, str]]: ...
    def entity_path(self, org_id: str, entity_id: str) -> tuple[str, dict[str, str]]: ...
    def organization_body(self, name: str, org_type: str) -> dict[str, Any]: ...
    def entity_body(
        self, name: str, entity_type: str, status: str, position: dict[str, Any] | None, metadata: dict[str, Any]
    ) -> dict[str, Any]: ...
    def unwrap(self, body: Any) -> Any: ...


class LegacyDialect:
    """v0.0.1: query-scoped routes, Bearer dev token, `{"success", "data"}` envelope."""

    name: Dialect = "v0.0.1"
    supports_video_config = False

    def auth_headers(self, bearer_token: str, api_key: str | None, *, bearer: bool = False) -> dict[str, str]:
        return {"Authorization": f"Bearer {bearer_token}"}

    def organizations_path(self) -> tuple[str, dict[str, str]]:
        return "/api/v1/organizations", {}

    def organization_path(self, org_id: str) -> tuple[str, dict[str, str]]:
        return "/api/v1/organizations", {"org_id": org_id}

    def entities_path(self, org_id: str) -> tuple[str, dict[str, str]]:
        return "/api/v1/entities", {"org_id": org_id}

    def entity_path(self, org_id: str, entity_id: str) -> tuple[str, dict[str, str]]:
        return "/api/v1/entities", {"org_id": org_id, "entity_id": entity_id}

    def organization_body(self, name: str, org_type: str) -> dict[str, Any]:
        return {"name": name, "org_type": org_type}

    def entity_body(
        self, name: str, entity_type: str, status: str, position: dict[str, Any] | None, metadata: dict[str, Any]
    ) -> dict[str, Any]:
        # v0.0.1 has no first-class name: the seed API keeps it in metadata.
        return _entity_body(entity_type, status, position, {"name": name, **metadata})

    def unwrap(self, body: Any) -> Any:
        data = body.get("data") if isinstance(body, dict) else None
        return _normalize(data)


class V01Dialect:
    """v0.1.x: path-scoped routes, API key in X-API-Key, bare JSON bodies."""

    name: Dialect = "v0.1"
    supports_video_config = True

    def auth_headers(self, bearer_token: str, api_key: str | None, *, bearer: bool = False) -> dict[str, str]:
        # docs/contract.md#api-keys-and-scopes: API keys only, as X-API-Key (preferred) or Authorization: Bearer. A key
        # given as the seed API's API_BEARER_TOKEN is accepted too.
        key = api_key or bearer_token
        return {"Authorization": f"Bearer {key}"} if bearer else {"X-API-Key": key}

    def organizations_path(self) -> tuple[str, dict[str, str]]:
        return "/api/v1/organizations", {}

    def organization_path(self, org_id: str) -> tuple[str, dict[str, str]]:
        return f"/api/v1/organizations/{org_id}", {}

    def entities_path(self, org_id: str) -> tuple[str, dict[str, str]]:
        return f"/api/v1/organizations/{org_id}/entities", {}

    def entity_path(self, org_id: str, entity_id: str) -> tuple[str, dict[str, str]]:
        return f"/api/v1/organizations/{org_id}/entities/{entity_id}", {}

    def organization_body(self, name: str, org_type: str) -> dict[str, Any]:
        return {"name": name, "org_type": org_type}

    def entity_body(
        self, name: str, entity_type: str, status: str, position: dict[str, Any] | None, metadata: dict[str, Any]
    ) -> dict[str, Any]:
        return {"name": name, **_entity_body(entity_type, status, position, metadata)}

    def unwrap(self, body: Any) -> Any:
        return _normalize(body)


def _entity_body(
    entity_type: str, status: str, position: dict[str, Any] | None, metadata: dict[str, Any]
) -> dict[str, Any]:
    body: dict[str, Any] = {"entity_type": entity_type, "status": status, "priority": "normal", "metadata": metadata}
    if position:
        body["position"] = position
    return body


def dialect_for(name: Dialect) -> DialectSpec:
    return LegacyDialect() if name == "v0.0.1" else V01Dialect()


def _normalize(data: Any) -> Any:
    """Lists item by item; v0.0.1 returns entity metadata as a JSON-encoded string (docs/contract.md#legacy-rest)."""
    if isinstance(data, list):
        return [_normalize(item) for item in data]
    if isinstance(data, dict):
        # v0.1.x list endpoints may wrap items; keep the list itself.
        if isinstance(data.get("items"), list) and "org_id" not in data and "entity_id" not in data:
            return _normalize(data["items"])
        # JSON columns come back as JSON-encoded strings (v0.0.1 metadata; v0.1.x video_config).
        for column in ("metadata", "video_config"):
            value = data.get(column)
            if isinstance(value, str):
                data = {**data, column: _decoded_object(value)}
    return data


def _decoded_object(text: str) -> dict[str, Any]:
    try:
        decoded = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {"raw": text}
    return decoded if isinstance(decoded, dict) else {"value": decoded}
