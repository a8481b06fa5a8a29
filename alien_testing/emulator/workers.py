"""The v0.1 server's telemetry and event workers (docs/contract.md#lifecycle-events, docs/contract.md#quarantine).

Modelled on Constellation-Overwatch/constellation-overwatch pkg/services/workers/:

- base.go: a handler error NAKs the message (redelivered at once); on rc a message failing its
  third delivery is published as a ``QuarantineRecord`` to ``constellation.quarantine.{worker}``
  (stream CONSTELLATION_QUARANTINE, ``Nats-Msg-Id: quarantine-{stream}-{seq}``) and terminated.
  v0.1.1 has no quarantine: the consumer's MaxDeliver (3) ends the retries.
- event.go: ``bootsequence`` registers the event's entity (``entity_id``, else
  ``source.entity_id``, ``device_id``, ``source.device_id``) in the in-memory registry;
  ``shutdown`` and ``delete`` unregister it. Other events are only logged.
- telemetry.go (rc): telemetry is refused for an entity not in the registry (which holds the
  entities in the database when the server booted, plus bootsequence admissions: use
  ``MothershipEmulator.admit`` for the former); valid messages update the cached entity state and
  are merged into KV ``CONSTELLATION_GLOBAL_STATE`` with revision compare-and-set.
  v0.1.1 neither checks admission (it auto-registers) nor writes KV.

Each worker lives in its own module: the shared failure handling in
:mod:`alien_testing.emulator.worker_base`, the event worker in
:mod:`alien_testing.emulator.event_worker`, the telemetry worker in
:mod:`alien_testing.emulator.telemetry_worker` (its KV merge in
:mod:`alien_testing.emulator.telemetry_state`); this module keeps their names importable from here.
"""

from alien_testing.emulator.event_worker import EventWorker, extract_entity_id, valid_kv_key
from alien_testing.emulator.telemetry_state import merge_telemetry, state_from_row
from alien_testing.emulator.telemetry_worker import TelemetryWorker
from alien_testing.emulator.worker_base import Quarantine

__all__ = [
    "EventWorker",
    "Quarantine",
    "TelemetryWorker",
    "extract_entity_id",
    "merge_telemetry",
    "state_from_row",
    "valid_kv_key",
]
