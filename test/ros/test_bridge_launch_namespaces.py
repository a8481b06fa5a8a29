"""launch_testing: two robots, `bridge.launch.py namespace:=robotN params_file:=robotN.yaml`.

The params files are keyed `alien_bridge:`, as most integrators write them: rcl alone would
apply them only at the root namespace; the launch file makes them apply in the robot's. Skips
where launch is not installed (not on PyPI); test_bridge_namespaces.py covers the same two
robots without launch.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import unittest
from pathlib import Path
from typing import Any

import pytest

REASON = "launch_testing / launch_ros are not installed (not on PyPI); this test runs on a real ROS 2 install"
pytest.importorskip("launch_testing", reason=REASON)
pytest.importorskip("launch_ros", reason=REASON)

import launch  # noqa: E402
import launch_testing  # noqa: E402
import launch_testing.actions  # noqa: E402
import launch_testing.asserts  # noqa: E402
import rclpy  # noqa: E402
import yaml  # noqa: E402
from launch.actions import IncludeLaunchDescription  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from ros_support import positions_by_entity  # noqa: E402
from sensor_msgs.msg import NavSatFix, NavSatStatus  # noqa: E402

from alien_ros.params_file import NODE_KEY  # noqa: E402
from alien_testing import MothershipEmulator, NatsServer  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ROBOTS = {"robot1": 11.0, "robot2": 22.0}  # robot -> the latitude its GPS reports
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"


@pytest.mark.launch_test
def generate_test_description() -> tuple[launch.LaunchDescription, dict[str, Any]]:
    workdir = Path(tempfile.mkdtemp(prefix="alien-launch-ns-"))
    nats_server = NatsServer(workdir / "nats")
    nats_server.start()
    emulator = MothershipEmulator(nats_server.url)
    emulator.start()
    shipped = yaml.safe_load((ROOT / "config" / "bridge.yaml").read_text())[NODE_KEY]["ros__parameters"]
    includes = []
    for robot in ROBOTS:
        values = {
            **shipped,
            "mothership_url": emulator.url,
            "nats_url": nats_server.url,
            "entity_name": robot,
            "identity_file": str(workdir / f"{robot}.json"),
            "fix_topic": "gps/fix",
            "fix.rate_hz": 0.0,
        }
        params_file = workdir / f"{robot}.yaml"
        params_file.write_text(yaml.safe_dump({"alien_bridge": {"ros__parameters": values}}))
        includes.append(
            IncludeLaunchDescription(
                PythonLaunchDescriptionSource(str(ROOT / "launch" / "bridge.launch.py")),
                launch_arguments={"namespace": robot, "params_file": str(params_file)}.items(),
            )
        )
    return (
        launch.LaunchDescription([*includes, launch_testing.actions.ReadyToTest()]),
        {"emulator": emulator, "nats_server": nats_server, "workdir": workdir},
    )


class TestEachRobotIsItsOwnEntity(unittest.TestCase):
    def test_each_bridge_sends_its_own_robots_position(self, emulator: MothershipEmulator, workdir: Path) -> None:
        rclpy.init()
        node = rclpy.create_node("launch_test_robots")
        try:
            publishers = {robot: node.create_publisher(NavSatFix, f"/{robot}/gps/fix", 10) for robot in ROBOTS}
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and len(positions_by_entity(emulator)) < len(ROBOTS):
                for robot, latitude in ROBOTS.items():
                    fix = NavSatFix(latitude=latitude, longitude=2.0, altitude=35.0)
                    fix.status.status = NavSatStatus.STATUS_FIX
                    publishers[robot].publish(fix)
                rclpy.spin_once(node, timeout_sec=0.2)
            ids = {robot: json.loads((workdir / f"{robot}.json").read_text())["entity_id"] for robot in ROBOTS}
            self.assertEqual(
                positions_by_entity(emulator), {ids[robot]: {latitude} for robot, latitude in ROBOTS.items()}
            )
        finally:
            node.destroy_node()
            rclpy.shutdown()


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    def test_both_bridges_exit_0(self, proc_info: Any, emulator: MothershipEmulator, nats_server: NatsServer) -> None:
        try:
            launch_testing.asserts.assertExitCodes(proc_info)
        finally:
            emulator.stop()
            nats_server.stop()
