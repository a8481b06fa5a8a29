"""A simulated robot for the demo: `python -m alien_demo.sim_robot [--ros-args -p name:=value ...]`.

It publishes what a real robot's drivers would: `fix` (sensor_msgs/NavSatFix) flying loops
around its base (it takes off once something subscribes to `fix`), `battery_state`
(sensor_msgs/BatteryState) draining, and `/diagnostics` (diagnostic_msgs/DiagnosticArray) OK
until the battery falls below `battery_warn_below`, then WARN. It serves `return_to_base` as a
`test_msgs/action/Fibonacci` action: the only action type installable from PyPI here. On a real
robot one maps return_to_base to e.g. nav2_msgs/action/NavigateToPose. The goal's `order` is the
number of legs home; each leg is one feedback (the Fibonacci sequence so far) and the robot lands
at its base with the result.

The path, battery and diagnostics maths are pure functions below; the node only wires them to
timers and publishers.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import BatteryState, NavSatFix, NavSatStatus
from test_msgs.action import Fibonacci

EARTH_RADIUS_M = 6_371_000.0
HARDWARE_ID = "sim_robot"
BATTERY_STATUS_NAME = "sim_robot: battery"


@dataclass(frozen=True)
class LatLon:
    lat: float
    lon: float


# ---------------------------------------------------------------- pure maths


def offset(base: LatLon, north_m: float, east_m: float) -> LatLon:
    """The point `north_m` / `east_m` metres from `base` (flat-earth: fine over a few km)."""
    lat = base.lat + math.degrees(north_m / EARTH_RADIUS_M)
    lon = base.lon + math.degrees(east_m / (EARTH_RADIUS_M * math.cos(math.radians(base.lat))))
    return LatLon(lat, lon)


def loop_position(base: LatLon, radius_m: float, lap_s: float, t: float) -> LatLon:
    """Position `t` seconds into flying circles of `radius_m` around `base`, one lap per `lap_s`.

    The circle passes through the base (it starts there, heading north-east), so the robot
    takes off from home.
    """
    angle = 2 * math.pi * t / lap_s
    # centre `radius_m` east of base; angle 0 is at the base itself
    return offset(base, radius_m * math.sin(angle), radius_m * (1 - math.cos(angle)))


def between(start: LatLon, end: LatLon, fraction: float) -> LatLon:
    """Linear interpolation from `start` (0) to `end` (1); fraction is clamped to 0..1."""
    f = min(1.0, max(0.0, fraction))
    return LatLon(start.lat + (end.lat - start.lat) * f, start.lon + (end.lon - start.lon) * f)


def distance_m(a: LatLon, b: LatLon) -> float:
    """Flat-earth distance in metres (equirectangular; the demo's distances are short)."""
    north = math.radians(b.lat - a.lat) * EARTH_RADIUS_M
    east = math.radians(b.lon - a.lon) * EARTH_RADIUS_M * math.cos(math.radians((a.lat + b.lat) / 2))
    return math.hypot(north, east)


def battery_fraction(start: float, drain_per_s: float, t: float, floor: float = 0.05) -> float:
    """State of charge (0..1) after `t` seconds of a linear drain; never below `floor`."""
    return max(floor, min(1.0, start - drain_per_s * t))


def battery_diagnostic(fraction: float, warn_below: float) -> tuple[bytes, str]:
    """(DiagnosticStatus level, message) for the battery: OK, then WARN under `warn_below`."""
    percent = round(fraction * 100)
    if fraction < warn_below:
        return DiagnosticStatus.WARN, f"battery low: {percent}%, return to base soon"
    return DiagnosticStatus.OK, f"battery {percent}%"


def fibonacci(n: int) -> list[int]:
    """The first `n` Fibonacci numbers (0, 1, 1, 2, ...): the Fibonacci action's feedback."""
    sequence = [0, 1][: max(0, n)]
    while len(sequence) < n:
        sequence.append(sequence[-1] + sequence[-2])
    return sequence


# ---------------------------------------------------------------- the node

PARAMETERS = {
    "base_lat": 47.3977,  # a field outside Zürich
    "base_lon": 8.5456,
    "altitude_m": 30.0,
    "radius_m": 120.0,
    "lap_s": 30.0,
    "rate_hz": 5.0,
    "battery_start": 0.95,
    "battery_drain_per_s": 0.01,  # while airborne
    "battery_warn_below": 0.5,
    "leg_s": 1.0,  # time per return_to_base leg (one feedback each)
}


class SimRobot(Node):
    def __init__(self) -> None:
        super().__init__("sim_robot")
        p = {name: float(self.declare_parameter(name, default).value) for name, default in PARAMETERS.items()}
        self.p = p
        self.base = LatLon(p["base_lat"], p["base_lon"])
        self.took_off: float | None = None  # it waits on the pad until someone listens to `fix`
        self.lock = threading.Lock()  # position state: timer thread vs action thread
        self.mode = "flying"  # flying | returning | home
        self.return_from = self.base
        self.return_progress = 0.0
        self.landed_at: float | None = None  # seconds since start when it landed at base
        self.stopping = threading.Event()
        self.fix_pub = self.create_publisher(NavSatFix, "fix", 10)
        self.battery_pub = self.create_publisher(BatteryState, "battery_state", 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(1.0 / p["rate_hz"], self._publish)
        self.create_timer(1.0, self._publish_diagnostics)
        self.action: Any = ActionServer(
            self,
            Fibonacci,
            "return_to_base",
            execute_callback=self._return_to_base,
            goal_callback=lambda goal: GoalResponse.ACCEPT if goal.order >= 1 else GoalResponse.REJECT,
            cancel_callback=lambda handle: CancelResponse.ACCEPT,
            callback_group=ReentrantCallbackGroup(),
        )

    def elapsed(self) -> float:
        """Seconds since take-off (0 on the pad)."""
        return 0.0 if self.took_off is None else time.monotonic() - self.took_off

    def position(self) -> LatLon:
        with self.lock:
            return self._position_locked()

    def _position_locked(self) -> LatLon:
        if self.mode == "flying":
            return loop_position(self.base, self.p["radius_m"], self.p["lap_s"], self.elapsed())
        return between(self.return_from, self.base, self.return_progress)

    def battery(self) -> float:
        """Drains while airborne; landed at base, the motors are off."""
        with self.lock:
            airborne_s = self.elapsed() if self.landed_at is None else self.landed_at
        return battery_fraction(self.p["battery_start"], self.p["battery_drain_per_s"], airborne_s)

    def _publish(self) -> None:
        if self.took_off is None and self.fix_pub.get_subscription_count() > 0:
            self.took_off = time.monotonic()  # the story starts when the bridge listens, however slow its start
            self.get_logger().info("taking off: a subscriber listens to fix")
        stamp = self.get_clock().now().to_msg()
        where = self.position()
        fix = NavSatFix(latitude=where.lat, longitude=where.lon, altitude=self.p["altitude_m"])
        fix.header.stamp, fix.header.frame_id = stamp, "gps"
        fix.status.status = NavSatStatus.STATUS_FIX
        fix.status.service = NavSatStatus.SERVICE_GPS
        self.fix_pub.publish(fix)
        charge = self.battery()
        battery = BatteryState(voltage=22.2 + 3.0 * charge, percentage=charge, present=True)
        battery.header.stamp = stamp
        battery.power_supply_status = BatteryState.POWER_SUPPLY_STATUS_DISCHARGING
        self.battery_pub.publish(battery)

    def _publish_diagnostics(self) -> None:
        charge = self.battery()
        level, message = battery_diagnostic(charge, self.p["battery_warn_below"])
        status = DiagnosticStatus(
            level=level,
            name=BATTERY_STATUS_NAME,
            message=message,
            hardware_id=HARDWARE_ID,
            values=[KeyValue(key="percentage", value=f"{charge * 100:.1f}"), KeyValue(key="mode", value=self.mode)],
        )
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(array)

    def _return_to_base(self, goal_handle: object) -> Fibonacci.Result:
        """One leg per goal.order, each a feedback; paced by `leg_s` (the flight takes time)."""
        order = int(goal_handle.request.order)  # type: ignore[attr-defined]
        with self.lock:
            self.return_from = self._position_locked()
            self.return_progress, self.mode = 0.0, "returning"
        self.get_logger().info(f"return_to_base: {order} legs, {distance_m(self.return_from, self.base):.0f} m home")
        for leg in range(1, order + 1):
            if self.stopping.wait(self.p["leg_s"]):
                goal_handle.abort()  # type: ignore[attr-defined]
                return Fibonacci.Result(sequence=fibonacci(leg))
            if goal_handle.is_cancel_requested:  # type: ignore[attr-defined]
                goal_handle.canceled()  # type: ignore[attr-defined]
                return Fibonacci.Result(sequence=fibonacci(leg))
            with self.lock:
                self.return_progress = leg / order
            goal_handle.publish_feedback(Fibonacci.Feedback(sequence=fibonacci(leg + 1)))  # type: ignore[attr-defined]
        with self.lock:
            self.mode, self.landed_at = "home", self.elapsed()
        self.get_logger().info("return_to_base: landed at base")
        goal_handle.succeed()  # type: ignore[attr-defined]
        return Fibonacci.Result(sequence=fibonacci(order + 1))


def main(argv: list[str] | None = None) -> int:
    rclpy.init(args=argv if argv is not None else sys.argv)
    node = SimRobot()
    executor = MultiThreadedExecutor(num_threads=2)  # the action's legs must not stop the timers
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.stopping.set()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
