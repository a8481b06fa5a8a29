"""One entity's metrics: the counters the library keeps anyway, read at scrape time, and its latencies.

Nothing on the message path does more for metrics than it did before, except one observation per
PubAck, per finished command and per REST attempt (`Latency.observe`, docs/metrics.md#cost). The
endpoint reads everything here on the client's event loop, the thread that changes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alien.metrics.families import MetricFamilies
from alien.metrics.latency import Latency

if TYPE_CHECKING:
    from alien.commands.dispatcher import CommandDispatcher
    from alien.config import AlienConfig
    from alien.delivery.outbox import Outbox
    from alien.link import NatsLink
    from alien.telemetry.wire_format import WireFormat

ENTITY = ("entity",)
# The dispatcher's counts (AlienClient.command_counts) that are outcomes of a command; `received` is their total.
COMMAND_OUTCOMES = ("accepted", "rejected", "rate_limited", "completed", "failed")


class EntityMetrics:
    """Reads one client's parts; observes latencies through hooks it sets on the outbox and the dispatcher."""

    def __init__(
        self,
        config: AlienConfig,
        outbox: Outbox,
        link: NatsLink,
        dispatcher: CommandDispatcher,
        wire_format: WireFormat,
    ) -> None:
        self.config = config
        self.outbox = outbox
        self.link = link
        self.dispatcher = dispatcher
        self.wire_format = wire_format
        self.publish_latency = Latency()
        self.command_latency: dict[str, Latency] = {}
        self.rest_latency: dict[str, Latency] = {}
        outbox.ack_latency = self.publish_latency
        dispatcher.on_finished = self.command_finished

    @classmethod
    def of_client(
        cls,
        config: AlienConfig,
        outbox: Outbox,
        link: NatsLink,
        dispatcher: CommandDispatcher,
        wire_format: WireFormat,
    ) -> EntityMetrics | None:
        """The metrics of a client with these parts; None when ALIEN_METRICS_ADDR is not set (nothing observed)."""
        return cls(config, outbox, link, dispatcher, wire_format) if config.metrics_addr else None

    @property
    def entity(self) -> str:
        """The `entity` label: the entity's name as registered (ENTITY_NAME, else alien-<ENTITY_TYPE>)."""
        return self.config.entity_name or f"alien-{self.config.entity_type}"

    def command_finished(self, outcome: str, seconds: float) -> None:
        """A command ended (`completed` or `failed`) `seconds` after it was received."""
        latency = self.command_latency.get(outcome)
        if latency is None:
            latency = self.command_latency[outcome] = Latency()
        latency.observe(seconds)

    def rest_request(self, method: str, seconds: float) -> None:
        """One REST attempt took `seconds`, answered or not."""
        latency = self.rest_latency.get(method)
        if latency is None:
            latency = self.rest_latency[method] = Latency()
        latency.observe(seconds)

    def collect(self, families: MetricFamilies) -> None:
        entity = self.entity
        self._messages(families, entity)
        self._commands(families, entity)
        self._link(families, entity)

    def _messages(self, families: MetricFamilies, entity: str) -> None:
        stats = self.outbox.stats()
        for name, total, text in (
            ("alien_messages_enqueued", stats.enqueued, "Messages queued in the outbox."),
            ("alien_messages_published", stats.published, "Messages JetStream acknowledged (PubAck)."),
            ("alien_messages_duplicates", stats.duplicates, "PubAcks saying duplicate: a replay the server dropped."),
            ("alien_messages_rejected", stats.rejected, "Messages the server refused for good (parked) in this run."),
            ("alien_messages_parked", stats.parked, "Messages kept on disk as refused for good, earlier runs too."),
        ):
            families.counter(name, text, ENTITY).add_metric([entity], total)
        dropped = families.counter(
            "alien_messages_dropped", "Messages dropped unsent, by reason (docs/delivery.md).", (*ENTITY, "reason")
        )
        for reason, count in sorted(stats.dropped.items()):
            dropped.add_metric([entity, reason], count)
        gauges: tuple[tuple[str, float, str], ...] = (
            ("alien_outbox_messages", stats.depth, "Messages waiting in the outbox (not in flight)."),
            ("alien_outbox_bytes", stats.depth_bytes, "Payload bytes waiting in the outbox."),
            ("alien_outbox_in_flight_messages", stats.in_flight, "Messages sent and awaiting their PubAck."),
            (
                "alien_outbox_oldest_age_seconds",
                stats.oldest_age_s or 0.0,
                "Age of the oldest message waiting or in flight (0: none).",
            ),
        )
        for name, value, text in gauges:
            families.gauge(name, text, ENTITY).add_metric([entity], value)
        families.histogram(
            "alien_publish_latency_seconds",
            "From entering the outbox to JetStream's PubAck.",
            ENTITY,
            [([entity], self.publish_latency)],
        )

    def _commands(self, families: MetricFamilies, entity: str) -> None:
        counts = dict(self.dispatcher.counts)
        families.counter("alien_commands_received", "Commands that arrived.", ENTITY).add_metric(
            [entity], counts.get("received", 0)
        )
        outcomes = families.counter(
            "alien_commands",
            "Commands by outcome: accepted, rejected, rate_limited, completed, failed.",
            (*ENTITY, "outcome"),
        )
        for outcome in COMMAND_OUTCOMES:
            outcomes.add_metric([entity, outcome], counts.get(outcome, 0))
        rejected = families.counter(
            "alien_commands_rejected", "Commands rejected, by reason (docs/commands.md).", (*ENTITY, "reason")
        )
        for key, count in sorted(counts.items()):
            if key.startswith("rejected."):
                rejected.add_metric([entity, key.removeprefix("rejected.")], count)
        families.histogram(
            "alien_command_duration_seconds",
            "From a command's arrival to its final event (command_completed or command_failed), by outcome.",
            (*ENTITY, "outcome"),
            [([entity, outcome], latency) for outcome, latency in sorted(self.command_latency.items())],
        )

    def _link(self, families: MetricFamilies, entity: str) -> None:
        link, config = self.link, self.config
        families.gauge("alien_nats_connected", "1 while the NATS link is up.", ENTITY).add_metric(
            [entity], float(link.is_connected)
        )
        families.counter("alien_nats_reconnects", "NATS reconnects.", ENTITY).add_metric([entity], link.reconnects)
        denials = families.counter(
            "alien_nats_denials", "Publishes and subscriptions nats-server refused.", (*ENTITY, "operation")
        )
        by_operation: dict[str, int] = {}
        for (operation, _), times in list(link.denied.items()):
            by_operation[operation] = by_operation.get(operation, 0) + times
        for operation, times in sorted(by_operation.items()):
            denials.add_metric([entity, operation], times)
        registered = bool(config.org_id and config.entity_id)
        families.gauge("alien_registered", "1 once the entity is registered.", ENTITY).add_metric(
            [entity], float(registered)
        )
        families.info(
            "alien_entity", "The entity's ids (empty until registered).", (*ENTITY, "org_id", "entity_id")
        ).add_metric([entity, config.org_id or "", config.entity_id or ""], {"entity_type": config.entity_type})
        families.info(
            "alien_server_dialect",
            "The mothership's dialect (unknown until it answered) and the telemetry format.",
            ENTITY,
        ).add_metric(
            [entity],
            {"dialect": self.wire_format.dialect() or "unknown", "telemetry_format": self.wire_format.format},
        )
        families.histogram(
            "alien_rest_request_duration_seconds",
            "One REST request to the mothership, answered or not (each retry counts), by method.",
            (*ENTITY, "method"),
            [([entity, method], latency) for method, latency in sorted(self.rest_latency.items())],
        )
