"""Helpers shared by the test_emulator_* modules: auth headers, an HTTP client fixture, entity creation."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from alien_testing import DEFAULT_API_KEY, DEFAULT_BEARER_TOKEN, MothershipEmulator

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
