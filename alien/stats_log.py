"""The periodic outbox line at INFO: what waits, what went out, what was lost, reconnects."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from alien.delivery.outbox import OutboxStats
from alien.logs import get_logger

logger = get_logger("alien")


async def log_stats_every(period_s: float, stats: Callable[[], OutboxStats], reconnects: Callable[[], int]) -> None:
    """Once a period, the outbox counters at INFO, when there is anything to say."""
    while True:
        await asyncio.sleep(period_s)
        now = stats()
        waiting = now.depth + now.in_flight
        if waiting or now.dropped or now.parked or now.duplicates or reconnects():
            age = f"{now.oldest_age_s:.1f}s" if now.oldest_age_s is not None else "-"
            logger.info(
                "outbox: %d waiting (%d bytes queued, oldest %s), %d published, %d duplicates, dropped %s, "
                "%d parked, %d reconnects",
                waiting,
                now.depth_bytes,
                age,
                now.published,
                now.duplicates,
                now.dropped or "none",
                now.parked,
                reconnects(),
            )
