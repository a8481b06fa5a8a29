"""The table of day-one mistakes, run through the CLI and the example: one error line, the documented exit code."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from wrong_setup_support import (
    ALIEN,
    API_KEY,
    EXAMPLE,
    PASSWORD,
    READABLE_PASSWORD,
    SECRETS,
    TIMEOUT_S,
    _closed_port,
    _run,
    _working_env,
)


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
