"""The ROS bridge on a v0.1 deployment, authenticated with an NKey and an API key.

Real rclpy over DDS, a real nats-server whose edge user has only the permissions a real server
derives from the key's scopes, and the emulator as the server (REST, workers, KV bucket).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from rclpy.qos import qos_profile_sensor_data
from ros_support import republish_until
from sensor_msgs.msg import BatteryState, NavSatFix, NavSatStatus

from alien_testing.deployment import V01Deployment

LAT, LON, ALT = 47.3977419, 8.5455938, 488.2


def _fix() -> NavSatFix:
    msg = NavSatFix()
    msg.status.status = NavSatStatus.STATUS_FIX
    msg.latitude, msg.longitude, msg.altitude = LAT, LON, ALT
    return msg


def _battery() -> BatteryState:
    msg = BatteryState()
    msg.voltage, msg.current, msg.percentage, msg.charge = 15.8, -2.25, 0.76, math.nan
    return msg


def _bridge_on(
    deployment: V01Deployment, start_bridge: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **params: Any
) -> Any:
    edge = deployment.edge
    seed_file = tmp_path / "edge.nk"
    seed_file.write_text(edge.nkey_seed)
    seed_file.chmod(0o600)
    monkeypatch.setenv("ALIEN_API_KEY", edge.api_key)  # secrets are never ROS parameters
    values = {
        "nats_url": deployment.nats_server.url,
        "org_id": edge.org_id,  # an edge key may not create organizations (docs/contract.md#api-keys-and-scopes)
        "nats_nkey_seed_file": str(seed_file),
        "fix.rate_hz": 0.0,
        "battery.rate_hz": 0.0,
        **params,
    }
    return start_bridge(deployment.emulator, **values)


def _publish_until(ros: dict[str, Any], arrived: Any, what: str) -> None:
    helper = ros["helper"]
    fix_pub = helper.create_publisher(NavSatFix, "fix", qos_profile_sensor_data)
    battery_pub = helper.create_publisher(BatteryState, "battery_state", 10)

    def publish() -> None:
        fix_pub.publish(_fix())
        battery_pub.publish(_battery())

    republish_until(ros["executor"], publish, arrived, 30, what)


def test_bridge_puts_the_robot_on_the_v011_operator_map(
    ros: dict[str, Any],
    v01_deployment: V01Deployment,
    start_bridge: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bridge = _bridge_on(v01_deployment, start_bridge, tmp_path, monkeypatch)
    emulator = v01_deployment.emulator
    entity_id = bridge.alien.client.config.entity_id

    def on_map() -> bool:
        state = emulator.entity_state(entity_id) or {}
        return "global" in state.get("position", {}) and "battery_remaining" in state.get("power", {})

    _publish_until(ros, on_map, "the robot's position and battery on the operator map")
    state = emulator.entity_state(entity_id)
    assert state is not None
    point = state["position"]["global"]
    assert (point["latitude"], point["longitude"], point["altitude_msl"]) == pytest.approx((LAT, LON, ALT))
    assert state["power"]["battery_remaining"] == 76
    assert state["power"]["voltage"] == pytest.approx(15.8)
    assert state["power"]["current"] == pytest.approx(2.25)  # drawn current, MAVLink's sign
    assert state["is_live"] is True and state["entity_type"] == "ground_vehicle_wheeled"
    # the wire carried MAVLink-style telemetry (v0.1.1 decodes it; docs/contract.md#mavlink-style-telemetry)
    types = {m.json()["message_type"] for m in emulator.telemetry()}
    assert {"GPS_RAW_INT", "BATTERY_STATUS", "SYS_STATUS"} <= types


@pytest.mark.parametrize("v01_deployment", [{"release": "rc"}], indirect=True)
def test_bridge_envelope_v1_passes_strict_validation(
    ros: dict[str, Any],
    v01_deployment: V01Deployment,
    start_bridge: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bridge = _bridge_on(v01_deployment, start_bridge, tmp_path, monkeypatch, telemetry_format="envelope_v1")
    emulator = v01_deployment.emulator
    entity_id = bridge.alien.client.config.entity_id
    wanted = {"GLOBAL_POSITION_INT", "BATTERY_STATUS", "SYS_STATUS", "HEARTBEAT"}

    def validated() -> bool:
        return wanted <= {verdict.message_type for verdict in emulator.telemetry_accepted()}

    _publish_until(ros, validated, "every message type accepted by the strict server")
    assert emulator.telemetry_rejected() == []
    assert emulator.quarantined() == []
    # the newest server writes the operator map itself, from the validated envelopes
    state = emulator.entity_state(entity_id)
    assert state is not None
    assert state["position"]["global"]["latitude"] == pytest.approx(LAT)
    assert state["power"]["battery_remaining"] == 76


def test_bridge_registers_the_video_config_parameter(
    ros: dict[str, Any],
    v01_deployment: V01Deployment,
    start_bridge: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    camera = {"protocol": "rtsp", "port": 8554, "stream_url": "rtsp://10.0.0.7:8554/front"}
    bridge = _bridge_on(v01_deployment, start_bridge, tmp_path, monkeypatch, video_config=json.dumps(camera))
    entity_id = bridge.alien.client.config.entity_id
    (entity,) = [e for e in v01_deployment.emulator.entities() if e["entity_id"] == entity_id]
    assert json.loads(entity["video_config"]) == camera
