"""Publishes NavSatFix, BatteryState or DiagnosticArray from a process of its own.

    python bench/ros_flood.py --count N --rate R [--type fix|battery|diagnostics] [--watch-bridge] [--stamps]

Waits until a subscriber matched, then publishes `count` messages of `--type` (bench/ros_messages.py)
at `rate` per second (0: as fast as it can), each marked with its sequence number (a fix's altitude:
the bridge sends it as the position message's alt in mm, so a consumer can tell which message it
got). `--stamps` prints each send time (time.time()).
`--nominal S`: 10 Hz fix, 1 Hz battery, 1 Hz diagnostics for S seconds instead.
`--phases`: a JSON line just before the first message and one just after the last.
`--watch-bridge`: afterwards, wait until the bridge's /diagnostics status shows everything it
received published, and report its counters. Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import json
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from ros_messages import KINDS, sample
from sensor_msgs.msg import BatteryState

from alien_ros.bridge_node import is_bridge_status


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--type", choices=KINDS, default="fix")
    parser.add_argument("--stamps", action="store_true")
    parser.add_argument("--nominal", type=float, default=0.0)
    parser.add_argument("--watch-bridge", action="store_true")
    parser.add_argument("--phases", action="store_true")
    parser.add_argument("--match-timeout", type=float, default=20.0)
    args = parser.parse_args()
    rclpy.init()
    node = Node("bench_flood")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    msg_type, topic, message, mark = sample(args.type)
    publisher = node.create_publisher(msg_type, topic, 10)
    status: dict[str, str] = {}

    def on_status(msg: DiagnosticArray) -> None:
        for entry in msg.status:
            if is_bridge_status(entry):
                status.clear()
                status.update({kv.key: kv.value for kv in entry.values})

    if args.watch_bridge:
        node.create_subscription(DiagnosticArray, "/diagnostics", on_status, 10)
    deadline = time.monotonic() + args.match_timeout
    own = 1 if args.watch_bridge and topic == "/diagnostics" else 0  # the watch above is a subscriber too
    while publisher.get_subscription_count() <= own:
        if time.monotonic() > deadline:
            raise SystemExit(f"no subscriber matched {topic}")
        executor.spin_once(timeout_sec=0.05)
    end = time.monotonic() + 0.5  # the reader's side of discovery settles too
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.05)

    stamps: list[float] = []
    if args.phases:
        print(json.dumps({"phase": "publishing"}), flush=True)
    began = time.monotonic()
    if args.nominal > 0:
        published = nominal(node, executor, args.nominal)
    else:
        for i in range(args.count):
            mark(message, i)
            if args.stamps:
                stamps.append(time.time())
            publisher.publish(message)
            if args.rate > 0:
                pause = began + (i + 1) / args.rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)  # paces the offered rate
        published = args.count
    elapsed = time.monotonic() - began
    if args.phases:
        print(json.dumps({"phase": "published"}), flush=True)
    result: dict[str, object] = {"published": published, "elapsed_s": elapsed, "offered_rate": published / elapsed}
    if args.stamps:
        result["stamps"] = stamps
    if args.watch_bridge:
        result["bridge"] = settle(executor, status, f"received.{args.type}")
    print(json.dumps(result), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()


def nominal(node: Node, executor: SingleThreadedExecutor, seconds: float) -> int:
    fix_type, fix_topic, fix, _ = sample("fix")
    fix_pub = node.create_publisher(fix_type, fix_topic, 10)
    battery_pub = node.create_publisher(BatteryState, "battery_state", 10)
    diag_pub = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
    battery = BatteryState(voltage=24.1, current=-1.5, percentage=0.73, present=True)
    diag = DiagnosticArray(status=[DiagnosticStatus(level=DiagnosticStatus.OK, name="motors", hardware_id="base")])
    count = [0]

    def tick() -> None:
        count[0] += 1
        fix.altitude = float(count[0])
        fix_pub.publish(fix)
        if count[0] % 10 == 0:
            battery_pub.publish(battery)
            diag_pub.publish(diag)

    node.create_timer(0.1, tick)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.05)
    return count[0]


def settle(
    executor: SingleThreadedExecutor, status: dict[str, str], received: str, timeout: float = 60.0
) -> dict[str, str]:
    """The bridge's counters once everything it received (status key `received`) is published (or `timeout`)."""
    deadline, last, since = time.monotonic() + timeout, None, time.monotonic()
    while time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
        now = tuple(status.get(k) for k in (received, "published", "enqueued", "queue_depth"))
        if now != last:
            last, since = now, time.monotonic()
        elif status and now[1] == now[2] and now[3] == "0" and time.monotonic() - since > 0.7:
            break  # unchanged over several status periods (0.2 s each) with nothing left to send
    return dict(status)


if __name__ == "__main__":
    main()
