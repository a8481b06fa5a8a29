"""What the REST dialects need from the rest of the emulator (kept apart to avoid import cycles)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from alien_testing.emulator.contract import SERVICE_NAME, Dialect, Release
from alien_testing.emulator.store import Row, Store

# (event type "created" | "updated" | "deleted", entity row) -> publish the entity event.
EntityHook = Callable[[str, Row], Awaitable[None]]


@dataclass
class ApiContext:
    dialect: Dialect
    store: Store
    bearer_token: str
    api_keys: dict[str, frozenset[str]]
    entity_changed: EntityHook
    nats_problem: Callable[[], str | None]  # None when the server's NATS link is healthy
    release: Release = "v0.1.1"


def health_body(ctx: ApiContext) -> dict[str, Any]:
    """The server's HealthStatus: database always fine here, NATS as the emulator sees it."""
    problem = ctx.nats_problem()
    return {
        "status": "healthy" if problem is None else "unhealthy",
        "service": SERVICE_NAME,
        "timestamp": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
        "details": {"database": "healthy", "nats": "healthy" if problem is None else "unhealthy: " + problem},
    }
