"""The bridge process with a new user's mistakes: one line that says what to fix, never a traceback.

Each case starts the console script with the package's config/bridge.yaml and one mistake, reads
its output as it comes, and stops it with SIGINT the way a user does (Ctrl-C).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from installed import console_script
from ros_support import spin_until

from alien.testing.emulator import DEFAULT_API_KEY
from alien.testing.nats_server import free_port
from alien_ros.bridge_node import is_bridge_status
from alien_ros.params_file import NODE_KEY

ROOT = Path(__file__).resolve().parents[1]
FAILURE_WORDS = ("Traceback", "Unclosed", "KeyboardInterrupt")


@dataclass
class BridgeProcess:
    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.changed:
                self.lines.append(line.rstrip("\n"))
                self.changed.notify_all()

    def wait_for_line(self, predicate: Callable[[str], bool], timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                found = next((line for line in self.lines if predicate(line)), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError(f"no line {what} in:\n" + "\n".join(self.lines))
                self.changed.wait(left)

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=30)

    @property
    def output(self) -> str:
        with self.changed:
            return "\n".join(self.lines)


@pytest.fixture
def bridge_process(tmp_path: Path) -> Iterator[Callable[..., BridgeProcess]]:
    started: list[BridgeProcess] = []

    def start(environment: dict[str, str], **params: Any) -> BridgeProcess:
        document = yaml.safe_load((ROOT / "config" / "bridge.yaml").read_text())
        document[NODE_KEY]["ros__parameters"].update(
            identity_file=str(tmp_path / "identity.json"), entity_type="rover", entity_name="rover-7", **params
        )
        params_file = tmp_path / "bridge.yaml"
        params_file.write_text(yaml.safe_dump(document))
        env = {k: v for k, v in os.environ.items() if not k.startswith("ALIEN_")}
        env.update(environment, ALIEN_DATA_DIR=str(tmp_path / "data"))
        proc = subprocess.Popen(
            [str(console_script("bridge")), "--ros-args", "--params-file", str(params_file)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        process = BridgeProcess(proc)
        threading.Thread(target=process.read, daemon=True).start()
        started.append(process)
        return process

    yield start
    for process in started:
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait(timeout=10)


def bridge_errors(ros: dict[str, Any]) -> Callable[[], list[DiagnosticStatus]]:
    """The bridge's ERROR reports on /diagnostics, as the test's node receives them."""
    received: list[DiagnosticStatus] = []

    def keep(msg: DiagnosticArray) -> None:
        received.extend(s for s in msg.status if is_bridge_status(s) and s.level == DiagnosticStatus.ERROR)

    ros["helper"].create_subscription(DiagnosticArray, "/diagnostics", keep, 10)
    return lambda: received


def add_organization(url: str, name: str) -> None:
    """What an operator does with an admin key: another organization on the same server."""
    request = urllib.request.Request(
        f"{url}/api/v1/organizations",
        data=json.dumps({"name": name, "org_type": "civilian"}).encode(),
        headers={"X-API-Key": DEFAULT_API_KEY, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if "[ERROR]" in line]


def test_no_api_key_on_a_v01_server_names_the_setting(
    ros: dict[str, Any], make_emulator: Any, nats_server: Any, bridge_process: Callable[..., BridgeProcess]
) -> None:
    emulator = make_emulator(dialect="v0.1")
    errors = bridge_errors(ros)
    bridge = bridge_process({}, mothership_url=emulator.url, nats_url=nats_server.url)
    line = bridge.wait_for_line(lambda text: "[ERROR]" in text, 30, "at ERROR")
    assert "ALIEN_API_KEY is not set" in line and "401" in line
    spin_until(ros["executor"], lambda: bool(errors()), 20, "ERROR on /diagnostics")
    assert "ALIEN_API_KEY is not set" in errors()[-1].message  # the same text as the log line
    assert errors()[-1].message.removeprefix("cannot start: ") in line
    assert bridge.interrupt() == 0
    assert error_lines(bridge.output) == [line]  # one line, said once
    assert not any(word in bridge.output for word in FAILURE_WORDS)


ANOTHER_ORGS_KEY = ["organizations:read", "organizations:write", "entities:read", "entities:write", "nats:telemetry"]


@pytest.mark.parametrize("v01_deployment", [{"scopes": ANOTHER_ORGS_KEY}], indirect=True)
def test_credentials_of_another_organization_are_one_error_line_and_on_diagnostics(
    ros: dict[str, Any], v01_deployment: Any, bridge_process: Callable[..., BridgeProcess]
) -> None:
    # No ALIEN_ORG_ID, two organizations, none named ORG_NAME: the client creates its own, where
    # the key's NKey may publish nothing.
    add_organization(v01_deployment.emulator.url, "Another Team")
    errors = bridge_errors(ros)
    edge = v01_deployment.edge
    bridge = bridge_process(
        {"ALIEN_API_KEY": edge.api_key, "ALIEN_NATS_NKEY_SEED": edge.nkey_seed},
        mothership_url=v01_deployment.emulator.url,
        nats_url=v01_deployment.nats_server.url,
    )
    line = bridge.wait_for_line(lambda text: "[ERROR]" in text, 30, "at ERROR")
    assert "TelemetryDeniedError" in line and "set ALIEN_ORG_ID" in line and edge.org_id in line
    spin_until(ros["executor"], lambda: bool(errors()), 20, "ERROR on /diagnostics")
    assert errors()[-1].message.removeprefix("cannot start: ") in line
    assert bridge.interrupt() == 0
    assert error_lines(bridge.output) == [line]
    assert edge.api_key not in bridge.output and edge.nkey_seed not in bridge.output
    assert not any(word in bridge.output for word in FAILURE_WORDS)


def test_ctrl_c_while_registration_retries_stops_cleanly(bridge_process: Callable[..., BridgeProcess]) -> None:
    api_key = "c4_live_" + secrets.token_hex(16)
    unreachable = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    bridge = bridge_process(
        {"ALIEN_API_KEY": api_key, "ALIEN_RETRY_BACKOFF_S": "0.05", "ALIEN_RETRY_BACKOFF_MAX_S": "0.05"},
        mothership_url=unreachable,
    )
    bridge.wait_for_line(lambda text: "cannot register yet (attempt 3" in text, 60, "for the third attempt")
    assert bridge.interrupt() == 0
    output = bridge.output
    assert not any(word in output for word in FAILURE_WORDS), output
    assert api_key not in output
    retries = [line for line in output.splitlines() if "cannot register yet" in line]
    assert all("[WARNING]" in line for line in retries) and len(retries) == 3, output  # then DEBUG: not shown
    assert error_lines(output) == []
