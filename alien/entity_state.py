"""The device's entry on the operator's map: KV bucket CONSTELLATION_GLOBAL_STATE (docs/contract.md#operator-map-kv).

v0.1.1 servers leave the entity state to edge clients: every known peer merges the fields it
owns into the JSON value under key = entity_id, with revision compare-and-set, so concurrent
writers (the server's REST side, other peers) never lose each other's fields. Newer servers write
the state themselves and deny edge keys KV access: the first denial switches the writer off with
one log line. Writes are throttled (one per `period_s` at most, the latest state wins).
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from typing import Any

import nats.errors
import nats.js.errors
from nats.js.kv import KeyValue

from alien.link import NatsLink
from alien.logs import get_logger
from alien.wire import dumps, utc_timestamp

logger = get_logger("alien.entity_state")

BUCKET = "CONSTELLATION_GLOBAL_STATE"
# The top-level fields Alien owns; of "position" only "position.global" (others may add e.g. a
# local frame next to it).
# entity_id and org_id place the entity under its organization on the v0.1.1 map (its REST side
# writes them at creation; an entry Alien creates first must carry them too). Of "vfr" only the
# heading is Alien's.
OWNED_FIELDS = (
    "position", "power", "status", "is_live", "last_seen", "name", "entity_type", "entity_id", "org_id", "vfr"
)  # fmt: skip
# Fields written only where the entry has none: an operator may change them through the REST API.
DEFAULT_FIELDS = ("priority",)
_NESTED = ("position", "vfr")  # merged key by key: other writers keep their keys beside Alien's
_WRITABLE = frozenset(OWNED_FIELDS) | frozenset(DEFAULT_FIELDS)
CONFLICT_ATTEMPTS = 8


def merge_owned(
    current: dict[str, Any], owned: dict[str, Any], defaults: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`current` with Alien's fields replaced by `owned` and `defaults` where missing; others' fields kept."""
    merged = dict(current)
    for key, value in (defaults or {}).items():
        if merged.get(key) in (None, ""):
            merged[key] = value
    for key, value in owned.items():
        if key in _NESTED and isinstance(value, dict):
            section = merged.get(key)
            merged[key] = {**(section if isinstance(section, dict) else {}), **value}
        else:
            merged[key] = value
    return merged


def state_from_telemetry(data: dict[str, Any]) -> dict[str, Any]:
    """The entity-state fields one telemetry reading updates.

    The layout and units are the ones the newest server writes itself (docs/contract.md#operator-map-kv): degrees and
    metres in `position.global`, volts, amps (positive = drawn, MAVLink's sign; ROS's
    BatteryState uses negative for discharging) and an integer `battery_remaining` (-1 unknown).
    The heading goes where the server keeps it, `vfr.heading`, in whole degrees 0..359.
    """
    state: dict[str, Any] = {}
    position = data.get("position")
    if isinstance(position, dict) and _finite(position.get("latitude")) and _finite(position.get("longitude")):
        point = {"latitude": float(position["latitude"]), "longitude": float(position["longitude"])}
        for source, target in (("altitude", "altitude_msl"), ("relative_altitude", "altitude_relative")):
            if _finite(position.get(source)):
                point[target] = float(position[source])
        state["position"] = {"global": point}
        if _finite(position.get("heading")):
            state["vfr"] = {"heading": math.floor(float(position["heading"]) % 360.0 + 0.5) % 360}
    power = data.get("power")
    level = data.get("battery_level")
    if isinstance(power, dict) or _finite(level):
        power = power if isinstance(power, dict) else {}
        percentage: Any = power.get("percentage", level)
        state["power"] = {
            "voltage": power.get("voltage") if _finite(power.get("voltage")) else None,
            "current": -float(power["current"]) if _finite(power.get("current")) else None,
            "battery_remaining": round(float(percentage)) if _finite(percentage) else -1,  # -1: unknown (MAVLink)
        }
    return state


def _finite(value: Any) -> bool:
    kind = type(value)
    if kind is float:  # per reading, several times: the exact types first
        return math.isfinite(value)
    if kind is int:
        return True
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class EntityStateWriter:
    """Merges Alien's fields into the entity's KV entry, at most once per `period_s`."""

    def __init__(
        self,
        link: NatsLink,
        key: Callable[[], str | None],
        *,
        period_s: float = 1.0,
        bucket: str = BUCKET,
    ) -> None:
        self._link = link
        self._key = key
        self._period_s = period_s
        self._bucket_name = bucket
        self._owned: dict[str, Any] = {}
        self._defaults: dict[str, Any] = {}  # DEFAULT_FIELDS: written where the entry has none
        self._dirty = asyncio.Event()
        self._kv: KeyValue | None = None
        self._task: asyncio.Task[None] | None = None
        self.disabled: str | None = None  # why the writer switched itself off
        self._stopping = False
        self._not_objects: set[str] = set()  # keys already reported as not holding a JSON object
        self.writes = 0
        self.conflicts = 0
        self.last_revision: int | None = None
        link.on_denied(self._on_denied)

    def update(self, fields: dict[str, Any]) -> None:
        """Change owned fields; written within `period_s` (later changes to a field win)."""
        if not _WRITABLE.issuperset(fields):  # per reading: no sets built in the usual case
            unknown = set(fields) - _WRITABLE
            raise ValueError(f"entity state fields {sorted(unknown)} are not Alien's (owned: {OWNED_FIELDS})")
        if self.disabled is not None:
            return
        for name, value in fields.items():
            if name in DEFAULT_FIELDS:
                self._defaults[name] = value
            elif name in _NESTED and isinstance(value, dict) and isinstance(self._owned.get(name), dict):
                self._owned[name] = {**self._owned[name], **value}
            else:
                self._owned[name] = value
        self._dirty.set()

    def never_written(self, reason: str) -> None:
        """Off from the start, quietly (e.g. a server that writes the state itself); the first reason stays."""
        if self.disabled is None:
            self.disabled = reason

    def start(self) -> None:
        if self._task is None and self.disabled is None:
            self._task = asyncio.create_task(self._run(), name="alien-entity-state")

    async def stop(self, final: dict[str, Any] | None = None, timeout: float = 2.0) -> None:
        """Stop the loop; write `final` fields (e.g. is_live false) once more if it was running.

        Bounded by `timeout` without asyncio.wait_for: on Python 3.11 a nats-py request can
        swallow a cancellation, and wait_for would then wait for it forever.
        """
        self._stopping = True  # the loop ends even if a nats-py call swallowed the cancellation
        self._dirty.set()
        task, self._task = self._task, None
        if task is None:
            return  # never started (e.g. a v0.0.1 server): nothing of ours is in the bucket
        task.cancel()
        await asyncio.wait({task}, timeout=timeout)
        if not final or self.disabled is not None or not self._link.is_connected:
            return
        self._owned.update(final)
        writing = asyncio.ensure_future(self.write())
        done, _ = await asyncio.wait({writing}, timeout=timeout)
        if not done:
            writing.cancel()
            logger.debug("final entity state not written within %.1fs", timeout)
        elif writing.exception() is not None:
            logger.debug("final entity state not written: %s", writing.exception())

    async def _run(self) -> None:
        while self.disabled is None and not self._stopping:
            await self._dirty.wait()
            if self._stopping:
                return
            await self._link.connected.wait()
            self._dirty.clear()
            try:
                await self.write()
            except (nats.errors.Error, asyncio.TimeoutError, OSError) as exc:
                if self.disabled is None:
                    logger.debug("entity state not written yet (%s); will retry", type(exc).__name__)
                    if self._link.is_connected:  # a KV stream without a leader; a lost link says so itself
                        self._link.stream_outages.unanswered(self._kv_subject(), type(exc).__name__)
                    self._dirty.set()
            # Rate limit, not synchronisation: the KV entry changes once per period at most.
            await asyncio.sleep(self._period_s)

    async def write(self) -> bool:
        """Merge the owned fields into the KV entry now; False when there is nothing to write."""
        key = self._key()
        if key is None or self.disabled is not None or not self._owned:
            return False
        kv = await self._bucket()
        if kv is None:
            return False
        owned = {**self._owned, "last_seen": utc_timestamp()}
        for _ in range(CONFLICT_ATTEMPTS):
            current, revision = await self._read(kv, key)
            if current is None:
                return False
            value = dumps(merge_owned(current, owned, self._defaults))
            try:
                if revision is None:
                    self.last_revision = await kv.create(key, value)
                else:
                    self.last_revision = await kv.update(key, value, last=revision)
            except nats.js.errors.KeyWrongLastSequenceError:
                self.conflicts += 1  # another writer got in between: read again and re-merge
                continue
            self.writes += 1
            if self._link.stream_outages.any:
                self._link.stream_outages.answered((self._kv_subject(),))
            return True
        # Only a KV stream that lost its quorum refuses a re-read revision this often: its leader
        # still counts writes it can no longer commit. Said once per outage for the whole link.
        logger.debug("entity state for %s not written: %d conflicting writes in a row", key, CONFLICT_ATTEMPTS)
        self._link.stream_outages.unanswered(self._kv_subject(), f"{CONFLICT_ATTEMPTS} conflicting writes in a row")
        return False

    def _kv_subject(self) -> str:
        return f"$KV.{self._bucket_name}"

    async def _bucket(self) -> KeyValue | None:
        if self._kv is None:
            try:
                # nats-py bounds the request itself (the link's JetStream timeout). No wait_for here:
                # on Python 3.11 it can swallow the cancellation that stop() sends this task.
                self._kv = await self._link.js.key_value(self._bucket_name)
            except nats.js.errors.BucketNotFoundError:
                self._disable(f"the server has no {self._bucket_name} KV bucket")
            except (asyncio.TimeoutError, nats.errors.TimeoutError):
                if self.disabled is None:  # a refusal was answered by nats-server first: _on_denied
                    raise
        return self._kv

    async def _read(self, kv: KeyValue, key: str) -> tuple[dict[str, Any] | None, int | None]:
        """The entry's JSON object and revision ({} and None when absent); None when not an object."""
        try:
            entry = await kv.get(key)
        except nats.js.errors.KeyDeletedError as exc:
            return {}, exc.entry.revision if exc.entry is not None else None
        except nats.js.errors.KeyNotFoundError:
            return {}, None
        try:
            current = json.loads(entry.value) if entry.value else {}
        except ValueError:
            current = None
        if not isinstance(current, dict):
            # Someone else's data we cannot merge into: never overwrite it (said once per key).
            if key not in self._not_objects:
                self._not_objects.add(key)
                logger.error("%s[%s] is not a JSON object; entity state left untouched", self._bucket_name, key)
            return None, None
        return current, entry.revision

    def _on_denied(self, operation: str, subject: str) -> None:
        bucket = self._bucket_name
        api = self._link.api_prefix
        kv_subjects = (f"$KV.{bucket}.", f"{api}STREAM.INFO.KV_{bucket}", f"{api}DIRECT.GET.KV_{bucket}")
        if subject.lower().startswith(tuple(s.lower() for s in kv_subjects)):
            self._disable("the server denies this key access to it")

    def _disable(self, reason: str) -> None:
        if self.disabled is None:
            self.disabled = reason
            logger.info(
                "entity state in %s switched off: %s (newer servers write it themselves; on v0.1.1 only "
                "an API key with the nats:all scope may write it)",
                self._bucket_name,
                reason,
            )
            self._dirty.set()  # wake the loop so it ends
