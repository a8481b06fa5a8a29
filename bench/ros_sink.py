"""A bare rclpy subscriber (no bridge): the receive ceiling the bridge is measured against.

    python bench/ros_sink.py --executor single|events [--type fix|battery|diagnostics] [--raw] [--idle 1.5] [--max 60]

Counts messages of one input type of the bridge (bench/ros_messages.py) until none arrived for
`--idle` seconds after the first (or `--max` seconds passed) and prints {"count", "rate", "cpu_s"} (rate
over the first to the last receipt).
`single`: SingleThreadedExecutor with spin(); `events`: rclpy.experimental.EventsExecutor with a
spin_once loop (its spin() holds the GIL and dispatches nothing with these wheels). `--raw`: the
subscription takes the serialized bytes (`raw=True`) instead of a deserialized message.
"""

from __future__ import annotations

import argparse
import json
import time

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.task import Future
from ros_messages import KINDS, sample


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--executor", choices=("single", "events"), default="single")
    parser.add_argument("--type", choices=KINDS, default="fix")
    parser.add_argument("--raw", action="store_true")
    parser.add_argument("--idle", type=float, default=1.5)
    parser.add_argument("--max", type=float, default=60.0)
    args = parser.parse_args()
    rclpy.init()
    if args.executor == "events":
        from rclpy.experimental import EventsExecutor

        executor = EventsExecutor()
    else:
        executor = SingleThreadedExecutor()
    node = Node("bench_sink")
    executor.add_node(node)  # before the entities: EventsExecutor only sees those created after
    seen = {"count": 0, "first": 0.0, "last": 0.0}
    done = Future()
    began = time.monotonic()

    def on_message(_msg: object) -> None:
        now = time.monotonic()
        if not seen["count"]:
            seen["first"] = now
        seen["count"] += 1
        seen["last"] = now

    def check() -> None:
        now = time.monotonic()
        if (seen["count"] and now - seen["last"] > args.idle) or now - began > args.max:
            done.set_result(True)

    msg_type, topic, _, _ = sample(args.type)
    node.create_subscription(msg_type, topic, on_message, 10, raw=args.raw)
    node.create_timer(0.1, check)
    print(json.dumps({"ready": True}), flush=True)
    cpu = time.process_time()
    if args.executor == "events":
        while not done.done():
            executor.spin_once(timeout_sec=0.1)
    else:
        executor.spin_until_future_complete(done)
    count, span = int(seen["count"]), seen["last"] - seen["first"]
    rate = (count - 1) / span if count > 1 and span > 0 else 0.0
    print(json.dumps({"count": count, "rate": rate, "cpu_s": time.process_time() - cpu}), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()


if __name__ == "__main__":
    main()
