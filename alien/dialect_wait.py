"""Telemetry that needs the server's dialect waits for it, then is encoded once.

With `telemetry_format` "auto" the format follows the server's REST dialect
(docs/contract.md#telemetry-payloads). A device with saved ids that boots while the mothership is
unreachable, and never saved a dialect, still runs: its readings wait in the outbox as readings,
are encoded when the dialect is learnt, and only then do the heartbeat and the entity state start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from alien.delivery.outbox import Outbox
from alien.logs import get_logger
from alien.presence import Presence
from alien.telemetry.composer import Composer
from alien.telemetry.wire_format import WireFormat

logger = get_logger("alien")


class DialectWait:
    """Starts presence once the telemetry format is known: at once, or after `learn()` returns."""

    def __init__(
        self,
        wire_format: WireFormat,
        composer: Composer,
        outbox: Outbox,
        presence: Presence,
        learn: Callable[[], Awaitable[None]],
    ) -> None:
        self._wire_format, self._composer, self._outbox, self._presence = wire_format, composer, outbox, presence
        self._learn = learn
        self._task: asyncio.Task[None] | None = None

    def begin(self) -> None:
        """On connect, before the publisher starts: what waited for the ids is encoded now if it can be."""
        if not self._wire_format.undecided():
            self._known()
            return
        self._outbox.hold_telemetry("dialect")
        self._composer.resolve()  # events need no format: they go now
        self._task = asyncio.create_task(self._wait(), name="alien-dialect")

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _wait(self) -> None:
        await self._learn()
        self._known()

    def _known(self) -> None:
        encoded = self._composer.resolve()
        if encoded:
            logger.info(
                "%d telemetry reading(s) queued before they could be encoded now go out as %s",
                encoded,
                self._wire_format.format,
            )
        self._outbox.release_telemetry("dialect")
        self._presence.start()
