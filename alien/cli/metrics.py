"""`alien metrics [URL]`: a short summary of a metrics endpoint (docs/metrics.md), for people or (--json) scripts.

Two scrapes `--interval` seconds apart: rates over that interval, the outbox's levels, and latency
percentiles from the histograms. URL defaults to ALIEN_METRICS_ADDR's endpoint. Exit 0; 1 when the
endpoint does not answer; 2 for a bad URL or an answer that is not Prometheus' text format.
"""

from __future__ import annotations

import argparse
import time
import urllib.error
import urllib.request
from typing import Any

from alien.cli.common import EXIT_OK, CliFailure, UsageError, number, print_json, seconds
from alien.cli.common import EXIT_USAGE as _EXIT_USAGE
from alien.cli.metrics_summary import Scrape, summarise
from alien.config import AlienConfig
from alien.config_checks import metrics_address

PATH = "/metrics"  # alien.metrics.endpoint.PATH (importing it would load aiohttp and prometheus_client's registry)


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    metrics = sub.add_parser("metrics", help="a metrics endpoint in short: rates, outbox depth, latency p50/p99")
    metrics.add_argument(
        "url", nargs="?", help="http://HOST:PORT/metrics or HOST:PORT (default: the endpoint of ALIEN_METRICS_ADDR)"
    )
    metrics.add_argument(
        "--interval", type=number, default=5.0, help="seconds between the two scrapes (default 5; 0: one scrape)"
    )
    metrics.add_argument("--timeout", type=seconds, default=5.0, help="seconds a scrape may take (default 5)")
    metrics.add_argument("--json", action="store_true", help="the summary as one JSON object")
    metrics.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not args.interval >= 0:
        raise UsageError("--interval must be 0 or a positive number of seconds")
    url = endpoint_url(args.url)
    first = scrape(url, args.timeout) if args.interval > 0 else None
    if first is not None:
        time.sleep(args.interval)  # the interval the rates are measured over
    summary = summarise(url, first, scrape(url, args.timeout))
    if args.json:
        print_json(summary, pretty=True)
    else:
        print(render(summary), flush=True)
    return EXIT_OK


def endpoint_url(given: str | None) -> str:
    """The URL to scrape: as given (`/metrics` added to a bare HOST:PORT), else ALIEN_METRICS_ADDR's."""
    if given:
        url = given if "://" in given else f"http://{given}"
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"{given!r} is not an http:// URL; give http://HOST:PORT/metrics or HOST:PORT")
        return url if "/" in url.partition("://")[2] else f"{url}{PATH}"
    address = AlienConfig().metrics_addr
    if address is None:
        raise UsageError("give the endpoint (alien metrics http://HOST:PORT/metrics), or set ALIEN_METRICS_ADDR")
    host, port = metrics_address(address)
    if port == 0:
        raise UsageError(f"ALIEN_METRICS_ADDR {address} picks a free port; give the endpoint's URL (its log says it)")
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # listening everywhere: ask locally
    return f"http://{f'[{host}]' if ':' in host else host}:{port}{PATH}"


def scrape(url: str, timeout: float) -> Scrape:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            text = response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        raise CliFailure(f"{url} answered {exc.code} {exc.reason}; is it a metrics endpoint?", _EXIT_USAGE) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CliFailure(
            f"the metrics endpoint {url} is not reachable ({reason}); check the URL and ALIEN_METRICS_ADDR"
        ) from None
    try:
        return Scrape.parse(text, time.monotonic())
    except ValueError as exc:
        raise CliFailure(f"{url} did not answer in Prometheus' text format ({exc})", _EXIT_USAGE) from None


def render(summary: dict[str, Any]) -> str:
    interval = summary["interval_s"]
    lines = [f"{summary['url']} · " + (f"rates over {interval:.1f}s" if interval else "one scrape: totals only")]
    if not summary["entities"]:
        lines.append("no alien entities on this endpoint")
    for name, e in summary["entities"].items():
        state = ", ".join(
            [
                "registered" if e["registered"] else "NOT registered",
                "connected" if e["connected"] else "DISCONNECTED",
                f"dialect {e['dialect'] or '?'} ({e['telemetry_format'] or '?'})",
            ]
        )
        ids = f" ({e['entity_id']})" if e["entity_id"] else ""
        lines.append(f"{name}{ids} · {state}")
        rates, totals, outbox = e["rates_per_s"], e["totals"], e["outbox"]
        dropped = sum(totals["dropped"].values())
        lines.append(
            f"  messages  {_rate(rates['enqueued'])} enqueued, {_rate(rates['published'])} published, "
            f"{_rate(rates['dropped'])} dropped · totals {totals['enqueued']:.0f} / {totals['published']:.0f} / "
            f"{dropped:.0f}" + (f" ({_reasons(totals['dropped'])})" if dropped else "")
        )
        lines.append(
            f"  outbox    {outbox['messages']:.0f} queued ({outbox['bytes']:.0f} bytes), "
            f"{outbox['in_flight']:.0f} in flight, oldest {outbox['oldest_age_s']:.1f}s · "
            f"{totals['parked']:.0f} parked, {totals['reconnects']:.0f} reconnects"
        )
        for kind, what in (("publish", "enqueue -> PubAck"), ("command", "command -> final event"), ("rest", "REST")):
            lines.append(f"  {kind:9} {what} {_latency(e['latency_s'][kind])}")
        commands = totals["commands"]
        if any(commands.values()):
            lines.append(f"  commands  {_rate(rates['commands_received'])} received · {_reasons(commands)}")
        if "ros" in e:
            ros = e["ros"]
            received = ", ".join(f"{name} {_rate(value)}" for name, value in sorted(ros["received_per_s"].items()))
            lines.append(f"  ros in    {received or '-'}")
            if ros["dropped"]:
                lines.append(f"  ros kept  {_reasons(ros['dropped'])}")
    process = summary["process"]
    if process:
        cpu = process.get("cpu_percent")
        share = "" if cpu is None else f"CPU {cpu:.1f} % of one core, "
        lines.append(f"process   {share}RSS {process['rss_bytes'] / 2**20:.0f} MiB")
    return "\n".join(lines)


def _rate(value: float | None) -> str:
    return "-/s" if value is None else f"{value:.1f}/s"


def _reasons(counts: dict[str, float]) -> str:
    return ", ".join(f"{reason} {count:.0f}" for reason, count in sorted(counts.items()) if count) or "none"


def _latency(figures: dict[str, Any]) -> str:
    if not figures["count"]:
        return "none yet"
    since = "" if figures["window"] == "interval" else ", since start"
    if figures["count"] == 1:  # a percentile of one observation would be its bucket's middle: the mean is it
        return f"{_duration(figures['mean'])} (1{since})"
    return (
        f"p50 {_duration(figures['p50'])}, p99 {_duration(figures['p99'])}, mean {_duration(figures['mean'])} "
        f"({figures['count']}{since})"
    )


def _duration(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"
