"""Shared by test_cli_*.py: running the installed `alien` console script and watching nats-server's clients."""

from __future__ import annotations

import asyncio
import json
import os
import urllib.request
from pathlib import Path
from typing import Any

from installed import console_script

# --- every command through the installed console script `alien` (setup.py entry point) ---

ALIEN = console_script("alien")  # wherever this install put it (pip, editable, colcon)


def _cli_env(emulator: Any, nats_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIEN_") and k not in ("ORG_NAME", "ENTITY_NAME")}
    env.update(
        MOTHERSHIP_URL=emulator.url,
        NATS_URL=nats_url,
        ALIEN_CONFIG_FILE=str(tmp_path / "identity.json"),
        ALIEN_DATA_DIR=str(tmp_path / "data"),
        ALIEN_REQUEST_ATTEMPTS="3",
        ALIEN_RETRY_BACKOFF_S="0.05",
    )
    env.update(extra)
    if emulator.dialect == "v0.1":
        env["ALIEN_API_KEY"] = next(iter(emulator.api_keys))
    return env


async def _alien(*argv: str, env: dict[str, str], cwd: Path, timeout: float = 60) -> tuple[int, str, str]:
    """Run the console script; (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        str(ALIEN), *argv, env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("alien: "), err
    return lines[0]


def _connections(nats_server: Any, state: str = "all") -> list[dict[str, Any]]:
    """nats-server's own record of client connections (monitoring endpoint /connz)."""
    url = f"http://127.0.0.1:{nats_server.monitor_port}/connz?state={state}&subs=1&limit=1000"
    with urllib.request.urlopen(url, timeout=5) as response:
        connections: list[dict[str, Any]] = json.load(response)["connections"]
        return connections


async def _wait_for_subscriber(
    nats_server: Any, name: str, subscriptions: int, clients: int = 1, timeout: float = 15
) -> None:
    """Bounded poll of /connz until `clients` clients of this name have their subscriptions in place."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        ready = [
            c
            for c in _connections(nats_server, "open")
            if c.get("name") == name and c.get("subscriptions", 0) >= subscriptions
        ]
        if len(ready) >= clients:
            return
        assert asyncio.get_running_loop().time() < deadline, f"{name} never subscribed"
        await asyncio.sleep(0.05)
