"""Shared by the metrics tests: scraping a real endpoint over HTTP and parsing it with prometheus_client's parser."""

from __future__ import annotations

import asyncio
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[str, list[tuple[dict[str, str], float]]]


def parse(text: str) -> tuple[Samples, dict[str, str]]:
    """Samples by name, and each family's type by its name."""
    samples: Samples = defaultdict(list)
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[sample.name].append((dict(sample.labels), sample.value))
    return dict(samples), types


def fetch(url: str, accept: str | None = None) -> tuple[str, str]:
    """(body, content type) of a GET; blocking, for a thread or a process other than the endpoint's loop."""
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read().decode(), response.headers["Content-Type"]


async def scrape(url: str) -> Samples:
    """The endpoint over HTTP, from a thread: the endpoint may serve from this very loop."""
    body, _ = await asyncio.to_thread(fetch, url)
    return parse(body)[0]


def value(samples: Samples, name: str, **labels: str) -> float:
    """The one sample of `name` with these labels (among others); AssertionError when there is none or several."""
    rows = samples.get(name, [])
    found = [v for sample_labels, v in rows if all(sample_labels.get(k) == w for k, w in labels.items())]
    assert len(found) == 1, f"{name}{labels}: {found} in {samples.get(name)}"
    return found[0]


def by_label(samples: Samples, name: str, label: str, **labels: str) -> dict[str, float]:
    return {
        sample_labels[label]: v
        for sample_labels, v in samples.get(name, [])
        if all(sample_labels.get(k) == w for k, w in labels.items())
    }


def assert_matches_client(samples: Samples, client: Any, entity: str) -> None:
    """Every counter and level the endpoint serves for `entity` equals what the client itself says."""
    stats = client.stats()
    e = {"entity": entity}
    assert value(samples, "alien_messages_enqueued_total", **e) == stats.enqueued
    assert value(samples, "alien_messages_published_total", **e) == stats.published
    # every PubAck the publisher settled is one enqueue -> PubAck observation
    assert value(samples, "alien_publish_latency_seconds_count", **e) == stats.published
    assert value(samples, "alien_messages_duplicates_total", **e) == stats.duplicates
    assert value(samples, "alien_messages_rejected_total", **e) == stats.rejected
    assert value(samples, "alien_messages_parked_total", **e) == stats.parked
    assert by_label(samples, "alien_messages_dropped_total", "reason", **e) == stats.dropped
    assert value(samples, "alien_outbox_messages", **e) == stats.depth
    assert value(samples, "alien_outbox_bytes", **e) == stats.depth_bytes
    assert value(samples, "alien_outbox_in_flight_messages", **e) == stats.in_flight
    age = value(samples, "alien_outbox_oldest_age_seconds", **e)
    if stats.oldest_age_s is None:
        assert age == 0
    else:  # read a moment before stats(): a little younger
        assert 0 < age <= stats.oldest_age_s < age + 2
    counts = client.command_counts
    assert value(samples, "alien_commands_received_total", **e) == counts.get("received", 0)
    outcomes = by_label(samples, "alien_commands_total", "outcome", **e)
    assert outcomes == {o: counts.get(o, 0) for o in ("accepted", "rejected", "rate_limited", "completed", "failed")}
    rejected = {k.removeprefix("rejected."): v for k, v in counts.items() if k.startswith("rejected.")}
    assert by_label(samples, "alien_commands_rejected_total", "reason", **e) == rejected
    assert value(samples, "alien_nats_connected", **e) == float(client.link.is_connected)
    assert value(samples, "alien_nats_reconnects_total", **e) == client.link.reconnects
    denials: dict[str, float] = defaultdict(float)
    for (operation, _), times in client.link.denied.items():
        denials[operation] += times
    assert by_label(samples, "alien_nats_denials_total", "operation", **e) == denials
    assert value(samples, "alien_registered", **e) == float(client.is_registered)
    info = value(samples, "alien_entity_info", **e, entity_id=client.config.entity_id or "")
    assert info == 1
    dialect = client.wire_format.dialect() or "unknown"
    assert value(samples, "alien_server_dialect_info", **e, dialect=dialect, telemetry_format=client.telemetry_format)
    # every PubAck observed once: the histogram counts what was published
    assert value(samples, "alien_publish_latency_seconds_count", **e) == stats.published
    finished = by_label(samples, "alien_command_duration_seconds_count", "outcome", **e)
    assert finished == {o: counts[o] for o in ("completed", "failed") if counts.get(o)}


async def poll(predicate: Callable[[], Any], timeout: float, what: str) -> None:
    """Bounded poll of state that has no event of its own (a scrape, the client's counters)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        if loop.time() > deadline:
            raise TimeoutError(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.05)
