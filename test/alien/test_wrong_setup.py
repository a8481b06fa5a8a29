"""Wrong setups a user makes on day one, run as the user runs them (the CLI and the example).

Each case must end in exactly one error line that says what to do, with the documented exit code,
no traceback and no secret. Real components only: nats-server, the emulator, raw TCP servers.

A case is a `Mistake`: how to break the environment, what the message must say, the exit code.
`RUNNERS` says how each program is started and what its error line looks like, so the bridge can
be added as one more runner.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from installed import console_script

from alien import AlienClient
from alien.config import AlienConfig
from alien.errors import MothershipProtocolError, MothershipUnavailableError
from alien.mothership import MothershipClient
from alien.settings import MothershipSettings
from alien_testing.nats_server import free_port, make_tls_files

ROOT = Path(__file__).resolve().parents[2]
ALIEN = console_script("alien")
EXAMPLE = ROOT / "examples" / "basic_telemetry.py"

# What must never be printed: a live-looking API key and a URL password with every awkward character.
API_KEY = "c4_live_" + "Zq8xT3vKp0LmN7rW2yB5sD9fG4hJ6kQ1"
PASSWORD = "p/a?s#s@w:o%r+d"
READABLE_PASSWORD = "p@ss:w%r+d-SECRET"  # no / ? #: nats-py takes it from the URL as written
SECRETS = (API_KEY, "Wr0ngKeyWr0ngKey", PASSWORD, "p%2Fa%3Fs%23s%40w%3Ao%25r%2Bd", "a?s#s", "w:o%r+d", "ss:w%r+d-SE")
TIMEOUT_S = 30


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


# --- the table: each mistake, run as a user runs each program ---
@dataclass(frozen=True)
class Runner:
    """How to start one program, and what its one error line starts with."""

    name: str
    argv: Callable[[str], list[str]]  # from the case's CLI command
    error_line: re.Pattern[str]
    codes: dict[int, int] = field(default_factory=dict)  # the CLI's exit code -> this program's


RUNNERS = {
    "cli": Runner("cli", lambda command: [str(ALIEN), *command.split()], re.compile(r"alien: \S")),
    # the example exits 1 on any error and 130 on Ctrl-C
    "example": Runner(
        "example", lambda command: [sys.executable, str(EXAMPLE)], re.compile(r"(error: \S|interrupted$)"), {2: 1}
    ),
}


@dataclass(frozen=True)
class Setup:
    """What the tests started, for a case to break the environment with."""

    env: dict[str, str]
    nats_url: str
    emulator: Any
    tmp_path: Path


@dataclass(frozen=True)
class Mistake:
    id: str
    breaks: Callable[[Setup], dict[str, str | None]]  # environment changes (None: unset) from a working setup
    says: tuple[str, ...]  # what the one error line must contain
    code: int  # the CLI's exit code (docs/cli.md, `alien --help`)
    command: str = "register"
    runners: tuple[str, ...] = ("cli", "example")
    dialect: str = "v0.0.1"
    saved_identity: bool = False
    interrupt_after: str | None = None  # SIGINT once this shows on stderr (a bounded wait)


def _corrupt_commands_store(setup: Setup) -> dict[str, str | None]:
    """Not a database where the accepted command ids are kept (docs/commands.md#signed-commands)."""
    data = setup.tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "commands.identity.sqlite3").write_bytes(b"this is not an SQLite database\n" * 64)
    return {}


def _nats_port(setup: Setup) -> str:
    return setup.nats_url.rsplit(":", 1)[1]


def _closed_port() -> int:
    return free_port()  # nothing listens there: connection refused


MISTAKES = [
    Mistake(
        "mothership-url-is-the-nats-port",
        lambda s: {"MOTHERSHIP_URL": f"http://127.0.0.1:{_nats_port(s)}"},
        ("answered with the NATS protocol", "NATS_URL to nats://127.0.0.1:"),
        2,
    ),
    Mistake(
        "nats-url-without-colon",
        lambda s: {"NATS_URL": "nats//localhost"},
        ("NATS_URL 'nats//localhost' is not a valid URL: it has no '://' after the scheme",),
        2,
    ),
    Mistake(
        "nats-url-without-scheme",
        lambda s: {"NATS_URL": s.nats_url.split("://", 1)[1]},
        ("is not a valid URL: it has no scheme (expected e.g. nats://host:4222)",),
        2,
    ),
    Mistake(  # the password may hold every character that ends a URL part; it must not show
        "nats-url-without-scheme-with-a-password",
        lambda s: {"NATS_URL": f"robot:{PASSWORD}@{s.nats_url.split('://', 1)[1]}"},
        ("NATS_URL '***@127.0.0.1:", "it has no scheme"),
        2,
    ),
    Mistake(
        "register-with-saved-ids-and-the-mothership-down",
        lambda s: {"MOTHERSHIP_URL": f"http://127.0.0.1:{_closed_port()}"},
        ("mothership unreachable at http://127.0.0.1:", "saved ids not checked", "org-saved", "ent-saved"),
        1,
        runners=("cli",),  # the library goes on offline with saved ids, by design
        saved_identity=True,
    ),
    *(
        Mistake(  # Ctrl-C while the transport retries an unreachable mothership (shown with -v)
            f"ctrl-c-while-{command.split()[0]}-waits-for-the-mothership",
            lambda s: {"MOTHERSHIP_URL": f"http://127.0.0.1:{_closed_port()}", "ALIEN_REQUEST_ATTEMPTS": "1000"},
            ("alien: interrupted",),
            130,
            command=command,
            runners=("cli",),
            interrupt_after="; retry 2/",
        )
        for command in ("register", "simulate --entities 1")
    ),
    *(
        Mistake(  # Ctrl-C while the link waits for an unreachable NATS (said at WARNING)
            f"ctrl-c-while-{command}-waits-for-nats",
            lambda s: {"NATS_URL": f"nats://127.0.0.1:{_closed_port()}", "ALIEN_ORG_ID": "org-1"},
            ("alien: interrupted",),
            130,
            command=command,
            runners=("cli",),
            interrupt_after="waiting for NATS at",
        )
        for command in ("status", "tail")
    ),
    Mistake(
        "no-api-key-on-a-v0.1-server",
        lambda s: {"ALIEN_API_KEY": None},
        ("ALIEN_API_KEY",),
        1,
        dialect="v0.1",
    ),
    Mistake(  # the key must not be echoed back
        "a-wrong-api-key-on-a-v0.1-server",
        lambda s: {"ALIEN_API_KEY": "c4_live_" + "Wr0ngKeyWr0ngKeyWr0ngKeyWr0ngKey"},
        ("HTTP 401", "ALIEN_API_KEY"),
        1,
        dialect="v0.1",
    ),
    Mistake(  # a NATS URL password, unencoded, with every character that ends a URL part
        "a-password-nats-py-cannot-read-in-nats-url",
        lambda s: {"NATS_URL": f"nats://robot:{PASSWORD}@127.0.0.1:{_closed_port()}"},
        ("NATS_URL 'nats://***@127.0.0.1:", "set ALIEN_NATS_USER and ALIEN_NATS_PASSWORD"),
        2,
        command="status --timeout 1",
        runners=("cli",),
    ),
    Mistake(  # a NATS URL password with the characters nats-py reads as written
        "nats-down-with-a-password-in-nats-url",
        lambda s: {"NATS_URL": f"nats://robot:{READABLE_PASSWORD}@127.0.0.1:{_closed_port()}"},
        ("nats://***@127.0.0.1:",),
        1,
        command="status --timeout 1",
        runners=("cli",),
    ),
    Mistake(  # a simulated entity's name, in the saved identity's organization rather than the fleet's
        "send-command-to-an-entity-of-another-organization",
        lambda s: {"ALIEN_ORG_ID": "org-of-the-register-run"},
        (
            "within 0.5s from entity SIM-000 in organization org-of-the-register-run (ALIEN_ORG_ID)",
            "`alien simulate` prints its organization and entity ids",
        ),
        5,
        command="send-command --type return_to_base --entity-id SIM-000 --timeout 0.5",
        runners=("cli",),
    ),
    Mistake(  # the ids of commands already run are unknown: starting could run a replay
        "a-corrupt-commands-store",
        _corrupt_commands_store,
        ("seen-commands store", "commands.identity.sqlite3", "cannot be opened", "move it aside"),
        1,
        runners=("example",),
    ),
    Mistake(  # the library's registration loop says each attempt at WARNING
        "ctrl-c-while-the-client-waits-for-the-mothership",
        lambda s: {"MOTHERSHIP_URL": f"http://127.0.0.1:{_closed_port()}", "ALIEN_REQUEST_ATTEMPTS": "1"},
        ("interrupted",),
        130,
        runners=("example",),
        interrupt_after="cannot register yet (attempt 2",
    ),
]


def _working_env(setup_emulator: Any, nats_url: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIEN_") and k not in ("ORG_NAME", "ENTITY_NAME")}
    env.update(
        MOTHERSHIP_URL=setup_emulator.url,
        NATS_URL=nats_url,
        ALIEN_CONFIG_FILE=str(tmp_path / "identity.json"),
        ALIEN_DATA_DIR=str(tmp_path / "data"),
        ALIEN_REQUEST_ATTEMPTS="3",
        ALIEN_RETRY_BACKOFF_S="0.02",
        ALIEN_RETRY_BACKOFF_MAX_S="0.05",
        ALIEN_EXAMPLE_ITERATIONS="1",
        ALIEN_EXAMPLE_INTERVAL_S="0.01",
        PYTHONUNBUFFERED="1",
    )
    if setup_emulator.dialect == "v0.1":
        env["ALIEN_API_KEY"] = API_KEY  # the emulator is given this key below
    return env


async def _run(argv: list[str], env: dict[str, str], cwd: Path, interrupt_after: str | None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None and process.stderr is not None
    seen = b""
    if interrupt_after is not None:
        # read stderr until the program shows it is waiting, then Ctrl-C it
        async def waiting() -> None:
            nonlocal seen
            assert process.stderr is not None
            while interrupt_after.encode() not in seen:
                line = await process.stderr.readline()
                if not line:
                    raise AssertionError(f"exited before {interrupt_after!r}: {seen.decode()}")
                seen += line

        await asyncio.wait_for(waiting(), TIMEOUT_S)
        process.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(process.communicate(), TIMEOUT_S)
    assert process.returncode is not None
    return process.returncode, out.decode(), (seen + err).decode()


_LOG_LINE = re.compile(r"^(DEBUG|INFO|WARNING)[ :]")  # logging's own lines (the example logs at INFO)


@pytest.mark.parametrize(
    ("mistake", "runner"),
    [pytest.param(m, RUNNERS[r], id=f"{m.id}-{r}") for m in MISTAKES for r in m.runners],
)
async def test_a_wrong_setup_is_one_line_with_the_documented_exit_code(
    mistake: Mistake, runner: Runner, nats_server: Any, make_emulator: Callable[..., Any], tmp_path: Path
) -> None:
    emulator = make_emulator(
        dialect=mistake.dialect, **({"api_keys": {API_KEY: {"admin"}}} if mistake.dialect == "v0.1" else {})
    )
    env = _working_env(emulator, nats_server.url, tmp_path)
    setup = Setup(env, nats_server.url, emulator, tmp_path)
    if mistake.saved_identity:
        (tmp_path / "identity.json").write_text('{"org_id": "org-saved", "entity_id": "ent-saved"}')
    for name, value in mistake.breaks(setup).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    # -v: the CLI logs nothing while it waits, unless asked
    command = ("-v " if mistake.interrupt_after and runner.name == "cli" else "") + mistake.command
    code, out, err = await _run(runner.argv(command), env, tmp_path, mistake.interrupt_after)

    shown = out + err
    assert "Traceback" not in shown, shown
    for secret in SECRETS:
        assert secret not in shown, shown
    errors = [line for line in err.splitlines() if not _LOG_LINE.match(line)]
    assert len(errors) == 1 and runner.error_line.match(errors[0]), err
    for words in mistake.says:
        assert words in errors[0], errors[0]
    if mistake.interrupt_after:
        assert errors[0].startswith(("alien: interrupted", "interrupted")), errors[0]
    assert code == runner.codes.get(mistake.code, mistake.code), err


def test_the_exit_codes_are_documented_in_help() -> None:
    help_text = subprocess.run([str(ALIEN), "--help"], capture_output=True, text=True, check=True).stdout
    assert (
        "1    the mothership or NATS unreachable or refused (register: also with saved ids, then not checked)"
        in help_text
    )
    assert "2    usage, configuration, identity or key file; a MOTHERSHIP_URL that does not answer HTTP" in help_text
    assert "130  interrupted (Ctrl-C)" in help_text


def test_ctrl_c_while_the_cli_still_imports_the_library_is_one_line() -> None:
    # The library takes half a second to import; a Ctrl-C then arrives inside an import.
    child = (
        "import builtins, sys\n"
        "real = builtins.__import__\n"
        "def interrupted(name, *args, **kwargs):\n"
        "    if name == 'alien.cli.app':\n"
        "        raise KeyboardInterrupt\n"
        "    return real(name, *args, **kwargs)\n"
        "builtins.__import__ = interrupted\n"
        "from alien.cli import main\n"
        "sys.exit(main(['register']))\n"
    )
    run = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    assert (run.returncode, run.stdout, run.stderr) == (130, "", "alien: interrupted\n")
    # ...which is only true if nothing heavy is imported before main() runs
    loaded = "import sys, alien.cli; print(sorted({'aiohttp', 'nats', 'pydantic'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", loaded], capture_output=True, text=True, check=True).stdout == "[]\n"


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


async def test_simulate_says_the_organization_and_ids_commands_must_address(
    nats_server: Any, make_emulator: Callable[..., Any], tmp_path: Path
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    env = _working_env(emulator, nats_server.url, tmp_path)
    argv = [str(ALIEN), "simulate", "--entities", "2", "--duration", "0.2", "--interval", "0.1", "--json"]
    code, out, err = await _run(argv, env, tmp_path, None)
    assert code == 0, err
    summary = json.loads(out)
    org_id, first = summary["org_id"], summary["entities"]["SIM-000"]["entity_id"]
    assert org_id and first
    assert err.splitlines() == [
        f"fleet up in organization 'Simulated Fleet', org id {org_id}: SIM-000 = {first}, "
        f"SIM-001 = {summary['entities']['SIM-001']['entity_id']}; command one with "
        f"`alien send-command --org-id {org_id} --entity-id {first} --type return_to_base`"
    ]


async def test_status_says_a_work_queue_stream_is_empty_because_its_events_were_consumed(
    nats_server: Any, make_emulator: Callable[..., Any], tmp_path: Path
) -> None:
    emulator = make_emulator(dialect="v0.0.1")  # CONSTELLATION_EVENTS: work queue, consumed by the emulator
    env = _working_env(emulator, nats_server.url, tmp_path)
    code, _, err = await _run([sys.executable, str(EXAMPLE)], env, tmp_path, None)
    assert code == 0, err
    deadline = asyncio.get_running_loop().time() + TIMEOUT_S
    while len(emulator.events()) < 4:  # bootsequence, two status changes, shutdown: a bounded poll
        assert asyncio.get_running_loop().time() < deadline, emulator.events()
        await asyncio.sleep(0.02)

    code, out, err = await _run([str(ALIEN), "status"], env, tmp_path, None)
    assert code == 0, err
    found = re.search(r"CONSTELLATION_EVENTS \((\d+) stored, work queue: removed once consumed; last seq (\d+)\)", out)
    assert found is not None, out
    assert int(found.group(2)) >= 4
    code, out, _ = await _run([str(ALIEN), "status", "--json"], env, tmp_path, None)
    state = json.loads(out)["nats"]["jetstream"]["stream_state"]["CONSTELLATION_EVENTS"]
    assert state["retention"] == "workqueue" and state["last_seq"] >= 4


async def test_the_example_says_when_connected_and_how_to_watch_its_telemetry(
    nats_server: Any, make_emulator: Callable[..., Any], tmp_path: Path
) -> None:
    emulator = make_emulator(dialect="v0.1", api_keys={API_KEY: {"admin"}})
    env = _working_env(emulator, nats_server.url, tmp_path)
    env.update(ALIEN_EXAMPLE_ITERATIONS="1000", ALIEN_EXAMPLE_INTERVAL_S="0.05")
    example = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert example.stdout is not None
    try:
        line = (await asyncio.wait_for(example.stdout.readline(), TIMEOUT_S)).decode()
        (entity,) = emulator.entities()
        assert line.startswith(f"connected: entity {entity['entity_id']} in organization "), line
        watch = line.rsplit(": ", 1)[1].split()
        assert watch[:2] == ["alien", "tail"], line
        # the printed command, as printed, shows the example's telemetry
        code, out, err = await _run([str(ALIEN), *watch[1:], "--count", "1", "--timeout", "20"], env, tmp_path, None)
        assert (code, err) == (0, "") and entity["entity_id"][:8] in out, (line, out, err)  # tail abbreviates ids
    finally:
        example.send_signal(signal.SIGINT)
        _, err_bytes = await asyncio.wait_for(example.communicate(), TIMEOUT_S)
    assert example.returncode == 130 and err_bytes.decode().splitlines()[-1] == "interrupted"
