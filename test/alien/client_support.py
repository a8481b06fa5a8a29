"""Shared pieces of the AlienClient end-to-end tests (test_client_*.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import nats

DIALECTS = ["v0.0.1", "v0.1"]


async def send_command(nats_url: str, subject: str, payload: bytes) -> None:
    nc = await nats.connect(nats_url)
    try:
        await nc.publish(subject, payload)
        await nc.flush()
    finally:
        await nc.close()


async def until(predicate: Callable[[], bool]) -> None:
    """Bounded by the caller's wait_for; checks on each loop turn of a short tick."""
    while not predicate():
        await asyncio.sleep(0.02)
