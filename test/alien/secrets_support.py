"""Secrets hygiene, shared by test_secrets_scan_flows.py and test_secrets_scan_config.py: the scanner, the flows.

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
import traceback
import urllib.parse
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import pytest

from alien import AlienClient, AlienConfig
from alien_testing.emulator import MothershipEmulator

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
