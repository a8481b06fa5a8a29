"""The metrics endpoint: `GET /metrics` in Prometheus' text format, served from the client's event loop.

Off unless ALIEN_METRICS_ADDR is set (docs/metrics.md). aiohttp (the REST client's library) serves
it on the loop the counters live on, so a scrape reads them between two steps of the client,
never while one changes them, and needs no thread or lock; prometheus_client renders the text
(OpenMetrics when the scraper asks for it) with the process' CPU and memory added. The endpoint
has no authentication: an address other than loopback is refused unless
ALIEN_METRICS_ALLOW_REMOTE is set, and then said with a WARNING.
"""

from __future__ import annotations

from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import Metric
from prometheus_client.exposition import choose_encoder

from alien.config import AlienConfig
from alien.config_checks import metrics_address
from alien.errors import ConfigError
from alien.logs import get_logger
from alien.metrics.families import MetricFamilies, MetricsSource
from alien.transport_security import is_loopback

logger = get_logger("alien.metrics")

PATH = "/metrics"


class _Scrape:
    """The registry's one collector: every source's samples, merged by family."""

    def __init__(self, sources: list[MetricsSource]) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        families = MetricFamilies()
        for source in list(self.sources):
            source.collect(families)
        return iter(families)


class MetricsEndpoint:
    """One HTTP endpoint for every source added (each entity of a fleet, the bridge's own counters)."""

    def __init__(self, address: str, *, allow_remote: bool = False) -> None:
        """`address`: ALIEN_METRICS_ADDR (`HOST:PORT`; port 0 picks a free one, see `url`)."""
        self.address = address
        self.host, self.port = metrics_address(address)  # ValueError: AlienConfig checked it already
        self.allow_remote = allow_remote
        self.sources: list[MetricsSource] = []
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(_Scrape(self.sources))
        ProcessCollector(registry=self._registry)  # process_cpu_seconds_total, process_resident_memory_bytes...
        self._runner: web.AppRunner | None = None
        self.url: str | None = None  # http://host:port/metrics once started

    @classmethod
    def serving(cls, source: MetricsSource | None, config: AlienConfig) -> MetricsEndpoint | None:
        """An endpoint at ALIEN_METRICS_ADDR serving `source`; None when there is no source (metrics off)."""
        if source is None or not config.metrics_addr:
            return None
        endpoint = cls(config.metrics_addr, allow_remote=config.metrics_allow_remote)
        endpoint.add(source)
        return endpoint

    def add(self, source: MetricsSource) -> None:
        self.sources.append(source)

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition (the format the Accept header asks for) and its content type."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self._registry), content_type

    async def start(self) -> None:
        """Listen; ConfigError when the address is refused or taken. Idempotent."""
        if self._runner is not None:
            return
        check_address(self.host, self.address, allow_remote=self.allow_remote)
        app = web.Application()
        app.router.add_get(PATH, self._serve)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigError(
                f"ALIEN_METRICS_ADDR {self.address}: cannot listen there ({exc.strerror or exc}); "
                "choose another address or port, or unset it"
            ) from None
        self._runner = runner
        host, port = runner.addresses[0][:2]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{port}{PATH}"
        logger.info("metrics at %s", self.url)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _serve(self, request: web.Request) -> web.Response:
        body, content_type = self.render(request.headers.get("Accept", ""))
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type  # with its version and charset parameters as given
        return response


def check_address(host: str, address: str, *, allow_remote: bool) -> None:
    """Loopback passes; any other host is refused (ConfigError) unless `allow_remote`, and then said."""
    if is_loopback(host):
        return
    if not allow_remote:
        raise ConfigError(
            f"ALIEN_METRICS_ADDR {address} is not loopback: the metrics endpoint has no authentication, "
            "so anyone who reaches it would read this device's ids and counters; refused. Use 127.0.0.1:PORT "
            "(scrape through an SSH tunnel or a local agent), or set ALIEN_METRICS_ALLOW_REMOTE=true on a "
            "network you trust"
        )
    logger.warning(
        "%s",
        f"ALIEN_METRICS_ADDR {address} is not loopback; serving metrics without authentication because "
        "ALIEN_METRICS_ALLOW_REMOTE=true (anyone who reaches it reads this device's ids and counters)",
    )
