"""What `AlienClient.close()` sends before the connection goes, and what it says of the rest.

Queued messages go first, the `shutdown` lifecycle event last: the server stops accepting the
entity's telemetry once it has it (docs/contract.md#lifecycle-events). Offline, shutdown waits in
the outbox behind the control messages and ahead of the next run's bootsequence.
"""

from __future__ import annotations

from alien.delivery.outbox import Outbox
from alien.delivery.publisher import Publisher
from alien.logs import get_logger
from alien.presence import Presence

logger = get_logger("alien")


async def flush_before_close(
    publisher: Publisher, presence: Presence, outbox: Outbox, *, connected: bool, budget_s: float
) -> None:
    """Flush within `budget_s / 2`; what is left is kept for the next start, or counted as lost."""
    flushed = connected and await publisher.flush(budget_s / 3)
    if presence.queue_lifecycle("shutdown") is not None and flushed:
        flushed = await publisher.flush(budget_s / 6)
    if flushed:
        return
    left = outbox.stats()
    unsent = left.depth + left.in_flight
    if not unsent:
        return
    if outbox.store is not None:
        logger.info("closing with %d message(s) kept for the next start", unsent)
    else:
        logger.warning("closing with %d message(s) not acknowledged; lost (ALIEN_OUTBOX_DURABILITY=memory)", unsent)
        outbox.note_dropped("closed_unsent", unsent)
