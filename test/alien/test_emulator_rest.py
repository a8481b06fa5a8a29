"""The emulator's REST routes against docs/contract.md: the legacy envelope and the v0.1 path-scoped bodies."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from emulator_support import LEGACY_AUTH, V01_AUTH, Http, legacy_entity, legacy_org, v01_entity

from alien_testing import MothershipEmulator
from alien_testing.emulator.contract import (
    DB_STATUSES,
    ENTITY_TYPES_V001,
    ENTITY_TYPES_V01,
    ORG_TYPES,
    PRIORITIES,
    V01_API_STATUSES,
)

pytestmark = pytest.mark.timeout(60)


def is_uuid(value: str) -> bool:
    return str(uuid.UUID(value)) == value


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
