"""The bridge's own status, as any ROS tool sees it: its DiagnosticStatus on /diagnostics.

The bridge reports its link state and outbox counters there (alien_ros/bridge_node.py); the
demo subscribes in a ROS context of its own, spun on a thread, and keeps the latest report and
the peak queue depth. `wait_for` blocks on a condition notified by each report.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from alien_ros.bridge_node import is_bridge_status


@dataclass(frozen=True)
class BridgeStatus:
    values: dict[str, str]

    def number(self, key: str) -> int:
        try:
            return int(self.values.get(key, "0"))
        except ValueError:
            return 0

    @property
    def state(self) -> str:
        return self.values.get("state", "?")

    @property
    def depth(self) -> int:
        return self.number("queue_depth")

    @property
    def enqueued(self) -> int:
        return self.number("enqueued")

    @property
    def published(self) -> int:
        return self.number("published")

    @property
    def dropped(self) -> int:
        return self.number("dropped")


class BridgeWatch:
    def __init__(self) -> None:
        self.latest: BridgeStatus | None = None
        self.reports = 0
        self.peak_depth = 0
        self._condition = threading.Condition()
        self._context = Context()
        rclpy.init(context=self._context)
        self._node = Node("alien_demo_monitor", context=self._context)
        self._node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self._node)
        self._thread = threading.Thread(target=self._spin, name="demo-ros", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self._executor.spin()
        except ExternalShutdownException:
            pass

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if is_bridge_status(status):
                report = BridgeStatus({kv.key: kv.value for kv in status.values})
                with self._condition:
                    self.latest = report
                    self.reports += 1
                    self.peak_depth = max(self.peak_depth, report.depth)
                    self._condition.notify_all()

    def reset_peak(self) -> None:
        with self._condition:
            self.peak_depth = 0

    def wait_for(
        self,
        predicate: Callable[[BridgeStatus], bool],
        timeout: float,
        what: str,
        gone: Callable[[], str | None] = lambda: None,
    ) -> BridgeStatus:
        """The first report (the latest, or one still to come) that satisfies `predicate`.

        `gone` says why no report can come any more (a process exited); it is checked each
        second while no report arrives, so a crashed bridge fails the wait at once.
        """
        deadline = time.monotonic() + timeout
        with self._condition:
            while self.latest is None or not predicate(self.latest):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"not within {timeout:g}s: {what}")
                if not self._condition.wait(min(left, 1.0)) and (reason := gone()):
                    raise RuntimeError(f"{reason} while waiting for {what}")
            return self.latest

    def next_report(self, timeout: float) -> BridgeStatus:
        """The next report after now."""
        with self._condition:
            seen = self.reports
        return self.wait_for(lambda _: self.reports > seen, timeout, "a status report from the bridge")

    def close(self) -> None:
        self._executor.shutdown(timeout_sec=2)
        self._node.destroy_node()
        rclpy.try_shutdown(context=self._context)
        self._thread.join(5)
