"""The `alien_bridge` node: ROS topics in, mothership telemetry out, through `alien`.

Threads (docs/architecture.md#threads): the executor of the node (rclpy's SingleThreadedExecutor)
runs its timers, its status and the command router; its inputs are subscriptions of a node and
thread of their own (`alien_ros.inputs`: an EventsExecutor, NavSatFix, BatteryState and
DiagnosticArray taken as bytes and read by `alien_ros.cdr`); the alien client runs on its own
asyncio loop (`ThreadedClient`). An input callback converts its message with a pure function and
hands the reading over: it does no I/O and no JSON.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from sensor_msgs.msg import BatteryState, NavSatFix

from alien import AlienConfig
from alien.rate_limits import PositionDeadband
from alien.threaded import ClientSnapshot, ThreadedClient, failure_line
from alien_ros.bridge_metrics import BridgeMetrics
from alien_ros.cdr import Diagnostics, decode_battery, decode_diagnostics, decode_fix
from alien_ros.command_router import CommandRouter
from alien_ros.conversions import (
    DiagnosticLevelTracker,
    FixTracker,
    battery_state_to_power,
    diagnostic_array_to_health,
    message_to_dict,
)
from alien_ros.inputs import Input, Inputs
from alien_ros.message_types import resolve_message_type
from alien_ros.parameter_check import warn_about_unused_parameters
from alien_ros.parameters import BridgeSettings, declare_and_read, log_defaults, refuse_runtime_changes
from alien_ros.params_file import NODE_NAME

STATUS_NAME = "mothership link"


def is_bridge_status(status: DiagnosticStatus) -> bool:
    """A bridge's own report on /diagnostics: hardware_id is its full node name, name says so."""
    return status.name == f"{status.hardware_id}: {STATUS_NAME}"


class BridgeNode(Node):
    def __init__(self, *, argv: Sequence[str] = (), **node_kwargs: Any) -> None:
        """`argv`: the command line whose `--ros-args` rclpy was given, checked for unused parameters."""
        super().__init__(NODE_NAME, **node_kwargs)
        self.settings: BridgeSettings = declare_and_read(self)
        warn_about_unused_parameters(self, argv, node_kwargs.get("parameter_overrides") or ())
        refuse_runtime_changes(self)
        config = AlienConfig(**self.settings.config_overrides)
        log_defaults(
            self, self.settings, {k: str(v) if v is not None else None for k, v in config.model_dump().items()}
        )
        # device_id of the lifecycle events: ALIEN_DEVICE_ID / device_id, else the entity name,
        # else the entity id (AlienConfig's default). Not the node's name: every robot's bridge
        # is called /alien_bridge unless it runs in a namespace.
        self.alien = ThreadedClient(config)
        self.fix_tracker = FixTracker()
        self.level_tracker = DiagnosticLevelTracker()
        self.deadband = PositionDeadband(self.settings.position_deadband_m, self.settings.position_keepalive_s)
        self.received: dict[str, int] = {}
        if self.alien.client.metrics_endpoint is not None:  # ALIEN_METRICS_ADDR / metrics_addr
            self.alien.client.metrics_endpoint.add(BridgeMetrics(self))

        s = self.settings
        self.alien.add_channel("position", s.fix_rate_hz)
        self.alien.add_channel("power", s.battery_rate_hz)
        self.alien.add_channel("health", s.diagnostics_rate_hz)
        mapped = [(mapping, resolve_message_type(mapping.type_name)) for mapping in s.mappings]  # fails here, naming it
        self.router = CommandRouter(self, s.commands, self.alien, allow_unmapped=s.allow_unmapped_commands)
        self.status_publisher = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(s.status_period_s, self._publish_status)

        self._inputs = Inputs(self)
        try:
            self._inputs.add(s.fix_topic, NavSatFix, s.fix_qos, self._on_fix, decode_fix)
            self._inputs.add(s.battery_topic, BatteryState, s.battery_qos, self._on_battery, decode_battery)
            self._inputs.add(
                s.diagnostics_topic, DiagnosticArray, s.diagnostics_qos, self._on_diagnostics, decode_diagnostics
            )
            for mapping, msg_type in mapped:  # any type: deserialized by rclpy, converted generically
                channel = f"topic:{mapping.key}"
                self.alien.add_channel(channel, mapping.rate_hz)
                self._inputs.add(mapping.topic, msg_type, mapping.qos, self._mapped(channel, mapping.key))
        except BaseException:
            self._inputs.stop()
            raise
        self.alien.start()
        self._inputs.start()

    @property
    def inputs(self) -> list[Input]:
        return self._inputs.items

    # --- input callbacks (the input thread): convert, hand over, return ---
    def _on_fix(self, msg: NavSatFix) -> None:
        self._count("fix")
        position, transition = self.fix_tracker.update(msg)
        if transition is not None:
            self.alien.event(transition.pop("event"), transition)
        if position is not None and self.deadband.accept(
            position["latitude"], position["longitude"], position["altitude"], time.monotonic()
        ):
            self._submit("position", {"position": position})

    def _on_battery(self, msg: BatteryState) -> None:
        self._count("battery")
        self._submit("power", {"power": battery_state_to_power(msg)})

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        bridges = [s for s in msg.status if is_bridge_status(s)]
        if bridges and len(bridges) == len(msg.status):
            return  # a bridge's status report (ours, echoed back, or another robot's bridge)
        if bridges:
            msg = Diagnostics(msg.header, [s for s in msg.status if not is_bridge_status(s)])
        self._count("diagnostics")
        for change in self.level_tracker.update(msg):
            self.alien.event(change.pop("event"), change)
        self._submit("health", {"health": diagnostic_array_to_health(msg)})

    def _mapped(self, channel: str, key: str) -> Callable[[Any], None]:
        def on_message(msg: Any) -> None:
            self._count(channel)
            self._submit(channel, {key: message_to_dict(msg)})

        return on_message

    def _submit(self, channel: str, reading: dict[str, Any]) -> None:
        # The client's loop takes every reading waiting in one wake-up and one outbox transaction.
        self.alien.submit(channel, reading)

    def _count(self, name: str) -> None:
        self.received[name] = self.received.get(name, 0) + 1

    # --- timers ---
    def _publish_status(self) -> None:
        snap = self.alien.snapshot()
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        name, device_id = self.get_fully_qualified_name(), self.alien.device_id
        received = dict(self.received)  # a copy in one step: the input thread may add a key meanwhile
        array.status.append(_status(name, snap, received, self.fix_tracker.dropped, device_id))
        self.status_publisher.publish(array)

    def shutdown(self) -> None:
        """Stop taking input, then flush (bounded), `shutdown` event, status inactive, close."""
        self._inputs.stop()
        self.alien.shutdown(self.settings.shutdown_timeout_s)
        self.router.destroy()

    def destroy_node(self) -> None:
        # also when shutdown() was not called, and when __init__ failed before the inputs existed
        # (rclpy 9 destroys a node whose construction raised)
        inputs: Inputs | None = getattr(self, "_inputs", None)
        if inputs is not None:
            inputs.stop()
        super().destroy_node()


def _status(
    fully_qualified_name: str, snap: ClientSnapshot, received: dict[str, int], fixes_dropped: int, device_id: str
) -> DiagnosticStatus:
    if snap.state == "connected":
        level, message = DiagnosticStatus.OK, "connected to the mothership"
    elif snap.state == "failed":
        # the very line the log has: what to fix is the same wherever the integrator looks
        level, message = DiagnosticStatus.ERROR, failure_line(snap.error or "unknown error")
    else:
        level, message = DiagnosticStatus.WARN, f"{snap.state}" + (f" (retrying): {snap.error}" if snap.error else "")
    values = {
        "state": snap.state,
        "device_id": device_id,
        "org_id": snap.org_id or "",
        "entity_id": snap.entity_id or "",
        "dialect": snap.dialect or "",
        "command_intake": snap.command_intake or "",
        "queue_depth": snap.depth,
        "enqueued": snap.enqueued,
        "published": snap.published,
        "duplicates": snap.duplicates,
        "dropped": snap.dropped,
        "rejected": snap.rejected,
        "parked": snap.parked,
        "oldest_queued_age_s": "" if snap.oldest_age_s is None else f"{snap.oldest_age_s:.1f}",
        "reconnects": snap.reconnects,
        "fixes_not_sent": fixes_dropped,
        "last_publish_latency_ms": ""
        if snap.last_publish_latency_s is None
        else f"{snap.last_publish_latency_s * 1000:.2f}",
        **{f"received.{k}": v for k, v in received.items()},
    }
    return DiagnosticStatus(
        level=level,
        name=f"{fully_qualified_name}: {STATUS_NAME}",
        message=message,
        hardware_id=fully_qualified_name,
        values=[KeyValue(key=k, value=str(v)) for k, v in values.items()],
    )
