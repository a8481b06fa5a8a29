"""Readings and events into their final bytes, once, then into the outbox.

Nothing is rewritten once encoded. What comes before the ids (registration) or the telemetry
format (the server's dialect) are known waits in the outbox as it was given, a pending message
(a row on disk like any other), and is encoded exactly once when they are (`resolve`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from alien.delivery import batch
from alien.delivery.outbox import Lane, Outbox, OutgoingMessage
from alien.logs import get_logger
from alien.rate_limits import TelemetryLimiter
from alien.telemetry.encoders import EncoderIds
from alien.telemetry.readings import encode_event
from alien.telemetry.wire_format import WireFormat
from alien.wire import dumps, event_subject, new_message_id, subject_token, telemetry_subject, utc_timestamp

logger = get_logger("alien")

Ids = tuple[str, str]  # (org_id, entity_id), both valid subject tokens

# Subjects of pending messages (an "@" is in no subject a message goes out on).
PENDING_READING = "@reading@"  # payload {"data", "at", "own_time"?: at is the reading's own timestamp}
PENDING_EVENT = "@event@"  # payload {"event_type", "data", "timestamp"}
_OLD_READING = "@telemetry@"  # an earlier version's pending reading: the payload is the reading
# An earlier version queued these in place of the ids, in subjects and the envelope's own fields.
_OLD_ORG, _OLD_ENTITY = "@org_id@", "@entity_id@"


class Composer:
    """Encodes for one entity; `ids()` is None until it is registered."""

    def __init__(
        self,
        outbox: Outbox,
        wire_format: WireFormat,
        ids: Callable[[], Ids | None],
        limiter: TelemetryLimiter,
    ) -> None:
        self.outbox = outbox
        self.wire_format = wire_format
        self.ids = ids
        self.limiter = limiter

    def telemetry(self, data: dict[str, Any], timestamp: datetime | None = None) -> str:
        """Queue a reading: its telemetry messages, and a `telemetry` event for what the format cannot carry.

        `timestamp`: the reading's own time, kept exactly on every wire format; None: now.
        """
        ids = self.ids()
        if ids is None or self.wire_format.undecided():
            if not self.wire_format.undecided():
                self.wire_format.check(data)  # refused now what could never be sent
            held: dict[str, Any] = {"data": data, "at": utc_timestamp(timestamp)}
            if timestamp is not None:
                held["own_time"] = True
            return self.put(PENDING_READING, dumps(held), Lane.TELEMETRY)
        messages = self._encode(data, ids, timestamp, own_time=timestamp is not None)
        for message in messages:
            batch.put(self.outbox, message)
        return messages[0].msg_id if messages else ""

    def event(self, event_type: str, data: dict[str, Any], lane: Lane = Lane.CONTROL) -> str:
        subject_token(event_type, "event type")
        if not isinstance(data, dict):
            raise TypeError(f"event data must be a dict, got {type(data).__name__}")
        ids = self.ids()
        if ids is None:
            held = {"event_type": event_type, "data": data, "timestamp": utc_timestamp()}
            return self.put(PENDING_EVENT, dumps(held), lane)
        return self.put(event_subject(ids[0], event_type), encode_event(ids[1], event_type, data), lane)

    def put(self, subject: str, payload: bytes, lane: Lane, msg_id: str | None = None) -> str:
        message = OutgoingMessage(msg_id or new_message_id(), subject, payload, lane)
        batch.put(self.outbox, message)
        return message.msg_id

    def resolve(self) -> int:
        """Encode every pending message that can be now; returns how many readings were."""
        ids = self.ids()
        if ids is None:
            return 0
        undecided = self.wire_format.undecided()
        readings = 0

        def expand(held: OutgoingMessage) -> list[OutgoingMessage] | None:
            nonlocal readings
            if held.subject in (PENDING_READING, _OLD_READING):
                if undecided:
                    return None
                readings += 1
                return self._held_reading(held, ids)
            if held.subject == PENDING_EVENT:
                return self._held_event(held, ids)
            resolved = _old_placeholders(held, ids)
            if resolved.pending:  # no subject it could ever go out on
                logger.warning("a message queued for %r is not sent: not a subject", held.subject)
                self.outbox.note_dropped("unencodable")
                return []
            return [resolved]

        self.outbox.resolve(expand)
        return readings

    def rate_limited(self, key: str, *, bounded_by_itself: bool = False) -> bool:
        """Whether telemetry `key` is over a flood limit now: then it is counted, and said once per limit."""
        limiter = self.limiter
        limit = limiter.admit(key, bounded_by_itself=bounded_by_itself)
        if limit is None:
            return False
        self.outbox.note_dropped("rate_limited")
        if not limiter.first_refusal(limit):
            logger.debug("telemetry %r dropped: over the rate limit of %r", key, limit)
        elif limit == TelemetryLimiter.OVERALL:
            logger.warning(
                "telemetry arrives faster than %g readings/s (burst %d) in all: readings are dropped and "
                "counted as dropped['rate_limited'] (ALIEN_TELEMETRY_RATE_LIMIT_HZ, ALIEN_TELEMETRY_BURST)",
                limiter.overall.rate_hz,
                limiter.overall.burst,
            )
        else:
            logger.warning(
                "telemetry %r arrives faster than %g readings/s (burst %d): readings are dropped and counted "
                "as dropped['rate_limited'] (ALIEN_TELEMETRY_RATE_LIMIT_PER_KEY_HZ, ALIEN_TELEMETRY_BURST_PER_KEY)",
                limit,
                limiter.per_key_rate_hz,
                limiter.per_key_burst,
            )
        return True

    def _encode(
        self,
        data: dict[str, Any],
        ids: Ids,
        at: datetime | None = None,
        first_id: str | None = None,
        *,
        own_time: bool = False,
    ) -> list[OutgoingMessage]:
        """TelemetryEncodeError (a ValueError) when a value cannot be represented at all.

        `at`: when it was read (None: now); `own_time`: `at` is the reading's own timestamp, kept as it is.
        """
        org_id, entity_id = ids
        encoded = self.wire_format.encoder().encode(
            data, EncoderIds(org_id, entity_id), at=at, first_id=first_id, own_time=own_time
        )
        subject = telemetry_subject(org_id, entity_id)
        messages = [OutgoingMessage(m.msg_id, subject, m.payload, Lane.TELEMETRY) for m in encoded.messages]
        if encoded.leftover:  # the reading's time on the event too (the event's own shape carries it)
            event = encode_event(entity_id, "telemetry", encoded.leftover, utc_timestamp(at) if at else None)
            messages.append(OutgoingMessage(new_message_id(), event_subject(org_id, "telemetry"), event, Lane.CONTROL))
        return messages

    def _held_reading(self, held: OutgoingMessage, ids: Ids) -> list[OutgoingMessage]:
        try:
            body = json.loads(held.payload)
            if held.subject == _OLD_READING:
                return self._encode(body, ids, first_id=held.msg_id)
            # The id publish_telemetry returned stays the id on the wire, and the reading its time.
            at = datetime.fromisoformat(body["at"])
            return self._encode(body["data"], ids, at, held.msg_id, own_time=body.get("own_time") is True)
        except (ValueError, TypeError, KeyError) as exc:  # TelemetryEncodeError is a ValueError
            logger.warning("a telemetry reading queued before it could be encoded is not sent: %s", exc)
            self.outbox.note_dropped("unencodable")
            return []

    def _held_event(self, held: OutgoingMessage, ids: Ids) -> list[OutgoingMessage]:
        try:
            body = json.loads(held.payload)
            event_type = body["event_type"]
            payload = encode_event(ids[1], event_type, body["data"], body["timestamp"])
            return [OutgoingMessage(held.msg_id, event_subject(ids[0], event_type), payload, held.lane)]
        except (ValueError, TypeError, KeyError) as exc:
            logger.warning("an event queued before registration is not sent: %s", exc)
            self.outbox.note_dropped("unencodable")
            return []


def _old_placeholders(held: OutgoingMessage, ids: Ids) -> OutgoingMessage:
    """A message an earlier version queued with placeholder ids: the ids put in its envelope only.

    Its subject's tokens and the payload's top-level `org_id` / `entity_id`; the data inside is
    left as it is, whatever text it holds.
    """
    by_placeholder = {_OLD_ORG: ids[0], _OLD_ENTITY: ids[1]}
    subject = ".".join(by_placeholder.get(token, token) for token in held.subject.split("."))
    try:
        body = json.loads(held.payload)
    except ValueError:
        body = None
    payload = held.payload
    if isinstance(body, dict) and any(body.get(key) in by_placeholder for key in ("org_id", "entity_id")):
        for key in ("org_id", "entity_id"):
            if body.get(key) in by_placeholder:
                body[key] = by_placeholder[body[key]]
        payload = dumps(body)
    return OutgoingMessage(held.msg_id, subject, payload, held.lane)
