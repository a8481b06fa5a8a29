"""Streams that stopped taking messages: one log line when one stops, one when it takes them again.

On a NATS cluster a stream whose leader is lost answers nothing (no responders, 503, no PubAck)
for a few seconds while its peers elect another, and for as long as its quorum is lost. Every
message sent meanwhile is retried with its id; the log says what happened once per outage and
per stream (keyed by the subjects' first two tokens, e.g. ``constellation.telemetry``), not once
per message. One tracker is shared by every user of a NATS link, so a node lost under an
AlienFleet is said once, not once per entity. See docs/delivery.md#on-a-nats-cluster.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from alien.logs import get_logger

logger = get_logger("alien.publisher")


def stream_family(subject: str) -> str:
    """The subjects one stream captures, as far as the client can tell: the first two tokens."""
    return ".".join(subject.split(".", 2)[:2])


class StreamOutages:
    """Which stream families are not taking messages now, since when, and how many attempts failed."""

    def __init__(self) -> None:
        self._since: dict[str, float] = {}  # family -> monotonic time of the first failure
        self._failed: dict[str, int] = {}
        self._taken: set[str] = set()  # families a stream took messages on through this link

    @property
    def any(self) -> bool:
        """True while some stream is out: only then do answers need to be looked at (a cheap check)."""
        return bool(self._since)

    def is_out(self, subject: str) -> bool:
        return stream_family(subject) in self._since

    def has_taken(self, subject: str) -> bool:
        """Whether a stream took messages on `subject`'s family before (else: no stream may capture it)."""
        return stream_family(subject) in self._taken

    def unanswered(self, subject: str, reason: str) -> None:
        """A message to `subject` was not taken (`reason`); said at WARNING once per outage."""
        family = stream_family(subject)
        self._failed[family] = self._failed.get(family, 0) + 1
        if family in self._since:
            logger.debug("%s still not taking messages (%s)", family, reason)
            return
        self._since[family] = time.monotonic()
        logger.warning(
            "JetStream is not taking messages on %s.> (%s): its stream has no leader while the cluster "
            "elects one or has lost its quorum; messages wait in the outbox and are retried with their ids",
            family,
            reason,
        )

    def answered(self, subjects: Iterable[str]) -> None:
        """Messages to `subjects` were taken: an outage of their stream is over (said at INFO)."""
        families = {stream_family(subject) for subject in subjects}
        self._taken |= families
        for family in families & self._since.keys():
            lasted = time.monotonic() - self._since.pop(family)
            failed = self._failed.pop(family, 0)
            logger.info(
                "JetStream takes messages on %s.> again after %.1fs (%d attempt(s) retried with their ids)",
                family,
                lasted,
                failed,
            )
