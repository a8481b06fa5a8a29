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
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from alien.logs import get_logger
from alien_testing.emulator.contract import (
    QUARANTINE_AFTER_DELIVERIES,
    QUARANTINE_SUBJECT,
    Release,
    StreamSpec,
)
from alien_testing.emulator.entity_state import decode_state, encode_state
from alien_testing.emulator.gojson import GoJSONError, GoTime, later, loads
from alien_testing.emulator.processors import received, settle
from alien_testing.emulator.records import QuarantinedMessage, Recorder, TelemetryVerdict
from alien_testing.emulator.store import Row, Store
from alien_testing.emulator.telemetry_projection import V011_TYPES, project
from alien_testing.emulator.telemetry_v01 import (
    Telemetry,
    TelemetryError,
    decode_envelope,
    decode_v011,
    parse_subject,
    parse_subject_v011,
)

log = get_logger(__name__)
_SAVE_ATTEMPTS = 5
_TELEMETRY_OWNED = ("position", "attitude", "power", "vfr", "vehicle_status", "mission", "actuators", "environment")
_KV_TIMEOUT_S = 2.0


class _Seen:
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


class EventWorker:
    """event-processor on v0.1: lifecycle events drive the telemetry admission registry."""

    def __init__(self, spec: StreamSpec, recorder: Recorder, quarantine: Quarantine) -> None:
        self._spec = spec
        self._recorder = recorder
        self._quarantine = quarantine
        self._seen = _Seen()

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
        self._seen = _Seen()
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
                    await asyncio.wait_for(kv.create(key, _dump(state)), _KV_TIMEOUT_S)
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
                await asyncio.wait_for(kv.update(key, _dump(merged), last=entry.revision), _KV_TIMEOUT_S)
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


def merge_telemetry(existing: dict[str, Any], telemetry: dict[str, Any]) -> dict[str, Any]:
    """telemetry.go mergeTelemetryWithDetections: other writers' fields kept, telemetry's replaced."""
    merged = copy.copy(existing)
    for name in _TELEMETRY_OWNED:
        if telemetry.get(name) is not None:
            merged[name] = telemetry[name]
    zero = GoTime.zero()
    merged["updated_at"] = later(existing.get("updated_at", zero), telemetry.get("updated_at", zero))
    merged["is_live"] = telemetry.get("is_live", False)
    merged["system_id"] = telemetry.get("system_id", 0)
    merged["component_id"] = telemetry.get("component_id", 0)
    merged["last_seen"] = later(existing.get("last_seen", zero), telemetry.get("last_seen", zero))
    merged["telemetry_cursors"] = telemetry.get("telemetry_cursors")
    return merged


def state_from_row(row: Row, org: Row | None) -> dict[str, Any]:
    """An entity row as initializeEntityFromDB turns it into EntityState."""
    state: dict[str, Any] = {
        "entity_id": row["entity_id"],
        "org_id": row["org_id"],
        "org_name": (org or {}).get("name", ""),
        "name": row.get("name") or "",
        "entity_type": row["entity_type"],
        "status": row["status"],
        "priority": row["priority"],
        "is_live": bool(row.get("is_live")),
        "components": _json_column(row.get("components")),
        "aliases": {},
        "tags": _json_column(row.get("tags"), default=[]),
        "metadata": _json_column(row.get("metadata")),
        "created_at": _row_time(row.get("created_at")),
        "updated_at": _row_time(row.get("updated_at")),
    }
    if row.get("latitude") is not None and row.get("longitude") is not None:
        point = {"latitude": float(row["latitude"]), "longitude": float(row["longitude"]), "timestamp": GoTime.now()}
        if row.get("altitude") is not None:
            point["altitude_msl"] = float(row["altitude"])
        state["position"] = {"global": point}
    return state


def _json_column(text: Any, default: Any = None) -> Any:
    try:
        value = json.loads(text) if text else None
    except ValueError:
        value = None
    if value is None:
        return {} if default is None else default
    return value


def _row_time(text: Any) -> GoTime:
    try:
        return GoTime.parse(str(text))
    except GoJSONError:
        return GoTime.zero()


def _dump(state: dict[str, Any]) -> bytes:
    return json.dumps(encode_state(state)).encode()
