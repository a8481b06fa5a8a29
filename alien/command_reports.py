"""Where the command dispatcher's words go: lifecycle events into the outbox, replies live on NATS."""

from __future__ import annotations

import asyncio
from typing import Any

from alien.commands import REJECTION_EVENTS
from alien.delivery.outbox import Lane
from alien.link import NatsLink
from alien.logs import get_logger
from alien.telemetry.composer import Composer
from alien.wire import dumps

logger = get_logger("alien")


class CommandReports:
    """Lifecycle events (rejections in a lane of their own) and request replies of one entity."""

    def __init__(self, composer: Composer, link: NatsLink) -> None:
        self._composer = composer
        self._link = link
        self._replies: set[asyncio.Task[None]] = set()

    def report(self, event_type: str, data: dict[str, Any]) -> None:
        """Queue a lifecycle event; anyone can cause rejections at will, so they only displace their own."""
        lane = Lane.REJECTIONS if event_type in REJECTION_EVENTS else Lane.CONTROL
        try:
            self._composer.event(event_type, data, lane)
        except Exception:
            logger.exception("could not queue %s event", event_type)

    def reply(self, subject: str, data: dict[str, Any]) -> None:
        """Answer a command sent as a NATS request (live, not through the outbox)."""

        async def send() -> None:
            try:
                await self._link.nc.publish(subject, dumps(data))
            except Exception as exc:  # noqa: BLE001 - the lifecycle events still tell the C2
                logger.warning("could not reply to a command request: %s", exc)

        task = asyncio.create_task(send())
        self._replies.add(task)
        task.add_done_callback(self._replies.discard)
