"""What both v0.1 workers share (docs/contract.md#quarantine): failure handling and once-only recording.

Modelled on Constellation-Overwatch/constellation-overwatch pkg/services/workers/base.go: a
handler error NAKs the message (redelivered at once); on rc a message failing its third delivery
is published as a ``QuarantineRecord`` to ``constellation.quarantine.{worker}`` (stream
CONSTELLATION_QUARANTINE, ``Nats-Msg-Id: quarantine-{stream}-{seq}``) and terminated. v0.1.1 has
no quarantine: the consumer's MaxDeliver (3) ends the retries.
"""

from __future__ import annotations

import asyncio
import base64
import json

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from alien.logs import get_logger
from alien_testing.emulator.contract import (
    QUARANTINE_AFTER_DELIVERIES,
    QUARANTINE_SUBJECT,
    Release,
    StreamSpec,
)
from alien_testing.emulator.gojson import GoTime
from alien_testing.emulator.processors import settle
from alien_testing.emulator.records import QuarantinedMessage, Recorder

log = get_logger(__name__)


class Seen:
    """Stream sequences already recorded, so redeliveries are recorded once in the message log."""

    def __init__(self) -> None:
        self._seqs: set[int] = set()

    def first(self, seq: int) -> bool:
        if seq in self._seqs:
            return False
        self._seqs.add(seq)
        return True


class Quarantine:
    """base.go handleFailure: NAK, or (rc, third delivery) quarantine record + Term."""

    def __init__(self, js: JetStreamContext, spec: StreamSpec, worker: str, release: Release, recorder: Recorder):
        self._js = js
        self._spec = spec
        self._worker = worker
        self._release = release
        self._recorder = recorder

    async def fail(self, msg: Msg, error: str) -> bool:
        """Settle a failed message; True when it was quarantined."""
        meta = msg.metadata
        if self._release == "rc" and meta.num_delivered >= QUARANTINE_AFTER_DELIVERIES:
            record = {
                "worker": self._worker,
                "source_stream": meta.stream,
                "source_consumer": meta.consumer,
                "original_subject": msg.subject,
                "original_data": _b64(msg.data),
                "error": error,
                "num_delivered": meta.num_delivered,
                "stream_sequence": meta.sequence.stream,
                "quarantined_at": GoTime.now().format(),
            }
            subject = f"{QUARANTINE_SUBJECT}.{_subject_token(self._worker)}"
            try:
                await self._js.publish(
                    subject,
                    json.dumps(record).encode(),
                    headers={"Nats-Msg-Id": f"quarantine-{meta.stream}-{meta.sequence.stream}"},
                )
            except (nats.errors.Error, asyncio.TimeoutError) as exc:
                log.warning("%s: quarantine publish failed (%s); NAK instead", self._worker, type(exc).__name__)
            else:
                await settle(msg, self._spec, "term")
                self._recorder.add_quarantined(QuarantinedMessage(subject, record))
                return True
        await settle(msg, self._spec, "nak")
        return False


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()  # Go marshals []byte as base64


def _subject_token(name: str) -> str:
    """base.go quarantineSubjectToken."""
    token = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "-" for c in name.lower())
    return token or "worker"
