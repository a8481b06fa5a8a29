"""The robot's side of the command benchmark: a cmd_vel subscriber and a Fibonacci action server.

    python bench/ros_commands.py --count N [--timeout 60]

Prints {"ready": true} once the bridge's cmd_vel publisher is matched, then records when each
command arrived (time.time()): Twist linear.x = i, and goal order = i at the action server's goal
callback (the goal accepted). Prints {"topic": {i: t}, "action": {i: t}} when all arrived.
"""

from __future__ import annotations

import argparse
import json
import time

import rclpy
from geometry_msgs.msg import Twist
from rclpy.action import ActionServer, GoalResponse
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from test_msgs.action import Fibonacci


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    rclpy.init()
    node = Node("bench_robot")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    topic: dict[int, float] = {}
    action: dict[int, float] = {}

    def on_twist(msg: Twist) -> None:
        topic[round(msg.linear.x)] = time.time()

    def on_goal(goal: Fibonacci.Goal) -> GoalResponse:
        action[goal.order] = time.time()
        return GoalResponse.ACCEPT

    def execute(handle: object) -> Fibonacci.Result:
        handle.succeed()  # type: ignore[attr-defined]
        return Fibonacci.Result()

    node.create_subscription(Twist, "cmd_vel", on_twist, 100)
    ActionServer(node, Fibonacci, "fib", execute, goal_callback=on_goal)
    deadline = time.monotonic() + args.timeout
    while node.count_publishers("cmd_vel") == 0 and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.05)
    print(json.dumps({"ready": True}), flush=True)
    while (len(topic) < args.count or len(action) < args.count) and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    print(json.dumps({"topic": topic, "action": action}), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()


if __name__ == "__main__":
    main()
