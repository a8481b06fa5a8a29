"""Mothership commands into ROS through a running bridge: topics, services, actions, cancel.

Real rclpy over DDS (the bridge in-process; the action server in a context and thread of its
own), real nats-server, the emulator's commands stream and events stream.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
import yaml
from geometry_msgs.msg import Twist
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from ros_support import ros_context, spin_until
from std_msgs.msg import Empty, String
from std_srvs.srv import Trigger
from test_msgs.action import Fibonacci

from alien_ros.params_file import NODE_KEY

COMMANDS = {
    "commands": ["stop", "move", "return_to_base", "dock", "fibonacci", "slow_fibonacci", "impatient_fibonacci"],
    "commands.stop.kind": "topic",
    "commands.stop.type": "std_msgs/msg/Empty",
    "commands.stop.target": "cmd/stop",
    "commands.move.kind": "topic",
    "commands.move.type": "geometry_msgs/msg/Twist",
    "commands.move.target": "cmd_vel",
    "commands.return_to_base.kind": "service",
    "commands.return_to_base.type": "std_srvs/srv/Trigger",
    "commands.return_to_base.target": "return_to_base",
    "commands.dock.kind": "service",
    "commands.dock.type": "std_srvs/srv/Trigger",
    "commands.dock.target": "dock",
    "commands.dock.timeout_s": 0.5,
    "commands.fibonacci.kind": "action",
    "commands.fibonacci.type": "test_msgs/action/Fibonacci",
    "commands.fibonacci.target": "fibonacci",
    "commands.slow_fibonacci.kind": "action",
    "commands.slow_fibonacci.type": "test_msgs/action/Fibonacci",
    "commands.slow_fibonacci.target": "fibonacci",
    "commands.slow_fibonacci.timeout_s": 0.5,
    "commands.impatient_fibonacci.kind": "action",
    "commands.impatient_fibonacci.type": "test_msgs/action/Fibonacci",
    "commands.impatient_fibonacci.target": "fibonacci",
    "commands.impatient_fibonacci.accept_timeout_s": 0.3,
}
# the client's own events, without "data" (docs/contract.md#lifecycle-events)
CLIENT_LIFECYCLE = ("bootsequence", "shutdown")
SLOW_TO_ACCEPT = 150  # the test server takes 1 s to accept a goal of this order


class FibonacciServer:
    """A real action server in its own context and executor thread (its callbacks may block)."""

    def __init__(self) -> None:
        self._context_manager = ros_context()
        context = self._context_manager.__enter__()
        self.node = Node("fibonacci_server", context=context)
        self.server = ActionServer(
            self.node, Fibonacci, "fibonacci", self._execute, goal_callback=self._goal, cancel_callback=self._cancel
        )
        self.executor = MultiThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.cancelled: list[int] = []
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _goal(self, goal: Any) -> GoalResponse:
        if goal.order == SLOW_TO_ACCEPT:
            time.sleep(1.0)  # the server's own slowness, not test synchronisation
        return GoalResponse.REJECT if goal.order < 0 else GoalResponse.ACCEPT

    def _cancel(self, goal_handle: Any) -> CancelResponse:
        return CancelResponse.ACCEPT

    def _execute(self, goal_handle: Any) -> Any:
        sequence = [0, 1]
        slow = goal_handle.request.order >= 100  # long goals: a step every 20 ms, cancellable
        for _ in range(goal_handle.request.order - 1):
            if goal_handle.is_cancel_requested:
                self.cancelled.append(goal_handle.request.order)
                goal_handle.canceled()
                return Fibonacci.Result(sequence=sequence)
            sequence.append(sequence[-1] + sequence[-2] if len(sequence) < 40 else 0)
            goal_handle.publish_feedback(Fibonacci.Feedback(sequence=sequence))
            if slow:
                time.sleep(0.02)  # the server's own pace, not test synchronisation
        goal_handle.succeed()
        return Fibonacci.Result(sequence=sequence)

    def close(self) -> None:
        self.executor.shutdown()
        self.server.destroy()
        self.node.destroy_node()
        self._context_manager.__exit__(None, None, None)
        self.thread.join(timeout=5)


@pytest.fixture
def fibonacci_server() -> Iterator[FibonacciServer]:
    server = FibonacciServer()
    yield server
    server.close()


@pytest.fixture
def bridge(ros: dict[str, Any], make_emulator: Any, start_bridge: Any) -> Iterator[dict[str, Any]]:
    emulator = make_emulator(dialect="v0.0.1")
    node = start_bridge(emulator, **COMMANDS)
    config = node.alien.client.config
    yield {
        "node": node,
        "emulator": emulator,
        "subject": f"constellation.commands.{config.org_id}.{config.entity_id}",
        **ros,
    }


def _send(nats_url: str, subject: str, command: dict[str, Any]) -> None:
    import asyncio

    async def send() -> None:
        nc = await nats.connect(nats_url)
        await nc.publish(subject, json.dumps(command).encode())
        await nc.flush()
        await nc.close()

    asyncio.run(send())


def _lifecycle(emulator: Any, command_id: str) -> list[dict[str, Any]]:
    """The command's events in stream order (the client's bootsequence/shutdown carry no command)."""
    ordered = sorted(emulator.events(), key=lambda m: m.stream_seq)
    events = [m.json() for m in ordered if m.json()["event_type"] not in CLIENT_LIFECYCLE]
    return [e for e in events if e["data"].get("command_id") == command_id]


def _ended(emulator: Any, command_id: str) -> Callable[[], bool]:
    final = {"command_completed", "command_failed", "command_rejected"}
    return lambda: any(e["event_type"] in final for e in _lifecycle(emulator, command_id))


def _run(
    bridge: dict[str, Any], nats_server: Any, command: dict[str, Any], timeout: float = 15
) -> list[dict[str, Any]]:
    _send(nats_server.url, bridge["subject"], command)
    spin_until(bridge["executor"], _ended(bridge["emulator"], command["command_id"]), timeout, command["command_id"])
    return _lifecycle(bridge["emulator"], command["command_id"])


def test_topic_commands_publish_typed_messages(bridge: dict[str, Any], nats_server: Any) -> None:
    received: list[Any] = []
    helper: Node = bridge["helper"]
    helper.create_subscription(Twist, "cmd_vel", received.append, 10)
    helper.create_subscription(Empty, "cmd/stop", received.append, 10)
    spin_until(bridge["executor"], lambda: helper.count_publishers("cmd_vel") > 0, 5, "cmd_vel publisher")

    events = _run(
        bridge,
        nats_server,
        {"type": "move", "command_id": "m-1", "params": {"linear": {"x": 0.5}, "angular": {"z": -0.2}}},
    )
    assert [e["event_type"] for e in events] == ["command_received", "command_completed"]
    assert events[-1]["data"]["result"] == {"published": "/cmd_vel"}
    spin_until(bridge["executor"], lambda: any(isinstance(m, Twist) for m in received), 5, "the Twist")
    twist = next(m for m in received if isinstance(m, Twist))
    assert (twist.linear.x, twist.angular.z) == (0.5, -0.2)

    _run(bridge, nats_server, {"type": "stop", "command_id": "s-1"})
    spin_until(bridge["executor"], lambda: any(isinstance(m, Empty) for m in received), 5, "the Empty")


def test_a_bad_field_is_rejected_naming_path_and_type(bridge: dict[str, Any], nats_server: Any) -> None:
    events = _run(bridge, nats_server, {"type": "move", "command_id": "m-bad", "params": {"linear": {"x": "fast"}}})
    assert [e["event_type"] for e in events] == ["command_rejected"]
    rejection = events[0]["data"]
    assert rejection["reason"] == "bad_params"
    assert "params.linear.x" in rejection["detail"] and "float64" in rejection["detail"]
    events = _run(bridge, nats_server, {"type": "move", "command_id": "m-bad2", "params": {"linear": {"w": 1}}})
    assert "params.linear.w" in events[0]["data"]["detail"]


def test_service_command_success_and_failure(bridge: dict[str, Any], nats_server: Any) -> None:
    helper: Node = bridge["helper"]
    answers = iter([(True, "heading home"), (False, "battery too low to fly home")])

    def serve(request: Any, response: Any) -> Any:
        response.success, response.message = next(answers)
        return response

    helper.create_service(Trigger, "return_to_base", serve)
    client = bridge["node"].router._routes["return_to_base"].client
    spin_until(bridge["executor"], client.service_is_ready, 10, "the service")

    events = _run(bridge, nats_server, {"type": "return_to_base", "command_id": "r-1"})
    assert [e["event_type"] for e in events] == ["command_received", "command_completed"]
    assert events[-1]["data"]["result"] == {"success": True, "message": "heading home"}

    events = _run(bridge, nats_server, {"type": "return_to_base", "command_id": "r-2"})
    assert events[-1]["event_type"] == "command_failed"
    assert "battery too low to fly home" in events[-1]["data"]["error"]


def test_service_not_available_and_timeout(bridge: dict[str, Any], nats_server: Any) -> None:
    events = _run(bridge, nats_server, {"type": "dock", "command_id": "d-1"})
    assert events[-1]["event_type"] == "command_failed" and "not available" in events[-1]["data"]["error"]

    # a service that is discovered but never answers: its node's executor never spins
    with ros_context() as silent_context:
        silent = Node("silent_dock", context=silent_context)
        silent.create_service(Trigger, "dock", lambda request, response: response)
        client = bridge["node"].router._routes["dock"].client
        spin_until(bridge["executor"], client.service_is_ready, 10, "the silent service")
        events = _run(bridge, nats_server, {"type": "dock", "command_id": "d-2"})
        silent.destroy_node()
    assert events[-1]["event_type"] == "command_failed"
    assert "did not answer within 0.5s" in events[-1]["data"]["error"]


def test_action_feedback_result_and_rejection(
    bridge: dict[str, Any], nats_server: Any, fibonacci_server: FibonacciServer
) -> None:
    action_client = bridge["node"].router._routes["fibonacci"].client
    spin_until(bridge["executor"], action_client.server_is_ready, 10, "the action server")

    events = _run(bridge, nats_server, {"type": "fibonacci", "command_id": "f-1", "params": {"order": 8}})
    kinds = [e["event_type"] for e in events]
    assert kinds[0] == "command_received" and kinds[-1] == "command_completed"
    assert "command_progress" in kinds
    assert events[-1]["data"]["result"] == {
        "status": "SUCCEEDED",
        "result": {"sequence": [0, 1, 1, 2, 3, 5, 8, 13, 21]},
    }
    progress = [e["data"]["progress"]["sequence"] for e in events if e["event_type"] == "command_progress"]
    assert progress[0][:3] == [0, 1, 1]

    events = _run(bridge, nats_server, {"type": "fibonacci", "command_id": "f-2", "params": {"order": -1}})
    assert events[-1]["event_type"] == "command_failed" and "rejected the goal" in events[-1]["data"]["error"]


def test_cancel_and_result_timeout(bridge: dict[str, Any], nats_server: Any, fibonacci_server: FibonacciServer) -> None:
    action_client = bridge["node"].router._routes["fibonacci"].client
    spin_until(bridge["executor"], action_client.server_is_ready, 10, "the action server")
    emulator = bridge["emulator"]

    _send(nats_server.url, bridge["subject"], {"type": "fibonacci", "command_id": "long-1", "params": {"order": 1000}})
    spin_until(
        bridge["executor"],
        lambda: any(e["event_type"] == "command_progress" for e in _lifecycle(emulator, "long-1")),
        10,
        "the long goal to run",
    )
    cancel = _run(bridge, nats_server, {"type": "cancel", "command_id": "c-1", "params": {"command_id": "long-1"}})
    assert cancel[-1]["event_type"] == "command_completed"
    assert cancel[-1]["data"]["result"] == {"cancelling": "long-1"}
    spin_until(bridge["executor"], _ended(emulator, "long-1"), 10, "the cancelled goal to end")
    ended = _lifecycle(emulator, "long-1")[-1]
    assert ended["event_type"] == "command_failed" and "CANCELED" in ended["data"]["error"]

    unknown = _run(bridge, nats_server, {"type": "cancel", "command_id": "c-2", "params": {"command_id": "nope"}})
    assert unknown[-1]["event_type"] == "command_failed" and "no running action goal" in unknown[-1]["data"]["error"]

    slow = _run(bridge, nats_server, {"type": "slow_fibonacci", "command_id": "s-1", "params": {"order": 1000}})
    assert slow[-1]["event_type"] == "command_failed"
    assert "no result within 0.5s" in slow[-1]["data"]["error"]


def test_unmapped_commands_go_to_the_commands_topic_when_allowed(
    ros: dict[str, Any], make_emulator: Any, start_bridge: Any, nats_server: Any
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    node = start_bridge(emulator, allow_unmapped_commands=True)
    received: list[String] = []
    ros["helper"].create_subscription(String, "/alien_bridge/commands", received.append, 10)
    spin_until(ros["executor"], lambda: ros["helper"].count_publishers("/alien_bridge/commands") > 0, 5, "publisher")
    config = node.alien.client.config
    bridge = {
        "executor": ros["executor"],
        "emulator": emulator,
        "subject": f"constellation.commands.{config.org_id}.{config.entity_id}",
    }
    events = _run(bridge, nats_server, {"type": "open_hatch", "command_id": "u-1", "hatch": 2})
    assert events[-1]["data"]["result"] == {"delivered": "/alien_bridge/commands"}
    spin_until(ros["executor"], lambda: bool(received), 5, "the JSON command")
    assert json.loads(received[0].data) == {"type": "open_hatch", "command_id": "u-1", "hatch": 2}


def test_unmapped_commands_are_rejected_by_default(bridge: dict[str, Any], nats_server: Any) -> None:
    events = _run(bridge, nats_server, {"type": "open_hatch", "command_id": "u-2"})
    assert events[-1]["event_type"] == "command_rejected" and events[-1]["data"]["reason"] == "unknown_type"


def test_jetstream_intake_delivers_to_the_router(
    ros: dict[str, Any], make_emulator: Any, start_bridge: Any, nats_server: Any
) -> None:
    emulator = make_emulator(dialect="v0.0.1", command_processor=False)
    node = start_bridge(emulator, command_intake="jetstream", **COMMANDS)
    assert node.alien.client.command_intake == "jetstream"
    received: list[Empty] = []
    ros["helper"].create_subscription(Empty, "cmd/stop", received.append, 10)
    config = node.alien.client.config
    bridge = {
        "executor": ros["executor"],
        "emulator": emulator,
        "subject": f"constellation.commands.{config.org_id}.{config.entity_id}",
    }
    spin_until(ros["executor"], lambda: ros["helper"].count_publishers("cmd/stop") > 0, 5, "publisher")
    events = _run(bridge, nats_server, {"type": "stop", "command_id": "js-1"})
    assert events[-1]["event_type"] == "command_completed"
    spin_until(ros["executor"], lambda: bool(received), 5, "the Empty")


def test_the_robot_commands_example_file_loads(ros: dict[str, Any], make_emulator: Any, start_bridge: Any) -> None:
    path = Path(__file__).resolve().parents[2] / "config" / "robot_commands.yaml"
    params = yaml.safe_load(path.read_text())[NODE_KEY]["ros__parameters"]
    node = start_bridge(make_emulator(dialect="v0.0.1"), **params)
    assert set(node.router._routes) == {"move", "stop", "patrol", "return_to_base"}
    assert node.router._routes["patrol"].publisher.topic_name == "/patrol/waypoints"


def test_a_goal_accepted_too_late_is_cancelled_not_left_running(
    bridge: dict[str, Any], nats_server: Any, fibonacci_server: FibonacciServer
) -> None:
    action_client = bridge["node"].router._routes["impatient_fibonacci"].client
    spin_until(bridge["executor"], action_client.server_is_ready, 10, "the action server")
    events = _run(
        bridge,
        nats_server,
        {"type": "impatient_fibonacci", "command_id": "late-1", "params": {"order": SLOW_TO_ACCEPT}},
    )
    assert events[-1]["event_type"] == "command_failed"
    assert "did not accept the goal within 0.3s" in events[-1]["data"]["error"]
    # the C2 was told it failed: the robot must not go on executing it
    spin_until(bridge["executor"], lambda: SLOW_TO_ACCEPT in fibonacci_server.cancelled, 10, "the late goal cancelled")
