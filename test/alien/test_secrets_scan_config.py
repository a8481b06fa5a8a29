"""Secrets hygiene of the configuration: reprs, dumps, errors, settings slices and URL credentials show no secret."""

from __future__ import annotations

import asyncio
import os
import urllib.parse
from asyncio.subprocess import PIPE
from pathlib import Path

import pytest
import secrets_support
from installed import console_script
from pydantic import SecretStr
from secrets_support import _TAG, API_KEY, BEARER, NATS_PASSWORD, NATS_TOKEN, WAIT_S, Capture, Scanner, _base

from alien import AlienConfig
from alien.errors import ConfigError, NatsAuthError
from alien.link import NatsLink
from alien.logs import get_logger
from alien.settings import MothershipSettings, NatsSettings
from alien.wire import redact_url
from alien_testing.nats_server import NatsServer, free_port, generate_nkey_user

# fixtures of secrets_support, used here by name
capture = secrets_support.capture


# --- the configuration itself ---


def test_config_reprs_dumps_and_errors_leak_nothing(
    capture: Capture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed = generate_nkey_user()[0]
    secrets = {
        "api key": API_KEY,
        "bearer token": BEARER,
        "NATS token": NATS_TOKEN,
        "NATS password": NATS_PASSWORD,
        "NKey seed": seed,
    }
    for name, value in secrets.items():
        capture.scanner.add(name, value)
    get_logger("alien.test").debug("configuration checks")
    given = AlienConfig(
        api_key=API_KEY,
        bearer_token=BEARER,
        nats_token=NATS_TOKEN,
        nats_user="robot",
        nats_password=NATS_PASSWORD,
        nats_nkey_seed=seed,
        config_file=str(tmp_path / "identity.json"),
    )
    # from the environment and from a .env file (the .env file holds them on purpose)
    monkeypatch.setenv("ALIEN_API_KEY", API_KEY)
    monkeypatch.setenv("API_BEARER_TOKEN", BEARER)
    monkeypatch.setenv("ALIEN_NATS_NKEY_SEED", seed)
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"ALIEN_NATS_TOKEN={NATS_TOKEN}\nALIEN_NATS_PASSWORD={NATS_PASSWORD}\n")
    capture.written.append(dotenv)
    from_env = AlienConfig(config_file=str(tmp_path / "identity.json"))
    assert from_env.nats_token is not None and from_env.nats_token.get_secret_value() == NATS_TOKEN
    for config in (given, from_env):
        capture.show(
            "config",
            config,
            config.model_dump(),
            config.model_dump_json(),
            config.model_dump(mode="json"),
            vars(config),
        )
        config.identity.org_id, config.identity.entity_id = "org-1", "entity-1"  # as registration learns them
        config.save()
    # secrets of the wrong type: the error names the setting, never the value
    for name, value in secrets.items():
        field = {
            "api key": "api_key",
            "bearer token": "bearer_token",
            "NATS token": "nats_token",
            "NATS password": "nats_password",
            "NKey seed": "nats_nkey_seed",
        }[name]
        for wrong in ([value], {"value": value}, (value, 1)):
            with pytest.raises(ConfigError) as raised:
                AlienConfig(**{field: wrong})
            capture.show(f"ConfigError for {field}", raised.value)
    capture.check()


def test_assigning_or_deriving_a_wrong_typed_secret_leaks_nothing(capture: Capture) -> None:
    """Assignment is refused (the settings are immutable) and derive() validates: neither error shows the input."""
    capture.scanner.add("api key", API_KEY)
    get_logger("alien.test").debug("assignment")
    config = AlienConfig()
    with pytest.raises(ConfigError, match="immutable: api_key") as raised:
        config.api_key = [API_KEY]  # type: ignore[assignment]
    capture.show("assignment error", raised.value)
    with pytest.raises(ConfigError, match="ALIEN_API_KEY") as raised:
        config.derive(api_key=[API_KEY])
    capture.show("derive error", raised.value)
    capture.check()


def test_credentials_in_the_nats_url_leak_nothing(capture: Capture) -> None:
    """NATS_URL may carry user:password@ (or token@): not in reprs or dumps."""
    capture.scanner.add("NATS password", NATS_PASSWORD)
    get_logger("alien.test").debug("url")
    password = urllib.parse.quote(NATS_PASSWORD, safe="")
    config = AlienConfig(nats_url=f"nats://robot:{password}@127.0.0.1:4222")
    capture.show("config", config, config.model_dump(), config.model_dump_json())
    capture.check()


def test_settings_slices_show_no_secret_and_no_url_credentials(capture: Capture) -> None:
    """Settings slices, from a config or built by hand: secrets stay SecretStr, URLs lose user:password@."""
    scanner = capture.scanner
    for name, value in (
        ("api key", API_KEY),
        ("bearer token", BEARER),
        ("NATS token", NATS_TOKEN),
        ("NATS password", NATS_PASSWORD),
    ):
        scanner.add(name, value)
    seed = scanner.add("NKey seed", generate_nkey_user()[0])
    url_password = scanner.add("URL password", f"SECRETURLPW{_TAG}slice")
    get_logger("alien.test").debug("settings slices")
    config = AlienConfig(
        nats_url=f"nats://robot:{url_password}@127.0.0.1:4222,tls://edge:{url_password}@nats.example.invalid:4222",
        nats_token=NATS_TOKEN,
        nats_user="robot",
        nats_password=NATS_PASSWORD,
        nats_nkey_seed=seed,
        api_key=API_KEY,
        bearer_token=BEARER,
    )
    nats, mothership = NatsSettings.from_config(config), MothershipSettings.from_config(config)
    by_hand = (
        NatsSettings(
            servers=(f"nats://robot:{url_password}@127.0.0.1:4222",),
            token=SecretStr(NATS_TOKEN),
            password=SecretStr(NATS_PASSWORD),
            nkey_seed=SecretStr(seed),
        ),
        # AlienConfig refuses credentials in MOTHERSHIP_URL; a slice built by hand is still shown without them
        MothershipSettings(url=f"http://mu:{url_password}@127.0.0.1:8080", api_key=SecretStr(API_KEY)),
    )
    secrets = (nats.token, nats.password, nats.nkey_seed, mothership.api_key, mothership.bearer_token)
    assert all(isinstance(secret, SecretStr) for secret in secrets)
    assert "nats://***@127.0.0.1:4222" in repr(nats) and "tls://***@nats.example.invalid:4222" in repr(nats)
    assert "http://***@127.0.0.1:8080" in repr(by_hand[1])
    for slice_ in (nats, mothership, *by_hand):
        assert "**********" in repr(slice_)
        capture.show(type(slice_).__name__, slice_, [slice_], {"settings": slice_})
    capture.check()


# --- URL credentials holding every character that ends a part of a URL ---

# Generated passwords (base64 and the like) hold them; a redaction that cut the URL at one of them
# showed the rest of the password.
URL_SPECIALS = ("/", "?", "#", "@", ":", "%", "+")
# nats-py (urllib) reads these in a URL's password as written; "/", "?" and "#" end its host.
NATS_READS = ("@", ":", "%", "+")
ALIEN = console_script("alien")


def _url_password(scanner: Scanner, name: str, word: str, char: str) -> str:
    """A password with `char` in its middle; each half is a secret too (a cut password shows one)."""
    before = scanner.add(f"{name} before {char!r}", f"SECRET{_TAG}{word}first")
    after = scanner.add(f"{name} after {char!r}", f"SECRET{_TAG}{word}second")
    return scanner.add(name, f"{before}{char}{after}")


async def _alien_status(tmp_path: Path, **env: str) -> tuple[int, str, str]:
    """`alien -v status` as a user runs it: the installed script, only these variables of alien's."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ALIEN_") and not k.endswith("_URL")}
    environ.update(
        MOTHERSHIP_URL=f"http://127.0.0.1:{free_port()}",  # unreachable unless set: status still reports
        ALIEN_CONFIG_FILE=str(tmp_path / "identity.json"),
        ALIEN_DATA_DIR=str(tmp_path / "data"),
    )
    environ.update(env)
    process = await asyncio.create_subprocess_exec(
        str(ALIEN), "-v", "status", "--timeout", "2", env=environ, cwd=tmp_path, stdout=PIPE, stderr=PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("char", URL_SPECIALS)
async def test_url_credentials_holding_any_url_special_character_leak_nothing(
    char: str, capture: Capture, tmp_path: Path
) -> None:
    scanner = capture.scanner
    nats_password = _url_password(scanner, "NATS_URL password", "natspw", char)
    mothership_password = _url_password(scanner, "MOTHERSHIP_URL password", "mothershippw", char)
    get_logger("alien.test").debug("URL credentials holding %r", char)
    with NatsServer(user="robot", password=nats_password) as server:
        nats_url = f"nats://robot:{nats_password}@127.0.0.1:{server.port}"
        mothership_url = f"http://mu:{mothership_password}@127.0.0.1:{free_port()}"
        shown = [redact_url(nats_url), redact_url(mothership_url), redact_url(f"{nats_url}, {server.url}")]
        assert shown[0] == f"nats://***@127.0.0.1:{server.port}" and shown[1].startswith("http://***@127.0.0.1:")
        capture.show("redact_url", *shown)

        # MOTHERSHIP_URL: never carries credentials, whatever the password holds and however wrong the URL
        for wrong in (
            mothership_url,
            f"https://mu:{mothership_password}@127.0.0.1/api",
            f"http://mu:{mothership_password}@127.0.0.1:99999",
            f"ftp://mu:{mothership_password}@127.0.0.1",
            f"http:/mu:{mothership_password}@127.0.0.1",
        ):
            with pytest.raises(ConfigError) as raised:
                AlienConfig(**_base(tmp_path, mothership_url=wrong))
            capture.show("ConfigError for MOTHERSHIP_URL", raised.value, raised.value.args)
        config = AlienConfig(**_base(tmp_path))
        with pytest.raises(ConfigError, match="must not carry credentials") as raised:
            config.derive(mothership_url=mothership_url)
        capture.show("ConfigError deriving MOTHERSHIP_URL", raised.value)
        # a stream URL is shown to every operator
        with pytest.raises(ConfigError, match="must not carry credentials") as raised:
            AlienConfig(video_config={"stream_url": f"rtsp://cam:{mothership_password}@127.0.0.1:8554/front"})
        capture.show("ConfigError for video_config", raised.value)

        # NATS_URL: the password reaches nats-py as written, or the URL is refused (the host would end early)
        if char in NATS_READS:
            config = AlienConfig(**_base(tmp_path, nats_url=nats_url))
        else:
            with pytest.raises(ConfigError, match="set ALIEN_NATS_USER and ALIEN_NATS_PASSWORD") as raised:
                AlienConfig(**_base(tmp_path, nats_url=nats_url))
            capture.show("ConfigError for NATS_URL", raised.value, raised.value.args)
            # what the refusal says to do works
            config = AlienConfig(**_base(tmp_path, nats_url=server.url, nats_user="robot", nats_password=nats_password))
        capture.show("config", config, config.model_dump(), config.model_dump_json(), config.model_dump(mode="json"))
        link = NatsLink(NatsSettings.from_config(config))
        await asyncio.wait_for(link.connect(), WAIT_S)  # authenticated: the password arrived whole
        await link.js.account_info()
        capture.show("link", link, config, link.settings)
        await link.close()
        for wrong in (
            f"nats://robot:{nats_password}@127.0.0.1:99999",
            f"http://robot:{nats_password}@127.0.0.1:{server.port}",
            f"robot:{nats_password}@127.0.0.1:{server.port}",
            f"{server.url},nats://robot:{nats_password}@",
        ):
            with pytest.raises(ConfigError) as raised:
                AlienConfig(**_base(tmp_path, nats_url=wrong))
            capture.show("ConfigError for NATS_URL", raised.value)

        # `alien status`, with the URL in its environment
        code, out, err = await _alien_status(tmp_path, NATS_URL=nats_url)
        capture.show("alien status with NATS_URL", out, err)
        if char in NATS_READS:
            assert f"nats://***@127.0.0.1:{server.port} · connected to " in out, out + err
        else:
            assert code == 2 and "ALIEN_NATS_PASSWORD" in err, out + err
        code, out, err = await _alien_status(tmp_path, MOTHERSHIP_URL=mothership_url, NATS_URL=server.url)
        capture.show("alien status with MOTHERSHIP_URL", out, err)
        assert code == 2 and "MOTHERSHIP_URL must not carry credentials" in err, out + err
    capture.check()


async def test_nats_py_reads_a_url_password_as_written_without_percent_decoding(capture: Capture) -> None:
    """What NATS_URL's refusal of an unencoded / ? # says: percent-encoding is no way out."""
    password = capture.scanner.add("NATS password", f"SECRET{_TAG}pw/with/slashes")
    encoded = urllib.parse.quote(password, safe="")
    get_logger("alien.test").debug("percent-encoded")
    with NatsServer(user="robot", password=password) as server:
        config = AlienConfig(nats_url=f"nats://robot:{encoded}@127.0.0.1:{server.port}")
        link = NatsLink(NatsSettings.from_config(config))
        with pytest.raises(NatsAuthError) as raised:
            await asyncio.wait_for(link.connect(), WAIT_S)
        capture.show("NatsAuthError", raised.value, config, link.settings)
    with NatsServer(user="robot", password=encoded) as server:  # the three characters "%2F" are the password
        config = AlienConfig(nats_url=f"nats://robot:{encoded}@127.0.0.1:{server.port}")
        link = NatsLink(NatsSettings.from_config(config))
        await asyncio.wait_for(link.connect(), WAIT_S)
        capture.show("link", link, config, link.settings)
        await link.close()
    capture.check()
