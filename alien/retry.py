"""One retry policy: what counts as transient, and how long to wait before the next attempt.

The REST transport retries a call a few times (`RetryPolicy`); registration and the client's
start-up loops retry the whole step forever while the failure is transient (`is_transient`),
waiting `Backoff` delays. See docs/delivery.md.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from alien.errors import MothershipUnavailableError, ServerError

# The gateway statuses: the server (or a proxy in front of it) says it did nothing and may come back.
GATEWAY_STATUSES = frozenset({502, 503, 504})
# Worth another attempt of the same request: overloaded, or any server error.
RETRY_STATUSES = frozenset({429}) | frozenset(range(500, 600))
# A POST is retried only where the server said it did nothing (overloaded or unavailable): a
# v0.0.1 500 CREATE_FAILED is a database refusal, and sending it again changes nothing.
POST_RETRY_STATUSES = frozenset({429}) | GATEWAY_STATUSES


def is_transient(exc: BaseException) -> bool:
    """A failure that waiting can cure: the server unreachable, or a gateway status after every retry."""
    if isinstance(exc, MothershipUnavailableError):
        return True
    return isinstance(exc, ServerError) and exc.status in GATEWAY_STATUSES


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts of one request, with full-jitter exponential backoff between them."""

    attempts: int = 5
    base_s: float = 0.5
    max_s: float = 10.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Full-jitter backoff for `attempt` (1-based); a server's Retry-After is honoured, capped."""
        if retry_after is not None:
            return min(retry_after, self.max_s)
        return random.uniform(0, min(self.max_s, self.base_s * 2 ** (attempt - 1)))


class Backoff:
    """Doubling delays from `base_s` up to `max_s`, for a step retried until it succeeds.

    Each delay is drawn between half and all of its step ("equal jitter"): devices that lost the
    mothership at one instant (a hub restart) do not all ask again at one instant
    (docs/capacity.md#reconnect-storms).
    """

    def __init__(self, base_s: float, max_s: float) -> None:
        self.base_s = base_s
        self.max_s = max_s
        self._next = base_s

    def next_delay(self) -> float:
        """The wait before the next attempt: within [step/2, step]; each call doubles the step, up to max_s."""
        step = self._next
        self._next = min(self._next * 2, self.max_s)
        return random.uniform(step / 2, step)

    def reset(self) -> None:
        self._next = self.base_s
