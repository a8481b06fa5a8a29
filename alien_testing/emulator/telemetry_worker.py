"""The v0.1 server's telemetry worker (docs/contract.md#telemetry-payloads, docs/contract.md#quarantine).

Modelled on Constellation-Overwatch/constellation-overwatch pkg/services/workers/telemetry.go:

- rc: telemetry is refused for an entity not in the registry (which holds the entities in the
  database when the server booted, plus bootsequence admissions: use
  ``MothershipEmulator.admit`` for the former); valid messages update the cached entity state and
  are merged into KV ``CONSTELLATION_GLOBAL_STATE`` with revision compare-and-set.
- v0.1.1 neither checks admission (it auto-registers) nor writes KV.

Decoding is :mod:`alien_testing.emulator.telemetry_v01`, the state update
:mod:`alien_testing.emulator.telemetry_projection`, the KV merge :mod:`alien_testing.emulator.telemetry_state`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js.kv import KeyValue

from alien_testing.emulator.contract import Release, StreamSpec
from alien_testing.emulator.entity_state import decode_state
from alien_testing.emulator.gojson import GoJSONError, GoTime, later, loads
from alien_testing.emulator.processors import received, settle
from alien_testing.emulator.records import Recorder, TelemetryVerdict
from alien_testing.emulator.store import Store
from alien_testing.emulator.telemetry_projection import V011_TYPES, project
from alien_testing.emulator.telemetry_state import dump_state, merge_telemetry, state_from_row
from alien_testing.emulator.telemetry_v01 import (
    Telemetry,
    TelemetryError,
    decode_envelope,
    decode_v011,
    parse_subject,
    parse_subject_v011,
)
from alien_testing.emulator.worker_base import Quarantine, Seen

_SAVE_ATTEMPTS = 5
_KV_TIMEOUT_S = 2.0


class TelemetryWorker:
    """telemetry-processor on v0.1 (see the module docstring for what each release does)."""

    def __init__(
        self,
        spec: StreamSpec,
        release: Release,
        recorder: Recorder,
        store: Store,
        quarantine: Quarantine,
        kv: KeyValue | None,
    ) -> None:
        self._spec = spec
        self._release = release
        self._recorder = recorder
        self._store = store
        self._quarantine = quarantine
        self._kv = kv
        self._seen = Seen()
        self._cache: dict[str, dict[str, Any]] = {}  # entity_id -> decoded EntityState
        self._memory: dict[str, dict[str, Any]] = {}  # v0.1.1: entity token -> state, never written to KV

    async def __call__(self, msg: Msg) -> None:
        seq, delivery = msg.metadata.sequence.stream, msg.metadata.num_delivered
        if self._seen.first(seq):
            self._recorder.add_message("telemetry", received(msg))
        base: dict[str, Any] = {"subject": msg.subject, "data": msg.data, "stream_seq": seq, "delivery": delivery}
        try:
            verdict = await (self._v011(msg) if self._release == "v0.1.1" else self._rc(msg))
        except TelemetryError as exc:
            quarantined = await self._quarantine.fail(msg, str(exc))
            self._recorder.add_verdict(
                TelemetryVerdict(outcome="rejected", reason=str(exc), quarantined=quarantined, **base)
            )
            return
        await settle(msg, self._spec)
        self._recorder.add_verdict(TelemetryVerdict(**verdict, **base))

    async def _v011(self, msg: Msg) -> dict[str, Any]:
        entity_token, _ = parse_subject_v011(msg.subject)
        message = decode_v011(msg.data)
        info = {
            "message_type": message.message_type,
            "entity_id": entity_token,
            "timestamp": message.timestamp.format(),
        }
        if message.message_type not in V011_TYPES:
            reason = f"v0.1.1 does not decode {message.message_type}: kept as metadata only"
            return {"outcome": "ignored", "reason": reason, **info}
        state = self._memory.setdefault(entity_token, {})
        project(state, message.message_type, message.data or {}, message.timestamp)
        self._recorder.set_worker_state(entity_token, state)
        return {"outcome": "accepted", **info}

    async def _rc(self, msg: Msg) -> dict[str, Any]:
        org_id, entity_id = parse_subject(msg.subject)
        message = decode_envelope(msg.data)
        if message.entity_id != entity_id or message.org_id != org_id:
            raise TelemetryError(
                f"telemetry subject identity {org_id}/{entity_id} does not match envelope "
                f"{message.org_id}/{message.entity_id}"
            )
        if entity_id not in self._recorder.admitted():
            raise TelemetryError(f"telemetry entity {entity_id} is not registered")
        state = await self._state(entity_id, org_id)
        if state.get("org_id", "") != org_id:
            raise TelemetryError(
                f"telemetry organization {org_id} does not match entity organization {state.get('org_id', '')}"
            )
        info = {
            "message_type": message.message_type,
            "entity_id": entity_id,
            "org_id": org_id,
            "timestamp": message.timestamp.format(),
        }
        cursors: dict[str, dict[str, Any]] = state.setdefault("telemetry_cursors", {})
        cursor = cursors.get(message.message_type)
        if cursor is not None and not message.timestamp.after(cursor.get("timestamp", GoTime.zero())):
            return {"outcome": "ignored", "reason": "duplicate or stale telemetry", **info}
        warnings = project(state, message.message_type, message.data or {}, message.timestamp)
        if warnings is None:
            raise TelemetryError(f'unsupported telemetry message_type "{message.message_type}"')
        self._stamp(state, message)
        await self._save(state)
        return {"outcome": "accepted", "warnings": tuple(warnings), **info}

    @staticmethod
    def _stamp(state: dict[str, Any], message: Telemetry) -> None:
        state["telemetry_cursors"][message.message_type] = {
            "message_uid": message.message_uid,
            "timestamp": message.timestamp,
        }
        state["system_id"] = message.system_id
        state["component_id"] = message.component_id
        state["last_seen"] = later(state.get("last_seen", GoTime.zero()), message.timestamp)
        state["updated_at"] = later(state.get("updated_at", GoTime.zero()), message.timestamp)
        state["is_live"] = True

    # -- state (getOrCreateEntityState / saveEntityState) ---------------------------------------
    async def _state(self, entity_id: str, org_id: str) -> dict[str, Any]:
        cached = self._cache.get(entity_id)
        if cached is not None:
            return cached
        kv = self._require_kv()
        try:
            entry = await asyncio.wait_for(kv.get(entity_id), _KV_TIMEOUT_S)
        except nats.js.errors.KeyNotFoundError:
            state = self._from_store(entity_id)
        except (nats.errors.Error, asyncio.TimeoutError) as exc:
            raise TelemetryError(f"failed to get entity state: load entity state: {exc}") from None
        else:
            try:
                state = decode_state(loads(entry.value or b"null"))
            except GoJSONError as exc:
                raise TelemetryError(f"failed to get entity state: load entity state: {exc}") from None
        self._cache[entity_id] = state
        return state

    def _from_store(self, entity_id: str) -> dict[str, Any]:
        """The state the worker builds from the database row (initializeEntityFromDB)."""
        row = next((r for r in self._store.entities() if r["entity_id"] == entity_id), None)
        if row is None:
            raise TelemetryError(
                f"failed to get entity state: failed to initialize entity from DB: entity {entity_id}: not found"
            )
        return state_from_row(row, self._store.get_org(row["org_id"]))

    async def _save(self, state: dict[str, Any]) -> None:
        kv = self._require_kv()
        key = state.get("entity_id", "")
        if not key:
            raise TelemetryError("persist telemetry state: entity_id is empty, cannot create KV key")
        for attempt in range(_SAVE_ATTEMPTS):
            try:
                entry = await asyncio.wait_for(kv.get(key), _KV_TIMEOUT_S)
            except nats.js.errors.KeyNotFoundError:
                try:
                    await asyncio.wait_for(kv.create(key, dump_state(state)), _KV_TIMEOUT_S)
                except nats.js.errors.KeyWrongLastSequenceError:
                    continue  # created meanwhile: merge on the next round
                except (nats.errors.Error, asyncio.TimeoutError) as exc:
                    raise TelemetryError(f"persist telemetry state: failed to create entity state: {exc}") from None
                self._cache[key] = state
                return
            except (nats.errors.Error, asyncio.TimeoutError) as exc:
                raise TelemetryError(f"persist telemetry state: failed to get existing state: {exc}") from None
            try:
                existing = decode_state(loads(entry.value or b"null"))
            except GoJSONError as exc:
                raise TelemetryError(f"persist telemetry state: decode existing entity state: {exc}") from None
            merged = merge_telemetry(existing, state)
            try:
                await asyncio.wait_for(kv.update(key, dump_state(merged), last=entry.revision), _KV_TIMEOUT_S)
            except nats.js.errors.KeyWrongLastSequenceError:
                await asyncio.sleep(0.01 * (1 << attempt))  # waitForRetry: a backoff, not a synchronisation
                continue
            except (nats.errors.Error, asyncio.TimeoutError) as exc:
                raise TelemetryError(f"persist telemetry state: failed to update entity state: {exc}") from None
            self._cache[key] = merged
            return
        raise TelemetryError(f"persist telemetry state: failed to save after {_SAVE_ATTEMPTS} attempts (revisions)")

    def _require_kv(self) -> KeyValue:
        if self._kv is None:
            raise TelemetryError("KV store not initialized")
        return self._kv
