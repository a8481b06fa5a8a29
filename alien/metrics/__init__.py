"""Metrics: what the library counts, served in Prometheus' text format (docs/metrics.md).

- `latency`: latencies in fixed buckets, observed where they happen (PubAck, command end, REST);
- `families`: the metric families of one scrape, shared by every entity and source;
- `entity`: one client's counters, gauges and latencies, read at scrape time;
- `endpoint`: the HTTP endpoint on the client's event loop (`ALIEN_METRICS_ADDR`).
"""
