"""The v0.0.1 ("legacy") REST dialect, docs/contract.md#legacy-rest.

Query-scoped routes, a bearer token, ``{"success": ..}`` envelopes, enum violations as 500
``CREATE_FAILED`` / ``UPDATE_FAILED`` (database CHECK), metadata returned as a JSON string.
Routing mimics Go's ``http.ServeMux``: exact paths, method switch before auth, and a plain-text
``404 page not found`` elsewhere (so ``/api/openapi.json`` is a 404: the dialect signal).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from alien_testing.emulator.context import ApiContext, health_body
from alien_testing.emulator.store import ConstraintError, NotFoundError, NoUpdatesError, Row, go_json

GO_NOT_FOUND = "404 page not found\n"
_OPTIONAL_FLOATS = ("latitude", "longitude", "altitude", "heading", "velocity")


def ok(status: int, data: Any) -> web.Response:
    return web.json_response({"success": True, "data": data}, status=status)


def error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"success": False, "error": {"code": code, "message": message}}, status=status)


def go_not_found() -> web.Response:
    return web.Response(status=404, text=GO_NOT_FOUND, content_type="text/plain", charset="utf-8")


def org_view(row: Row) -> dict[str, Any]:
    out = {k: row[k] for k in ("org_id", "name", "org_type")}
    if row["metadata"]:
        out["metadata"] = row["metadata"]  # docs/contract.md#legacy-rest: a JSON-encoded string
    out["created_at"], out["updated_at"] = row["created_at"], row["updated_at"]
    return out


def entity_view(row: Row, *, fresh: bool = False) -> dict[str, Any]:
    """The v0.0.1 Entity: flat position, omitempty pointers, metadata as a JSON string (docs/contract.md#legacy-rest).

    ``fresh`` is the create response, built in memory by the server, so its components/tags
    columns are still empty and omitted.
    """
    out: dict[str, Any] = {k: row[k] for k in ("entity_id", "org_id", "entity_type", "status", "priority", "is_live")}
    out.update({k: row[k] for k in _OPTIONAL_FLOATS if row[k] is not None})
    if not fresh:
        out.update({k: row[k] for k in ("components", "tags") if row[k]})
    if row["metadata"]:
        out["metadata"] = row["metadata"]
    out["created_at"], out["updated_at"] = row["created_at"], row["updated_at"]
    return out


class BadRequest(Exception):
    """The body did not decode (Go's json.Decoder error)."""


def _decode(raw: bytes) -> Any:
    if not raw.strip():
        raise BadRequest("EOF")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"invalid character in JSON body: {exc}") from exc


def _decode_struct(raw: bytes, struct: str, fields: dict[str, str]) -> dict[str, Any]:
    """Decode into a Go struct: unknown fields ignored, null means zero value, wrong types fail."""
    body = _decode(raw)
    if not isinstance(body, dict):
        raise BadRequest(f"json: cannot unmarshal {_go_kind(body)} into Go value of type {struct}")
    out: dict[str, Any] = {}
    for name, kind in fields.items():
        value = body.get(name)
        if value is None:
            continue
        if not _matches(value, kind):
            raise BadRequest(
                f"json: cannot unmarshal {_go_kind(value)} into Go struct field {struct}.{name} of type {kind}"
            )
        out[name] = value
    return out


def _matches(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "float64":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, dict)  # maps and nested structs


def _go_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


class LegacyApi:
    """aiohttp handler for every path of a v0.0.1 server."""

    def __init__(self, ctx: ApiContext) -> None:
        self._ctx = ctx

    async def handle(self, request: web.Request) -> web.StreamResponse:
        routes = {
            "/api/v1/organizations": {"POST": self._create_org, "GET": self._get_orgs},
            "/api/v1/entities": {
                "POST": self._create_entity,
                "GET": self._get_entities,
                "PUT": self._update_entity,
                "DELETE": self._delete_entity,
            },
        }
        if request.path == "/health":
            return self._health()  # no auth, any method
        methods = routes.get(request.path)
        if methods is None:
            return go_not_found()
        handler = methods.get(request.method)
        if handler is None:
            return error(405, "METHOD_NOT_ALLOWED", "Method not allowed")
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        try:
            return await handler(request)
        except BadRequest as exc:
            return error(400, "INVALID_REQUEST", str(exc))

    def _health(self) -> web.Response:
        body = health_body(self._ctx)
        return ok(200 if body["status"] == "healthy" else 503, body)

    def _authenticate(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        if not header:
            return error(401, "UNAUTHORIZED", "Missing authorization header")
        parts = header.split(" ")
        if len(parts) != 2 or parts[0].lower() != "bearer":
            return error(401, "UNAUTHORIZED", "Invalid authorization format")
        if parts[1] != self._ctx.bearer_token:
            return error(401, "UNAUTHORIZED", "Invalid token")
        return None

    # -- organizations -------------------------------------------------------------------------
    async def _create_org(self, request: web.Request) -> web.Response:
        req = _decode_struct(
            await request.read(),
            "CreateOrganizationRequest",
            {"name": "string", "org_type": "string", "metadata": "map"},
        )
        try:
            row = self._ctx.store.create_org(req.get("name", ""), req.get("org_type", ""), req.get("metadata"))
        except ConstraintError as exc:  # docs/contract.md#legacy-rest: an enum violation is a 500 CREATE_FAILED
            return error(500, "CREATE_FAILED", f"failed to create organization: {exc}")
        return ok(201, org_view(row))

    async def _get_orgs(self, request: web.Request) -> web.Response:
        org_id = request.query.get("org_id", "")
        if not org_id:
            rows = self._ctx.store.list_orgs()
            return ok(200, [org_view(r) for r in rows] or None)  # Go encodes an empty nil slice as null
        row = self._ctx.store.get_org(org_id)
        if row is None:
            return error(404, "NOT_FOUND", "organization not found")
        return ok(200, org_view(row))

    # -- entities ------------------------------------------------------------------------------
    async def _create_entity(self, request: web.Request) -> web.Response:
        org_id = request.query.get("org_id", "")
        if not org_id:
            return error(400, "MISSING_ORG_ID", "org_id is required")
        req = _decode_struct(
            await request.read(),
            "CreateEntityRequest",
            {
                "entity_type": "string",
                "status": "string",
                "priority": "string",
                "position": "Position",
                "metadata": "map",
            },
        )
        values: Row = {
            "entity_type": req.get("entity_type", ""),
            "status": req.get("status") or "unknown",
            "priority": req.get("priority") or "normal",
            "metadata": go_json(req["metadata"]) if "metadata" in req else "{}",
        }
        if "position" in req:
            position = _decode_struct(
                json.dumps(req["position"]).encode(),
                "Position",
                {"latitude": "float64", "longitude": "float64", "altitude": "float64"},
            )
            values["latitude"] = position.get("latitude", 0.0)
            values["longitude"] = position.get("longitude", 0.0)
            if position.get("altitude"):  # the server stores altitude 0 as NULL
                values["altitude"] = position["altitude"]
        try:
            row = self._ctx.store.create_entity(org_id, values)
        except ConstraintError as exc:  # docs/contract.md#legacy-rest: bad enum or unknown org_id -> 500
            return error(500, "CREATE_FAILED", f"failed to create entity: {exc}")
        await self._ctx.entity_changed("created", row)
        return ok(201, entity_view(row, fresh=True))

    async def _get_entities(self, request: web.Request) -> web.Response:
        org_id = request.query.get("org_id", "")
        entity_id = request.query.get("entity_id", "")
        if entity_id:
            if not org_id:
                return error(400, "MISSING_PARAMS", "org_id and entity_id are required")
            try:
                return ok(200, entity_view(self._ctx.store.get_entity(org_id, entity_id)))
            except NotFoundError:
                return error(404, "NOT_FOUND", "entity not found")
        if not org_id:
            return error(400, "MISSING_ORG_ID", "org_id is required")
        rows = self._ctx.store.list_entities(org_id)
        return ok(200, [entity_view(r) for r in rows] or None)

    async def _update_entity(self, request: web.Request) -> web.Response:
        org_id, entity_id = request.query.get("org_id", ""), request.query.get("entity_id", "")
        if not org_id or not entity_id:
            return error(400, "MISSING_PARAMS", "org_id and entity_id are required")
        updates = _decode(await request.read())
        if not isinstance(updates, dict):
            go_type = "map[string]interface {}"
            raise BadRequest(f"json: cannot unmarshal {_go_kind(updates)} into Go value of type {go_type}")
        try:
            row = self._ctx.store.update_entity(org_id, entity_id, updates)
        except NotFoundError:
            return error(404, "NOT_FOUND", "entity not found")
        except (ConstraintError, NoUpdatesError) as exc:  # docs/contract.md#legacy-rest: 500 UPDATE_FAILED
            return error(500, "UPDATE_FAILED", f"failed to update entity: {exc}")
        await self._ctx.entity_changed("updated", row)
        return ok(200, entity_view(row))

    async def _delete_entity(self, request: web.Request) -> web.Response:
        org_id, entity_id = request.query.get("org_id", ""), request.query.get("entity_id", "")
        if not org_id or not entity_id:
            return error(400, "MISSING_PARAMS", "org_id and entity_id are required")
        try:
            row = self._ctx.store.delete_entity(org_id, entity_id)
        except NotFoundError:
            return error(404, "NOT_FOUND", "entity not found")
        await self._ctx.entity_changed("deleted", row)
        return ok(200, {"message": "Entity deleted successfully"})
