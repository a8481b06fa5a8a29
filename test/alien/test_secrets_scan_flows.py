"""Secrets hygiene: the scanner finds what is planted; client flows and failures (NKey, token, .creds) leak none."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sqlite3
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import secrets_support
from secrets_support import (
    _TAG,
    API_KEY,
    BEARER,
    NATS_PASSWORD,
    NATS_TOKEN,
    WAIT_S,
    WRONG_API_KEY,
    WRONG_BEARER,
    WRONG_NATS_PASSWORD,
    WRONG_NATS_TOKEN,
    Capture,
    _base,
    _refused,
    _run_flow,
    _until_logged,
)

from alien import AlienClient, AlienConfig
from alien.errors import AuthenticationError, ConfigError, NatsAuthError
from alien.link import NatsLink
from alien.logs import get_logger
from alien.settings import NatsSettings
from alien_testing.deployment import DEFAULT_EDGE_SCOPES, V01Deployment
from alien_testing.emulator import MothershipEmulator, mint_edge_key
from alien_testing.nats_jwt import OperatorTrust
from alien_testing.nats_server import NatsServer, free_port, generate_nkey_user

# fixtures of secrets_support, used here by name
capture = secrets_support.capture
clients = secrets_support.clients


# --- the scanner can fail ---


def test_the_scanner_finds_a_planted_secret(capture: Capture) -> None:
    secret = capture.scanner.add("planted", f"SECRET-planted-{_TAG}/+=?&")
    get_logger("alien.test").debug("something harmless")
    capture.check()  # nothing planted yet: clean

    places: list[tuple[str, Callable[[], None]]] = [
        ("log message", lambda: get_logger("alien.test").debug("token is %s", secret)),
        ("log argument repr only", lambda: get_logger("alien.test").debug("extra", extra={"x": [secret]})),
        ("stdout", lambda: print(f"seed={secret}")),
        ("stderr, base64", lambda: os.write(2, base64.b64encode(b"ab" + secret.encode()))),
        ("file, URL-encoded", lambda: (capture.tmp_path / "x.txt").write_text(urllib.parse.quote(secret, safe=""))),
        ("SQLite blob", lambda: _sqlite_blob(capture.tmp_path / "data" / "o.sqlite3", secret.encode())),
        ("nested file, base64url", lambda: _nested(capture.tmp_path, base64.urlsafe_b64encode(secret.encode()))),
    ]
    for where, plant in places:
        capture.caplog.clear()
        get_logger("alien.test").debug("something harmless")
        for path in capture.tmp_path.rglob("*"):
            if path.is_file():
                path.unlink()
        plant()
        with pytest.raises(AssertionError, match="secrets leaked") as leaked:
            capture.check()
        assert "planted" in str(leaked.value), where
        capture.scanner.findings.clear()
    capture.show("an object", RuntimeError(f"failed with {secret}"))
    with pytest.raises(AssertionError, match="secrets leaked"):
        capture.check()
    capture.scanner.findings.clear()
    capture.shown.clear()
    for path in capture.tmp_path.rglob("*"):
        if path.is_file():
            path.unlink()
    capture.written.append(capture.tmp_path / "seed.nk")
    (capture.tmp_path / "seed.nk").write_text(secret)  # a file the test wrote on purpose is not scanned
    capture.caplog.clear()
    get_logger("alien.test").debug("something harmless")
    capture.check()


def _sqlite_blob(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS m (payload BLOB)")
        db.execute("INSERT INTO m VALUES (?)", (data,))
    db.close()


def _nested(root: Path, data: bytes) -> None:
    (root / "a" / "b").mkdir(parents=True, exist_ok=True)
    (root / "a" / "b" / "c.bin").write_bytes(b"\x00\xff" + data)


# --- v0.1: NKey edge user, API key ---


@pytest.fixture
def v01(tmp_path: Path) -> Iterator[V01Deployment]:
    deployment = V01Deployment(workdir=tmp_path / "deployment")
    deployment.edges["edge"] = mint_edge_key(DEFAULT_EDGE_SCOPES["v0.1.1"], api_key=API_KEY)
    with deployment:
        yield deployment


def _v01_config(deployment: V01Deployment, tmp_path: Path, **overrides: Any) -> AlienConfig:
    values = _base(
        tmp_path,
        **deployment.edge_settings(),
        entity_name="rover-secret",
    )
    values.update(overrides)
    return AlienConfig(**values)


async def test_v01_nkey_flows_and_failures_leak_nothing(
    v01: V01Deployment, clients: list[AlienClient], capture: Capture, tmp_path: Path
) -> None:
    scanner = capture.scanner
    scanner.add("api key", API_KEY)
    seed = scanner.add("NKey seed", v01.edge.nkey_seed)
    commander = v01.admin_options()

    # inline seed, API key as X-API-Key: registration, telemetry, event, command
    await _run_flow(clients, _v01_config(v01, tmp_path), v01.emulator, commander, capture)
    # the seed from a file, the API key as Authorization: Bearer
    seed_file = tmp_path / "edge.nk"
    seed_file.write_text(seed + "\n")
    capture.written.append(seed_file)
    from_file = _v01_config(v01, tmp_path, nats_nkey_seed=None, nats_nkey_seed_file=seed_file, api_key_header="bearer")
    await _run_flow(clients, from_file, v01.emulator, commander, capture)
    assert {r.path for r in v01.emulator.requests() if r.status < 400}

    # failures: a key the server does not know (401), a seed it does not know, a seed that is no seed
    scanner.add("wrong API key", WRONG_API_KEY)
    await _refused(clients, _v01_config(v01, tmp_path, api_key=WRONG_API_KEY), AuthenticationError, capture)
    stranger = scanner.add("stranger NKey seed", generate_nkey_user()[0])
    await _refused(clients, _v01_config(v01, tmp_path, nats_nkey_seed=stranger), NatsAuthError, capture)
    malformed = scanner.add("malformed NKey seed", f"SUSECRETNOTASEED{_TAG}ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    await _refused(clients, _v01_config(v01, tmp_path, nats_nkey_seed=malformed), Exception, capture)

    scanned = capture.check()
    names = {p.name for p in scanned}
    assert "identity.json" in names
    assert any(n.startswith("outbox.") and n.endswith(".sqlite3") for n in names), names
    identity = json.loads((tmp_path / "identity.json").read_text())
    assert identity["entity_id"] and identity["dialect"] == "v0.1"


# --- token and user/password nats-servers, v0.0.1 bearer token ---


@pytest.fixture
def token_server() -> Iterator[NatsServer]:
    with NatsServer(token=NATS_TOKEN) as server:
        yield server


async def test_nats_token_and_bearer_token_flows_and_failures_leak_nothing(
    token_server: NatsServer, clients: list[AlienClient], capture: Capture, tmp_path: Path
) -> None:
    for name, value in (("bearer token", BEARER), ("NATS token", NATS_TOKEN)):
        capture.scanner.add(name, value)
    emulator = MothershipEmulator(
        token_server.url, dialect="v0.0.1", bearer_token=BEARER, nats_options=token_server.connect_options()
    )
    emulator.start()
    try:
        config = AlienConfig(
            **_base(tmp_path, mothership_url=emulator.url, nats_url=token_server.url, bearer_token=BEARER),
            nats_token=NATS_TOKEN,
        )
        await _run_flow(clients, config, emulator, token_server.connect_options(), capture)

        capture.scanner.add("wrong NATS token", WRONG_NATS_TOKEN)
        wrong_token = AlienConfig(
            **_base(tmp_path, mothership_url=emulator.url, nats_url=token_server.url, bearer_token=BEARER),
            nats_token=WRONG_NATS_TOKEN,
        )
        await _refused(clients, wrong_token, NatsAuthError, capture)
        capture.scanner.add("wrong bearer token", WRONG_BEARER)
        wrong_bearer = AlienConfig(
            **_base(
                tmp_path / "other",
                mothership_url=emulator.url,
                nats_url=token_server.url,
                bearer_token=WRONG_BEARER,
            ),
            nats_token=NATS_TOKEN,
        )
        await _refused(clients, wrong_bearer, AuthenticationError, capture)
    finally:
        emulator.stop()
    capture.check()


async def test_nats_password_flows_and_failures_leak_nothing(
    clients: list[AlienClient], capture: Capture, tmp_path: Path
) -> None:
    capture.scanner.add("NATS password", NATS_PASSWORD)
    capture.scanner.add("bearer token", BEARER)
    with NatsServer(user="robot", password=NATS_PASSWORD) as server:
        emulator = MothershipEmulator(
            server.url, dialect="v0.0.1", bearer_token=BEARER, nats_options=server.connect_options()
        )
        emulator.start()
        try:
            values = _base(tmp_path, mothership_url=emulator.url, nats_url=server.url, bearer_token=BEARER)
            config = AlienConfig(**values, nats_user="robot", nats_password=NATS_PASSWORD)
            await _run_flow(clients, config, emulator, server.connect_options(), capture)
            capture.scanner.add("wrong NATS password", WRONG_NATS_PASSWORD)
            wrong = AlienConfig(**values, nats_user="robot", nats_password=WRONG_NATS_PASSWORD)
            await _refused(clients, wrong, NatsAuthError, capture)
        finally:
            emulator.stop()
    capture.check()


# --- .creds (operator mode) ---


async def test_creds_file_flows_and_failures_leak_nothing(capture: Capture, tmp_path: Path) -> None:
    trust = OperatorTrust()
    with NatsServer(extra_config=trust.server_config()) as server:
        creds = trust.write_user_creds(tmp_path / "robot.creds")
        unknown = OperatorTrust().write_user_creds(tmp_path / "unknown.creds")
        broken = tmp_path / "broken.creds"  # the seed without its JWT block
        seed_block = creds.read_text().split("-----BEGIN USER NKEY SEED-----", 1)[1]
        broken.write_text("-----BEGIN USER NKEY SEED-----" + seed_block)
        capture.written += [creds, unknown, broken]
        for path in (creds, unknown):
            lines = path.read_text().splitlines()
            jwt, creds_seed = (lines[i + 1] for i, line in enumerate(lines) if line.startswith("-----BEGIN"))
            capture.scanner.add(f"{path.name} JWT", jwt)
            capture.scanner.add(f"{path.name} seed", creds_seed)

        config = AlienConfig(nats_url=server.url, nats_creds_file=creds, nats_reconnect_wait_s=0.1)
        link = NatsLink(NatsSettings.from_config(config))
        await asyncio.wait_for(link.connect(), WAIT_S)
        await link.js.account_info()
        capture.show("link", link, config, link.settings)
        await link.close()
        for path, error in ((unknown, NatsAuthError), (broken, ConfigError)):
            refused = NatsLink(
                NatsSettings.from_config(
                    AlienConfig(nats_url=server.url, nats_creds_file=path, nats_reconnect_wait_s=0.1)
                )
            )
            with pytest.raises(error) as raised:
                await asyncio.wait_for(refused.connect(), WAIT_S)
            capture.show(path.name, raised.value)
    capture.check()


# --- unreachable servers ---


async def test_unreachable_servers_leak_nothing(capture: Capture, tmp_path: Path) -> None:
    """While waiting (registration retried, NATS retried), every secret is configured."""
    for name, value in (
        ("api key", API_KEY),
        ("bearer token", BEARER),
        ("NATS token", NATS_TOKEN),
        ("NATS password", NATS_PASSWORD),
    ):
        capture.scanner.add(name, value)
    seed = capture.scanner.add("NKey seed", generate_nkey_user()[0])
    url_password = capture.scanner.add("URL password", f"SECRETURLPW{_TAG}xyz")
    values = _base(
        tmp_path,
        mothership_url=f"http://127.0.0.1:{free_port()}",
        nats_url=f"nats://robot:{url_password}@127.0.0.1:{free_port()}",
        api_key=API_KEY,
        bearer_token=BEARER,
        nats_token=NATS_TOKEN,
        nats_user="robot",
        nats_password=NATS_PASSWORD,
        nats_nkey_seed=seed,
    )
    for dialect in ("v0.0.1", "v0.1"):
        client = AlienClient(AlienConfig(**values, dialect=dialect))
        await _until_logged("cannot register yet", client.initialize())
        capture.show("registration error", client.registration_error)
        await client.close(timeout=1)
    config = AlienConfig(**values)
    link = NatsLink(NatsSettings.from_config(config))
    await _until_logged("waiting for NATS", link.connect())
    await link.close()
    capture.show("config", config, config.model_dump(), config.model_dump_json(), link.settings)
    capture.check()
