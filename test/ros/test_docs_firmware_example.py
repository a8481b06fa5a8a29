"""docs/firmware.md#worked-example runs as written: the operator's two blocks with bash, the robot with python.

Against a real nats-server and the mothership emulator, with the installed `alien` command; the
blocks are read from the page, after their `<!-- example: NAME -->` markers.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from installed import console_script

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def _example(page: Path, name: str) -> str:
    """The code block right after `<!-- example: NAME -->` on `page`."""
    found = re.search(rf"<!-- example: {re.escape(name)} -->\n```[a-z]*\n(.*?)^```", page.read_text(), re.S | re.M)
    assert found, f"docs/{page.name} lost its example {name!r}"
    return found.group(1)


def _commands_subscribed(nats_server: Any) -> bool:
    """A client subscribes to an entity's commands (nats-server's own /connz record)."""
    url = f"http://127.0.0.1:{nats_server.monitor_port}/connz?subs=1"
    with urllib.request.urlopen(url, timeout=5) as response:
        connections = json.load(response)["connections"]
    return any(s.startswith("constellation.commands.") for c in connections for s in c.get("subscriptions_list", []))


def test_the_firmware_worked_example_runs(make_emulator: Any, nats_server: Any, tmp_path: Path) -> None:
    """docs/firmware.md#worked-example: the operator's two blocks with bash, the robot with python."""
    page = DOCS / "firmware.md"
    emulator = make_emulator(dialect="v0.0.1")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("ALIEN_") and k not in ("ENTITY_TYPE", "ENTITY_NAME")
    }
    path = f"{console_script('alien').parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(MOTHERSHIP_URL=emulator.url, NATS_URL=nats_server.url, PATH=path, PYTHONPATH=str(ROOT))

    def bash(script: str) -> subprocess.CompletedProcess[str]:
        command = ["bash", "-euo", "pipefail", "-c", script]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180, check=False)

    operator = bash(_example(page, "firmware-operator"))
    assert operator.returncode == 0, operator.stderr
    public_key = operator.stdout.splitlines()[0]
    uploaded = json.loads(operator.stdout.splitlines()[1])
    assert public_key.startswith("O") and uploaded["signed_by"] == public_key and uploaded["size"] == 5_000_000
    (tmp_path / "robot.py").write_text(_example(page, "firmware-robot"))
    robot = subprocess.Popen(
        [sys.executable, "robot.py"],
        cwd=tmp_path,
        env={**env, "ALIEN_COMMAND_TRUSTED_KEYS": public_key},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not _commands_subscribed(nats_server):  # bounded poll: the robot registered and listens
            assert robot.poll() is None and time.monotonic() < deadline, "the robot never took commands"
            time.sleep(0.05)
        update = bash(_example(page, "firmware-update"))
    finally:
        robot.send_signal(signal.SIGINT)
        robot_out, robot_err = robot.communicate(timeout=60)
    assert update.returncode == 0, update.stderr + robot_err
    events = [json.loads(line) for line in update.stdout.splitlines()]
    assert events[0]["event_type"] == "command_received" and events[-1]["event_type"] == "command_completed"
    result = events[-1]["data"]["result"]
    assert result["install"] == {"installed": "1.2.0"} and result["sha256"] == uploaded["sha256"]
    assert (tmp_path / result["path"]).read_bytes() == (tmp_path / "robot-fw.bin").read_bytes()
    assert "installing robot-fw.bin 1.2.0 from .alien/firmware.alien_config/robot-fw.bin@1.2.0" in robot_out
