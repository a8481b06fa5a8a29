"""The v0.1.x REST dialect, docs/contract.md#path-scoped-rest.

Path-scoped routes, bare JSON bodies, RFC 9457 problem+json errors (422 validation, 401 key,
403 scope), API keys ``c4_live_``/``c4_test_`` via ``X-API-Key`` or ``Authorization: Bearer``.
Order of checks follows the real server (chi auth middleware -> Huma scope middleware -> body
validation -> handler), read from Constellation-Overwatch/constellation-overwatch api/router.go,
api/middleware/apikey.go, api/handlers/{entity,organization,access,health}.go.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web

from alien_testing.emulator import v01_schema
from alien_testing.emulator.context import ApiContext, health_body
from alien_testing.emulator.contract import API_KEY_PREFIXES, DEFAULT_ORG_ID, SCOPE_ADMIN
from alien_testing.emulator.legacy_api import go_not_found
from alien_testing.emulator.openapi import openapi_document
from alien_testing.emulator.store import ConstraintError, NotFoundError, Row, go_json

PROBLEM = "application/problem+json"
_INTERNAL = "An internal error occurred"
_ORG = r"/api/v1/organizations/(?P<org_id>[^/]+)"
_ENTITY = _ORG + r"/entities/(?P<entity_id>[^/]+)"
_OPTIONAL_FLOATS = ("latitude", "longitude", "altitude", "heading", "velocity")

Handler = Callable[[web.Request, frozenset[str]], Awaitable[web.Response]]


class Problem(Exception):
    """A Huma error: rendered as problem+json with a $schema link."""

    def __init__(self, status: int, detail: str, errors: list[v01_schema.ErrorDetail] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.errors = status, detail, errors or []


def plain_problem(status: int, detail: str) -> web.Response:
    """The auth middleware's RFC 9457 body: exactly {status, title, detail}."""
    body = {"status": status, "title": HTTPStatus(status).phrase, "detail": detail}
    return web.Response(status=status, text=json.dumps(body) + "\n", content_type=PROBLEM)


def _schema_link(request: web.Request, name: str) -> str:
    return f"{request.scheme}://{request.host}/api/schemas/{name}.json"


def huma_problem(request: web.Request, problem: Problem) -> web.Response:
    body: dict[str, Any] = {
        "$schema": _schema_link(request, "ErrorModel"),
        "title": HTTPStatus(problem.status).phrase,
        "status": problem.status,
        "detail": problem.detail,
    }
    if problem.errors:
        body["errors"] = [e.as_json() for e in problem.errors]
    return web.Response(status=problem.status, text=json.dumps(body), content_type=PROBLEM)


def _with_link(request: web.Request, name: str, body: dict[str, Any], status: int = 200) -> web.Response:
    """Huma adds a $schema link to object responses; arrays go out bare."""
    return web.json_response({"$schema": _schema_link(request, name), **body}, status=status)


def org_view(row: Row) -> dict[str, Any]:
    out = {k: row[k] for k in ("org_id", "name", "org_type")}
    if row["metadata"]:
        out["metadata"] = row["metadata"]
    out["created_at"], out["updated_at"] = row["created_at"], row["updated_at"]
    return out


def entity_view(row: Row, *, fresh: bool = False) -> dict[str, Any]:
    """ontology.Entity as JSON: ``name`` always, omitempty pointers, JSON columns as strings."""
    out: dict[str, Any] = {k: row[k] for k in ("entity_id", "org_id")}
    out["name"] = row["name"] or ""
    out.update({k: row[k] for k in ("entity_type", "status", "priority", "is_live")})
    out.update({k: row[k] for k in _OPTIONAL_FLOATS if row[k] is not None})
    columns = ("metadata", "video_config") if fresh else ("components", "tags", "metadata", "video_config")
    out.update({k: row[k] for k in columns if row[k]})
    out["created_at"], out["updated_at"] = row["created_at"], row["updated_at"]
    return out


async def _read_body(request: web.Request, schema: v01_schema.Schema) -> dict[str, Any]:
    """Huma's body handling: required, JSON, then schema validation (422 lists every error)."""
    raw = await request.read()
    ctype = request.headers.get("Content-Type", "")
    if ctype and "json" not in ctype:
        raise Problem(415, "validation failed", [v01_schema.ErrorDetail(f"unknown content type {ctype}", "body", None)])
    if not raw.strip():
        raise Problem(422, "validation failed", [v01_schema.ErrorDetail("request body is required", "body", None)])
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise Problem(
            400, "validation failed", [v01_schema.ErrorDetail(str(exc), "body", raw.decode(errors="replace"))]
        ) from exc
    errors = v01_schema.validate(body, schema)
    if errors:
        raise Problem(422, "validation failed", errors)
    assert isinstance(body, dict)
    body.pop("$schema", None)
    return body


def _position_columns(position: dict[str, Any] | None) -> Row:
    if not position:
        return {}
    out: Row = {"latitude": position["latitude"], "longitude": position["longitude"]}
    if position.get("altitude"):  # the server skips altitude 0
        out["altitude"] = position["altitude"]
    return out


class V01Api:
    """aiohttp handler for every path of a v0.1.x server."""

    def __init__(self, ctx: ApiContext) -> None:
        self._ctx = ctx
        self._routes: list[tuple[str, re.Pattern[str], str, Handler]] = [
            ("GET", re.compile(r"/api/v1/health"), SCOPE_ADMIN, self._health),
            ("POST", re.compile(r"/api/v1/organizations"), "organizations:write", self._create_org),
            ("GET", re.compile(r"/api/v1/organizations"), "organizations:read", self._list_orgs),
            ("GET", re.compile(_ORG), "organizations:read", self._get_org),
            ("DELETE", re.compile(_ORG), "organizations:write", self._delete_org),
            ("POST", re.compile(_ORG + "/entities"), "entities:write", self._create_entity),
            ("GET", re.compile(_ORG + "/entities"), "entities:read", self._list_entities),
            ("GET", re.compile(_ENTITY), "entities:read", self._get_entity),
            ("PUT", re.compile(_ENTITY), "entities:write", self._update_entity),
            ("DELETE", re.compile(_ENTITY), "entities:write", self._delete_entity),
        ]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/health" and request.method in ("GET", "HEAD"):
            # docs/contract.md#path-scoped-rest: liveness, no auth, no envelope
            return web.json_response({"status": "ok"})
        if request.path == "/api/openapi.json" and request.method in ("GET", "HEAD"):
            return web.json_response(openapi_document())  # docs/contract.md#telling-the-dialects-apart
        scopes = self._authenticate(request)
        if isinstance(scopes, web.Response):
            return scopes
        path_known = False
        for method, pattern, scope, handler in self._routes:
            if pattern.fullmatch(request.path) is None:
                continue
            path_known = True
            if method != request.method:
                continue
            try:
                if not _has_scope(scopes, scope):
                    raise Problem(403, "Insufficient scope: " + scope)
                return await handler(request, scopes)
            except Problem as problem:
                return huma_problem(request, problem)
        return web.Response(status=405) if path_known else go_not_found()

    def _authenticate(self, request: web.Request) -> frozenset[str] | web.Response:
        raw = request.headers.get("X-API-Key", "").strip()
        if not raw:
            parts = request.headers.get("Authorization", "").split(" ", 1)
            if len(parts) == 2 and parts[0].lower() == "bearer":
                raw = parts[1].strip()
        if not raw:
            return plain_problem(401, "Missing API key or Authorization header")
        scopes = self._ctx.api_keys.get(raw) if raw.startswith(API_KEY_PREFIXES) else None
        if scopes is None:
            return plain_problem(401, "Invalid API key")
        return scopes

    # -- health & organizations ----------------------------------------------------------------
    async def _health(self, request: web.Request, scopes: frozenset[str]) -> web.Response:
        return _with_link(request, "HealthStatus", health_body(self._ctx))

    async def _create_org(self, request: web.Request, scopes: frozenset[str]) -> web.Response:
        body = await _read_body(request, v01_schema.CREATE_ORGANIZATION)
        # docs/contract.md#api-keys-and-scopes: v0.1.1 lets any organizations:write key create one
        # (its NKey still publishes only for the key's own organization); the newest code lets only admin keys.
        if self._ctx.release == "rc" and SCOPE_ADMIN not in scopes:
            raise Problem(403, "API key is not authorized for all organizations")
        try:
            row = self._ctx.store.create_org(body["name"], body["org_type"], body.get("metadata"))
        except ConstraintError as exc:  # org_type is checked by the database only
            raise Problem(500, _INTERNAL) from exc
        return _with_link(request, "Organization", org_view(row), status=201)

    async def _list_orgs(self, request: web.Request, scopes: frozenset[str]) -> web.Response:
        if SCOPE_ADMIN in scopes or self._ctx.release == "v0.1.1":  # v0.1.1 lists every organization
            return web.json_response([org_view(r) for r in self._ctx.store.list_orgs()])
        row = self._ctx.store.get_org(DEFAULT_ORG_ID)  # newest: a non-admin key sees its own org only
        if row is None:
            raise Problem(404, "Organization not found")
        return web.json_response([org_view(row)])

    async def _get_org(self, request: web.Request, scopes: frozenset[str]) -> web.Response:
        org_id = _match(_ORG, request.path, "org_id")
        _require_org_access(self._ctx, scopes, org_id)
        row = self._ctx.store.get_org(org_id)
        if row is None:
            raise Problem(404, "Organization not found")
        return _with_link(request, "Organization", org_view(row))

    async def _delete_org(self, request: web.Request, scopes: frozenset[str]) -> web.Response:
        org_id = _match(_ORG, request.path, "org_id")
        _require_org_access(self._ctx, scopes, org_id)
        try:
            self._ctx.store.delete_org(org_id)
        except NotFoundError as exc:
            raise Problem(404, "Organization not found") from exc
        return _with_link(request, "DeletedOutput", {"message": "Organization deleted successfully"})

    # -- entities ------------------------------------------------------------------------------
    async def _create_entity(self, request: web.Request, scopes: frozenset[str]) -> web.Response:
        org_id = _match(_ORG + "/entities", request.path, "org_id")
        body = await _read_body(request, v01_schema.CREATE_ENTITY)
        values: Row = {
            "name": body.get("name", ""),
            "entity_type": body["entity_type"],
            "status": body.get("status") or "unknown",
            "priority": body.get("priority") or "normal",
            "metadata": go_json(body["metadata"]) if body.get("metadata") is not None else "{}",
            "video_config": go_json(body["video_config"]) if body.get("video_config") is not None else "{}",
            **_position_columns(body.get("position")),
        }
        try:
            row = self._ctx.store.create_entity(org_id, values)
        except ConstraintError as exc:  # unknown org_id: foreign key
            raise Problem(500, _INTERNAL) from exc
        await self._ctx.entity_changed("created", row)
        return _with_link(request, "Entity", entity_view(row, fresh=True), status=201)

    async def _list_entities(self, request: web.Request, scopes: frozenset[str]) -> web.Response:
        org_id = _match(_ORG + "/entities", request.path, "org_id")
        return web.json_response([entity_view(r) for r in self._ctx.store.list_entities(org_id)])

    async def _get_entity(self, request: web.Request, scopes: frozenset[str]) -> web.Response:
        org_id, entity_id = _entity_ids(request.path)
        try:
            return _with_link(request, "Entity", entity_view(self._ctx.store.get_entity(org_id, entity_id)))
        except NotFoundError as exc:
            raise Problem(404, "Entity not found") from exc

    async def _update_entity(self, request: web.Request, scopes: frozenset[str]) -> web.Response:
        org_id, entity_id = _entity_ids(request.path)
        body = await _read_body(request, v01_schema.UPDATE_ENTITY)
        updates: Row = {k: body[k] for k in ("name", "status", "priority") if body.get(k)}
        updates.update({k: body[k] for k in ("is_live", "metadata", "video_config") if body.get(k) is not None})
        updates.update(_position_columns(body.get("position")))
        if not updates:
            raise Problem(400, "No updates provided")
        try:
            row = self._ctx.store.update_entity(org_id, entity_id, updates)
        except NotFoundError as exc:
            raise Problem(404, "Entity not found") from exc
        except ConstraintError as exc:
            raise Problem(500, _INTERNAL) from exc
        await self._ctx.entity_changed("updated", row)
        return _with_link(request, "Entity", entity_view(row))

    async def _delete_entity(self, request: web.Request, scopes: frozenset[str]) -> web.Response:
        org_id, entity_id = _entity_ids(request.path)
        try:
            row = self._ctx.store.delete_entity(org_id, entity_id)
        except NotFoundError as exc:
            raise Problem(404, "Entity not found") from exc
        await self._ctx.entity_changed("deleted", row)
        return _with_link(request, "DeletedOutput", {"message": "Entity deleted successfully"})


def _has_scope(scopes: frozenset[str], required: str) -> bool:
    return required in scopes or SCOPE_ADMIN in scopes  # admin implies every scope (docs/contract.md)


def _require_org_access(ctx: ApiContext, scopes: frozenset[str], org_id: str) -> None:
    """The newest code binds a non-admin key to its organization on REST too; v0.1.1 only on NATS."""
    if ctx.release == "rc" and SCOPE_ADMIN not in scopes and org_id != DEFAULT_ORG_ID:
        raise Problem(403, "API key is not authorized for this organization")


def _match(pattern: str, path: str, group: str) -> str:
    found = re.fullmatch(pattern, path)
    assert found is not None  # only called for a path the router already matched
    return found.group(group)


def _entity_ids(path: str) -> tuple[str, str]:
    return _match(_ENTITY, path, "org_id"), _match(_ENTITY, path, "entity_id")
