"""Rights a server refused on an earlier start, kept with the identity so the next start does not ask again.

Every refused request is a "Publish Violation" line in the server's log; newer servers refuse
edge keys the KV bucket and most of the JetStream API on purpose, so a client that asked at every
start would fill that log. What was learnt holds for the NATS servers it was learnt from, and for
RELEARN_AFTER: then it is asked once more (a key's scopes can be widened).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Literal

from alien.wire import redact_url

Feature = Literal["entity_state", "jetstream_api"]
FEATURES: tuple[Feature, ...] = ("entity_state", "jetstream_api")
RELEARN_AFTER = timedelta(days=1)


@dataclass
class LearntDenials:
    """`denied`: feature -> when it was refused (RFC 3339, UTC); `servers`: NATS_URL it was refused by."""

    servers: str | None = None
    denied: dict[str, str] = field(default_factory=dict)

    def holds(self, feature: Feature, nats_url: str, now: datetime | None = None) -> bool:
        """Whether `feature` was refused by these servers within RELEARN_AFTER."""
        when = self.denied.get(feature)
        if when is None or self.servers != redact_url(nats_url):
            return False
        try:
            learnt = datetime.fromisoformat(when)
        except ValueError:
            return False  # unreadable: asked again, which is what an absent entry means
        now = now or datetime.now(timezone.utc)
        return learnt.tzinfo is not None and now - learnt < RELEARN_AFTER

    def learn(self, feature: Feature, nats_url: str, now: datetime | None = None) -> None:
        servers = redact_url(nats_url)
        if self.servers != servers:
            self.denied = {}  # learnt from other servers: says nothing about these
            self.servers = servers
        self.denied[feature] = (now or datetime.now(timezone.utc)).isoformat()


def feature_of(subject: str, api_prefix: str, bucket: str) -> Feature | None:
    """Which feature a refused (lower-cased) subject belongs to; None for subjects of no probed feature."""
    kv = (f"$kv.{bucket}.", f"{api_prefix}stream.info.kv_{bucket}", f"{api_prefix}direct.get.kv_{bucket}")
    if subject.startswith(tuple(s.lower() for s in kv)):
        return "entity_state"
    if subject.startswith(f"{api_prefix}direct.get.obj_".lower()):
        return None  # a firmware bucket (docs/firmware.md#permissions): says nothing of the API commands need
    if subject.startswith(api_prefix.lower()):
        return "jetstream_api"
    return None
