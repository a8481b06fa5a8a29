"""MothershipClient against the emulator over real HTTP, in both dialects of the contract."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from collections.abc import Callable
from typing import Any

import pytest

from alien import (
    AlienConfig,
    AuthenticationError,
    CertificateError,
    ConfigError,
    MothershipClient,
    MothershipUnavailableError,
    NotFoundError,
    PermissionDeniedError,
    RequestRejectedError,
    ServerError,
)
from alien.mothership import nearest_status, resolve_entity_type
from alien.settings import EntityDescription, MothershipSettings
from alien_testing.nats_server import make_tls_files

DIALECTS = ["v0.0.1", "v0.1"]


def _api_requests(emulator: Any) -> list[Any]:
    return [r for r in emulator.requests() if r.path.startswith("/api/v1/") and "health" not in r.path]


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_detects_dialect_without_configuration(
    make_emulator: Any, make_config: Callable[..., AlienConfig], dialect: str
) -> None:
    emulator = make_emulator(dialect=dialect)
    config = make_config(emulator)
    async with MothershipClient(MothershipSettings.from_config(config)) as client:
        assert client.dialect is None
        assert await client.detect_dialect() == dialect
        health = await client.health()
        assert health.get("status") in {"healthy", "ok"}


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_registers_org_and_entity_with_server_enums(
    make_emulator: Any, make_config: Callable[..., AlienConfig], dialect: str
) -> None:
    emulator = make_emulator(dialect=dialect)
    config = make_config(emulator, org_name="Drone Squadron Alpha", entity_type="drone", entity_name="HAWK-1")
    async with MothershipClient(MothershipSettings.from_config(config)) as client:
        org = await client.create_organization(config.org_name, config.org_type)
        entity = await client.create_entity(
            org["org_id"],
            EntityDescription.from_config(config),
            position={"latitude": 40.7, "longitude": -74.0, "altitude": 10},
        )
        fetched = await client.get_entity(org["org_id"], entity["entity_id"])
    assert fetched["entity_id"] == entity["entity_id"]
    # docs/contract.md#enumerations: `drone` is rejected by real servers; it travels as aircraft_multirotor
    assert fetched["entity_type"] == "aircraft_multirotor"
    assert isinstance(fetched["metadata"], dict)  # v0.0.1 sends a JSON string; normalized
    assert fetched["metadata"]["client"].startswith("alien-v")
    stored = [e for e in emulator.entities() if e["entity_id"] == entity["entity_id"]]
    assert stored and stored[0]["entity_type"] == "aircraft_multirotor"
    metadata = stored[0]["metadata"]
    metadata = json.loads(metadata) if isinstance(metadata, str) else metadata  # v0.0.1 stores a string
    assert (stored[0].get("name") or metadata.get("name")) == "HAWK-1"


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_status_the_server_rejects_is_mapped_to_nearest(
    make_emulator: Any, make_config: Callable[..., AlienConfig], dialect: str
) -> None:
    emulator = make_emulator(dialect=dialect)
    config = make_config(emulator)
    async with MothershipClient(MothershipSettings.from_config(config)) as client:
        org = await client.create_organization(config.org_name, config.org_type)
        entity = await client.create_entity(org["org_id"], EntityDescription.from_config(config))
        await client.update_entity_status(org["org_id"], entity["entity_id"], "returning")
        assert (await client.get_entity(org["org_id"], entity["entity_id"]))["status"] == "active"
        await client.update_entity_status(org["org_id"], entity["entity_id"], "maintenance")
        expected = "maintenance" if dialect == "v0.0.1" else "inactive"
        assert (await client.get_entity(org["org_id"], entity["entity_id"]))["status"] == expected


def test_status_table() -> None:
    assert nearest_status("returning", "v0.0.1") == "active"
    assert nearest_status("error", "v0.0.1") == "error"
    assert nearest_status("error", "v0.1") == "unknown"
    assert nearest_status("docked", "v0.1") == "inactive"
    assert nearest_status("never-heard-of-it", "v0.0.1") == "unknown"


def test_entity_type_table() -> None:
    assert resolve_entity_type("drone") == "aircraft_multirotor"
    assert resolve_entity_type("robot") == "ground_vehicle_wheeled"
    assert resolve_entity_type("rover") == "ground_vehicle_wheeled"
    assert resolve_entity_type("sensor") == "sensor_platform"
    assert resolve_entity_type("surface_vessel_usv") == "surface_vessel_usv"
    with pytest.raises(ConfigError, match=r"v0.0.1"):
        resolve_entity_type("airship", "v0.0.1")  # contract: only later versions add it
    assert resolve_entity_type("airship", "v0.1") == "aircraft_airship"


async def test_entity_type_a_server_lacks_fails_before_any_request(
    make_emulator: Any, make_config: Callable[..., AlienConfig]
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    config = make_config(emulator, entity_type="airship")
    async with MothershipClient(MothershipSettings.from_config(config)) as client:
        org = await client.create_organization(config.org_name, config.org_type)
        before = len(_api_requests(emulator))
        with pytest.raises(ConfigError, match=r"aircraft_airship|airship"):
            await client.create_entity(org["org_id"], EntityDescription.from_config(config))
        assert len(_api_requests(emulator)) == before


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_wrong_credentials_are_401_without_retry(
    make_emulator: Any, make_config: Callable[..., AlienConfig], dialect: str
) -> None:
    emulator = make_emulator(dialect=dialect)
    config = make_config(emulator, bearer_token="wrong-token", api_key="c4_test_wrong" if dialect == "v0.1" else None)
    async with MothershipClient(MothershipSettings.from_config(config)) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.create_organization(config.org_name, config.org_type)
    assert info.value.status == 401
    assert info.value.server_message
    assert "wrong-token" not in str(info.value) and "c4_test_wrong" not in str(info.value)
    assert len(_api_requests(emulator)) == 1  # a 4xx is final


async def test_v01_missing_scope_is_403(make_emulator: Any, make_config: Callable[..., AlienConfig]) -> None:
    emulator = make_emulator(dialect="v0.1", api_keys={"c4_test_readonly": {"organizations:read", "entities:read"}})
    config = make_config(emulator, api_key="c4_test_readonly")
    async with MothershipClient(MothershipSettings.from_config(config)) as client:
        with pytest.raises(PermissionDeniedError) as info:
            await client.create_organization(config.org_name, config.org_type)
        # the detailed health needs admin: a narrower key still gets the plain answer
        assert (await client.health())["status"] == "ok"
    assert info.value.status == 403


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_unknown_entity_is_not_found(
    make_emulator: Any, make_config: Callable[..., AlienConfig], dialect: str
) -> None:
    emulator = make_emulator(dialect=dialect)
    config = make_config(emulator)
    async with MothershipClient(MothershipSettings.from_config(config)) as client:
        org = await client.create_organization(config.org_name, config.org_type)
        with pytest.raises(NotFoundError) as info:
            await client.get_entity(org["org_id"], "00000000-0000-0000-0000-000000000000")
    assert info.value.status == 404


async def test_v01_validation_error_is_parsed_from_problem_json(
    make_emulator: Any, make_config: Callable[..., AlienConfig]
) -> None:
    emulator = make_emulator(dialect="v0.1")
    config = make_config(emulator)
    async with MothershipClient(MothershipSettings.from_config(config)) as client:
        org = await client.create_organization(config.org_name, config.org_type)
        spec = await client._spec()
        path, _ = spec.entities_path(org["org_id"])
        # docs/contract.md#path-scoped-rest: unknown fields and bad enums are 422 problem+json on v0.1.x, never retried
        with pytest.raises(RequestRejectedError) as info:
            await client._call("POST", path, {}, {"entity_type": "drone", "name": "x"}, spec)
    assert info.value.status == 422
    assert info.value.server_message
    assert len([r for r in _api_requests(emulator) if r.status == 422]) == 1


async def test_v001_enum_violation_is_a_server_error_and_a_post_is_not_repeated(
    make_emulator: Any, make_config: Callable[..., AlienConfig]
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    config = make_config(emulator)
    async with MothershipClient(MothershipSettings.from_config(config)) as client:
        spec = await client._spec()
        with pytest.raises(ServerError) as info:
            await client._call("POST", "/api/v1/organizations", {}, {"name": "x", "org_type": "pirates"}, spec)
    assert info.value.status == 500
    assert info.value.code == "CREATE_FAILED"
    assert len(_api_requests(emulator)) == 1  # a database refusal: sending it again changes nothing


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_retries_5xx_then_succeeds(
    make_emulator: Any, make_config: Callable[..., AlienConfig], dialect: str
) -> None:
    emulator = make_emulator(dialect=dialect)
    config = make_config(emulator)
    async with MothershipClient(MothershipSettings.from_config(config)) as client:
        await client.detect_dialect()
        emulator.fail_next_requests(2, status=503)
        org = await client.create_organization(config.org_name, config.org_type)
    assert org["org_id"]
    statuses = [r.status for r in _api_requests(emulator)]
    assert statuses == [503, 503, 201]


async def test_gives_up_after_attempts_with_typed_error(
    make_emulator: Any, make_config: Callable[..., AlienConfig]
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    config = make_config(emulator)
    async with MothershipClient(MothershipSettings.from_config(config)) as client:
        await client.detect_dialect()
        emulator.fail_next_requests(10, status=503)
        with pytest.raises(ServerError) as info:
            await client.create_organization(config.org_name, config.org_type)
    assert info.value.status == 503
    assert len(_api_requests(emulator)) == 3


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_unreachable_server_is_unavailable_error(make_config: Callable[..., AlienConfig]) -> None:
    config = make_config(mothership_url=f"http://127.0.0.1:{_closed_port()}", dialect="v0.0.1")
    async with MothershipClient(MothershipSettings.from_config(config)) as client:
        with pytest.raises(MothershipUnavailableError) as info:
            await client.create_organization(config.org_name, config.org_type)
    assert info.value.status is None
    assert "cannot reach" in str(info.value)


async def test_server_that_never_answers_times_out(make_config: Callable[..., AlienConfig]) -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # read nothing, answer nothing

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = make_config(mothership_url=f"http://127.0.0.1:{port}", dialect="v0.0.1", request_timeout_s=0.3)
    try:
        async with MothershipClient(MothershipSettings.from_config(config)) as client:
            with pytest.raises(MothershipUnavailableError, match=r"timed out|Timeout"):
                await client.list_organizations()
            assert len(accepted) == 3  # a GET: every attempt had its own timeout
            with pytest.raises(MothershipUnavailableError, match=r"timed out|Timeout"):
                await client.create_organization(config.org_name, config.org_type)
            assert len(accepted) == 4  # a POST that may have arrived is not sent again
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_not_a_mothership_is_a_clear_error(make_config: Callable[..., AlienConfig]) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        config = make_config(mothership_url=f"http://127.0.0.1:{port}")
        async with MothershipClient(MothershipSettings.from_config(config)) as client:
            with pytest.raises(Exception, match="does not look like a mothership"):
                await client.detect_dialect()
    finally:
        server.close()
        await server.wait_closed()


async def test_v01_org_creation_without_admin_explains_what_to_do(
    make_emulator: Any, make_config: Callable[..., AlienConfig]
) -> None:
    from alien.registration import ensure_registered

    emulator = make_emulator(
        dialect="v0.1",
        api_keys={"c4_test_edge": {"organizations:read", "entities:read", "entities:write"}},
    )
    config = make_config(emulator, api_key="c4_test_edge", org_name="Not There Yet")
    async with MothershipClient(MothershipSettings.from_config(config)) as client:
        with pytest.raises(ConfigError, match=r"admin.*ALIEN_ORG_ID"):
            await ensure_registered(config, client)
        # the first-boot organization `default` exists (docs/contract.md#api-keys-and-scopes): pinning it works
        config = config.derive(org_id="default")
        await ensure_registered(config, client)
    assert config.entity_id


async def test_https_is_verified_against_the_configured_ca(
    make_emulator: Any, make_config: Callable[..., AlienConfig], tmp_path: Any
) -> None:
    tls = make_tls_files(tmp_path / "tls")
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    emulator = make_emulator(dialect="v0.1", ssl_context=server_side)
    assert emulator.url.startswith("https://")
    config = make_config(emulator, http_tls_ca=tls.ca_file)
    async with MothershipClient(MothershipSettings.from_config(config)) as client:
        assert await client.detect_dialect() == "v0.1"
        assert (await client.create_organization(config.org_name, config.org_type))["org_id"]
    # Without the CA the certificate does not verify: one clear error, no retries, no waiting.
    config = make_config(emulator, request_attempts=5, retry_backoff_s=5.0)
    async with MothershipClient(MothershipSettings.from_config(config)) as client:
        with pytest.raises(CertificateError, match=r"does not verify .*ALIEN_HTTP_TLS_CA"):
            await asyncio.wait_for(client.detect_dialect(), 5)
