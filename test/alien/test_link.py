"""The NATS link against a real nats-server: each way to authenticate, TLS, and refusals."""

from __future__ import annotations

import asyncio
import base64
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from alien import AlienConfig, ConfigError, NatsAuthError
from alien.link import NatsLink
from alien.settings import NatsSettings
from alien_testing import NatsServer
from alien_testing.nats_jwt import OperatorTrust, new_nkey, write_creds
from alien_testing.nats_server import generate_nkey_user, make_tls_files


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


def _link(**values: Any) -> NatsLink:
    return NatsLink(NatsSettings.from_config(AlienConfig(**values)))


async def _connects(config: AlienConfig) -> None:
    link = NatsLink(NatsSettings.from_config(config))
    await asyncio.wait_for(link.connect(), 15)
    try:
        assert link.is_connected
        info = await link.js.account_info()  # JetStream reachable with these credentials
        assert info is not None
    finally:
        await link.close()


async def _refused(config: AlienConfig, *secrets: str) -> str:
    link = NatsLink(NatsSettings.from_config(config))
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
        await _link(nats_url=server.url, nats_nkey_seed_file=tmp_path / "absent.nk").connect()


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
        await _link(nats_url="tls://127.0.0.1:1", nats_tls_cert=cert).connect()


# --- .creds files: nats-server in operator (decentralised JWT) mode --------------------------------


def _operator_server(server_factory: Callable[..., NatsServer]) -> tuple[NatsServer, OperatorTrust]:
    trust = OperatorTrust()
    return server_factory(extra_config=trust.server_config()), trust


def _creds_secrets(path: Path) -> list[str]:
    """The user JWT and seed lines of a .creds file: neither may show in errors or logs."""
    lines = path.read_text().splitlines()
    return [lines[i + 1] for i, line in enumerate(lines) if line.startswith("-----BEGIN")]


async def test_creds_file_connects_with_jetstream(
    server_factory: Callable[..., NatsServer], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server, trust = _operator_server(server_factory)
    creds = trust.write_user_creds(tmp_path / "robot.creds")
    assert creds.stat().st_mode & 0o777 == 0o600
    await _connects(AlienConfig(nats_url=server.url, nats_creds_file=creds))
    assert "connected to NATS" in caplog.text
    for secret in _creds_secrets(creds):
        assert secret not in caplog.text


async def test_creds_file_of_an_unknown_account_or_forged_is_refused_fast(
    server_factory: Callable[..., NatsServer], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server, trust = _operator_server(server_factory)
    # a user of an account (and operator) this server has never heard of
    unknown = OperatorTrust().write_user_creds(tmp_path / "unknown.creds")
    # a JWT naming the trusted account as issuer, signed by another account's key
    user, token = trust.user()
    signed = token.rsplit(".", 1)[0]
    signature = new_nkey("account").sign(signed.encode())
    forged_token = f"{signed}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
    forged = write_creds(tmp_path / "forged.creds", forged_token, user.seed)
    # a valid JWT with the seed of another user: the nonce signature does not match
    stolen = write_creds(tmp_path / "stolen.creds", token, new_nkey("user").seed)
    for creds in (unknown, forged, stolen):
        secrets = _creds_secrets(creds)
        began = time.monotonic()
        message = await _refused(
            AlienConfig(nats_url=server.url, nats_creds_file=creds, nats_reconnect_wait_s=0.2), *secrets
        )
        assert time.monotonic() - began < 5, f"{creds.name}: refusal took too long"
        assert "creds file" in message
        for secret in secrets:
            assert secret not in caplog.text


async def test_missing_creds_file_is_a_config_error(server_factory: Callable[..., NatsServer], tmp_path: Path) -> None:
    server, _ = _operator_server(server_factory)
    with pytest.raises(ConfigError, match=r"ALIEN_NATS_CREDS_FILE.*does not exist"):
        await _link(nats_url=server.url, nats_creds_file=tmp_path / "absent.creds").connect()


async def test_creds_publish_permissions_are_enforced_by_the_server(
    server_factory: Callable[..., NatsServer], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server, trust = _operator_server(server_factory)
    muted = trust.write_user_creds(tmp_path / "muted.creds", pub_deny=["constellation.telemetry.>"])
    observer = _link(nats_url=server.url, nats_creds_file=trust.write_user_creds(tmp_path / "o.creds"))
    link = _link(nats_url=server.url, nats_creds_file=muted)
    await asyncio.wait_for(observer.connect(), 15)
    try:
        await asyncio.wait_for(link.connect(), 15)
        seen = await observer.nc.subscribe("constellation.>")
        await observer.nc.flush(timeout=5)
        await link.js.account_info()  # what is not denied still works, JetStream included
        await link.nc.publish("constellation.telemetry.robot-1", b"denied")
        await link.nc.publish("constellation.events.robot-1", b"allowed")
        # The server's -ERR comes before the PONG a flush waits for; nats-py writes a flush's PING
        # ahead of publishes still in its buffer, so only the second PING surely follows them.
        for _ in range(2):
            await link.nc.flush(timeout=5)
        # in order from one client: had the denied message passed, it would arrive first
        first = await seen.next_msg(timeout=5)
        assert (first.subject, first.data) == ("constellation.events.robot-1", b"allowed")
        errors = [r.getMessage() for r in caplog.records if r.name == "alien.link" and r.levelno >= logging.ERROR]
        assert any("constellation.telemetry.robot-1" in e for e in errors), errors
        assert link.is_connected  # a denied subject is not a reason to drop the link
    finally:
        await link.close()
        await observer.close()


@pytest.mark.parametrize(
    ("content", "missing"),
    [
        ("-----BEGIN USER NKEY SEED-----\nSUAFAKESEEDFAKESEED\n------END USER NKEY SEED------\n", "NATS USER JWT"),
        ("not a creds file\n", "NATS USER JWT"),
        ("-----BEGIN NATS USER JWT-----\neyJhbGciOi.x.y\n------END NATS USER JWT------\n", "USER NKEY SEED"),
    ],
)
async def test_malformed_creds_file_is_a_config_error_not_a_hang(tmp_path: Path, content: str, missing: str) -> None:
    # nats-py itself loops forever reading a file without a JWT block: it must be refused first
    creds = tmp_path / "bad.creds"
    creds.write_text(content)
    with pytest.raises(
        ConfigError, match=f"ALIEN_NATS_CREDS_FILE: .* is not a NATS .creds file \\(no {missing} block\\)"
    ) as info:
        await asyncio.wait_for(_link(nats_url="nats://127.0.0.1:1", nats_creds_file=creds).connect(), 5)
    assert "SUAFAKESEED" not in str(info.value)


@pytest.mark.parametrize("as_file", [False, True])
async def test_a_malformed_nkey_seed_is_a_config_error_that_does_not_show_it(tmp_path: Path, as_file: bool) -> None:
    seed = "SUNOTAREALSEEDATALLNOTAREALSEEDATALL"
    if as_file:
        path = tmp_path / "robot.nk"
        path.write_text(seed)
        config = AlienConfig(nats_url="nats://127.0.0.1:1", nats_nkey_seed_file=path)
    else:
        config = AlienConfig(nats_url="nats://127.0.0.1:1", nats_nkey_seed=seed)
    with pytest.raises(ConfigError, match="is not a valid NKey seed") as info:
        await asyncio.wait_for(NatsLink(NatsSettings.from_config(config)).connect(), 5)
    assert seed not in str(info.value)
