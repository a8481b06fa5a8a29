"""launch_testing: `bridge.launch.py` against a nats-server and mothership emulator it starts.

launch, launch_ros and launch_testing are not installable from PyPI, so this module skips
where they are absent (saying so) and runs on a real ROS 2 install (`colcon test`). Everything
the launch file starts is also covered without launch: test_bridge_process.py runs the same
node through the same console script with the same params file.
"""

from __future__ import annotations

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
from sensor_msgs.msg import NavSatFix, NavSatStatus  # noqa: E402

from alien_ros.params_file import NODE_KEY  # noqa: E402
from alien_testing import MothershipEmulator, NatsServer  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"


@pytest.mark.launch_test
def generate_test_description() -> tuple[launch.LaunchDescription, dict[str, Any]]:
    workdir = Path(tempfile.mkdtemp(prefix="alien-launch-test-"))
    nats_server = NatsServer(workdir / "nats")
    nats_server.start()
    emulator = MothershipEmulator(nats_server.url)
    emulator.start()
    params = yaml.safe_load((ROOT / "config" / "bridge.yaml").read_text())
    params[NODE_KEY]["ros__parameters"].update(
        mothership_url=emulator.url,
        nats_url=nats_server.url,
        identity_file=str(workdir / "identity.json"),
        entity_type="rover",
        **{"fix.rate_hz": 0.0},
    )
    params_file = workdir / "bridge.yaml"
    params_file.write_text(yaml.safe_dump(params))
    bridge = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(ROOT / "launch" / "bridge.launch.py")),
        launch_arguments={"params_file": str(params_file), "log_level": "info"}.items(),
    )
    return (
        launch.LaunchDescription([bridge, launch_testing.actions.ReadyToTest()]),
        {"emulator": emulator, "nats_server": nats_server},
    )


class TestTelemetryRoundTrip(unittest.TestCase):
    def test_a_fix_reaches_the_telemetry_stream(self, emulator: MothershipEmulator) -> None:
        rclpy.init()
        node = rclpy.create_node("launch_test_gps")
        try:
            publisher = node.create_publisher(NavSatFix, "fix", 10)
            fix = NavSatFix(latitude=48.8584, longitude=2.2945, altitude=35.0)
            fix.status.status = NavSatStatus.STATUS_FIX
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                publisher.publish(fix)
                rclpy.spin_once(node, timeout_sec=0.5)
                data = [m.json()["data"] for m in emulator.telemetry()]
                if any(d.get("position", {}).get("latitude") == 48.8584 for d in data):
                    break
            else:
                self.fail("no position telemetry from the launched bridge within 30 s")
        finally:
            node.destroy_node()
            rclpy.shutdown()


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    def test_exit_code_is_zero(self, proc_info: Any) -> None:
        launch_testing.asserts.assertExitCodes(proc_info)

    def test_shutdown_event_was_sent(self, emulator: MothershipEmulator, nats_server: NatsServer) -> None:
        try:
            emulator.wait_for(
                lambda: any(m.json()["event_type"] == "shutdown" for m in emulator.events()), 10, "shutdown event"
            )
        finally:
            emulator.stop()
            nats_server.stop()
