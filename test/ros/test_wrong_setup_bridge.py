"""The bridge process set up wrong, the ways integrators get it wrong: one line, no traceback, no secret.

Each test runs the installed `bridge` console script against real servers (nats-server, the
mothership emulator, or nothing at all), reads what it prints and what it reports on
/diagnostics (real DDS, from this process), stops it with SIGINT and checks the exit code.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from installed import console_script
from ros_support import spin_until

from alien_testing.emulator import DEFAULT_API_KEY, MothershipEmulator

# Secret-looking on purpose: a scanner of the output would flag it, and so does every test here.
SECRET = "c4_live_" + secrets.token_hex(16)
NODE = "/alien_bridge"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BridgeProcess:
    """A bridge process; reader threads collect its stdout and stderr line by line."""

    def __init__(self, command: list[str], env: dict[str, str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.stdout), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: Any, lines: list[str]) -> None:
        for line in stream:
            with self._changed:
                lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    @property
    def lines(self) -> list[str]:
        with self._changed:
            return [*self.stdout, *self.stderr]

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, words: str, timeout: float = 30, count: int = 1) -> str:
        """The first line holding `words` once `count` do; fails after `timeout` or when the process ends."""

        def holding() -> list[str]:
            return [line for line in [*self.stdout, *self.stderr] if words in line]

        with self._changed:
            self._changed.wait_for(lambda: len(holding()) >= count or self.proc.poll() is not None, timeout)
            lines = holding()
        assert len(lines) >= count, f"{len(lines)} of {count} line(s) with {words!r} in {timeout}s:\n{self.output}"
        return lines[0]

    def stop(self, *, again_after: str | None = None, timeout: float = 30) -> int:
        """SIGINT; with `again_after`, a second SIGINT once that line is out (as `ros2 launch` sends one)."""
        self.proc.send_signal(signal.SIGINT)
        if again_after is not None:
            self.wait_for_line(again_after)
            self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout)
        for reader in self._readers:
            reader.join(10)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def run_bridge(tmp_path: Path) -> Iterator[Callable[..., BridgeProcess]]:
    started: list[BridgeProcess] = []

    def start(mothership_url: str, nats_url: str, env: dict[str, str] | None = None) -> BridgeProcess:
        params = {
            "mothership_url": mothership_url,
            "nats_url": nats_url,
            "identity_file": str(tmp_path / "identity.json"),
            "data_dir": str(tmp_path / "data"),
            "entity_type": "robot",
            "entity_name": "wrong-setup",
            "status_period_s": "0.2",
        }
        # conftest cleared ALIEN_* in this process; the child gets exactly what the test gives
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("ALIEN_")}
        child_env.update(env or {})
        command = [str(console_script("bridge")), "--ros-args"]
        command += [arg for name, value in params.items() for arg in ("-p", f"{name}:={value}")]
        bridge = BridgeProcess(command, child_env, tmp_path)
        started.append(bridge)
        return bridge

    yield start
    for bridge in started:
        bridge.kill()


@pytest.fixture
def bridge_status(ros: dict[str, Any]) -> list[DiagnosticStatus]:
    """The bridge's own statuses on /diagnostics, as this process receives them."""
    seen: list[DiagnosticStatus] = []
    ros["helper"].create_subscription(
        DiagnosticArray, "/diagnostics", lambda m: seen.extend(s for s in m.status if s.hardware_id == NODE), 10
    )
    return seen


def _wait_for_status(
    ros: dict[str, Any], seen: list[DiagnosticStatus], level: bytes, what: str, words: str = ""
) -> DiagnosticStatus:
    def wanted(status: DiagnosticStatus) -> bool:
        return status.level == level and words in status.message

    spin_until(ros["executor"], lambda: any(wanted(s) for s in seen), 30, what)
    return next(s for s in seen if wanted(s))


def _levels(lines: list[str], level: str) -> list[str]:
    """Lines logged at `level` by Python logging (`[WARNING]`) or by ROS (`[WARN]`)."""
    names = {"WARNING": ("[WARNING]", "[WARN]"), "ERROR": ("[ERROR]",)}[level]
    return [line for line in lines if line.startswith(names)]


def _message(line: str) -> str:
    """The text of a log line, after `[LEVEL] [logger]: ` (or `[LEVEL] [stamp] [logger]: `)."""
    return line.split("]: ", 1)[1]


def _assert_clean(bridge: BridgeProcess, code: int, statuses: list[DiagnosticStatus]) -> None:
    output = bridge.output
    assert code == 0, output
    assert "Traceback" not in output and "Unclosed" not in output, output
    assert SECRET not in output
    shown = " ".join([s.message for s in statuses] + [kv.value for s in statuses for kv in s.values])
    assert SECRET not in shown
    assert bridge.lines[-1] == "[INFO] [alien_bridge]: stopped", output


def _assert_not_retrying(ros: dict[str, Any], seen: list[DiagnosticStatus], emulator: MothershipEmulator) -> None:
    """A few status periods more, the server saw no further request: the bridge does not spin."""
    asked = len(emulator.requests())
    reports = len(seen)
    spin_until(ros["executor"], lambda: len(seen) >= reports + 5, 10, "five more status reports")
    assert len(emulator.requests()) == asked
    assert all(s.level == DiagnosticStatus.ERROR for s in seen[reports:])


@pytest.mark.parametrize(
    ("env", "says"),
    [
        (
            {"ALIEN_NATS_TOKEN": SECRET},  # a secret all the same: it must not show either
            "; ALIEN_API_KEY is not set: a v0.1 mothership needs one (c4_live_..., from the mothership's "
            "administrator; the local emulator prints its dev key) in the environment or .env, "
            "never as a ROS parameter",
        ),
        ({"ALIEN_API_KEY": SECRET}, "; the mothership does not accept ALIEN_API_KEY: check that it is a key of this"),
    ],
    ids=["no-api-key", "unknown-api-key"],
)
def test_a_v01_server_refusing_the_api_key_is_one_error_line_naming_the_setting(
    ros: dict[str, Any],
    bridge_status: list[DiagnosticStatus],
    make_emulator: Any,
    nats_server: Any,
    run_bridge: Any,
    env: dict[str, str],
    says: str,
) -> None:
    emulator = make_emulator(dialect="v0.1")
    bridge = run_bridge(emulator.url, nats_server.url, env)
    try:
        status = _wait_for_status(ros, bridge_status, DiagnosticStatus.ERROR, "ERROR on /diagnostics")
        assert bridge.proc.poll() is None  # its ROS side keeps running, so the diagnostic stays visible
        _assert_not_retrying(ros, bridge_status, emulator)
    finally:
        code = bridge.stop()
    (error,) = _levels(bridge.lines, "ERROR")
    assert _message(error) == status.message  # the same text in the log and on /diagnostics
    assert status.message.startswith("cannot start: GET /api/v1/organizations: HTTP 401")
    assert says in status.message
    assert _levels(bridge.lines, "WARNING") == []
    _assert_clean(bridge, code, bridge_status)


def test_mothership_url_at_the_nats_port_is_one_error_line(
    ros: dict[str, Any], bridge_status: list[DiagnosticStatus], nats_server: Any, run_bridge: Any
) -> None:
    nats_address = nats_server.url.split("://", 1)[1]
    bridge = run_bridge(f"http://{nats_address}", nats_server.url, {"ALIEN_API_KEY": SECRET})
    try:
        status = _wait_for_status(ros, bridge_status, DiagnosticStatus.ERROR, "ERROR on /diagnostics")
        assert bridge.proc.poll() is None
    finally:
        code = bridge.stop()
    (error,) = _levels(bridge.lines, "ERROR")
    assert _message(error) == status.message
    assert "MOTHERSHIP_URL" in status.message and "NATS" in status.message
    assert "server_id" not in status.message  # not the NATS server's greeting, quoted
    _assert_clean(bridge, code, bridge_status)


def test_an_unreachable_mothership_is_a_warning_naming_it_and_retried(
    ros: dict[str, Any], bridge_status: list[DiagnosticStatus], nats_server: Any, run_bridge: Any
) -> None:
    url = f"http://127.0.0.1:{_free_port()}"  # nobody listens there
    bridge = run_bridge(url, nats_server.url, {"ALIEN_API_KEY": SECRET, "ALIEN_RETRY_BACKOFF_S": "0.05"})
    try:
        bridge.wait_for_line("cannot register yet")
        status = _wait_for_status(ros, bridge_status, DiagnosticStatus.WARN, "the reason on /diagnostics", "cannot")
        assert status.message.startswith("registering (retrying): ") and f"cannot reach {url}" in status.message
        reports = len(bridge_status)
        spin_until(ros["executor"], lambda: len(bridge_status) >= reports + 3, 10, "three more status reports")
        assert {s.level for s in bridge_status} == {DiagnosticStatus.WARN}  # never given up on
        assert bridge.proc.poll() is None
    finally:
        code = bridge.stop()
    assert _levels(bridge.lines, "ERROR") == []
    warnings = _levels(bridge.lines, "WARNING")
    assert warnings and all(f"cannot reach {url}" in line for line in warnings)  # each says the one mistake
    _assert_clean(bridge, code, bridge_status)


def test_a_server_answering_5xx_is_retried_with_backoff_then_connects(
    ros: dict[str, Any], bridge_status: list[DiagnosticStatus], make_emulator: Any, nats_server: Any, run_bridge: Any
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    emulator.fail_next_requests(1_000_000, 500)  # until the test lets it recover
    fast = {"ALIEN_REQUEST_ATTEMPTS": "2", "ALIEN_RETRY_BACKOFF_S": "0.05", "ALIEN_RETRY_BACKOFF_MAX_S": "0.2"}
    bridge = run_bridge(emulator.url, nats_server.url, {**fast, "ALIEN_API_KEY": SECRET})
    try:
        status = _wait_for_status(ros, bridge_status, DiagnosticStatus.WARN, "the 500 on /diagnostics", "HTTP 500")
        assert status.message.startswith("registering (retrying): GET /api/v1/organizations: HTTP 500")
        bridge.wait_for_line("cannot start yet: GET /api/v1/organizations: HTTP 500", count=3)  # again and again
        emulator.fail_next_requests(0, 500)
        _wait_for_status(ros, bridge_status, DiagnosticStatus.OK, "connected once the server recovered")
        emulator.wait_for(lambda: any(m.json()["event_type"] == "bootsequence" for m in emulator.events()), 10)
    finally:
        code = bridge.stop()
    assert _levels(bridge.lines, "ERROR") == []
    _assert_clean(bridge, code, bridge_status)


@pytest.mark.parametrize("twice", [False, True], ids=["sigint", "sigint-twice"])
def test_ctrl_c_while_registration_is_retried_stops_cleanly(
    nats_server: Any, run_bridge: Any, tmp_path: Path, twice: bool
) -> None:
    bridge = run_bridge(f"http://127.0.0.1:{_free_port()}", nats_server.url, {"ALIEN_API_KEY": SECRET})
    try:
        bridge.wait_for_line("cannot reach")  # initialize() is retrying registration now
    finally:
        # twice: the second lands while the interpreter exits, as `ros2 launch` forwards the
        # terminal's Ctrl-C to a bridge that got it already
        code = bridge.stop(again_after="[INFO] [alien_bridge]: stopped" if twice else None)
    _assert_clean(bridge, code, [])


# The bridge as `python -m alien_ros.main` runs it, with a SIGINT sent to itself at one moment of
# its start: the signal is real, only its timing is arranged.
_SIGINT_WHILE = """
import os, runpy, signal, sys, time

def interrupt(context=None):
    os.kill(os.getpid(), signal.SIGINT)
    # rclpy shuts its context down on a thread of its own: wait for it (bounded), so the rest
    # of the start meets the stopped context every time
    deadline = time.monotonic() + 10
    while context is not None and context.ok() and time.monotonic() < deadline:
        time.sleep(0.01)

if sys.argv[1] == "loading":  # as `import rclpy` begins, before main() runs
    class Interrupter:
        def find_spec(self, name, path=None, target=None):
            if name == "rclpy":
                sys.meta_path.remove(self)
                interrupt()
            return None
    sys.meta_path.insert(0, Interrupter())
elif sys.argv[1] == "building":  # rclpy is up, the node half built (defaults logged, no subscription yet)
    import alien_ros.bridge_node as bridge_node
    log_defaults = bridge_node.log_defaults
    def interrupted(node, *args, **kwargs):
        log_defaults(node, *args, **kwargs)
        interrupt(node.context)
    bridge_node.log_defaults = interrupted
else:  # "spinning": the node is built and its alien client started; the executor gets the node
    from rclpy.executors import SingleThreadedExecutor
    add_node = SingleThreadedExecutor.add_node
    def interrupted(self, node):
        interrupt(node.context)
        return add_node(self, node)
    SingleThreadedExecutor.add_node = interrupted

sys.argv = ["bridge", *sys.argv[2:]]
runpy.run_module("alien_ros.main", run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize("moment", ["loading", "building", "spinning"])
def test_ctrl_c_while_the_bridge_starts_is_a_clean_stop(tmp_path: Path, moment: str) -> None:
    unreachable = f"http://127.0.0.1:{_free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIEN_")}
    env["ALIEN_API_KEY"] = SECRET
    run = subprocess.run(
        [sys.executable, "-c", _SIGINT_WHILE, moment, "--ros-args", "-p", f"mothership_url:={unreachable}"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output and "Unclosed" not in output, output
    assert SECRET not in output
    assert output.rstrip().endswith("[INFO] [alien_bridge]: stopped"), output


ANOTHER_ORGS_KEY = ["organizations:read", "organizations:write", "entities:read", "entities:write", "nats:telemetry"]


def _add_organization(url: str, name: str) -> None:
    """What an operator does with an admin key: another organization on the same server."""
    request = urllib.request.Request(
        f"{url}/api/v1/organizations",
        data=json.dumps({"name": name, "org_type": "civilian"}).encode(),
        headers={"X-API-Key": DEFAULT_API_KEY, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201


@pytest.mark.parametrize("v01_deployment", [{"scopes": ANOTHER_ORGS_KEY}], indirect=True)
def test_credentials_of_another_organization_are_one_error_line_naming_the_fix(
    ros: dict[str, Any], bridge_status: list[DiagnosticStatus], v01_deployment: Any, run_bridge: Any
) -> None:
    # No ALIEN_ORG_ID, two organizations, none named ORG_NAME: the client creates its own, where
    # the key's NKey may publish nothing.
    _add_organization(v01_deployment.emulator.url, "Another Team")
    edge = v01_deployment.edge
    env = {"ALIEN_API_KEY": edge.api_key, "ALIEN_NATS_NKEY_SEED": edge.nkey_seed}
    bridge = run_bridge(v01_deployment.emulator.url, v01_deployment.nats_server.url, env)
    try:
        status = _wait_for_status(ros, bridge_status, DiagnosticStatus.ERROR, "ERROR on /diagnostics")
        assert bridge.proc.poll() is None
    finally:
        code = bridge.stop()
    (error,) = _levels(bridge.lines, "ERROR")
    assert _message(error) == status.message
    assert "nats-server denied publishing telemetry" in status.message and "set ALIEN_ORG_ID" in status.message
    assert edge.org_id in status.message
    assert edge.api_key not in bridge.output and edge.nkey_seed not in bridge.output
    assert code == 0 and "Traceback" not in bridge.output, bridge.output
