"""API keys bound to one organization (v0.1 servers), and what a failed initialize() leaves behind.

On v0.1 servers an API key and its NKey belong to one organization; a client that picks another
one can publish nothing there. These tests run the library against the emulator and a real
nats-server whose NKey users have the permissions the key's scopes grant.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from pathlib import Path
from typing import Any

import aiohttp
import nats
import pytest

from alien import AlienClient, AlienConfig, TelemetryDeniedError
from alien.errors import AuthenticationError
from alien_testing.deployment import V01Deployment
from alien_testing.emulator import DEFAULT_API_KEY
from alien_testing.nats_server import free_port

SCOPED = ["organizations:read", "entities:read", "entities:write", "nats:telemetry", "nats:commands"]
MAY_CREATE_ORGS = [*SCOPED, "organizations:write"]
FIX = {"position": {"latitude": 32.94881, "longitude": -96.80132, "altitude": 152.4}}


def edge_config(deployment: V01Deployment, tmp_path: Path, **overrides: Any) -> AlienConfig:
    """An integrator's settings without ALIEN_ORG_ID: the key's NKey, and an organization name of its own."""
    edge = deployment.edge
    values: dict[str, Any] = {
        "mothership_url": deployment.emulator.url,
        "nats_url": deployment.nats_server.url,
        "api_key": edge.api_key,
        "nats_nkey_seed": edge.nkey_seed,
        "org_name": "Alien Robotics",
        "entity_type": "ground_vehicle_wheeled",
        "entity_name": "rover-1",
        "config_file": str(tmp_path / "identity.json"),
        "data_dir": tmp_path / "data",
        "publish_timeout_s": 2.0,
        "request_attempts": 1,
        "heartbeat_period_s": 0,  # no telemetry of its own: the stream holds only what the test sent
        "entity_state": "off",
        "lifecycle_events": False,
    }
    values.update(overrides)
    return AlienConfig(**values)


async def add_organization(deployment: V01Deployment, name: str) -> str:
    """What an operator does with an admin key: another organization on the same server."""
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{deployment.emulator.url}/api/v1/organizations",
            json={"name": name, "org_type": "civilian"},
            headers={"X-API-Key": DEFAULT_API_KEY},
        ) as response:
            assert response.status == 201, await response.text()
            return str((await response.json())["org_id"])


async def stream_messages(deployment: V01Deployment, subject: str) -> list[bytes]:
    nc = await nats.connect(**deployment.admin_options())
    try:
        js = nc.jetstream()
        sub = await js.subscribe(subject, ordered_consumer=True)
        info = await js.stream_info("CONSTELLATION_TELEMETRY")
        messages = []
        for _ in range(info.state.messages):
            try:
                messages.append((await sub.next_msg(timeout=2)).data)
            except nats.errors.TimeoutError:
                break
        return messages
    finally:
        await nc.close()


@pytest.mark.parametrize("v01_deployment", [{"scopes": SCOPED}], indirect=True)
async def test_without_org_id_the_only_organization_is_the_keys(v01_deployment: V01Deployment, tmp_path: Path) -> None:
    # The key may not create organizations; the server has one: it is the key's, and it works.
    client = AlienClient(edge_config(v01_deployment, tmp_path))
    try:
        await asyncio.wait_for(client.initialize(), 20)
        assert client.config.org_id == v01_deployment.edge.org_id
        subject = f"constellation.telemetry.{client.config.org_id}.{client.config.entity_id}"
        assert await stream_messages(v01_deployment, subject) == []  # the permission probe is never stored
        await client.publish_telemetry(FIX)
        assert await client.flush(10)
        assert client.stats().dropped.get("denied", 0) == 0
        stored = await stream_messages(v01_deployment, subject)
        assert len(stored) == 1 and stored[0]  # the reading, and nothing empty before it
    finally:
        await client.close(timeout=3)


@pytest.mark.parametrize("v01_deployment", [{"scopes": MAY_CREATE_ORGS}], indirect=True)
async def test_credentials_of_another_organization_fail_initialize_naming_the_fix(
    v01_deployment: V01Deployment, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Two organizations and none named ORG_NAME: the client creates its own, where the key's NKey
    # may publish nothing. initialize() must say so instead of starting a client that delivers nothing.
    other = await add_organization(v01_deployment, "Another Team")
    client = AlienClient(edge_config(v01_deployment, tmp_path))
    try:
        with caplog.at_level(logging.INFO, logger="alien"), pytest.raises(TelemetryDeniedError) as denied:
            await asyncio.wait_for(client.initialize(), 20)
        created = client.config.org_id
        assert created not in (v01_deployment.edge.org_id, other)
        message = str(denied.value)
        assert f'"constellation.telemetry.{created}.{client.config.entity_id}"' in message
        assert f"organization {created}" in message and "ALIEN_ORG_ID is not set" in message
        assert "set ALIEN_ORG_ID" in message and v01_deployment.edge.org_id in message and other in message
        assert denied.value.org_id == created
        assert v01_deployment.edge.api_key not in message + caplog.text
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []  # the error is the line
        assert not client.link.is_open  # the connection it made is closed again
    finally:
        await client.close(timeout=3)

    # The fix the error names works, on the same identity file.
    fixed = AlienClient(edge_config(v01_deployment, tmp_path, org_id=v01_deployment.edge.org_id))
    try:
        await asyncio.wait_for(fixed.initialize(), 20)
        await fixed.publish_telemetry(FIX)
        assert await fixed.flush(10)
        assert fixed.stats().dropped.get("denied", 0) == 0
    finally:
        await fixed.close(timeout=3)


async def test_a_failed_initialize_leaves_no_http_session_open(
    v01_deployment: V01Deployment, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def fail_to_start() -> None:
        client = AlienClient(edge_config(v01_deployment, tmp_path, api_key="c4_test_not_a_key"))
        try:
            await asyncio.wait_for(client.initialize(), 20)
        except AuthenticationError as exc:
            assert "401" in str(exc)
        else:
            raise AssertionError("a wrong API key was accepted")

    await fail_to_start()
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        gc.collect()  # aiohttp reports a session nobody closed when it is collected
        await asyncio.sleep(0)  # the report goes through the loop's exception handler
    assert "Unclosed" not in caplog.text


async def test_cancelling_initialize_while_registration_retries_leaves_no_http_session_open(
    v01_deployment: V01Deployment, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Ctrl-C while the mothership is unreachable: nothing left open behind the cancellation.
    config = edge_config(v01_deployment, tmp_path, mothership_url=f"http://127.0.0.1:{free_port()}")

    async def start_and_cancel() -> None:
        client = AlienClient(config)
        task = asyncio.ensure_future(client.initialize())
        deadline = asyncio.get_running_loop().time() + 10
        while client.registration_error is None:  # a bounded poll: until the first attempt has failed
            assert asyncio.get_running_loop().time() < deadline, "registration never failed"
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert task.cancelled()

    # No log record may keep the retry's exception, and with it the session, alive for gc.
    caplog.set_level(logging.ERROR, logger="alien")
    await start_and_cancel()
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        gc.collect()  # aiohttp reports a session nobody closed when it is collected
        await asyncio.sleep(0)
    assert "Unclosed" not in caplog.text
