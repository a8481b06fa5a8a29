"""Two robots on one ROS graph: a bridge per namespace, each configured by its own params file.

Started as the multi-robot recipe of docs/bridge.md#several-robots-on-one-ros-graph does without
launch (`ros2 run alien_ros bridge --ros-args -r __ns:=/robot1 --params-file robot1.yaml`), from copies of the package's
config/bridge.yaml. Each must register its own entity, hear only its own robot's topics, and be
told apart on /diagnostics by its full node name.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import yaml
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from installed import console_script
from ros_support import positions_by_entity, republish_until, spin_until
from sensor_msgs.msg import NavSatFix, NavSatStatus

from alien_ros.params_file import NODE_KEY

ROOT = Path(__file__).resolve().parents[2]


def _robot_params(tmp_path: Path, robot: str, emulator: Any, nats_server: Any, **values: Any) -> Path:
    params = yaml.safe_load((ROOT / "config" / "bridge.yaml").read_text())
    params[NODE_KEY]["ros__parameters"].update(
        mothership_url=emulator.url,
        nats_url=nats_server.url,
        entity_name=robot,
        entity_type="robot",
        identity_file=str(tmp_path / f"{robot}.json"),
        status_period_s=0.2,
        **{"fix.rate_hz": 0.0},
        **values,
    )
    path = tmp_path / f"{robot}.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _fix(latitude: float) -> NavSatFix:
    fix = NavSatFix(latitude=latitude, longitude=8.0, altitude=400.0)
    fix.status.status = NavSatStatus.STATUS_FIX
    return fix


def test_two_namespaced_bridges_each_register_listen_and_report_as_themselves(
    ros: dict[str, Any], make_emulator: Any, nats_server: Any, tmp_path: Path
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    robot1 = _robot_params(tmp_path, "robot1", emulator, nats_server, fix_topic="gps/fix")
    robot2 = _robot_params(tmp_path, "robot2", emulator, nats_server, fix_topc="gps/fix")  # misspelt: default fix
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIEN_")}
    bridges = {
        robot: subprocess.Popen(
            [str(console_script("bridge")), "--ros-args", "-r", f"__ns:=/{robot}", "--params-file", str(path)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for robot, path in (("robot1", robot1), ("robot2", robot2))
    }
    node, executor = ros["helper"], ros["executor"]
    robot1_fix = node.create_publisher(NavSatFix, "/robot1/gps/fix", 10)
    robot2_fix = node.create_publisher(NavSatFix, "/robot2/fix", 10)
    statuses: dict[str, DiagnosticStatus] = {}
    node.create_subscription(
        DiagnosticArray, "/diagnostics", lambda m: statuses.update({s.name: s for s in m.status}), 10
    )
    outputs: dict[str, str] = {}
    try:

        def publish() -> None:
            robot1_fix.publish(_fix(1.0))
            robot2_fix.publish(_fix(2.0))

        republish_until(
            executor, publish, lambda: len(positions_by_entity(emulator)) == 2, 30, "positions from both bridges", 0.2
        )
        names = {f"/{robot}/alien_bridge: mothership link" for robot in bridges}
        spin_until(
            executor,
            lambda: names <= {n for n, s in statuses.items() if s.level == DiagnosticStatus.OK},
            15,
            "an OK status from each bridge",
        )
    finally:
        for proc in bridges.values():
            proc.send_signal(signal.SIGINT)
        for robot, proc in bridges.items():
            try:
                outputs[robot], _ = proc.communicate(timeout=30)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    outputs[robot], _ = proc.communicate()
    assert {robot: proc.returncode for robot, proc in bridges.items()} == {"robot1": 0, "robot2": 0}, outputs

    # each registered its own entity, saved in its own identity file
    entities = {robot: json.loads((tmp_path / f"{robot}.json").read_text())["entity_id"] for robot in bridges}
    assert sorted(e["entity_id"] for e in emulator.entities()) == sorted(entities.values())
    assert len(set(entities.values())) == 2
    assert positions_by_entity(emulator) == {
        entities["robot1"]: {1.0},
        entities["robot2"]: {2.0},
    }  # each heard only its robot
    for robot in bridges:
        status = statuses[f"/{robot}/alien_bridge: mothership link"]
        assert status.hardware_id == f"/{robot}/alien_bridge"
        assert {kv.key: kv.value for kv in status.values}["entity_id"] == entities[robot]
        assert f"subscribed to /{robot}/" in outputs[robot]
    assert "subscribed to /robot1/gps/fix" in outputs["robot1"]
    assert "parameter 'fix_topc' (params file" in outputs["robot2"] and "did you mean 'fix_topic'?" in outputs["robot2"]
    assert "not a parameter" not in outputs["robot1"]
