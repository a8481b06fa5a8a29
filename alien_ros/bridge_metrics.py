"""The bridge's own metrics, beside its client's on the same endpoint (docs/metrics.md#the-bridge).

ROS messages received per input, and what the rate policy kept from the client: readings replaced
by a newer one within their channel's period (`coalesced`), positions inside the deadband
(`deadband`), fixes without a usable position (`no_fix`). Read at scrape time on the client's
loop; `received` is written by the executor thread, and copying a dict of ints is atomic in
CPython, so a scrape sees each count whole.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alien.metrics.families import MetricFamilies

if TYPE_CHECKING:
    from alien_ros.bridge_node import BridgeNode

ENTITY = ("entity",)


class BridgeMetrics:
    def __init__(self, node: BridgeNode) -> None:
        self.node = node

    def collect(self, families: MetricFamilies) -> None:
        node = self.node
        metrics = node.alien.client.metrics
        entity = metrics.entity if metrics is not None else ""
        received = families.counter(
            "alien_ros_messages_received", "ROS messages the bridge received, by input.", (*ENTITY, "input")
        )
        for name, count in sorted(dict(node.received).items()):
            received.add_metric([entity, name], count)
        channels = node.alien.channels.stats()
        sent = families.counter(
            "alien_ros_readings_sent",
            "Readings the rate policy passed to the client, by channel.",
            (*ENTITY, "channel"),
        )
        dropped = families.counter(
            "alien_ros_readings_dropped",
            "Readings the rate policy kept back, by channel and reason (coalesced, deadband, no_fix).",
            (*ENTITY, "channel", "reason"),
        )
        for channel, counts in sorted(channels.items()):
            sent.add_metric([entity, channel], counts["sent"])
            dropped.add_metric([entity, channel, "coalesced"], counts["coalesced"])
        dropped.add_metric([entity, "position", "deadband"], node.deadband.suppressed)
        dropped.add_metric([entity, "position", "no_fix"], node.fix_tracker.dropped)
