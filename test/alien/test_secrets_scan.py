"""Secrets hygiene: no token, API key, password, NKey seed or .creds content anywhere it could leak.

Every flow runs with recognisable secrets and DEBUG logging on every logger: registration,
telemetry, events and a command against a v0.1 deployment (NKey edge user, seed given inline and
as a file, API key as X-API-Key and as Bearer) and against token and user/password nats-servers
(v0.0.1 bearer token); a .creds user of an operator-mode server; and the failures: a wrong API
key (401), bearer token, NKey seed, NATS token, password or .creds, unreachable servers, secrets
of the wrong type in the configuration. Everything captured (log records with their arguments,
stdout/stderr, exceptions' str/repr, the config's repr/str/dumps) and every file under tmp_path
(identity file, outbox SQLite with its WAL, anything else), apart from the files the test itself
wrote the secrets into, is scanned for each secret, also base64- and URL-encoded.
The scanner's own test plants a secret in each place and must find it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import sqlite3
import traceback
import urllib.parse
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import pytest
from installed import console_script
from pydantic import SecretStr

from alien import AlienClient, AlienConfig
from alien.errors import AuthenticationError, ConfigError, NatsAuthError
from alien.link import NatsLink
from alien.logs import get_logger
from alien.settings import MothershipSettings, NatsSettings
from alien.wire import redact_url
from alien_testing.deployment import DEFAULT_EDGE_SCOPES, V01Deployment
from alien_testing.emulator import MothershipEmulator, mint_edge_key
from alien_testing.nats_jwt import OperatorTrust
from alien_testing.nats_server import NatsServer, free_port, generate_nkey_user

_TAG = os.urandom(4).hex().upper()  # makes each secret unique to this run
API_KEY = f"c4_test_SECRETAPIKEY{_TAG}0123456789"
WRONG_API_KEY = f"c4_test_SECRETWRONGKEY{_TAG}987654"
BEARER = f"SECRET-BEARER-{_TAG}-token/+=&?"  # characters that URL- and base64-encode differently
WRONG_BEARER = f"SECRET-WRONG-BEARER-{_TAG}"
NATS_TOKEN = f"SECRETNATSTOKEN{_TAG}abcdef"
WRONG_NATS_TOKEN = f"SECRETWRONGNATSTOKEN{_TAG}"
NATS_PASSWORD = f"SECRET-nats-password-{_TAG}:@/"
WRONG_NATS_PASSWORD = f"SECRET-wrong-password-{_TAG}"
FIX = {"position": {"latitude": 32.94881, "longitude": -96.80132, "altitude": 152.4, "heading": 90.0}}
WAIT_S = 15.0


# --- the scanner ---


def encoded_forms(secret: str) -> dict[str, str]:
    """The secret as it could appear: raw, URL-encoded, JSON-escaped, base64 (any alignment)."""
    raw = secret.encode()
    forms = {
        "raw": secret,
        "url-encoded": urllib.parse.quote(secret, safe=""),
        "url-encoded (plus)": urllib.parse.quote_plus(secret),
        "json": json.dumps(secret)[1:-1],
    }
    for name, encode in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
        for offset in range(3):
            text = encode(b"\0" * offset + raw).decode().rstrip("=")
            # only the characters that depend on the secret alone, whatever comes before or after it
            stable = text[4 if offset else 0 : len(text) - 3]
            if len(stable) >= 8:
                forms[f"{name}+{offset}"] = stable
    return forms


@dataclass
class Scanner:
    """Secrets by name; `findings` lists where any of their forms was seen."""

    secrets: dict[str, str] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)

    def add(self, name: str, value: str) -> str:
        assert len(value) >= 12, f"{name}: too short to scan for without false alarms"
        self.secrets[name] = value
        return value

    def scan_text(self, where: str, text: str) -> None:
        for name, secret in self.secrets.items():
            for form, shown in encoded_forms(secret).items():
                if shown and shown in text:
                    at = text.index(shown)
                    context = text[max(0, at - 80) : at + len(shown) + 40]
                    self.findings.append(f"{name} ({form}) in {where}: ...{context!r}...")

    def scan_bytes(self, where: str, data: bytes) -> None:
        self.scan_text(where, data.decode("utf-8", "replace"))
        self.scan_text(where + " (latin-1)", data.decode("latin-1"))
        for encoding in ("utf-16-le", "utf-16-be"):  # SQLite may store text as UTF-16
            self.scan_text(f"{where} ({encoding})", data.decode(encoding, "replace"))

    def scan_files(self, root: Path, *, exclude: Iterable[Path] = ()) -> list[Path]:
        skipped = {p.resolve() for p in exclude}
        scanned = []
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.resolve() not in skipped:
                self.scan_bytes(str(path.relative_to(root)), path.read_bytes())
                scanned.append(path)
        return scanned

    def scan_objects(self, where: str, *values: Any) -> None:
        for value in values:
            self.scan_text(where, f"{value!s}\n{value!r}")
            if isinstance(value, BaseException):  # with its cause and context, as a traceback shows them
                self.scan_text(where + " (traceback)", "".join(traceback.format_exception(value)))


@dataclass
class Capture:
    """What a flow left behind: log records, stdout/stderr, files, objects to show."""

    scanner: Scanner
    caplog: pytest.LogCaptureFixture
    capfd: pytest.CaptureFixture[str]
    tmp_path: Path
    written: list[Path] = field(default_factory=list)  # files the test wrote the secrets into
    shown: list[tuple[str, Any]] = field(default_factory=list)

    def show(self, where: str, *values: Any) -> None:
        self.shown.extend((where, value) for value in values)

    def check(self) -> list[Path]:
        scanner = self.scanner
        records = self.caplog.records
        assert records, "nothing was logged: is DEBUG capture on?"
        for record in records:
            scanner.scan_text(f"log record {record.name}", _record_text(record))
        scanner.scan_text("caplog.text", self.caplog.text)
        out, err = self.capfd.readouterr()
        scanner.scan_text("stdout", out)
        scanner.scan_text("stderr", err)
        for where, value in self.shown:
            scanner.scan_objects(where, value)
        scanned = scanner.scan_files(self.tmp_path, exclude=self.written)
        assert not scanner.findings, "secrets leaked:\n" + "\n".join(scanner.findings)
        return scanned


def _record_text(record: logging.LogRecord) -> str:
    """Everything a handler could write: the message, its arguments, the exception, extras."""
    parts = [str(record.msg), record.getMessage(), repr(record.args)]
    if record.exc_info and record.exc_info[1] is not None:
        exc = record.exc_info[1]
        parts += [str(exc), repr(exc), logging.Formatter().formatException(record.exc_info)]
    parts.append(repr({k: v for k, v in vars(record).items() if k not in ("msg", "args", "exc_info")}))
    return "\n".join(parts)


@pytest.fixture
def capture(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str], tmp_path: Path) -> Iterator[Capture]:
    """DEBUG on the root logger and on every logger that has a level of its own."""
    caplog.set_level(logging.DEBUG)
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and logger.level != logging.NOTSET:
            caplog.set_level(logging.DEBUG, logger=name)
    yield Capture(Scanner(), caplog, capfd, tmp_path)


# --- helpers ---


def _base(tmp_path: Path, **values: Any) -> dict[str, Any]:
    return {
        "config_file": str(tmp_path / "identity.json"),
        "data_dir": tmp_path / "data",
        "publish_timeout_s": 2.0,
        "nats_reconnect_wait_s": 0.1,
        "request_attempts": 2,
        "retry_backoff_s": 0.01,
        "retry_backoff_max_s": 0.05,
        "request_timeout_s": 5,
        "heartbeat_period_s": 0.2,
        "entity_state_period_s": 0.1,
        **values,
    }


class _LogSeen(logging.Handler):
    """Sets an asyncio event once a record containing `words` is logged (a wait on state, not time)."""

    def __init__(self, words: str) -> None:
        super().__init__(logging.DEBUG)
        self.words = words
        self.seen = asyncio.Event()
        self.loop = asyncio.get_running_loop()

    def emit(self, record: logging.LogRecord) -> None:
        if self.words in record.getMessage():
            self.loop.call_soon_threadsafe(self.seen.set)


async def _until_logged(words: str, coro: Any) -> None:
    """Run `coro` until a log line with `words` appears (bounded), then cancel it."""
    handler = _LogSeen(words)
    logging.getLogger().addHandler(handler)
    task = asyncio.ensure_future(coro)
    try:
        seen = asyncio.ensure_future(handler.seen.wait())
        done, _ = await asyncio.wait({task, seen}, timeout=WAIT_S, return_when=asyncio.FIRST_COMPLETED)
        assert seen in done, f"no log line with {words!r}" + (
            f"; ended with {task.exception()!r}" if task.done() else ""
        )
        seen.cancel()
    finally:
        logging.getLogger().removeHandler(handler)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
async def clients() -> AsyncIterator[list[AlienClient]]:
    started: list[AlienClient] = []
    yield started
    for client in started:
        await client.close(timeout=3)


async def _run_flow(
    clients: list[AlienClient],
    config: AlienConfig,
    emulator: MothershipEmulator,
    commander: dict[str, Any],
    capture: Capture,
) -> AlienClient:
    """Register, publish telemetry and an event, execute a command sent by the C2; then close."""
    client = AlienClient(config)
    clients.append(client)
    executed = asyncio.Event()

    def ping(command: dict[str, Any]) -> dict[str, Any]:
        executed.set()
        return {"pong": True}

    client.register_command_handler("ping", ping)
    command_id = f"secret-scan-{os.urandom(4).hex()}"  # a new id per flow: seen ids persist across restarts
    await asyncio.wait_for(client.initialize(), WAIT_S)
    await client.publish_telemetry(FIX)
    await client.publish_event("door_opened", {"door": 1})
    c2 = await nats.connect(**commander)
    try:
        subject = f"constellation.commands.{config.org_id}.{config.entity_id}"
        await c2.publish(subject, json.dumps({"type": "ping", "command_id": command_id}).encode())
        await c2.flush()
        await asyncio.wait_for(executed.wait(), WAIT_S)
    finally:
        await c2.close()

    def completed() -> bool:
        return any(
            e.json().get("event_type") == "command_completed" and e.json()["data"].get("command_id") == command_id
            for e in emulator.events()
        )

    await emulator.wait_for_async(completed, WAIT_S, "the command's completion")
    assert await client.flush(WAIT_S)
    capture.show("config", config, config.model_dump(), config.model_dump_json())
    capture.show("client internals", client.link, client.stats(), client.mothership)
    capture.show("settings slices", client.link.settings, client.mothership and client.mothership.settings)
    await client.close(timeout=3)
    clients.remove(client)
    return client


async def _refused(clients: list[AlienClient], config: AlienConfig, error: type[Exception], capture: Capture) -> None:
    client = AlienClient(config)
    clients.append(client)
    with pytest.raises(error) as raised:
        await asyncio.wait_for(client.initialize(), WAIT_S)
    capture.show(f"{error.__name__}", raised.value, raised.value.args)
    capture.show("config", config)
    await client.close(timeout=3)
    clients.remove(client)


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
    edge = deployment.edge
    values = _base(
        tmp_path,
        mothership_url=deployment.emulator.url,
        nats_url=deployment.nats_server.url,
        api_key=edge.api_key,
        nats_nkey_seed=edge.nkey_seed,
        org_id=edge.org_id,
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
