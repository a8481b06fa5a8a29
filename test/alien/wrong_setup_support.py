"""Wrong setups, shared by test_wrong_setup_*.py: the secrets never shown, the working environment, running a program.

Each case must end in exactly one error line that says what to do, with the documented exit code,
no traceback and no secret. Real components only: nats-server, the emulator, raw TCP servers.

A case of test_wrong_setup_mistakes.py is a `Mistake`: how to break the environment, what the
message must say, the exit code. `RUNNERS` says how each program is started and what its error
line looks like, so the bridge can be added as one more runner.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

from installed import console_script

from alien_testing.nats_server import free_port

ROOT = Path(__file__).resolve().parents[2]
ALIEN = console_script("alien")
EXAMPLE = ROOT / "examples" / "basic_telemetry.py"

# What must never be printed: a live-looking API key and a URL password with every awkward character.
API_KEY = "c4_live_" + "Zq8xT3vKp0LmN7rW2yB5sD9fG4hJ6kQ1"
PASSWORD = "p/a?s#s@w:o%r+d"
READABLE_PASSWORD = "p@ss:w%r+d-SECRET"  # no / ? #: nats-py takes it from the URL as written
SECRETS = (API_KEY, "Wr0ngKeyWr0ngKey", PASSWORD, "p%2Fa%3Fs%23s%40w%3Ao%25r%2Bd", "a?s#s", "w:o%r+d", "ss:w%r+d-SE")
TIMEOUT_S = 30


def _closed_port() -> int:
    return free_port()  # nothing listens there: connection refused


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
