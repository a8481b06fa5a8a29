"""TLS by default beyond loopback: plain NATS / HTTP to another host is refused before dialling.

No network is needed: a refused URL names a host that does not exist (`.invalid`), so a test
that dialled it would wait for it forever (NATS) or fail differently (HTTP); the ConfigError
comes first. Allowed cases are checked at the policy level.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from pathlib import Path
from typing import Any

import pytest

from alien import AlienClient, AlienConfig, transport_security
from alien.errors import ConfigError, NatsAuthError
from alien.link import NatsLink
from alien.mothership import MothershipClient
from alien.nats_options import tls_context
from alien.settings import MothershipSettings, NatsSettings
from alien.transport_security import check_mothership, check_nats, insecure_nats_urls, is_loopback

LOOPBACK = ["localhost", "LOCALHOST", "localhost.", "127.0.0.1", "127.8.9.10", "[::1]", "[::ffff:127.0.0.1]"]
REMOTE = ["10.0.0.1", "128.0.0.1", "0.0.0.0", "[::2]", "localhost.example.com", "mylocalhost", "robot.local"]


@pytest.mark.parametrize("host", LOOPBACK)
def test_loopback_hosts_may_use_plain_nats_and_http(host: str) -> None:
    config = AlienConfig(nats_url=f"nats://{host}:4222", mothership_url=f"http://{host}:8080")
    nats, mothership = NatsSettings.from_config(config), MothershipSettings.from_config(config)
    assert is_loopback(host.strip("[]"))
    assert insecure_nats_urls(nats) == []
    check_nats(nats)
    check_mothership(mothership)


@pytest.mark.parametrize("host", REMOTE)
def test_other_hosts_are_remote_without_resolving_them(host: str) -> None:
    assert not is_loopback(host.strip("[]"))
    config = NatsSettings.from_config(AlienConfig(nats_url=f"nats://{host}:4222"))
    assert insecure_nats_urls(config) == [f"nats://{host}:4222"]


async def test_remote_plain_nats_is_refused_before_dialling_naming_the_url() -> None:
    # the loopback server is fine; the second one is not, and its credentials never show
    config = AlienConfig(nats_url="nats://127.0.0.1:4222, nats://robot:s3cret@nats.example.invalid:4222")
    assert AlienConfig(nats_url=config.nats_url).nats_url == config.nats_url  # the config itself is valid
    link = NatsLink(NatsSettings.from_config(config))
    with pytest.raises(ConfigError) as info:
        await link.connect()  # dialling nats.example.invalid would retry forever instead
    message = str(info.value)
    assert "NATS_URL: nats://***@nats.example.invalid:4222 is not loopback and not TLS" in message
    assert "Use tls://***@nats.example.invalid:4222" in message and "ALIEN_ALLOW_INSECURE=true" in message
    assert "s3cret" not in message and "127.0.0.1" not in message
    assert link._nc is None and not link.connected.is_set()


@pytest.mark.parametrize("char", ["/", "?", "#", "@", ":", "%", "+"])
def test_the_host_is_read_after_the_user_part_whatever_the_password_holds(char: str) -> None:
    # urllib alone would take "alice" for the host of the first and call loopback remote
    assert transport_security._host(f"nats://alice:k3{char}Jd@127.0.0.1:4222", "nats") == ("nats", "127.0.0.1")
    assert transport_security._host(f"alice:k3{char}Jd@10.0.0.1:4222", "nats") == ("nats", "10.0.0.1")
    assert transport_security._host(f"https://alice:k3{char}Jd@c2.example.com/api", "http") == (
        "https",
        "c2.example.com",
    )


def test_a_bare_host_port_is_refused_and_ws_counts_as_plain() -> None:
    with pytest.raises(ConfigError, match="has no scheme"):  # not a lecture about TLS
        AlienConfig(nats_url="nats.example.invalid:4222")
    assert insecure_nats_urls(NatsSettings.from_config(AlienConfig(nats_url="ws://nats.example.invalid:8080"))) != []


@pytest.mark.parametrize(
    ("url", "tls"),
    [
        ("tls://nats.example.invalid:4222", {}),
        ("wss://nats.example.invalid:443", {}),
        ("nats://nats.example.invalid:4222", {"nats_tls_ca": Path("ca.pem")}),  # nats-py does TLS with it
        ("nats://a.example.invalid:4222,tls://b.example.invalid:4222", {"nats_tls_cert": Path("c.pem")}),
    ],
)
def test_remote_nats_over_tls_is_allowed(url: str, tls: dict[str, Path]) -> None:
    config = NatsSettings.from_config(AlienConfig(nats_url=url, **tls))
    assert insecure_nats_urls(config) == []
    check_nats(config)


async def test_remote_plain_http_is_refused_before_dialling_naming_the_url(tmp_path: Path) -> None:
    config = AlienConfig(
        mothership_url="http://mothership.example.invalid:9000",
        config_file=str(tmp_path / "identity.json"),
        data_dir=tmp_path / "data",
        outbox_durability="memory",
    )
    with pytest.raises(ConfigError) as info:
        MothershipClient(MothershipSettings.from_config(config))
    message = str(info.value)
    assert "MOTHERSHIP_URL: http://mothership.example.invalid:9000 is not loopback and not HTTPS" in message
    assert "Use https://mothership.example.invalid:9000" in message and "ALIEN_ALLOW_INSECURE=true" in message
    # the client refuses the same way at initialize(), before registering
    client = AlienClient(config)
    with pytest.raises(ConfigError, match=re.escape("http://mothership.example.invalid:9000")):
        await client.initialize()
    await client.close()
    check_mothership(MothershipSettings(url="https://mothership.example.invalid"))  # HTTPS: fine


def test_allow_insecure_connects_with_one_warning_per_url(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="alien.security")
    config = AlienConfig(
        nats_url="nats://10.0.0.7:4222,nats://localhost:4222",
        mothership_url="http://10.0.0.7:8080",
        allow_insecure=True,
    )
    check_nats(NatsSettings.from_config(config))
    check_mothership(MothershipSettings.from_config(config))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith("NATS_URL: nats://10.0.0.7:4222 is not loopback and not TLS")
    assert warnings[1].startswith("MOTHERSHIP_URL: http://10.0.0.7:8080 is not loopback and not HTTPS")
    assert all("ALIEN_ALLOW_INSECURE=true" in w for w in warnings)


def test_allow_insecure_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALIEN_ALLOW_INSECURE", "true")
    assert AlienConfig().allow_insecure is True


def test_certificates_and_host_names_are_always_verified() -> None:
    link = NatsLink(NatsSettings.from_config(AlienConfig(nats_url="tls://nats.example.invalid:4222")))
    context = tls_context(link.settings)
    assert context is not None
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    # and nothing in the library turns verification off
    root = Path(__file__).resolve().parents[2]
    forbidden = re.compile(r"check_hostname\s*=\s*False|CERT_NONE|ssl\s*=\s*False|verify_ssl\s*=\s*False")
    for package in ("alien", "alien_ros"):
        for source in (root / package).rglob("*.py"):
            assert not forbidden.search(source.read_text()), source


async def test_a_tls_url_to_a_server_that_does_not_offer_tls_sends_nothing_in_clear(nats_server: Any) -> None:
    """nats-py alone would send CONNECT (credentials included) in clear text here."""
    assert nats_server.url.startswith("nats://127.0.0.1:")
    config = AlienConfig(nats_url=nats_server.url.replace("nats://", "tls://"), nats_token="s3cret-token")
    link = NatsLink(NatsSettings.from_config(config))
    with pytest.raises(NatsAuthError) as info:
        await asyncio.wait_for(link.connect(), 15)  # fails at once; never retries forever
    message = str(info.value)
    assert "did not offer TLS, which this connection requires; nothing was sent" in message
    assert "s3cret-token" not in message and not link.is_connected


@pytest.mark.parametrize(
    ("scheme", "host", "allow_insecure", "needs_tls"),
    [
        ("nats", "192.0.2.2", False, True),  # a server announced in INFO connect_urls, not in NATS_URL
        ("nats", "node-2.cluster", False, True),
        ("nats", "127.0.0.1", False, False),
        ("nats", "192.0.2.2", True, False),  # the operator accepted clear text
        ("tls", "127.0.0.1", False, True),
    ],
)
def test_every_server_dialled_beyond_loopback_needs_tls_whatever_its_scheme(
    scheme: str, host: str, allow_insecure: bool, needs_tls: bool
) -> None:
    config = NatsSettings(servers=("nats://127.0.0.1:4222",), allow_insecure=allow_insecure)
    assert transport_security.nats_server_needs_tls(config, scheme, host) is needs_tls
