"""The v0.1 server's event worker (docs/contract.md#lifecycle-events).

Modelled on Constellation-Overwatch/constellation-overwatch pkg/services/workers/event.go:
``bootsequence`` registers the event's entity (``entity_id``, else ``source.entity_id``,
``device_id``, ``source.device_id``) in the in-memory registry the telemetry worker admits from;
``shutdown`` and ``delete`` unregister it. Other events are only logged.
"""

from __future__ import annotations

from typing import Any

from nats.aio.msg import Msg

from alien.logs import get_logger
from alien_testing.emulator.contract import StreamSpec
from alien_testing.emulator.gojson import GoJSONError, loads
from alien_testing.emulator.processors import received, settle
from alien_testing.emulator.records import Recorder
from alien_testing.emulator.worker_base import Quarantine, Seen

log = get_logger(__name__)


class EventWorker:
    """event-processor on v0.1: lifecycle events drive the telemetry admission registry."""

    def __init__(self, spec: StreamSpec, recorder: Recorder, quarantine: Quarantine) -> None:
        self._spec = spec
        self._recorder = recorder
        self._quarantine = quarantine
        self._seen = Seen()

    async def __call__(self, msg: Msg) -> None:
        first = self._seen.first(msg.metadata.sequence.stream)
        try:
            event = loads(msg.data)
        except GoJSONError as exc:
            if first:
                self._recorder.add_message("events", received(msg))
            await self._quarantine.fail(msg, f"failed to unmarshal event: {exc}")
            return
        if event is not None and not isinstance(event, dict):
            if first:
                self._recorder.add_message("events", received(msg))
            await self._quarantine.fail(msg, "failed to unmarshal event: not a JSON object")
            return
        await settle(msg, self._spec)
        self._apply(event or {})
        if first:
            self._recorder.add_message("events", received(msg))

    def _apply(self, event: dict[str, Any]) -> None:
        event_type = event.get("event_type")
        entity_id = extract_entity_id(event)
        if event_type == "bootsequence":
            if entity_id and valid_kv_key(entity_id):
                self._recorder.admit(entity_id)
            else:
                log.warning("bootsequence without a usable entity_id/device_id: not registered")
        elif event_type in ("shutdown", "delete") and entity_id:
            self._recorder.admit(entity_id, admitted=False)


def extract_entity_id(event: dict[str, Any]) -> str:
    """event.go extractEntityID: entity_id, source.entity_id, device_id, source.device_id."""
    raw_source = event.get("source")
    source: dict[str, Any] = raw_source if isinstance(raw_source, dict) else {}
    for value in (event.get("entity_id"), source.get("entity_id"), event.get("device_id"), source.get("device_id")):
        if isinstance(value, str) and value:
            return value
    return ""


def valid_kv_key(entity_id: str) -> bool:
    """telemetry.go validateEntityID: no dots, asterisks, greater-than or spaces."""
    return bool(entity_id) and not any(c in entity_id for c in ".*> ")
