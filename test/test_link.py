"""The NATS link against a real nats-server: each way to authenticate, TLS, and refusals."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from alien import AlienConfig, ConfigError, NatsAuthError
from alien.link import NatsLink
from alien.testing import NatsServer
from alien.testing.nats_server import generate_nkey_user, make_tls_files


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., NatsServer]]:
    started: list[NatsServer] = []

    def start(**options: Any) -> NatsServer:
        server = NatsServer(tmp_path / f"nats-{len(started)}", **options)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


async def _connects(config: AlienConfig) -> None:
    link = NatsLink(config)
    await asyncio.wait_for(link.connect(), 15)
    try:
        assert link.is_connected
        info = await link.js.account_info()  # JetStream reachable with these credentials
        assert info is not None
    finally:
        await link.close()


async def _refused(config: AlienConfig, *secrets: str) -> str:
    link = NatsLink(config)
    with pytest.raises(NatsAuthError) as info:
        await asyncio.wait_for(link.connect(), 15)  # fails fast; never hangs retrying
    message = str(info.value)
    for secret in secrets:
        assert secret not in message
    return message


async def test_token(server_factory: Callable[..., NatsServer]) -> None:
    server = server_factory(token="s3cret-token")
    await _connects(AlienConfig(nats_url=server.url, nats_token="s3cret-token"))
    message = await _refused(AlienConfig(nats_url=server.url, nats_token="wrong-token"), "wrong-token")
    assert "authorization" in message.lower()


async def test_user_and_password(server_factory: Callable[..., NatsServer]) -> None:
    server = server_factory(user="robot", password="pa55word")
    await _connects(AlienConfig(nats_url=server.url, nats_user="robot", nats_password="pa55word"))
    await _refused(AlienConfig(nats_url=server.url, nats_user="robot", nats_password="nope-nope"), "nope-nope")


async def test_nkey_seed_as_string_and_file(server_factory: Callable[..., NatsServer], tmp_path: Path) -> None:
    seed, public = generate_nkey_user()
    server = server_factory(nkey_users=[public])
    await _connects(AlienConfig(nats_url=server.url, nats_nkey_seed=seed))
    seed_file = tmp_path / "robot.nk"
    seed_file.write_text(seed)
    seed_file.chmod(0o600)
    await _connects(AlienConfig(nats_url=server.url, nats_nkey_seed_file=seed_file))
    other_seed, _ = generate_nkey_user()
    await _refused(AlienConfig(nats_url=server.url, nats_nkey_seed=other_seed), other_seed)


async def test_missing_seed_file_is_a_config_error(server_factory: Callable[..., NatsServer], tmp_path: Path) -> None:
    server = server_factory()
    with pytest.raises(ConfigError, match=r"ALIEN_NATS_NKEY_SEED_FILE.*does not exist"):
        await NatsLink(AlienConfig(nats_url=server.url, nats_nkey_seed_file=tmp_path / "absent.nk")).connect()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl CLI makes the test certificates")
async def test_tls_with_ca_and_client_certificate(server_factory: Callable[..., NatsServer], tmp_path: Path) -> None:
    tls = make_tls_files(tmp_path / "pki", verify_clients=True)
    server = server_factory(tls=tls)
    assert server.url.startswith("tls://")
    await _connects(
        AlienConfig(
            nats_url=server.url,
            nats_tls_ca=tls.ca_file,
            nats_tls_cert=tls.client_cert_file,
            nats_tls_key=tls.client_key_file,
        )
    )
    # a CA that did not sign the server's certificate: refused at once, naming the setting
    other = make_tls_files(tmp_path / "other-pki")
    message = await _refused(
        AlienConfig(
            nats_url=server.url,
            nats_tls_ca=other.ca_file,
            nats_tls_cert=tls.client_cert_file,
            nats_tls_key=tls.client_key_file,
        )
    )
    assert "ALIEN_NATS_TLS_CA" in message


async def test_client_certificate_without_key_is_a_config_error(tmp_path: Path) -> None:
    cert = tmp_path / "client.pem"
    cert.write_text("not used")
    with pytest.raises(ConfigError, match="ALIEN_NATS_TLS_KEY"):
        await NatsLink(AlienConfig(nats_url="tls://127.0.0.1:1", nats_tls_cert=cert)).connect()
