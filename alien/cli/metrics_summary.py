"""What `alien metrics` makes of two scrapes of an endpoint: rates over the interval, levels, latencies.

Parsed with prometheus_client's own parser. Latency percentiles are estimated from the histogram
buckets as Prometheus' `histogram_quantile` does (linear within a bucket), from the observations
made between the two scrapes, or since the start when none was.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

Labels = dict[str, str]


@dataclass
class Scrape:
    """One scrape: every sample by its name (e.g. `alien_messages_published_total`), and when it was taken."""

    at: float  # monotonic seconds
    samples: dict[str, list[tuple[Labels, float]]] = field(default_factory=dict)
    families: set[str] = field(default_factory=set)

    @classmethod
    def parse(cls, text: str, at: float) -> Scrape:
        """ValueError when `text` is not Prometheus' text format."""
        scrape = cls(at)
        samples: dict[str, list[tuple[Labels, float]]] = defaultdict(list)
        for family in text_string_to_metric_families(text):
            scrape.families.add(family.name)
            for sample in family.samples:
                samples[sample.name].append((dict(sample.labels), float(sample.value)))
        scrape.samples = dict(samples)
        return scrape

    def entities(self) -> list[str]:
        return sorted({labels["entity"] for rows in self.samples.values() for labels, _ in rows if "entity" in labels})

    def total(self, name: str, **match: str) -> float:
        return sum(value for labels, value in self.samples.get(name, []) if _matches(labels, match))

    def by(self, name: str, label: str, **match: str) -> dict[str, float]:
        found: dict[str, float] = defaultdict(float)
        for labels, value in self.samples.get(name, []):
            if _matches(labels, match) and label in labels:
                found[labels[label]] += value
        return dict(found)

    def labels(self, name: str, **match: str) -> Labels | None:
        return next((labels for labels, _ in self.samples.get(name, []) if _matches(labels, match)), None)

    def buckets(self, name: str, **match: str) -> dict[float, float]:
        """A histogram's cumulative bucket counts by upper bound, summed over its other labels."""
        found: dict[float, float] = defaultdict(float)
        for labels, value in self.samples.get(f"{name}_bucket", []):
            if _matches(labels, match):
                found[float(labels["le"])] += value
        return dict(found)


def _matches(labels: Labels, match: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in match.items())


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """The q-quantile (0..1) of a histogram's cumulative buckets, as Prometheus estimates it; None when empty."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):  # beyond the last finite bound: that bound is all one can say
                return lower
            return lower + (bound - lower) * ((rank - below) / (count - below) if count > below else 1.0)
        lower, below = bound, count
    return lower


def latency(name: str, first: Scrape | None, second: Scrape, **match: str) -> dict[str, Any]:
    """p50 / p99 and the mean (seconds) and the number of observations, over the interval when it had any.

    The mean is exact (the histogram's sum over its count); the percentiles are bucket estimates.
    """
    now = second.buckets(name, **match)
    total, count = second.total(f"{name}_sum", **match), second.total(f"{name}_count", **match)
    window = "since start"
    if first is not None:
        before = first.buckets(name, **match)
        delta = {bound: value - before.get(bound, 0.0) for bound, value in now.items()}
        if delta and max(delta.values()) > 0 and min(delta.values()) >= 0:
            now, window = delta, "interval"
            total -= first.total(f"{name}_sum", **match)
            count -= first.total(f"{name}_count", **match)
    return {
        "p50": quantile(0.5, now),
        "p99": quantile(0.99, now),
        "mean": total / count if count > 0 else None,
        "count": int(count),
        "window": window,
    }


def summarise(url: str, first: Scrape | None, second: Scrape) -> dict[str, Any]:
    """The summary `alien metrics` prints (and --json emits)."""
    interval = second.at - first.at if first is not None else None

    def rate(name: str, **match: str) -> float | None:
        if first is None or not interval:
            return None
        now, before = second.total(name, **match), first.total(name, **match)
        return max(0.0, now - before if now >= before else now) / interval  # a lower value: the process restarted

    entities: dict[str, Any] = {}
    for entity in second.entities():
        e = {"entity": entity}
        dialect = second.labels("alien_server_dialect_info", **e) or {}
        ids = second.labels("alien_entity_info", **e) or {}
        summary: dict[str, Any] = {
            "entity_id": ids.get("entity_id") or None,
            "registered": second.total("alien_registered", **e) > 0,
            "connected": second.total("alien_nats_connected", **e) > 0,
            "dialect": dialect.get("dialect"),
            "telemetry_format": dialect.get("telemetry_format"),
            "rates_per_s": {
                "enqueued": rate("alien_messages_enqueued_total", **e),
                "published": rate("alien_messages_published_total", **e),
                "dropped": rate("alien_messages_dropped_total", **e),
                "commands_received": rate("alien_commands_received_total", **e),
            },
            "totals": {
                "enqueued": second.total("alien_messages_enqueued_total", **e),
                "published": second.total("alien_messages_published_total", **e),
                "duplicates": second.total("alien_messages_duplicates_total", **e),
                "dropped": second.by("alien_messages_dropped_total", "reason", **e),
                "parked": second.total("alien_messages_parked_total", **e),
                "reconnects": second.total("alien_nats_reconnects_total", **e),
                "commands": second.by("alien_commands_total", "outcome", **e),
            },
            "outbox": {
                "messages": second.total("alien_outbox_messages", **e),
                "bytes": second.total("alien_outbox_bytes", **e),
                "in_flight": second.total("alien_outbox_in_flight_messages", **e),
                "oldest_age_s": second.total("alien_outbox_oldest_age_seconds", **e),
            },
            "latency_s": {
                "publish": latency("alien_publish_latency_seconds", first, second, **e),
                "command": latency("alien_command_duration_seconds", first, second, **e),
                "rest": latency("alien_rest_request_duration_seconds", first, second, **e),
            },
        }
        received = second.by("alien_ros_messages_received_total", "input", **e)
        if received:
            summary["ros"] = {
                "received_per_s": {
                    name: rate("alien_ros_messages_received_total", input=name, **e) for name in received
                },
                "dropped": {
                    f"{labels['channel']} {labels['reason']}": value
                    for labels, value in second.samples.get("alien_ros_readings_dropped_total", [])
                    if labels.get("entity") == entity and value
                },
            }
        entities[entity] = summary
    process: dict[str, Any] = {}
    if "process_resident_memory_bytes" in second.samples:
        process["rss_bytes"] = second.total("process_resident_memory_bytes")
        cpu = rate("process_cpu_seconds_total")
        process["cpu_percent"] = None if cpu is None else 100 * cpu
    return {"url": url, "interval_s": interval, "entities": entities, "process": process}
