"""The metric families of one scrape: every entity (and the bridge) adds its samples to them.

The text format wants each family once, with all its samples together; several entities in one
process (AlienFleet) would otherwise repeat every family. A source asks for a family by name and
adds its labelled samples; the first ask creates it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol, TypeVar

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)

from alien.metrics.latency import Latency

_F = TypeVar("_F", bound=Metric)


class MetricFamilies:
    """Families by name, in the order they were first asked for."""

    def __init__(self) -> None:
        self._families: dict[str, Metric] = {}

    def _family(self, kind: type[_F], name: str, make: Callable[[], _F]) -> _F:
        family = self._families.get(name)
        if family is None:
            family = self._families[name] = make()
        if not isinstance(family, kind):
            raise TypeError(f"metric {name} is already a {type(family).__name__}")
        return family

    def counter(self, name: str, documentation: str, labels: Sequence[str]) -> CounterMetricFamily:
        """`name` without `_total`: the text format adds it to each sample."""
        return self._family(
            CounterMetricFamily, name, lambda: CounterMetricFamily(name, documentation, labels=list(labels))
        )

    def gauge(self, name: str, documentation: str, labels: Sequence[str]) -> GaugeMetricFamily:
        return self._family(
            GaugeMetricFamily, name, lambda: GaugeMetricFamily(name, documentation, labels=list(labels))
        )

    def info(self, name: str, documentation: str, labels: Sequence[str]) -> InfoMetricFamily:
        """`name` without `_info`; the sample is `<name>_info{labels, values} 1`."""
        return self._family(InfoMetricFamily, name, lambda: InfoMetricFamily(name, documentation, labels=list(labels)))

    def histogram(
        self, name: str, documentation: str, labels: Sequence[str], samples: Iterable[tuple[Sequence[str], Latency]]
    ) -> None:
        """One histogram per (label values, latency); the family is there even with none yet."""
        family = self._family(
            HistogramMetricFamily, name, lambda: HistogramMetricFamily(name, documentation, labels=list(labels))
        )
        for values, latency in samples:
            family.add_metric(list(values), latency.cumulative(), latency.sum)

    def __iter__(self) -> Iterator[Metric]:
        return iter(self._families.values())


class MetricsSource(Protocol):
    """Anything whose metrics the endpoint serves: it adds them to the scrape's families."""

    def collect(self, families: MetricFamilies) -> None: ...
