"""BridgeSettings: the declared parameters read once into typed attributes (alien_ros.parameters).

Real rclpy (a context per test, no DDS peers): a plain node declares and reads the parameters.
"""

from __future__ import annotations

import dataclasses
import typing

import pytest
from rclpy.node import Node
from rclpy.parameter import Parameter
from ros_support import ros_context

from alien_ros.parameters import (
    BRIDGE_PARAMETERS,
    CONNECTION_PARAMETERS,
    BridgeSettings,
    CommandMapping,
    TopicMapping,
    attribute_name,
    declare_and_read,
)

READ_FROM_THEIR_NAMES = {"mappings", "commands"}  # name lists: the attribute holds what they configure


def test_every_bridge_parameter_is_an_attribute_of_its_type() -> None:
    hints = typing.get_type_hints(BridgeSettings)
    expected = {attribute_name(name) for name in BRIDGE_PARAMETERS} | {"config_overrides", "defaulted"}
    assert set(hints) == expected
    for name, (default, _) in BRIDGE_PARAMETERS.items():
        if name not in READ_FROM_THEIR_NAMES:
            assert isinstance(default, hints[attribute_name(name)]), f"{name}: {hints[attribute_name(name)]}"
    assert hints["mappings"] == tuple[TopicMapping, ...]
    assert hints["commands"] == tuple[CommandMapping, ...]


def test_settings_are_read_once_typed_and_frozen() -> None:
    overrides = [
        Parameter("nats_url", value="nats://127.0.0.1:4222"),
        Parameter("fix_topic", value="/gps/fix"),
        Parameter("fix.rate_hz", value=5),  # YAML `rate_hz: 5` is an integer
        Parameter("allow_unmapped_commands", value=True),
        Parameter("mappings", value=["imu"]),
        Parameter("mappings.imu.topic", value="imu/data"),
        Parameter("mappings.imu.type", value="sensor_msgs/msg/Imu"),
        Parameter("commands", value=["stop"]),
        Parameter("commands.stop.kind", value="topic"),
        Parameter("commands.stop.type", value="std_msgs/msg/Empty"),
        Parameter("commands.stop.target", value="cmd/stop"),
    ]
    with ros_context() as context:
        node = Node("alien_bridge", context=context, parameter_overrides=overrides)
        try:
            settings = declare_and_read(node)
        finally:
            node.destroy_node()
    assert settings.fix_topic == "/gps/fix"
    assert settings.fix_rate_hz == 5.0 and isinstance(settings.fix_rate_hz, float)
    assert settings.battery_topic == "battery_state" and settings.diagnostics_rate_hz == 0.2
    assert settings.allow_unmapped_commands is True
    assert settings.config_overrides == {"nats_url": "nats://127.0.0.1:4222"}
    assert settings.mappings == (TopicMapping("imu", "imu/data", "sensor_msgs/msg/Imu", "imu", 1.0, "auto"),)
    assert settings.commands == (CommandMapping("stop", "topic", "std_msgs/msg/Empty", "cmd/stop", 10.0, 5.0),)
    # declaration order: connection, bridge, then each mapping's and command's own parameters
    given = {p.name for p in overrides}
    declared = [
        *CONNECTION_PARAMETERS,
        *BRIDGE_PARAMETERS,
        *(f"mappings.imu.{key}" for key in ("topic", "type", "key", "rate_hz", "qos")),
        *(f"commands.stop.{key}" for key in ("kind", "type", "target", "timeout_s", "accept_timeout_s")),
    ]
    assert settings.defaulted == tuple(name for name in declared if name not in given)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.fix_topic = "/elsewhere"  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.config_overrides["org_name"] = "x"  # type: ignore[index]
