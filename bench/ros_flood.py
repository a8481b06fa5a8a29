"""Publishes NavSatFix (and optionally battery / diagnostics) from a process of its own.

    python bench/ros_flood.py --count N --rate R [--watch-bridge] [--stamps]

Waits until a subscriber matched, then publishes `count` fixes at `rate` per second (0: as fast
as it can), altitude = sequence number (the bridge sends it as the position message's alt in mm, so a
consumer can tell which message it got). `--stamps` prints each send time (time.time()).
`--nominal S`: 10 Hz fix, 1 Hz battery, 1 Hz diagnostics for S seconds instead.
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
from sensor_msgs.msg import BatteryState, NavSatFix, NavSatStatus

from alien_ros.bridge_node import is_bridge_status


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--topic", default="fix")
    parser.add_argument("--stamps", action="store_true")
    parser.add_argument("--nominal", type=float, default=0.0)
    parser.add_argument("--watch-bridge", action="store_true")
    parser.add_argument("--match-timeout", type=float, default=20.0)
    args = parser.parse_args()
    rclpy.init()
    node = Node("bench_flood")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    fix_pub = node.create_publisher(NavSatFix, args.topic, 10)
    status: dict[str, str] = {}

    def on_status(msg: DiagnosticArray) -> None:
        for entry in msg.status:
            if is_bridge_status(entry):
                status.clear()
                status.update({kv.key: kv.value for kv in entry.values})

    if args.watch_bridge:
        node.create_subscription(DiagnosticArray, "/diagnostics", on_status, 10)
    deadline = time.monotonic() + args.match_timeout
    while fix_pub.get_subscription_count() == 0:
        if time.monotonic() > deadline:
            raise SystemExit("no subscriber matched the fix topic")
        executor.spin_once(timeout_sec=0.05)
    end = time.monotonic() + 0.5  # the reader's side of discovery settles too
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.05)

    fix = NavSatFix(latitude=47.3769, longitude=8.5417, altitude=0.0)
    fix.status.status = NavSatStatus.STATUS_FIX
    fix.header.frame_id = "gps"
    stamps: list[float] = []
    began = time.monotonic()
    if args.nominal > 0:
        published = nominal(node, executor, fix_pub, fix, args.nominal)
    else:
        for i in range(args.count):
            fix.altitude = float(i)
            if args.stamps:
                stamps.append(time.time())
            fix_pub.publish(fix)
            if args.rate > 0:
                pause = began + (i + 1) / args.rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)  # paces the offered rate
        published = args.count
    elapsed = time.monotonic() - began
    result: dict[str, object] = {"published": published, "elapsed_s": elapsed, "offered_rate": published / elapsed}
    if args.stamps:
        result["stamps"] = stamps
    if args.watch_bridge:
        result["bridge"] = settle(executor, status)
    print(json.dumps(result), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()


def nominal(node: Node, executor: SingleThreadedExecutor, fix_pub: object, fix: NavSatFix, seconds: float) -> int:
    battery_pub = node.create_publisher(BatteryState, "battery_state", 10)
    diag_pub = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
    battery = BatteryState(voltage=24.1, current=-1.5, percentage=0.73, present=True)
    diag = DiagnosticArray(status=[DiagnosticStatus(level=DiagnosticStatus.OK, name="motors", hardware_id="base")])
    count = [0]

    def tick() -> None:
        count[0] += 1
        fix.altitude = float(count[0])
        fix_pub.publish(fix)  # type: ignore[attr-defined]
        if count[0] % 10 == 0:
            battery_pub.publish(battery)
            diag_pub.publish(diag)

    node.create_timer(0.1, tick)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.05)
    return count[0]


def settle(executor: SingleThreadedExecutor, status: dict[str, str], timeout: float = 60.0) -> dict[str, str]:
    """The bridge's counters once everything it received is published (or `timeout`)."""
    deadline, last, since = time.monotonic() + timeout, None, time.monotonic()
    while time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
        now = tuple(status.get(k) for k in ("received.fix", "published", "enqueued", "queue_depth"))
        if now != last:
            last, since = now, time.monotonic()
        elif status and now[1] == now[2] and now[3] == "0" and time.monotonic() - since > 0.7:
            break  # unchanged over several status periods (0.2 s each) with nothing left to send
    return dict(status)


if __name__ == "__main__":
    main()
