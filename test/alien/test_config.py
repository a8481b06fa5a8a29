"""AlienConfig: the seed API's fields, env vars, .env, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alien import AlienConfig, ConfigError, IdentityFileError
from alien.wire import redact_url


def test_seed_api_defaults() -> None:
    config = AlienConfig()
    assert config.mothership_url == "http://localhost:8080"
    assert config.nats_url == "nats://localhost:4222"
    assert config.bearer_token.get_secret_value() == "constellation-dev-token"
    assert (config.org_name, config.org_type) == ("Alien Fleet", "commercial")
    assert (config.entity_type, config.entity_name) == ("drone", None)
    assert config.config_file == ".alien_config.json"
    assert (config.org_id, config.entity_id) == (None, None)
    assert (config.dialect, config.command_intake) == ("auto", "auto")


def test_seed_api_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "MOTHERSHIP_URL": "http://mothership.test:9000",
        "NATS_URL": "nats://a:4222,nats://b:4222",
        "API_BEARER_TOKEN": "tok-from-env",
        "ORG_NAME": "My Drone Fleet",
        "ORG_TYPE": "ngo",
        "ENTITY_TYPE": "sensor",
        "ENTITY_NAME": "DRONE-001",
        "ALIEN_CONFIG_FILE": "ids.json",
        "ALIEN_DIALECT": "v0.1",
        "ALIEN_COMMAND_INTAKE": "core",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    config = AlienConfig()
    assert config.mothership_url == "http://mothership.test:9000"
    assert config.nats_servers == ["nats://a:4222", "nats://b:4222"]
    assert config.bearer_token.get_secret_value() == "tok-from-env"
    assert (config.org_name, config.org_type, config.entity_type) == ("My Drone Fleet", "ngo", "sensor")
    assert (config.entity_name, config.config_file) == ("DRONE-001", "ids.json")
    assert (config.dialect, config.command_intake) == ("v0.1", "core")


def test_dotenv_file_is_read_and_constructor_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("ORG_NAME=From Dotenv\nENTITY_NAME=dot-1\nUNRELATED_VARIABLE=x\n")
    assert AlienConfig().org_name == "From Dotenv"
    assert AlienConfig(org_name="Drone Squadron Alpha").org_name == "Drone Squadron Alpha"
    monkeypatch.setenv("ORG_NAME", "From Env")
    assert AlienConfig().org_name == "From Env"  # the environment beats .env


@pytest.mark.parametrize(
    ("env", "value", "allowed"),
    [
        ("ALIEN_COMMAND_INTAKE", "sometimes", "'auto', 'core' or 'jetstream'"),
        ("ALIEN_DIALECT", "v9", "'auto', 'v0.0.1' or 'v0.1'"),
        ("ORG_TYPE", "pirates", "'military', 'civilian', 'commercial' or 'ngo'"),
    ],
)
def test_invalid_choice_names_variable_and_allowed_values(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, allowed: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as info:
        AlienConfig()
    message = str(info.value)
    assert env in message
    assert allowed in message
    assert repr(value) in message


def test_unknown_entity_type_lists_allowed_values() -> None:
    with pytest.raises(ConfigError) as info:
        AlienConfig(entity_type="spaceship")
    message = str(info.value)
    assert "ENTITY_TYPE" in message and "'spaceship'" in message
    for allowed in ("drone", "robot", "sensor", "aircraft_multirotor", "ground_vehicle_wheeled"):
        assert allowed in message


def test_friendly_and_server_entity_types_are_accepted() -> None:
    for name in ("drone", "robot", "rover", "sensor", "aircraft_fixed_wing", "sensor_platform"):
        assert AlienConfig(entity_type=name).entity_type == name


def test_secrets_never_show_in_repr_or_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    config = AlienConfig(
        bearer_token="bearer-SECRET-1",
        api_key="c4_test_SECRET-2",
        nats_password="SECRET-3",
        nats_nkey_seed="SUSECRET4",
        nats_token="SECRET-5",
    )
    shown = repr(config) + str(config) + str(config.model_dump())
    for secret in ("bearer-SECRET-1", "c4_test_SECRET-2", "SECRET-3", "SUSECRET4", "SECRET-5"):
        assert secret not in shown
    monkeypatch.setenv("API_BEARER_TOKEN", "x")
    with pytest.raises(ConfigError) as info:
        AlienConfig(nats_password=12345, request_attempts=0)
    assert "12345" not in str(info.value)
    assert "ALIEN_REQUEST_ATTEMPTS" in str(info.value)


def test_mothership_url_must_be_http() -> None:
    with pytest.raises(ConfigError, match="MOTHERSHIP_URL"):
        AlienConfig(mothership_url="ftp://x")


def test_save_then_load_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "ids.json"
    saved = AlienConfig(config_file=str(path), entity_name="HAWK-1", org_id="org-1", entity_id="ent-1")
    saved.save()
    data = json.loads(path.read_text())
    assert data["org_id"] == "org-1" and data["entity_id"] == "ent-1" and data["entity_name"] == "HAWK-1"
    assert path.stat().st_mode & 0o777 == 0o600
    loaded = AlienConfig(config_file=str(path))
    loaded.load()
    assert (loaded.org_id, loaded.entity_id) == ("org-1", "ent-1")


def test_load_without_file_keeps_ids_empty(tmp_path: Path) -> None:
    config = AlienConfig(config_file=str(tmp_path / "missing.json"))
    config.load()
    assert (config.org_id, config.entity_id) == (None, None)


def test_pinned_org_ignores_an_entity_saved_for_another_org(tmp_path: Path) -> None:
    path = tmp_path / "ids.json"
    AlienConfig(config_file=str(path), org_id="org-old", entity_id="ent-old").save()
    pinned = AlienConfig(config_file=str(path), org_id="org-new")
    pinned.load()
    assert (pinned.org_id, pinned.entity_id) == ("org-new", None)
    same = AlienConfig(config_file=str(path), org_id="org-old")
    same.load()
    assert same.entity_id == "ent-old"


def test_corrupt_identity_file_is_named_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "ids.json"
    path.write_text('{"org_id": "org-1", "entity_id": ')
    config = AlienConfig(config_file=str(path))
    with pytest.raises(IdentityFileError) as info:
        config.load()
    assert str(path) in str(info.value)
    assert path.read_text() == '{"org_id": "org-1", "entity_id": '


def test_credentials_in_urls_are_redacted_for_logs() -> None:
    assert redact_url("nats://robot:s3cret@10.0.0.1:4222") == "nats://***@10.0.0.1:4222"
    assert redact_url("nats://TOKEN123@a:4222, tls://b:4222") == "nats://***@a:4222,tls://b:4222"
    assert redact_url("nats://robot:p@ss@host:4222") == "nats://***@host:4222"  # "@" inside the password
    # "@" in a path cannot be told from one ending a password that holds "/": hidden to be safe
    assert redact_url("https://c2.example.com/a@b") == "https://***@b"
    assert redact_url("http://127.0.0.1:8080/api") == "http://127.0.0.1:8080/api"


def test_mothership_url_with_credentials_is_refused_without_showing_them() -> None:
    with pytest.raises(ConfigError, match="must not carry credentials") as info:
        AlienConfig(mothership_url="https://robot:hunter2@c2.example.com")
    assert "hunter2" not in str(info.value)
    assert info.value.__context__ is None  # pydantic's error (with the input) is not chained


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("nats//localhost", "it has no '://' after the scheme"),
        ("127.0.0.1:4222", "it has no scheme"),
        ("localhost:4222", "it has no scheme"),
        ("http://127.0.0.1:4222", "its scheme is 'http', not nats:// or tls:// or ws:// or wss://"),
        ("nats://", "it has no host"),
        ("nats://host:99999", "its port is not a number"),
        ("nats://a:4222,b:4222", "it has no scheme"),  # every server of the list is checked
    ],
)
def test_nats_url_must_be_a_url_of_a_nats_scheme(url: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        AlienConfig(nats_url=url)
    shown = url.rsplit(",", maxsplit=1)[-1].strip()
    assert str(info.value).startswith(f"invalid configuration: NATS_URL {shown!r} is not a valid URL: {reason}")
    assert str(info.value).endswith("(expected e.g. nats://host:4222)")
    assert "TLS" not in str(info.value)


@pytest.mark.parametrize(
    "url", ["nats://a:4222, tls://b:4222", "ws://127.0.0.1:8080", "wss://h", "nats://[::1]:4222", "NATS://h:1"]
)
def test_valid_nats_urls_are_accepted(url: str) -> None:
    assert AlienConfig(nats_url=url).nats_url == url


@pytest.mark.parametrize("password", ["p/a?s#s@w:o%r+d", "p%2Fa%3Fs%23s%40w%3Ao%25r%2Bd"])
def test_a_nats_url_password_is_never_shown_raw_or_encoded(password: str) -> None:
    url = f"nats://robot:{password}@127.0.0.1:4222"
    if "/" in password:  # nats-py could not read it: refused, in a line that does not show it
        with pytest.raises(ConfigError, match="ALIEN_NATS_PASSWORD") as info:
            AlienConfig(nats_url=url)
        assert password not in str(info.value) and "robot" not in str(info.value)
    else:
        config = AlienConfig(nats_url=url)  # a valid URL
        assert password not in repr(config) and password not in config.model_dump_json()
    for wrong in (f"robot:{password}@127.0.0.1:4222", f"nats:/robot:{password}@h:4222", f"nats://robot:{password}@"):
        with pytest.raises(ConfigError) as info:
            AlienConfig(nats_url=wrong)
        for piece in (password, "robot", "a?s", "w:o"):
            assert piece not in str(info.value), str(info.value)


# Every character that ends a part of a URL or changes its meaning; generated passwords hold them.
URL_SPECIALS = ("/", "?", "#", "@", ":", "%", "+")


@pytest.mark.parametrize("char", URL_SPECIALS)
@pytest.mark.parametrize("scheme", ["nats", "tls", "ws", "wss", "http", "https"])
def test_redact_url_hides_a_password_holding_any_url_special_character(scheme: str, char: str) -> None:
    password = f"k3{char}Jd+SECRET{char}PW9x"
    for url, shown in (
        (f"{scheme}://alice:{password}@127.0.0.1:4222", f"{scheme}://***@127.0.0.1:4222"),
        (f"{scheme}://alice:{password}@c2.example.com/api/v1?x=1", f"{scheme}://***@c2.example.com/api/v1?x=1"),
        (f"{scheme}://{password}@h", f"{scheme}://***@h"),  # a token as the user part
        (f"{scheme.upper()}://alice:{password}@h:1", f"{scheme.upper()}://***@h:1"),
        (f"  {scheme}://alice:{password}@h:1  ", f"{scheme}://***@h:1"),
        (f"alice:{password}@h:4222", "***@h:4222"),  # no scheme (nats-py reads host:port)
        (f"{scheme}//alice:{password}@h", "***@h"),  # a scheme without "://": all of it is hidden
    ):
        assert redact_url(url) == shown, url


def test_redact_url_leaves_urls_without_a_user_part_as_they_are() -> None:
    for url in ("nats://127.0.0.1:4222", "https://c2.example.com:8443/api?x=1#y", "tls://[::1]:4222", "nats//h", ""):
        assert redact_url(url) == url


def test_redact_url_redacts_a_server_list_server_by_server() -> None:
    assert (
        redact_url("nats://a:k3/x@h1:4222, tls://b:p?q#r@h2:4222,nats://h3:4222")
        == "nats://***@h1:4222,tls://***@h2:4222,nats://h3:4222"
    )
    # a comma in a password starts no server: the part before it is not shown as one
    assert redact_url("nats://alice:k3,SECRET@h:4222") == "nats://***@h:4222"
    assert redact_url("nats://alice:k3,SECRET@h1:4222,nats://h2:4222") == "nats://***@h1:4222,nats://h2:4222"


def test_url_without_credentials_parses_the_host_after_the_last_at() -> None:
    from alien.wire import url_without_credentials

    parts = url_without_credentials("nats://alice:k3/Jd?x#y@z@127.0.0.1:4222", "nats")
    assert (parts.scheme, parts.hostname, parts.port, parts.netloc) == ("nats", "127.0.0.1", 4222, "127.0.0.1:4222")
    parts = url_without_credentials("alice:k3/Jd@h:4222", "nats")  # no scheme: the default one
    assert (parts.scheme, parts.hostname, parts.port) == ("nats", "h", 4222)
    parts = url_without_credentials("https://c2.example.com:8443/api", "http")
    assert (parts.scheme, parts.hostname, parts.port, parts.path) == ("https", "c2.example.com", 8443, "/api")


@pytest.mark.parametrize("char", ["/", "?", "#"])
@pytest.mark.parametrize("scheme", ["nats", "tls", "ws", "wss"])
def test_a_nats_url_user_part_nats_py_cannot_read_is_refused_in_one_line(scheme: str, char: str) -> None:
    """nats-py (urllib) would end the host at the character, and it does not percent-decode."""
    for url in (
        f"{scheme}://alice:k3{char}Jd+SECRETPW9x@127.0.0.1:4222",
        f"nats://h1:4222,{scheme}://k3{char}SECRET@h2",
    ):
        with pytest.raises(ConfigError) as info:
            AlienConfig(nats_url=url)
        shown = redact_url(url.rpartition(",")[2])
        assert str(info.value) == (
            f"invalid configuration: NATS_URL {shown!r} has '/', '?' or '#' in its user or password: nats-py "
            "would read the host from there, and it does not percent-decode %2F %3F %23; leave the credentials "
            "out of the URL and set ALIEN_NATS_USER and ALIEN_NATS_PASSWORD"
        )
        assert "SECRET" not in str(info.value) and "alice" not in str(info.value)


@pytest.mark.parametrize("char", ["@", ":", "%", "+"])
def test_a_nats_url_password_with_characters_nats_py_reads_as_written_is_accepted(char: str) -> None:
    config = AlienConfig(nats_url=f"nats://alice:k3{char}Jd+SECRETPW9x@127.0.0.1:4222")
    assert config.nats_servers == [f"nats://alice:k3{char}Jd+SECRETPW9x@127.0.0.1:4222"]  # as given, to nats-py
    assert "SECRET" not in repr(config) and "SECRET" not in config.model_dump_json()
    assert config.model_dump()["nats_url"] == "nats://***@127.0.0.1:4222"


@pytest.mark.parametrize("char", URL_SPECIALS)
def test_wrong_urls_holding_credentials_are_refused_without_showing_them(char: str) -> None:
    password = f"pa{char}SECRETMS"
    for field, url, says in (
        ("mothership_url", f"http://mu:{password}@host", "MOTHERSHIP_URL must not carry credentials"),
        ("mothership_url", f"https://mu:{password}@host:8443/api", "MOTHERSHIP_URL must not carry credentials"),
        ("mothership_url", f"http://mu:{password}@host:99999", "MOTHERSHIP_URL 'http://***@host:99999' is not a valid"),
        ("mothership_url", f"ftp://mu:{password}@host", "MOTHERSHIP_URL 'ftp://***@host' is not a valid URL: its"),
        ("mothership_url", f"http:/mu:{password}@host", "MOTHERSHIP_URL '***@host' is not a valid URL: it has no"),
        ("nats_url", f"nats://mu:{password}@host:99999", "NATS_URL 'nats://***@host:99999' is not a valid URL"),
        ("nats_url", f"http://mu:{password}@host", "NATS_URL 'http://***@host' is not a valid URL: its scheme"),
        ("nats_url", f"nats:/mu:{password}@host://x@h", "NATS_URL '***@h' is not a valid URL: it has no '://'"),
        ("nats_url", f"nats://mu:{password}@", "NATS_URL 'nats://***@' is not a valid URL: it has no host"),
    ):
        with pytest.raises(ConfigError) as info:
            AlienConfig(**{field: url})
        assert says in str(info.value)
        assert "SECRETMS" not in str(info.value) and "mu:" not in str(info.value), str(info.value)
        assert info.value.__context__ is None and info.value.__cause__ is None


@pytest.mark.parametrize(
    ("url", "reason"),
    [("localhost:8080", "it has no scheme"), ("http//c2", "it has no '://'"), ("ws://c2", "its scheme is 'ws'")],
)
def test_mothership_url_must_be_an_http_url(url: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=f"MOTHERSHIP_URL '{url}' is not a valid URL: {reason}"):
        AlienConfig(mothership_url=url)
