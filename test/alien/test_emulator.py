"""The mothership emulator's fidelity to docs/contract.md, against a real nats-server."""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import nats
import nats.js.errors
import pytest
import pytest_asyncio
from nats.js.api import ConsumerConfig, DiscardPolicy, RetentionPolicy

from alien_testing import DEFAULT_API_KEY, DEFAULT_BEARER_TOKEN, MothershipEmulator, NatsServer
from alien_testing.emulator import KV_BUCKET, stream_specs
from alien_testing.emulator.contract import (
    DB_STATUSES,
    ENTITY_TYPES_V001,
    ENTITY_TYPES_V01,
    ORG_TYPES,
    PRIORITIES,
    V01_API_STATUSES,
)

pytestmark = pytest.mark.timeout(60)

LEGACY_AUTH = {"Authorization": f"Bearer {DEFAULT_BEARER_TOKEN}"}
V01_AUTH = {"X-API-Key": DEFAULT_API_KEY}
BOTH = pytest.mark.parametrize("mothership_dialect", ["v0.0.1", "v0.1"])


class Http:
    """A thin aiohttp wrapper returning (status, content type, decoded body)."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def __call__(self, method: str, url: str, **kwargs: Any) -> tuple[int, str, Any]:
        async with self.session.request(method, url, **kwargs) as resp:
            text = await resp.text()
            try:
                body: Any = json.loads(text)
            except ValueError:
                body = text
            return resp.status, resp.content_type, body


@pytest_asyncio.fixture
async def http() -> AsyncIterator[Http]:
    async with aiohttp.ClientSession() as session:
        yield Http(session)


@pytest_asyncio.fixture
async def js(nats_server: NatsServer) -> AsyncIterator[Any]:
    nc = await nats.connect(nats_server.url, reconnect_time_wait=0.1)
    try:
        yield nc.jetstream()
    finally:
        await nc.close()


def is_uuid(value: str) -> bool:
    return str(uuid.UUID(value)) == value


async def legacy_org(http: Http, em: MothershipEmulator, org_type: str = "commercial") -> str:
    status, _, body = await http(
        "POST", f"{em.url}/api/v1/organizations", json={"name": "Fleet", "org_type": org_type}, headers=LEGACY_AUTH
    )
    assert status == 201, body
    return str(body["data"]["org_id"])


async def legacy_entity(http: Http, em: MothershipEmulator, org_id: str, **fields: Any) -> dict[str, Any]:
    body = {"entity_type": "aircraft_multirotor", **fields}
    status, _, resp = await http(
        "POST", f"{em.url}/api/v1/entities", params={"org_id": org_id}, json=body, headers=LEGACY_AUTH
    )
    assert status == 201, resp
    return dict(resp["data"])


async def v01_entity(http: Http, em: MothershipEmulator, org_id: str = "default", **fields: Any) -> dict[str, Any]:
    body = {"entity_type": "aircraft_multirotor", "name": "hawk-1", **fields}
    status, _, resp = await http(
        "POST", f"{em.url}/api/v1/organizations/{org_id}/entities", json=body, headers=V01_AUTH
    )
    assert status == 201, resp
    return dict(resp)


# -- docs/contract.md#telling-the-dialects-apart -----------------------------------------------


@pytest.mark.asyncio
async def test_legacy_health_is_an_envelope_without_auth_and_openapi_is_404(
    emulator: MothershipEmulator, http: Http
) -> None:
    status, ctype, body = await http("GET", f"{emulator.url}/health")
    assert (status, ctype) == (200, "application/json")
    assert body["success"] is True and body["data"]["status"] == "healthy"
    status, _, body = await http("GET", f"{emulator.url}/api/openapi.json")
    assert status == 404 and body == "404 page not found\n"


@pytest.mark.asyncio
async def test_v01_health_is_bare_and_openapi_is_served(emulator_v01: MothershipEmulator, http: Http) -> None:
    status, _, body = await http("GET", f"{emulator_v01.url}/health")
    assert (status, body) == (200, {"status": "ok"})
    status, _, doc = await http("GET", f"{emulator_v01.url}/api/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    assert {"/v1/organizations", "/v1/organizations/{org_id}/entities/{entity_id}"} <= set(doc["paths"])
    refs = [ref for ref in _walk_refs(doc)]
    assert refs and all(ref.removeprefix("#/components/schemas/") in doc["components"]["schemas"] for ref in refs)
    assert doc["components"]["schemas"]["CreateEntityRequest"]["properties"]["entity_type"]["enum"] == list(
        ENTITY_TYPES_V01
    )


def _walk_refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _walk_refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _walk_refs(value)]
    return []


@pytest.mark.asyncio
async def test_v01_api_health_needs_an_admin_key(make_emulator: Any, http: Http) -> None:
    em = make_emulator(dialect="v0.1", api_keys={DEFAULT_API_KEY: {"admin"}, "c4_live_reader": {"entities:read"}})
    status, _, body = await http("GET", f"{em.url}/api/v1/health", headers=V01_AUTH)
    assert status == 200
    assert {"status", "service", "timestamp", "details"} <= set(body) and body["status"] == "healthy"
    assert (await http("GET", f"{em.url}/api/v1/health"))[0] == 401
    assert (await http("GET", f"{em.url}/api/v1/health", headers={"X-API-Key": "c4_live_reader"}))[0] == 403


@pytest.mark.parametrize("emulator", ["v0.1"], indirect=True)
def test_emulator_fixture_takes_an_indirect_dialect(emulator: MothershipEmulator) -> None:
    assert emulator.dialect == "v0.1" and emulator.api_keys == {DEFAULT_API_KEY: frozenset({"admin"})}


def test_sync_callers_can_use_the_emulator(emulator: MothershipEmulator) -> None:
    """No event loop in the test thread (a ROS test): plain urllib works."""
    with urllib.request.urlopen(f"{emulator.url}/health", timeout=5) as resp:
        assert json.load(resp)["data"]["status"] == "healthy"


# -- docs/contract.md#api-keys-and-scopes ------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "headers, message",
    [
        ({}, "Missing authorization header"),
        ({"Authorization": "Token constellation-dev-token"}, "Invalid authorization format"),
        ({"Authorization": "Bearer wrong"}, "Invalid token"),
    ],
)
async def test_legacy_bearer_auth(
    emulator: MothershipEmulator, http: Http, headers: dict[str, str], message: str
) -> None:
    status, _, body = await http("GET", f"{emulator.url}/api/v1/organizations", headers=headers)
    assert status == 401
    assert body == {"success": False, "error": {"code": "UNAUTHORIZED", "message": message}}
    assert (await http("GET", f"{emulator.url}/api/v1/organizations", headers=LEGACY_AUTH))[0] == 200


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "headers, detail",
    [
        ({}, "Missing API key or Authorization header"),
        ({"X-API-Key": "not-a-c4-key"}, "Invalid API key"),
        ({"X-API-Key": "c4_test_unknown"}, "Invalid API key"),
        ({"Authorization": "Bearer c4_test_unknown"}, "Invalid API key"),
    ],
)
async def test_v01_api_key_auth_401(
    emulator_v01: MothershipEmulator, http: Http, headers: dict[str, str], detail: str
) -> None:
    status, ctype, body = await http("GET", f"{emulator_v01.url}/api/v1/organizations", headers=headers)
    assert (status, ctype) == (401, "application/problem+json")
    assert body == {"status": 401, "title": "Unauthorized", "detail": detail}


@pytest.mark.asyncio
async def test_v01_key_accepted_as_header_or_bearer(emulator_v01: MothershipEmulator, http: Http) -> None:
    for headers in (V01_AUTH, {"Authorization": f"Bearer {DEFAULT_API_KEY}"}):
        status, _, body = await http("GET", f"{emulator_v01.url}/api/v1/organizations", headers=headers)
        # a first boot has "default" (docs/contract.md#api-keys-and-scopes)
        assert status == 200 and [o["org_id"] for o in body] == ["default"]


@pytest.mark.asyncio
@pytest.mark.parametrize("release", ["v0.1.1", "rc"])
async def test_v01_scopes_403(make_emulator: Any, http: Http, release: str) -> None:
    em = make_emulator(
        dialect="v0.1",
        release=release,
        api_keys={
            "c4_test_reader": {"entities:read", "organizations:read"},
            "c4_test_orgwriter": {"organizations:write"},
            "c4_live_admin": {"admin"},
        },
    )
    url = f"{em.url}/api/v1/organizations/default/entities"
    body = {"entity_type": "aircraft_multirotor"}
    status, ctype, problem = await http("POST", url, json=body, headers={"X-API-Key": "c4_test_reader"})
    assert (status, ctype, problem["detail"]) == (403, "application/problem+json", "Insufficient scope: entities:write")
    assert (await http("GET", url, headers={"X-API-Key": "c4_test_reader"}))[0] == 200
    org = {"name": "Fleet", "org_type": "commercial"}
    status, _, problem = await http(
        "POST", f"{em.url}/api/v1/organizations", json=org, headers={"X-API-Key": "c4_test_orgwriter"}
    )
    if release == "rc":
        assert status == 403 and "not authorized for all organizations" in problem["detail"]  # admin only
    else:
        assert status == 201  # v0.1.1 lets an organizations:write key create one
        listed = await http("GET", f"{em.url}/api/v1/organizations", headers={"X-API-Key": "c4_test_reader"})
        assert sorted(o["name"] for o in listed[2]) == ["Default Organization", "Fleet"]  # v0.1.1 lists all
    assert (await http("POST", url, json=body, headers={"X-API-Key": "c4_live_admin"}))[0] == 201  # admin implies all


# -- docs/contract.md#legacy-rest --------------------------------------------------------------


@pytest.mark.asyncio
async def test_legacy_organizations(emulator: MothershipEmulator, http: Http) -> None:
    status, _, body = await http("GET", f"{emulator.url}/api/v1/organizations", headers=LEGACY_AUTH)
    assert (status, body) == (200, {"success": True, "data": None})  # Go's nil slice
    org_id = await legacy_org(http, emulator)
    assert is_uuid(org_id)
    status, _, body = await http(
        "GET", f"{emulator.url}/api/v1/organizations", params={"org_id": org_id}, headers=LEGACY_AUTH
    )
    assert status == 200 and body["data"]["name"] == "Fleet" and body["data"]["org_type"] == "commercial"
    status, _, body = await http("GET", f"{emulator.url}/api/v1/organizations", headers=LEGACY_AUTH)
    assert [o["org_id"] for o in body["data"]] == [org_id]
    status, _, body = await http(
        "GET", f"{emulator.url}/api/v1/organizations", params={"org_id": str(uuid.uuid4())}, headers=LEGACY_AUTH
    )
    assert status == 404 and body["error"]["code"] == "NOT_FOUND"
    assert emulator.organizations()[0]["org_id"] == org_id


@pytest.mark.asyncio
async def test_legacy_entity_metadata_is_a_json_string_and_position_is_flat(
    emulator: MothershipEmulator, http: Http
) -> None:
    org_id = await legacy_org(http, emulator)
    created = await legacy_entity(
        http,
        emulator,
        org_id,
        status="active",
        priority="high",
        position={"latitude": 40.7, "longitude": -74.0, "altitude": 100.0},
        metadata={"name": "HAWK-1", "client": "alien"},
    )
    assert is_uuid(created["entity_id"])
    assert isinstance(created["metadata"], str)  # a JSON-encoded string
    assert json.loads(created["metadata"]) == {"name": "HAWK-1", "client": "alien"}
    assert (created["latitude"], created["longitude"], created["altitude"]) == (40.7, -74.0, 100.0)
    assert "position" not in created and (created["status"], created["priority"]) == ("active", "high")
    status, _, body = await http(
        "GET",
        f"{emulator.url}/api/v1/entities",
        params={"org_id": org_id, "entity_id": created["entity_id"]},
        headers=LEGACY_AUTH,
    )
    assert status == 200 and body["data"]["metadata"] == created["metadata"]
    status, _, body = await http(
        "GET", f"{emulator.url}/api/v1/entities", params={"org_id": org_id}, headers=LEGACY_AUTH
    )
    assert [e["entity_id"] for e in body["data"]] == [created["entity_id"]]
    defaults = await legacy_entity(http, emulator, org_id)
    assert (defaults["status"], defaults["priority"], defaults["metadata"]) == ("unknown", "normal", "{}")


@pytest.mark.asyncio
async def test_legacy_enums_accept_exactly_the_contract_lists(emulator: MothershipEmulator, http: Http) -> None:
    for org_type in ORG_TYPES:
        await legacy_org(http, emulator, org_type)
    org_id = await legacy_org(http, emulator)
    for entity_type in ENTITY_TYPES_V001:
        await legacy_entity(http, emulator, org_id, entity_type=entity_type)
    for status in DB_STATUSES:
        await legacy_entity(http, emulator, org_id, status=status)
    for priority in PRIORITIES:
        await legacy_entity(http, emulator, org_id, priority=priority)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "field, value",
    [
        ("entity_type", "drone"),
        ("entity_type", "robot"),
        ("entity_type", "sensor"),
        ("entity_type", "aircraft_airship"),  # later versions only
        ("status", "returning"),
        ("priority", "urgent"),
    ],
)
async def test_legacy_enum_violation_is_500_create_failed(
    emulator: MothershipEmulator, http: Http, field: str, value: str
) -> None:
    org_id = await legacy_org(http, emulator)
    body = {"entity_type": "aircraft_multirotor", field: value}
    status, _, resp = await http(
        "POST", f"{emulator.url}/api/v1/entities", params={"org_id": org_id}, json=body, headers=LEGACY_AUTH
    )
    assert status == 500 and resp["success"] is False and resp["error"]["code"] == "CREATE_FAILED"
    assert emulator.entities() == []


@pytest.mark.asyncio
async def test_legacy_bad_org_type_and_unknown_org_are_500(emulator: MothershipEmulator, http: Http) -> None:
    status, _, body = await http(
        "POST", f"{emulator.url}/api/v1/organizations", json={"name": "x", "org_type": "company"}, headers=LEGACY_AUTH
    )
    assert status == 500 and body["error"]["code"] == "CREATE_FAILED"
    status, _, body = await http(
        "POST",
        f"{emulator.url}/api/v1/entities",
        params={"org_id": str(uuid.uuid4())},
        json={"entity_type": "aircraft_multirotor"},
        headers=LEGACY_AUTH,
    )
    assert status == 500 and body["error"]["code"] == "CREATE_FAILED"  # foreign key
    status, _, body = await http(
        "POST", f"{emulator.url}/api/v1/entities", json={"entity_type": "aircraft_multirotor"}, headers=LEGACY_AUTH
    )
    assert status == 400 and body["error"]["code"] == "MISSING_ORG_ID"


@pytest.mark.asyncio
async def test_legacy_put_flat_subset_and_delete(emulator: MothershipEmulator, http: Http) -> None:
    org_id = await legacy_org(http, emulator)
    entity_id = (await legacy_entity(http, emulator, org_id))["entity_id"]
    where = {"org_id": org_id, "entity_id": entity_id}
    update = {
        "status": "maintenance",
        "priority": "low",
        "entity_type": "ground_vehicle_wheeled",
        "is_live": True,
        "latitude": 1.5,
        "longitude": 2.5,
        "altitude": 30.0,
        "heading": 90.0,
        "velocity": 4.0,
        "metadata": {"k": "v"},
        "components": {"gps": True},
        "tags": ["a", "b"],
    }
    status, _, body = await http(
        "PUT", f"{emulator.url}/api/v1/entities", params=where, json=update, headers=LEGACY_AUTH
    )
    assert status == 200, body
    data = body["data"]
    for key in (
        "status",
        "priority",
        "entity_type",
        "is_live",
        "latitude",
        "longitude",
        "altitude",
        "heading",
        "velocity",
    ):
        assert data[key] == update[key]
    assert json.loads(data["metadata"]) == {"k": "v"} and json.loads(data["tags"]) == ["a", "b"]
    for bad in ({"status": "returning"}, {"heading": 400}, {}):
        status, _, body = await http(
            "PUT", f"{emulator.url}/api/v1/entities", params=where, json=bad, headers=LEGACY_AUTH
        )
        assert status == 500 and body["error"]["code"] == "UPDATE_FAILED", bad
    missing = {"org_id": org_id, "entity_id": str(uuid.uuid4())}
    status, _, body = await http(
        "PUT", f"{emulator.url}/api/v1/entities", params=missing, json={"status": "active"}, headers=LEGACY_AUTH
    )
    assert status == 404 and body["error"]["code"] == "NOT_FOUND"
    status, _, body = await http("DELETE", f"{emulator.url}/api/v1/entities", params=where, headers=LEGACY_AUTH)
    assert status == 200 and body["success"] is True
    for method in ("GET", "DELETE"):
        status, _, body = await http(method, f"{emulator.url}/api/v1/entities", params=where, headers=LEGACY_AUTH)
        assert status == 404 and body["error"]["code"] == "NOT_FOUND"


# -- docs/contract.md#path-scoped-rest ---------------------------------------------------------


@pytest.mark.asyncio
async def test_v01_bare_bodies_and_path_scoped_routes(emulator_v01: MothershipEmulator, http: Http) -> None:
    em = emulator_v01
    status, _, org = await http(
        "POST", f"{em.url}/api/v1/organizations", json={"name": "Fleet", "org_type": "commercial"}, headers=V01_AUTH
    )
    assert status == 201 and is_uuid(org["org_id"]) and "success" not in org
    created = await v01_entity(
        http, em, org["org_id"], status="active", metadata={"a": 1}, position={"latitude": 10.0, "longitude": 20.0}
    )
    assert is_uuid(created["entity_id"]) and created["name"] == "hawk-1" and "data" not in created
    assert (created["latitude"], created["longitude"]) == (10.0, 20.0)
    base = f"{em.url}/api/v1/organizations/{org['org_id']}/entities"
    status, _, got = await http("GET", f"{base}/{created['entity_id']}", headers=V01_AUTH)
    assert status == 200 and got["entity_id"] == created["entity_id"]
    status, _, listed = await http("GET", base, headers=V01_AUTH)
    assert status == 200 and [e["entity_id"] for e in listed] == [created["entity_id"]]
    status, _, got = await http("GET", f"{em.url}/api/v1/organizations/{org['org_id']}", headers=V01_AUTH)
    assert status == 200 and got["name"] == "Fleet"


@pytest.mark.asyncio
async def test_v01_enums_accepted(emulator_v01: MothershipEmulator, http: Http) -> None:
    for entity_type in ENTITY_TYPES_V01:  # includes aircraft_airship
        await v01_entity(http, emulator_v01, entity_type=entity_type)
    for status in V01_API_STATUSES:
        await v01_entity(http, emulator_v01, status=status)
    for priority in PRIORITIES:
        await v01_entity(http, emulator_v01, priority=priority)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "field, value, message",
    [
        ("entity_type", "drone", "expected value to be one of"),
        ("status", "pending", "expected value to be one of"),  # valid in the database, not in the v0.1 API
        ("status", "returning", "expected value to be one of"),
        ("priority", "urgent", "expected value to be one of"),
        ("battery_level", 80, "unexpected property"),
    ],
)
async def test_v01_validation_is_422_problem(
    emulator_v01: MothershipEmulator, http: Http, field: str, value: Any, message: str
) -> None:
    body = {"entity_type": "aircraft_multirotor", field: value}
    status, ctype, problem = await http(
        "POST", f"{emulator_v01.url}/api/v1/organizations/default/entities", json=body, headers=V01_AUTH
    )
    assert (status, ctype) == (422, "application/problem+json")
    assert problem["status"] == 422 and problem["title"] == "Unprocessable Entity" and "detail" in problem
    assert [(e["location"], message in e["message"]) for e in problem["errors"]] == [(f"body.{field}", True)]


@pytest.mark.asyncio
async def test_v01_missing_entity_type_and_unknown_org(emulator_v01: MothershipEmulator, http: Http) -> None:
    status, _, problem = await http(
        "POST", f"{emulator_v01.url}/api/v1/organizations/default/entities", json={"name": "x"}, headers=V01_AUTH
    )
    assert status == 422 and "entity_type" in problem["errors"][0]["message"]
    status, ctype, problem = await http(
        "POST",
        f"{emulator_v01.url}/api/v1/organizations/nope/entities",
        json={"entity_type": "aircraft_multirotor"},
        headers=V01_AUTH,
    )
    assert (status, ctype, problem["status"]) == (500, "application/problem+json", 500)


@pytest.mark.asyncio
async def test_v01_update_and_delete(emulator_v01: MothershipEmulator, http: Http) -> None:
    created = await v01_entity(http, emulator_v01)
    url = f"{emulator_v01.url}/api/v1/organizations/default/entities/{created['entity_id']}"
    status, _, body = await http(
        "PUT",
        url,
        headers=V01_AUTH,
        json={"status": "inactive", "name": "hawk-2", "is_live": True, "position": {"latitude": 1.0, "longitude": 2.0}},
    )
    assert status == 200, body
    assert (body["status"], body["name"], body["is_live"], body["latitude"]) == ("inactive", "hawk-2", True, 1.0)
    status, _, problem = await http("PUT", url, headers=V01_AUTH, json={"entity_type": "aircraft_vtol"})
    assert status == 422 and problem["errors"][0]["message"] == "unexpected property"
    assert (await http("PUT", url, headers=V01_AUTH, json={}))[0] == 400
    status, _, body = await http("DELETE", url, headers=V01_AUTH)
    assert status == 200 and body["message"]
    for method in ("GET", "DELETE"):
        status, ctype, problem = await http(method, url, headers=V01_AUTH)
        assert (status, ctype, problem["detail"]) == (404, "application/problem+json", "Entity not found")
    status, _, problem = await http("PUT", url, headers=V01_AUTH, json={"status": "active"})
    assert status == 404


# -- entity events and KV ----------------------------------------------------------------------


@pytest.mark.asyncio
@BOTH
async def test_entity_changes_publish_entity_events(emulator: MothershipEmulator, http: Http) -> None:
    em = emulator
    if em.dialect == "v0.0.1":
        org_id = await legacy_org(http, em)
        entity_id = (await legacy_entity(http, em, org_id))["entity_id"]
        await http(
            "PUT",
            f"{em.url}/api/v1/entities",
            params={"org_id": org_id, "entity_id": entity_id},
            json={"status": "active"},
            headers=LEGACY_AUTH,
        )
    else:
        org_id = "default"
        entity_id = (await v01_entity(http, em))["entity_id"]
        await http(
            "PUT",
            f"{em.url}/api/v1/organizations/default/entities/{entity_id}",
            json={"status": "active"},
            headers=V01_AUTH,
        )
    em.delete_entity(org_id, entity_id)
    await em.wait_for_async(lambda: len(em.entity_events()) == 3, what="3 entity events")
    events = [m.json() for m in em.entity_events()]
    assert [e["type"] for e in events] == ["created", "updated", "deleted"]
    assert all(e["data"]["entity_id"] == entity_id for e in events)
    assert all(m.subject.startswith(f"constellation.entities.{org_id}.") for m in em.entity_events())
    assert all("Nats-Msg-Id" in m.headers for m in em.entity_events())
    assert em.entities() == []
    with pytest.raises(LookupError):
        em.delete_entity(org_id, entity_id)


@pytest.mark.asyncio
@BOTH
async def test_kv_bucket_exists_only_for_v01(emulator: MothershipEmulator, js: Any, http: Http) -> None:
    if emulator.dialect == "v0.0.1":
        with pytest.raises(nats.js.errors.BucketNotFoundError):
            await js.key_value(KV_BUCKET)
        return
    kv = await js.key_value(KV_BUCKET)
    entity_id = (await v01_entity(http, emulator))["entity_id"]
    state = json.loads((await kv.get(entity_id)).value)
    assert (state["entity_id"], state["org_id"], state["name"]) == (entity_id, "default", "hawk-1")


# -- docs/contract.md#streams, #work-queue-consumers -------------------------------------------


@pytest.mark.asyncio
@BOTH
async def test_stream_configs_match_the_contract(emulator: MothershipEmulator, js: Any) -> None:
    expected = {  # docs/contract.md#streams: subjects, retention, dup window, max msg, discard
        "CONSTELLATION_ENTITIES": ("constellation.entities.>", RetentionPolicy.LIMITS, 120, 1024 * 1024, "old"),
        "CONSTELLATION_EVENTS": ("constellation.events.>", RetentionPolicy.WORK_QUEUE, 120, 256 * 1024, "old"),
        "CONSTELLATION_TELEMETRY": (
            "constellation.telemetry.>",
            RetentionPolicy.INTEREST if emulator.dialect == "v0.0.1" else RetentionPolicy.LIMITS,
            30,
            64 * 1024 if emulator.dialect == "v0.0.1" else 128 * 1024,
            "old",
        ),
        "CONSTELLATION_COMMANDS": ("constellation.commands.>", RetentionPolicy.WORK_QUEUE, 60, 32 * 1024, "new"),
    }
    consumers = {
        "CONSTELLATION_ENTITIES": "entity-processor",
        "CONSTELLATION_EVENTS": "event-processor",
        "CONSTELLATION_TELEMETRY": "telemetry-processor",
        "CONSTELLATION_COMMANDS": "command-processor",
    }
    for name, (subject, retention, window, max_msg, discard) in expected.items():
        config = (await js.stream_info(name)).config
        assert config.subjects == [subject]
        assert config.retention == retention
        assert config.duplicate_window == window
        assert config.max_msg_size == max_msg
        assert config.discard == DiscardPolicy(discard)
        info = await js.consumer_info(name, consumers[name])
        assert info.config.durable_name == consumers[name] and info.config.deliver_subject is None  # pull
    assert [s.name for s in stream_specs(emulator.dialect)] == list(expected)


@pytest.mark.asyncio
async def test_duplicate_msg_id_within_window_is_flagged(emulator: MothershipEmulator, js: Any) -> None:
    subject = "constellation.telemetry.org-1.ent-1"
    first = await js.publish(subject, b'{"n":1}', headers={"Nats-Msg-Id": "m-1"})
    again = await js.publish(subject, b'{"n":1}', headers={"Nats-Msg-Id": "m-1"})
    assert not first.duplicate and again.duplicate is True and again.seq == first.seq
    await emulator.wait_for_async(lambda: len(emulator.telemetry()) >= 1, what="telemetry")
    received = emulator.telemetry()
    assert len(received) == 1 and received[0].headers["Nats-Msg-Id"] == "m-1"
    assert (received[0].subject, received[0].json(), received[0].stream_seq) == (subject, {"n": 1}, first.seq)


@pytest.mark.asyncio
async def test_command_processor_drains_commands_and_refuses_a_second_consumer(
    emulator: MothershipEmulator, js: Any
) -> None:
    subject = "constellation.commands.org-1.ent-1"
    with pytest.raises(nats.js.errors.BadRequestError) as refused:
        await js.add_consumer(
            "CONSTELLATION_COMMANDS", ConsumerConfig(durable_name="alien-ent-1", filter_subject=subject)
        )
    assert refused.value.err_code == 10100  # filtered consumer not unique on workqueue stream
    ack = await js.publish(subject, json.dumps({"type": "return_to_base"}).encode(), headers={"Nats-Msg-Id": "c1"})
    await emulator.wait_for_async(lambda: len(emulator.commands()) == 1, what="command recorded")
    command = emulator.commands()[0]
    assert (command.subject, command.stream_seq, command.json()["type"]) == (subject, ack.seq, "return_to_base")
    assert (await js.stream_info("CONSTELLATION_COMMANDS")).state.messages == 0  # acked -> gone


@pytest.mark.asyncio
async def test_without_command_processor_a_durable_consumer_is_accepted(make_emulator: Any, js: Any) -> None:
    em = make_emulator(command_processor=False)
    subject = "constellation.commands.org-1.ent-1"
    sub = await js.pull_subscribe(subject, durable="alien-ent-1", stream="CONSTELLATION_COMMANDS")
    await js.publish(subject, b'{"type":"stop"}')
    msgs = await sub.fetch(1, timeout=5)
    assert msgs[0].data == b'{"type":"stop"}'
    await msgs[0].ack()
    assert em.commands() == []
    with pytest.raises(nats.js.errors.NotFoundError):
        await js.consumer_info("CONSTELLATION_COMMANDS", "command-processor")


@pytest.mark.asyncio
async def test_core_subscription_sees_commands_live(emulator: MothershipEmulator, nats_server: NatsServer) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        sub = await nc.subscribe("constellation.commands.org-1.ent-1")
        await nc.flush()
        await nc.jetstream().publish("constellation.commands.org-1.ent-1", b'{"command_type":"land"}')
        assert (await sub.next_msg(timeout=5)).data == b'{"command_type":"land"}'
    finally:
        await nc.close()
    await emulator.wait_for_async(lambda: len(emulator.commands()) == 1, what="command-processor copy")


@pytest.mark.asyncio
@BOTH
async def test_events_are_consumed_and_oversized_commands_refused(emulator: MothershipEmulator, js: Any) -> None:
    ack = await js.publish("constellation.events.org-1.bootsequence", b'{"event_type":"bootsequence"}')
    await emulator.wait_for_async(lambda: len(emulator.events()) == 1, what="event")
    assert emulator.events()[0].stream_seq == ack.seq
    assert (await js.stream_info("CONSTELLATION_EVENTS")).state.messages == 0  # work queue
    with pytest.raises(nats.js.errors.BadRequestError) as refused:
        await js.publish("constellation.commands.org-1.ent-1", b"x" * (32 * 1024 + 1))
    assert refused.value.err_code == 10054  # 32 KiB max message


@pytest.mark.asyncio
@pytest.mark.parametrize("crash", [False, True], ids=["restart", "kill-and-start"])
async def test_emulator_survives_a_nats_server_restart(
    emulator: MothershipEmulator, nats_server: NatsServer, crash: bool
) -> None:
    if crash:  # no goodbye from the server: the processors notice the silence and recover
        nats_server.kill()
        nats_server.start()
    else:
        nats_server.restart()
    nc = await nats.connect(nats_server.url)
    try:
        await nc.jetstream().publish("constellation.commands.org-1.ent-1", b'{"type":"after-restart"}')
    finally:
        await nc.close()
    await emulator.wait_for_async(lambda: len(emulator.commands()) == 1, timeout=15, what="command after restart")
    await emulator.wait_for_async(lambda: emulator.nats_connected, timeout=15, what="emulator reconnected")


@pytest.mark.asyncio
async def test_health_reports_the_nats_link(emulator: MothershipEmulator, nats_server: NatsServer, http: Http) -> None:
    nats_server.kill()
    await emulator.wait_for_async(lambda: not emulator.nats_connected, what="emulator sees NATS down")
    status, _, body = await http("GET", f"{emulator.url}/health")
    assert status == 503 and body["data"]["status"] == "unhealthy"
    assert body["data"]["details"]["nats"].startswith("unhealthy")
    nats_server.start()
    await emulator.wait_for_async(lambda: emulator.nats_connected, what="emulator reconnected")
    assert (await http("GET", f"{emulator.url}/health"))[0] == 200


@pytest.mark.asyncio
async def test_restart_on_an_existing_store_reuses_the_streams(nats_server: NatsServer) -> None:
    subject = "constellation.commands.org-1.ent-1"
    with MothershipEmulator(nats_server.url) as first:
        nc = await nats.connect(nats_server.url)
        await nc.jetstream().publish(subject, b"{}")
        await nc.close()
        await first.wait_for_async(lambda: len(first.commands()) == 1, what="command")  # acked (confirmed)
    await asyncio.to_thread(nats_server.restart)
    second = MothershipEmulator(nats_server.url)
    await asyncio.to_thread(second.start)  # create-or-verify: existing streams and consumers are fine
    try:
        nc = await nats.connect(nats_server.url)
        state = (await nc.jetstream().stream_info("CONSTELLATION_COMMANDS")).state
        await nc.close()
        assert (state.last_seq, state.messages) == (1, 0)  # the store survived; the command was consumed once
        assert second.commands() == []
    finally:
        await asyncio.to_thread(second.stop)


# -- faults and records ------------------------------------------------------------------------


@pytest.mark.asyncio
@BOTH
async def test_fail_next_requests_uses_the_dialect_error_shape(emulator: MothershipEmulator, http: Http) -> None:
    em = emulator
    auth = LEGACY_AUTH if em.dialect == "v0.0.1" else V01_AUTH
    url = f"{em.url}/api/v1/organizations"
    em.fail_next_requests(2, status=503)
    assert (await http("GET", f"{em.url}/health"))[0] == 200  # health is spared
    for _ in range(2):
        status, ctype, body = await http("GET", url, headers=auth)
        assert status == 503
        if em.dialect == "v0.0.1":
            assert body["success"] is False and body["error"]["code"] == "SERVICE_UNAVAILABLE"
        else:
            assert ctype == "application/problem+json" and body["status"] == 503
    assert (await http("GET", url, headers=auth))[0] == 200
    em.fail_next_requests(1, status=500)
    assert (await http("GET", url, headers=auth))[0] == 500


@pytest.mark.asyncio
async def test_set_unavailable_answers_503_everywhere(emulator: MothershipEmulator, http: Http) -> None:
    emulator.set_unavailable(True)
    assert (await http("GET", f"{emulator.url}/health"))[0] == 503
    assert (await http("GET", f"{emulator.url}/api/v1/organizations", headers=LEGACY_AUTH))[0] == 503
    emulator.set_unavailable(False)
    assert (await http("GET", f"{emulator.url}/health"))[0] == 200


@pytest.mark.asyncio
async def test_requests_record_header_names_but_never_values(emulator: MothershipEmulator, http: Http) -> None:
    await http("GET", f"{emulator.url}/api/v1/organizations", params={"org_id": "x"}, headers=LEGACY_AUTH)
    record = emulator.requests()[-1]
    assert (record.method, record.path, record.query, record.status) == (
        "GET",
        "/api/v1/organizations",
        {"org_id": "x"},
        404,
    )
    assert "Authorization" in record.header_names
    assert DEFAULT_BEARER_TOKEN not in repr(emulator.requests())


def test_wait_for_times_out_naming_what(emulator: MothershipEmulator) -> None:
    began = time.monotonic()
    with pytest.raises(TimeoutError, match="the impossible"):
        emulator.wait_for(lambda: False, timeout=0.2, what="the impossible")
    assert time.monotonic() - began < 2


def test_constructor_refuses_non_loopback_and_bad_keys(nats_server: NatsServer) -> None:
    with pytest.raises(ValueError, match="loopback"):
        MothershipEmulator(nats_server.url, host="0.0.0.0")
    with pytest.raises(ValueError, match="c4_live_"):
        MothershipEmulator(nats_server.url, dialect="v0.1", api_keys={"secret": {"admin"}})
    with pytest.raises(ValueError, match="dialect"):
        MothershipEmulator(nats_server.url, dialect="v9")  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_emulator_on_an_authenticated_nats_server(make_emulator: Any, http: Http) -> None:
    with NatsServer(user="mothership", password="pw-for-test") as secured:
        em = make_emulator(secured.url, nats_options={"user": "mothership", "password": "pw-for-test"})
        assert em.nats_connected
        status, _, body = await http("GET", f"{em.url}/health")
        assert status == 200 and body["data"]["details"]["nats"] == "healthy"
        em.stop()


# -- python -m alien_testing -------------------------------------------------------------------


def _read_until(proc: subprocess.Popen[bytes], needle: str, timeout: float) -> list[str]:
    """Lines of proc's stdout until one contains needle (bounded; raw reads, no buffering surprises)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    text = ""
    deadline = time.monotonic() + timeout
    while needle not in text:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise TimeoutError(f"no {needle!r} in {text!r}")
        chunk = os.read(fd, 4096)
        if not chunk:
            raise RuntimeError(f"exited early: {text!r}")
        text += chunk.decode()
    return text.splitlines()


def test_main_runs_in_the_foreground_until_sigterm() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "alien_testing", "--dialect", "v0.1", "--release", "rc"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        lines = _read_until(proc, "Ctrl-C", timeout=20)
        url = next(line.split(": ", 1)[1].strip() for line in lines if line.startswith("mothership emulator"))
        assert any("release rc" in line for line in lines)
        assert url.startswith("http://127.0.0.1:")
        assert any(DEFAULT_API_KEY in line for line in lines)
        with urllib.request.urlopen(f"{url}/health", timeout=5) as resp:
            assert json.load(resp) == {"status": "ok"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(f"{url}/health", timeout=2)
    finally:
        if proc.poll() is None:
            proc.terminate()  # lets it stop its nats-server; SIGKILL would orphan that child
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_async_waiting_does_not_block_the_loop(emulator: MothershipEmulator) -> None:
    async def scenario() -> int:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        with pytest.raises(TimeoutError):
            await emulator.wait_for_async(lambda: False, timeout=0.3, what="nothing")
        task.cancel()
        return ticks

    assert asyncio.run(scenario()) > 5
