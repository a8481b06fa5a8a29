"""The alien_bridge node in-process: real rclpy over DDS, real nats-server, the emulator."""

from __future__ import annotations

import math
import threading
from typing import Any

import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from ros_support import republish_until, spin_until, wait_matched
from sensor_msgs.msg import BatteryState, Imu, NavSatFix, NavSatStatus

from alien_ros import inputs
from alien_ros.bridge_node import BridgeNode


def _fix(lat: float, lon: float, alt: float = 10.0, status: int = NavSatStatus.STATUS_FIX) -> NavSatFix:
    msg = NavSatFix()
    msg.header.frame_id = "gps"
    msg.header.stamp.sec = 1_790_000_000
    msg.status.status = status
    msg.status.service = NavSatStatus.SERVICE_GPS
    msg.latitude, msg.longitude, msg.altitude = lat, lon, alt
    return msg


def _telemetry_with(emulator: Any, key: str) -> list[dict[str, Any]]:
    return [m.json()["data"][key] for m in emulator.telemetry() if key in m.json().get("data", {})]


def _events(emulator: Any, event_type: str) -> list[dict[str, Any]]:
    return [m.json()["data"] for m in emulator.events() if m.json().get("event_type") == event_type]


def test_fix_battery_and_diagnostics_become_telemetry(
    ros: dict[str, Any], make_emulator: Any, start_bridge: Any
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    bridge = start_bridge(emulator, **{"fix.rate_hz": 0.0, "battery.rate_hz": 0.0, "diagnostics.rate_hz": 0.0})
    helper, executor = ros["helper"], ros["executor"]
    fix_pub = helper.create_publisher(NavSatFix, "fix", qos_profile_sensor_data)
    battery_pub = helper.create_publisher(BatteryState, "battery_state", 10)
    diag_pub = helper.create_publisher(DiagnosticArray, "/diagnostics", 10)
    battery = BatteryState()
    battery.voltage, battery.percentage, battery.charge = 12.4, 0.5, math.nan
    battery.power_supply_status = BatteryState.POWER_SUPPLY_STATUS_DISCHARGING
    diag = DiagnosticArray(
        status=[
            DiagnosticStatus(
                level=DiagnosticStatus.WARN,
                name="motor",
                message="hot",
                hardware_id="m1",
                values=[KeyValue(key="temp", value="81")],
            )
        ]
    )

    def publish_all() -> None:
        fix_pub.publish(_fix(47.3977, 8.5456))
        battery_pub.publish(battery)
        diag_pub.publish(diag)

    def arrived() -> bool:
        return all(_telemetry_with(emulator, key) for key in ("position", "power", "health"))

    republish_until(executor, publish_all, arrived, 20, "position, power and health telemetry")
    position = _telemetry_with(emulator, "position")[-1]
    assert (position["latitude"], position["longitude"], position["altitude"]) == (47.3977, 8.5456, 10.0)
    assert position["fix"] == "FIX" and position["services"] == ["GPS"]
    power = _telemetry_with(emulator, "power")[-1]
    assert power["voltage"] == pytest.approx(12.4) and power["percentage"] == pytest.approx(50.0)
    assert power["status"] == "DISCHARGING" and power["charge"] is None  # NaN -> null
    health = _telemetry_with(emulator, "health")[-1]
    assert health["level"] == "WARN" and health["statuses"][0]["values"] == {"temp": "81"}
    assert all(s["hardware_id"] != "/alien_bridge" for s in health["statuses"])  # its own status is not echoed
    spin_until(executor, lambda: bool(_events(emulator, "diagnostic_level_changed")), 10, "level change event")
    change = _events(emulator, "diagnostic_level_changed")[0]
    assert (change["name"], change["previous"], change["level"]) == ("motor", None, "WARN")
    subject = {m.subject for m in emulator.telemetry()}
    assert subject == {
        f"constellation.telemetry.{bridge.alien.client.config.org_id}.{bridge.alien.client.config.entity_id}"
    }


def test_rate_limit_sends_the_latest_fix(ros: dict[str, Any], make_emulator: Any, start_bridge: Any) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    bridge = start_bridge(emulator, **{"fix.rate_hz": 2.0, "fix.qos": "reliable"})
    helper, executor = ros["helper"], ros["executor"]
    pub = helper.create_publisher(NavSatFix, "fix", 50)
    wait_matched(executor, pub, lambda: bridge.inputs[0].subscription)
    for i in range(20):
        pub.publish(_fix(10.0 + i / 1000, 20.0))
    # the reader keeps the last 10 (KEEP_LAST depth 10): the newest always gets through
    spin_until(
        executor,
        lambda: any(p["latitude"] == 10.019 for p in _telemetry_with(emulator, "position")),
        10,
        "the latest fix to be sent",
    )
    assert bridge.received["fix"] >= 10
    sent = [p["latitude"] for p in _telemetry_with(emulator, "position")]
    assert sent[-1] == 10.019 and sent[0] < 10.019  # the first received went at once, the latest at period end
    assert len(sent) <= 3  # 20 fixes within one period -> first, latest (and at most one more)


@pytest.mark.parametrize(
    ("publisher_qos", "expected"),
    [(qos_profile_sensor_data, ReliabilityPolicy.BEST_EFFORT), (QoSProfile(depth=10), ReliabilityPolicy.RELIABLE)],
)
def test_qos_auto_matches_the_publishers(
    ros: dict[str, Any], make_emulator: Any, start_bridge: Any, publisher_qos: QoSProfile, expected: ReliabilityPolicy
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    helper, executor = ros["helper"], ros["executor"]
    pub = helper.create_publisher(NavSatFix, "fix", publisher_qos)  # before the bridge: auto sees it
    bridge = start_bridge(emulator, **{"fix.rate_hz": 0.0})
    spin_until(executor, lambda: bridge.inputs[0].profile.reliability == expected, 5, f"qos {expected.name}")

    republish_until(
        executor,
        lambda: pub.publish(_fix(1.0, 2.0)),
        lambda: bool(_telemetry_with(emulator, "position")),
        15,
        "a fix through the matched subscription",
    )


def test_node_reports_its_own_health_on_diagnostics(ros: dict[str, Any], make_emulator: Any, start_bridge: Any) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    seen: list[DiagnosticStatus] = []
    ros["helper"].create_subscription(
        DiagnosticArray,
        "/diagnostics",
        lambda m: seen.extend(s for s in m.status if s.hardware_id == "/alien_bridge"),
        10,
    )
    bridge = start_bridge(emulator, status_period_s=0.2)
    spin_until(ros["executor"], lambda: any(s.level == DiagnosticStatus.OK for s in seen), 10, "an OK status")
    status = next(s for s in seen if s.level == DiagnosticStatus.OK)
    assert status.name == "/alien_bridge: mothership link"  # the full node name: bridges in namespaces differ
    values = {kv.key: kv.value for kv in status.values}
    assert values["state"] == "connected"
    assert values["entity_id"] == bridge.alien.client.config.entity_id
    assert values["command_intake"] == "core"
    for key in ("queue_depth", "published", "dropped", "last_publish_latency_ms", "reconnects"):
        assert key in values


@pytest.mark.parametrize(
    ("params", "env", "expected"),
    [
        ({"entity_name": "rover-7"}, {}, "rover-7"),
        ({"entity_name": ""}, {"ENTITY_NAME": "from-env"}, "from-env"),
        ({"entity_name": "rover-7", "device_id": "dev-7"}, {}, "dev-7"),
        ({"entity_name": ""}, {}, None),  # no name anywhere: the entity id, as AlienConfig documents
    ],
    ids=["entity_name", "ENTITY_NAME", "device_id", "neither"],
)
def test_lifecycle_device_id_is_the_entity_name_not_the_node_name(
    ros: dict[str, Any],
    make_emulator: Any,
    start_bridge: Any,
    monkeypatch: pytest.MonkeyPatch,
    params: dict[str, str],
    env: dict[str, str],
    expected: str | None,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    emulator = make_emulator(dialect="v0.0.1")
    seen: list[DiagnosticStatus] = []
    ros["helper"].create_subscription(
        DiagnosticArray,
        "/diagnostics",
        lambda m: seen.extend(s for s in m.status if s.hardware_id == "/alien_bridge"),
        10,
    )
    bridge = start_bridge(emulator, status_period_s=0.2, **params)
    entity_id = bridge.alien.client.config.entity_id
    device_id = expected or entity_id

    def boot() -> list[dict[str, Any]]:  # as the emulator received it from JetStream
        return [m.json() for m in emulator.events() if m.json().get("event_type") == "bootsequence"]

    spin_until(ros["executor"], lambda: bool(boot()), 10, "the bootsequence event")
    assert (boot()[0]["device_id"], boot()[0]["entity_id"]) == (device_id, entity_id)
    spin_until(ros["executor"], lambda: any(s.level == DiagnosticStatus.OK for s in seen), 10, "an OK status")
    values = {kv.key: kv.value for kv in next(s for s in seen if s.level == DiagnosticStatus.OK).values}
    assert values["device_id"] == device_id


def test_fix_lost_and_regained_become_events(ros: dict[str, Any], make_emulator: Any, start_bridge: Any) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    bridge = start_bridge(emulator, **{"fix.rate_hz": 0.0, "fix.qos": "reliable"})
    helper, executor = ros["helper"], ros["executor"]
    pub = helper.create_publisher(NavSatFix, "fix", 10)
    wait_matched(executor, pub, lambda: bridge.inputs[0].subscription)
    for msg in (_fix(1.0, 1.0), _fix(math.nan, 1.0), _fix(1.0, 1.0, status=NavSatStatus.STATUS_NO_FIX), _fix(1.5, 1.0)):
        pub.publish(msg)
    spin_until(
        executor,
        lambda: bool(_events(emulator, "fix_regained")) and len(_telemetry_with(emulator, "position")) >= 2,
        15,
        "fix_regained and the second position",
    )
    assert [e["reason"] for e in _events(emulator, "fix_lost")] == ["non_finite"]
    assert [p["latitude"] for p in _telemetry_with(emulator, "position")] == [1.0, 1.5]


def test_a_yaml_mapped_topic_arrives_as_json(ros: dict[str, Any], make_emulator: Any, start_bridge: Any) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    bridge = start_bridge(
        emulator,
        mappings=["imu"],
        **{
            "mappings.imu.topic": "imu/data",
            "mappings.imu.type": "sensor_msgs/msg/Imu",
            "mappings.imu.rate_hz": 0.0,
            "mappings.imu.qos": "reliable",
        },
    )
    helper, executor = ros["helper"], ros["executor"]
    pub = helper.create_publisher(Imu, "imu/data", 10)
    wait_matched(executor, pub, lambda: bridge.inputs[-1].subscription)
    imu = Imu()
    imu.linear_acceleration.z = 9.81
    imu.orientation_covariance[0] = math.nan
    pub.publish(imu)
    spin_until(executor, lambda: bool(_telemetry_with(emulator, "imu")), 10, "imu telemetry")
    data = _telemetry_with(emulator, "imu")[0]
    assert data["linear_acceleration"]["z"] == pytest.approx(9.81)
    assert data["orientation_covariance"][0] is None
    assert len(data["orientation_covariance"]) == 9


@pytest.mark.parametrize("executor", ["EventsExecutor", "SingleThreadedExecutor"])
def test_inputs_are_subscriptions_of_a_hidden_node_spun_in_a_thread_of_their_own(
    ros: dict[str, Any], make_emulator: Any, start_bridge: Any, monkeypatch: pytest.MonkeyPatch, executor: str
) -> None:
    """The three core types are taken as bytes (alien_ros.cdr), a mapped topic as a message; none by the node itself.

    On rclpy's EventsExecutor (Jazzy's rclpy 7.1 and Kilted's 9.1 both have it), and on the
    SingleThreadedExecutor the inputs fall back to where rclpy has none. Shut down, the bridge
    leaves no thread behind.
    """
    if executor == "SingleThreadedExecutor":
        monkeypatch.setattr(inputs, "EventsExecutor", None)  # as with an rclpy without it
    emulator = make_emulator(dialect="v0.0.1")
    threads_before = set(threading.enumerate())
    bridge = start_bridge(
        emulator,
        mappings=["imu"],
        **{"mappings.imu.topic": "imu/data", "mappings.imu.type": "sensor_msgs/msg/Imu", "fix.rate_hz": 0.0},
    )
    assert [(item.topic, item.raw) for item in bridge.inputs] == [
        ("/fix", True),
        ("/battery_state", True),
        ("/diagnostics", True),
        ("/imu/data", False),
    ]
    assert all(item.subscription is not None and item.subscription.raw == item.raw for item in bridge.inputs)
    assert not list(bridge.subscriptions)  # the bridge node itself subscribes to nothing
    assert "alien-ros-inputs" in {thread.name for thread in threading.enumerate()}
    spin_until(
        ros["executor"],
        lambda: ("_alien_bridge_inputs", "/") in ros["helper"].get_node_names_and_namespaces(),
        10,
        "the input node in the graph",
    )
    pub = ros["helper"].create_publisher(NavSatFix, "fix", qos_profile_sensor_data)
    republish_until(
        ros["executor"],
        lambda: pub.publish(_fix(12.5, 7.25)),
        lambda: bool(_telemetry_with(emulator, "position")),
        15,
        "a fix through the raw subscription",
    )
    position = _telemetry_with(emulator, "position")[0]
    assert (position["latitude"], position["longitude"], position["frame_id"]) == (12.5, 7.25, "gps")
    assert type(bridge.inputs[0].inputs.executor).__name__ == executor
    bridge.shutdown()  # the fixture destroys the node afterwards
    assert set(threading.enumerate()) <= threads_before


@pytest.mark.parametrize(
    "mapping",
    [
        {"mappings": ["odd"], "mappings.odd.topic": "odd", "mappings.odd.type": "nav2_msgs/msg/NotInstalled"},
        {
            "commands": ["navigate"],
            "commands.navigate.kind": "action",
            "commands.navigate.type": "nav2_msgs/action/NavigateToPose",
            "commands.navigate.target": "navigate_to_pose",
        },
    ],
    ids=["topic mapping", "command mapping"],
)
def test_a_mapping_naming_a_missing_type_fails_at_startup(
    ros: dict[str, Any], make_emulator: Any, nats_server: Any, mapping: dict[str, Any]
) -> None:
    from alien_ros.message_types import MessageTypeError

    emulator = make_emulator(dialect="v0.0.1")
    values = {"mothership_url": emulator.url, "nats_url": nats_server.url, **mapping}
    overrides = [Parameter(name, value=value) for name, value in values.items()]
    with pytest.raises(MessageTypeError, match="nav2_msgs"):
        BridgeNode(context=ros["context"], parameter_overrides=overrides)


@pytest.mark.parametrize("name", ["status_period_s", "commands.x.timeout_s"])
def test_zero_periods_and_timeouts_are_refused(ros: dict[str, Any], name: str) -> None:
    from alien_ros.parameters import ParameterError

    overrides = [Parameter(name, value=0.0)]
    if name.startswith("commands."):
        overrides += [
            Parameter("commands", value=["x"]),
            Parameter("commands.x.kind", value="topic"),
            Parameter("commands.x.type", value="std_msgs/msg/Empty"),
            Parameter("commands.x.target", value="x"),
        ]
    with pytest.raises(ParameterError, match=rf"{name}.*must be positive"):
        BridgeNode(context=ros["context"], parameter_overrides=overrides)
