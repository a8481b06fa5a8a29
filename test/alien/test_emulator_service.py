"""The emulator as a service: telling the dialects apart, API keys and scopes, faults, records, the CLI."""

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
from typing import Any

import pytest
from emulator_support import BOTH, LEGACY_AUTH, V01_AUTH, Http

from alien_testing import DEFAULT_API_KEY, DEFAULT_BEARER_TOKEN, MothershipEmulator, NatsServer
from alien_testing.emulator.contract import ENTITY_TYPES_V01

pytestmark = pytest.mark.timeout(60)


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
