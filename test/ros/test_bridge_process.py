"""The bridge as users run it: its console script in a process of its own, a params file, SIGINT.

The publishers live in this (test) process, the node in another: real DDS discovery over
loopback between two processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from installed import console_script
from ros_support import republish_until
from sensor_msgs.msg import BatteryState, NavSatFix, NavSatStatus

from alien_ros.params_file import NODE_KEY

ROOT = Path(__file__).resolve().parents[2]


def _bridge_command() -> list[str]:
    return [str(console_script("bridge"))]


def _params_file(tmp_path: Path, emulator: Any, nats_server: Any) -> Path:
    """The package's own config/bridge.yaml, with this test's servers and topics filled in."""
    params = yaml.safe_load((ROOT / "config" / "bridge.yaml").read_text())
    values = params[NODE_KEY]["ros__parameters"]
    values.update(
        mothership_url=emulator.url,
        nats_url=nats_server.url,
        identity_file=str(tmp_path / "identity.json"),
        entity_type="rover",
        entity_name="rover-7",
        fix_topic="gps/fix",
        **{"fix.rate_hz": 0.0, "battery.rate_hz": 0.0},
    )
    del values["battery_topic"]  # left to its default: the node must say so once
    path = tmp_path / "bridge.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_console_script_bridges_another_process_and_stops_cleanly(
    ros: dict[str, Any],
    make_emulator: Any,
    nats_server: Any,
    tmp_path: Path,
    stop_signal: signal.Signals,
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    node, executor = ros["helper"], ros["executor"]  # the robot under test, in this process
    fix_pub = node.create_publisher(NavSatFix, "gps/fix", 10)
    battery_pub = node.create_publisher(BatteryState, "battery_state", 10)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIEN_")}
    proc = subprocess.Popen(
        [*_bridge_command(), "--ros-args", "--params-file", str(_params_file(tmp_path, emulator, nats_server))],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        fix = NavSatFix(latitude=51.5007, longitude=-0.1246, altitude=15.0)
        fix.status.status = NavSatStatus.STATUS_FIX
        battery = BatteryState(voltage=24.1, percentage=0.73, present=True)

        def publish() -> None:
            fix_pub.publish(fix)
            battery_pub.publish(battery)

        def arrived() -> bool:
            data = [m.json()["data"] for m in emulator.telemetry()]
            return any("position" in d for d in data) and any("power" in d for d in data)

        republish_until(executor, publish, arrived, 30, "telemetry from the bridge process", period=0.5)
        data = [m.json()["data"] for m in emulator.telemetry()]
        position = next(d["position"] for d in data if "position" in d)
        power = next(d["power"] for d in data if "power" in d)
        assert (position["latitude"], position["longitude"]) == (51.5007, -0.1246)
        assert power["voltage"] == pytest.approx(24.1) and power["percentage"] == pytest.approx(73.0)
        (entity,) = emulator.entities()
        assert entity["entity_type"] == "ground_vehicle_wheeled"
        emulator.wait_for(
            lambda: any(m.json()["event_type"] == "bootsequence" for m in emulator.events()), 10, "bootsequence"
        )
        boot = [m.json() for m in emulator.events() if m.json()["event_type"] == "bootsequence"]
        assert boot[0]["entity_id"] == entity["entity_id"]
        assert boot[0]["device_id"] == "rover-7"  # the entity name, not the node's /alien_bridge

        proc.send_signal(stop_signal)
        output, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, output
    emulator.wait_for(
        lambda: any(m.json()["event_type"] == "shutdown" for m in emulator.events()), 10, "the shutdown event"
    )
    (entity,) = emulator.entities()
    assert entity["status"] == "inactive"
    shutdown = [m.json() for m in emulator.events() if m.json()["event_type"] == "shutdown"]
    assert shutdown[0]["device_id"] == "rover-7"
    assert "parameter 'battery_topic' not set, using default 'battery_state'" in output  # defaults logged once
    assert output.count("parameter 'battery_topic' not set") == 1


def test_bad_parameter_is_a_clear_error_and_exit_code(make_emulator: Any, nats_server: Any, tmp_path: Path) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    run = subprocess.run(
        [*_bridge_command(), "--ros-args", "-p", f"mothership_url:={emulator.url}", "-p", "fix.qos:=sometimes"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert run.returncode == 2
    assert "fix.qos" in run.stderr and "sometimes" in run.stderr and "best_effort" in run.stderr


def test_a_killed_bridge_process_loses_nothing_it_accepted(
    ros: dict[str, Any], make_emulator: Any, nats_server: Any, tmp_path: Path
) -> None:
    """Fault suite 2 for the ROS bridge: SIGKILL while NATS is down; a restart delivers the outbox."""
    import sqlite3

    from alien.delivery.journal import journal_path, read_journal

    emulator = make_emulator(dialect="v0.1")  # keeps telemetry: the restarted server knows the ids
    node, executor = ros["helper"], ros["executor"]  # the robot under test, in this process
    fix_pub = node.create_publisher(NavSatFix, "gps/fix", 10)
    params = _params_file(tmp_path, emulator, nats_server)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIEN_")}
    env["ALIEN_API_KEY"] = next(iter(emulator.api_keys))  # a secret: environment, never a parameter
    command = [*_bridge_command(), "--ros-args", "--params-file", str(params), "-p", f"data_dir:={tmp_path / 'data'}"]
    counter = iter(range(1_000_000))

    def publish() -> None:
        fix = NavSatFix(latitude=10.0 + next(counter) / 1e5, longitude=20.0)
        fix.status.status = NavSatStatus.STATUS_FIX
        fix_pub.publish(fix)

    bridge = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        republish_until(executor, publish, lambda: len(emulator.telemetry()) >= 5, 30, "telemetry flowing", 0.02)
        nats_server.kill()  # the link goes down: positions now wait in the bridge's outbox
        deadline = time.monotonic() + 1.5
        republish_until(executor, publish, lambda: time.monotonic() > deadline, 5, "an outage", 0.02)
        bridge.send_signal(signal.SIGKILL)
        bridge.wait(10)
    finally:
        if bridge.poll() is None:
            bridge.kill()
    outbox = tmp_path / "data" / "outbox.identity.sqlite3"
    db = sqlite3.connect(outbox)  # what the killed process had accepted and not yet sent: rows...
    try:
        waiting = {row[0] for row in db.execute("SELECT msg_id FROM messages WHERE parked_reason IS NULL")}
    finally:
        db.close()
    waiting |= {message.msg_id for message in read_journal(journal_path(outbox))}  # ...and its journal's records
    assert len(waiting) >= 10

    nats_server.restart()
    again = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        emulator.wait_for(
            lambda: waiting <= {m.headers["Nats-Msg-Id"] for m in emulator.telemetry()}, 30, "the outbox delivered"
        )
    finally:
        again.send_signal(signal.SIGINT)
        again.wait(30)
    # by stream sequence: a consumer redelivery after the server's crash is not a second copy
    ids = list({m.stream_seq: m.headers["Nats-Msg-Id"] for m in emulator.telemetry()}.values())
    assert len(ids) == len(set(ids))  # exactly once in the stream


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        (["--params-file", "missing.yaml"], "params file 'missing.yaml' not found"),
        (["--params-file", "broken.yaml"], "params file 'broken.yaml' is not valid YAML at line 4: expected ','"),
        (["--params-file", "mixed.yaml"], "bad ROS arguments: Couldn't parse params file: '--params-file mixed.yaml'"),
        (["-r", "foo"], "bad ROS arguments: Couldn't parse remap rule: '-r foo'"),
        (["--log-level", "loud"], "bad ROS arguments: Couldn't parse log level"),
        (["-p", "fix_topic:=3"], "parameter 'fix_topic' must be a string"),
    ],
    ids=["missing-file", "malformed-yaml", "rcl-rejects-file", "bad-remap", "bad-log-level", "wrong-type"],
)
def test_bad_ros_arguments_are_one_line_and_exit_2(tmp_path: Path, arguments: list[str], words: str) -> None:
    (tmp_path / "broken.yaml").write_text("/**/alien_bridge:\n  ros__parameters:\n    fix_topic: [1, 2\n")
    (tmp_path / "mixed.yaml").write_text("/**/alien_bridge:\n  ros__parameters:\n    fix_topic: [1, a]\n")
    run = subprocess.run(
        [*_bridge_command(), "--ros-args", *arguments],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    ours = [line for line in run.stderr.splitlines() if line.startswith("alien_bridge:")]
    assert run.returncode == 2, run.stderr
    assert len(ours) == 1 and words in ours[0], run.stderr
    assert "Traceback" not in run.stderr and ", at /" not in ours[0]  # no C source locations
