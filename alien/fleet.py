"""AlienFleet: several entities in one process over one NATS connection.

The seed API's "multi-entity support" enhancement (docs/index.md#the-seed-api). Each entity is an `AlienClient` with
its own identity file, subjects, durable outbox, publisher and command handlers; only the NATS
connection (and its reconnect handling) is shared. An entity's files live under
`<data_dir>/fleet/<entity name>/`, so a restarted fleet finds every entity's ids and unsent
messages again.
"""

from __future__ import annotations

import asyncio
import re
from types import TracebackType
from typing import Any

from alien.client import AlienClient
from alien.config import AlienConfig
from alien.delivery.outbox import OutboxStats
from alien.errors import ConfigError
from alien.link import NatsLink
from alien.logs import get_logger
from alien.metrics.endpoint import MetricsEndpoint
from alien.settings import NatsSettings

logger = get_logger("alien")

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def entity_dir_name(entity_name: str) -> str:
    """A directory name for an entity: its name with anything but letters, digits, . _ - replaced."""
    slug = _UNSAFE.sub("_", entity_name).strip("._") or "entity"
    return slug[:100]


class AlienFleet:
    """Entities sharing one NATS connection; an async context manager like AlienClient."""

    def __init__(self, config: AlienConfig | None = None) -> None:
        self.config = config if config is not None else AlienConfig()
        if self.config.entity_id:
            raise ConfigError("ALIEN_ENTITY_ID pins one entity; a fleet registers one per add() (unset it)")
        self.link = NatsLink(NatsSettings.from_config(self.config), name="alien-fleet")
        self.clients: dict[str, AlienClient] = {}
        # every entity's metrics on one endpoint (ALIEN_METRICS_ADDR; docs/metrics.md)
        self.metrics_endpoint = (
            MetricsEndpoint(self.config.metrics_addr, allow_remote=self.config.metrics_allow_remote)
            if self.config.metrics_addr
            else None
        )
        self._initialized: set[str] = set()
        self._lock = asyncio.Lock()

    def add(self, *, entity_name: str, **settings: Any) -> AlienClient:
        """A new entity: the fleet's settings with `entity_name` and any other `settings` (e.g. entity_type).

        Not connected until `initialize()`; register its command handlers before that.
        """
        if entity_name in self.clients:
            raise ConfigError(f"the fleet already has an entity named {entity_name!r}")
        directory = self.config.data_dir / "fleet" / entity_dir_name(entity_name)
        if any(c.config.data_dir == directory for c in self.clients.values()):
            raise ConfigError(f"entity name {entity_name!r} maps to the same directory as another entity's")
        config = self.config.derive(  # validated: ConfigError names a bad setting
            entity_name=entity_name, data_dir=directory, config_file=str(directory / "identity.json"), **settings
        )
        client = AlienClient(config, link=self.link)
        self.clients[entity_name] = client
        if self.metrics_endpoint is not None and client.metrics is not None:
            self.metrics_endpoint.add(client.metrics)
        return client

    async def initialize(self) -> None:
        """Connect (once), then register and start every entity added since the last call."""
        async with self._lock:
            if self.metrics_endpoint is not None:  # idempotent; up before the connection, as an entity's would be
                await self.metrics_endpoint.start()
            if not self.link.is_open:  # once: a reconnecting link reconnects by itself
                await self.link.connect()
            pending = [name for name in self.clients if name not in self._initialized]
            if not pending:
                return
            for name in pending:
                self.clients[name].config.data_dir.mkdir(parents=True, exist_ok=True)
            # The first registration may create the organization; the others then find it by
            # name. All at once, each would find nothing and create its own (not atomic).
            first, rest = pending[0], pending[1:]
            await self.clients[first].initialize()
            self._initialized.add(first)
            results = await asyncio.gather(*(self.clients[n].initialize() for n in rest), return_exceptions=True)
            failed: BaseException | None = None
            for name, result in zip(rest, results, strict=True):
                if isinstance(result, BaseException):
                    failed = failed or result
                else:
                    self._initialized.add(name)
            if failed is not None:
                raise failed

    async def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every entity's queued messages are acknowledged by JetStream."""
        results = await asyncio.gather(*(c.flush(timeout) for c in self.clients.values()))
        return all(results)

    def stats(self) -> dict[str, OutboxStats]:
        return {name: client.stats() for name, client in self.clients.items()}

    async def close(self, timeout: float | None = None) -> None:
        """Close every entity (each flushes and says shutdown), then the shared connection."""
        results = await asyncio.gather(*(c.close(timeout) for c in self.clients.values()), return_exceptions=True)
        for name, result in zip(self.clients, results, strict=True):
            if isinstance(result, Exception):  # one entity's failure must not keep the others open
                logger.warning("closing entity %r failed: %s", name, result)
        await self.link.close(timeout)
        if self.metrics_endpoint is not None:
            await self.metrics_endpoint.stop()

    async def __aenter__(self) -> AlienFleet:
        try:
            await self.initialize()
        except BaseException:
            await self.close()  # __aexit__ does not run: what did start must not keep running
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
