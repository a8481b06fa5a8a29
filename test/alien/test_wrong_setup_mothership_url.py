"""A MOTHERSHIP_URL that is no HTTP server (a NATS port, a banner, TLS) or unreachable: one clear error or warning."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from wrong_setup_support import TIMEOUT_S, _closed_port

from alien import AlienClient
from alien.config import AlienConfig
from alien.errors import MothershipProtocolError, MothershipUnavailableError
from alien.mothership import MothershipClient
from alien.settings import MothershipSettings
from alien_testing.nats_server import make_tls_files


# --- raw servers that answer something other than HTTP ---
@dataclass
class RawServer:
    url: str
    server: asyncio.Server


@pytest.fixture
async def garbage_server() -> AsyncIterator[RawServer]:
    """A TCP server that greets with a non-HTTP banner, as an SSH or SMTP port would."""

    async def banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(banner, "127.0.0.1", 0)
    yield RawServer(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", server)
    server.close()
    await server.wait_closed()


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[RawServer]:
    """A TLS listener that closes on plain text (what Python's and many proxies' TLS does)."""
    files = make_tls_files(tmp_path / "tls")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(files.cert_file), str(files.key_file))

    async def nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(nothing, "127.0.0.1", 0, ssl=context)
    yield RawServer(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", server)
    server.close()
    await server.wait_closed()


def _config(tmp_path: Path, mothership_url: str, **overrides: Any) -> AlienConfig:
    return AlienConfig(
        mothership_url=mothership_url,
        config_file=str(tmp_path / "identity.json"),
        request_attempts=3,
        retry_backoff_s=0.01,
        retry_backoff_max_s=0.02,
        request_timeout_s=5,
        **overrides,
    )


# --- item: MOTHERSHIP_URL at the NATS port, or at something else that is not HTTP ---
async def test_mothership_url_at_the_nats_port_is_a_protocol_error_naming_both_variables(
    nats_server: Any, tmp_path: Path
) -> None:
    port = nats_server.url.rsplit(":", 1)[1]
    async with MothershipClient(
        MothershipSettings.from_config(_config(tmp_path, f"http://127.0.0.1:{port}"))
    ) as client:
        with pytest.raises(MothershipProtocolError) as caught:
            await client.detect_dialect()
    assert str(caught.value) == (
        f"MOTHERSHIP_URL http://127.0.0.1:{port} answered with the NATS protocol, not HTTP: that is a NATS "
        f"port; set MOTHERSHIP_URL to the mothership's HTTP address and NATS_URL to nats://127.0.0.1:{port}"
    )


async def test_a_non_http_banner_is_a_protocol_error_naming_the_url(garbage_server: RawServer, tmp_path: Path) -> None:
    async with MothershipClient(MothershipSettings.from_config(_config(tmp_path, garbage_server.url))) as client:
        with pytest.raises(MothershipProtocolError) as caught:
            await client.detect_dialect()
    assert str(caught.value).startswith(f"MOTHERSHIP_URL {garbage_server.url} did not answer with HTTP;")
    assert "SSH" not in str(caught.value)  # the answer's bytes are not echoed


async def test_a_tls_server_on_http_suggests_https(tls_server: RawServer, tmp_path: Path) -> None:
    async with MothershipClient(MothershipSettings.from_config(_config(tmp_path, tls_server.url))) as client:
        with pytest.raises(MothershipUnavailableError) as caught:
            await client.detect_dialect()
    https = tls_server.url.replace("http://", "https://")
    assert f"if it is an HTTPS server, use {https}" in str(caught.value)
    assert "\n" not in str(caught.value)


async def test_an_unreachable_mothership_is_one_warning_per_registration_attempt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # three HTTP tries per attempt underneath: those are DEBUG, the attempt itself is the WARNING
    config = _config(tmp_path, f"http://127.0.0.1:{_closed_port()}", data_dir=tmp_path / "data")
    client = AlienClient(config)
    caplog.set_level(logging.DEBUG, logger="alien")
    task = asyncio.ensure_future(client.initialize())

    def attempts() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "cannot register yet" in r.getMessage()]

    deadline = asyncio.get_running_loop().time() + TIMEOUT_S
    while len(attempts()) < 2:  # a bounded poll on the log
        assert asyncio.get_running_loop().time() < deadline, "registration attempts stopped"
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await client.close(timeout=1)

    tries = [r for r in caplog.records if r.name == "alien.mothership" and "; retry " in r.getMessage()]
    assert len(tries) >= 2 and {r.levelno for r in tries} == {logging.DEBUG}
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("alien")]
    assert warnings == [r for r in attempts() if r.levelno == logging.WARNING]
