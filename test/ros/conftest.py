"""Fixtures for tests that run the alien_bridge node in-process (own context and executor)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from ros_support import ros_context, spin_until

from alien_ros.bridge_node import BridgeNode


@pytest.fixture
def ros() -> Iterator[dict[str, Any]]:
    with ros_context() as context:
        executor = SingleThreadedExecutor(context=context)
        helper = Node("test_peer", context=context)
        executor.add_node(helper)
        yield {"context": context, "executor": executor, "helper": helper}
        executor.remove_node(helper)
        helper.destroy_node()
        executor.shutdown()


@pytest.fixture
def start_bridge(
    ros: dict[str, Any], make_emulator: Any, nats_server: Any, tmp_path: Any
) -> Iterator[Callable[..., BridgeNode]]:
    """Starts bridges; shuts them down before the emulator and nats-server go away."""
    started: list[BridgeNode] = []

    def start(emulator: Any, **params: Any) -> BridgeNode:
        values = {
            "mothership_url": emulator.url,
            "nats_url": nats_server.url,
            "identity_file": str(tmp_path / "identity.json"),
            "entity_type": "robot",
            "entity_name": "bridge-test",
            **params,
        }
        overrides = [Parameter(k, value=v) for k, v in values.items()]
        node = BridgeNode(context=ros["context"], parameter_overrides=overrides)
        started.append(node)
        ros["executor"].add_node(node)
        spin_until(ros["executor"], node.alien.ready.is_set, 20, "the bridge to register and connect")
        return node

    yield start
    for node in started:
        node.shutdown()
        ros["executor"].remove_node(node)
        node.destroy_node()
