"""How the server learns that this device is there (docs/contract.md#lifecycle-events).

- `bootsequence` on connect and after every reconnect, `shutdown` on close: the server admits
  the entity's telemetry on the first and withdraws it on the second;
- with envelope_v1, telemetry waits for the admission (the strict server quarantines telemetry of
  an entity it has not admitted, and admits asynchronously without answering);
- the MAVLink HEARTBEAT once a period while connected;
- the entity's fields in the operator map (KV entity state), where the server reads them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from alien.config import AlienConfig
from alien.delivery.outbox import Lane, Outbox
from alien.entity_state import EntityStateWriter, state_from_telemetry
from alien.link import NatsLink
from alien.mothership.enums import Dialect, nearest_status, resolve_entity_type
from alien.telemetry.composer import Composer
from alien.telemetry.encoders import EncoderIds
from alien.telemetry.readings import encode_lifecycle
from alien.wire import event_subject, telemetry_subject

HEARTBEAT_KEY = "(heartbeat)"  # the heartbeat's own flood-limit key, apart from any reading's keys


class Presence:
    """The lifecycle events, admission hold, heartbeat and entity state of one entity."""

    def __init__(
        self,
        config: AlienConfig,
        link: NatsLink,
        outbox: Outbox,
        composer: Composer,
        entity_state: EntityStateWriter,
        *,
        closing: Callable[[], bool],
    ) -> None:
        """`closing()`: True once the client closes (a reconnect must not admit it again)."""
        self._config, self._link, self._outbox = config, link, outbox
        self._composer, self._entity_state, self._closing = composer, entity_state, closing
        self._wire_format = composer.wire_format
        self.status = "active"
        self.health_level: str | None = None  # the last health reading's overall level
        self._heartbeat: asyncio.Task[None] | None = None
        self._admission: asyncio.Task[None] | None = None

    def observe(self, data: dict[str, Any]) -> None:
        """Keep what the heartbeat and the KV entity state report from a telemetry reading."""
        health = data.get("health")
        if isinstance(health, dict) and isinstance(health.get("level"), str):
            self.health_level = health["level"]
        if self._entity_state.disabled is None:  # not kept when it is never written
            state = state_from_telemetry(data)
            if state:
                self._entity_state.update(state)

    async def announce(self) -> None:
        """Queue `bootsequence` (on connect and after every reconnect); hold telemetry for admission."""
        if self._closing():
            return  # a reconnect while closing must not admit a departing device again
        msg_id = self.queue_lifecycle("bootsequence")
        if msg_id is not None and self._wire_format.format == "envelope_v1":
            self._outbox.hold_telemetry("admission")
            if self._admission is not None:
                self._admission.cancel()
            self._admission = asyncio.create_task(self._release_telemetry_after(msg_id), name="alien-admission")

    async def _release_telemetry_after(self, msg_id: str) -> None:
        try:
            await self._outbox.settled(msg_id)
            await asyncio.sleep(self._config.admission_grace_s)  # no admission answer exists to wait for
        finally:
            # A newer bootsequence (reconnect) holds telemetry for itself: only the latest releases.
            if self._admission is asyncio.current_task():
                self._outbox.release_telemetry("admission")

    def change_status(self, status: str, dialect: Dialect | None) -> None:
        """Queue `status_changed`; the heartbeat and the operator map report `status` from now on.

        A status the server does not store (e.g. `returning`) is shown as the nearest one it accepts
        (`server_status`, known with the dialect); the event carries the exact status either way.
        """
        event: dict[str, Any] = {"status": status}
        if dialect is not None:
            event["server_status"] = nearest_status(status, dialect)
        self._composer.event("status_changed", event)
        self.status = status
        self._entity_state.update({"status": event.get("server_status", status)})  # the map shows server enums

    def queue_lifecycle(self, event_type: str) -> str | None:
        """Queue `bootsequence` / `shutdown`; None when lifecycle events are off or not registered."""
        ids = self._composer.ids()
        if not self._config.lifecycle_events or ids is None:
            return None
        org_id, entity_id = ids
        device_id = self._config.device_id or self._config.entity_name or entity_id
        payload = encode_lifecycle(event_type, entity_id, device_id)
        return self._composer.put(event_subject(org_id, event_type), payload, Lane.CONTROL)

    def start(self) -> None:
        """Once registered and the dialect known: the KV entity state (where the server reads it), the heartbeat."""
        ids = self._composer.ids()
        if ids is None:
            return
        config, entity_state = self._config, self._entity_state
        state = config.entity_state
        dialect = self._wire_format.dialect()
        refused_before = config.learnt_denials.holds("entity_state", config.nats_url)
        if state == "auto" and dialect == "v0.1" and refused_before:
            entity_state.never_written("refused on an earlier start (kept in the identity file for a day)")
        if state == "on" or (state == "auto" and dialect == "v0.1" and not refused_before):
            org_id, entity_id = ids
            owned: dict[str, Any] = {
                "entity_id": entity_id,
                "org_id": org_id,
                "entity_type": resolve_entity_type(config.entity_type, dialect),
                "status": self.status,
                "is_live": True,
                "priority": "normal",  # the server's default at creation; kept when an operator set another
            }
            if config.entity_name:  # never blank out a name another writer set
                owned["name"] = config.entity_name
            entity_state.update(owned)
            entity_state.start()
        else:
            # Never written on this server: readings need not be turned into state any more.
            entity_state.never_written(f"not written (ALIEN_ENTITY_STATE={state}, a {dialect} server)")
        if self._heartbeat is None and config.heartbeat_period_s > 0:
            self._heartbeat = asyncio.create_task(self._heartbeats(), name="alien-heartbeat")

    async def _heartbeats(self) -> None:
        """HEARTBEAT once a period while connected (MAVLink formats; seed has none)."""
        while True:
            await self._link.connected.wait()
            ids = self._composer.ids()
            if ids is not None:  # None only while initialize() registers the entity again
                beat = self._wire_format.encoder().heartbeat(self.status, self.health_level, EncoderIds(*ids))
                if beat is None:
                    self._heartbeat = None  # this format has none; started again if the format changes
                    return
                if not self._composer.rate_limited(HEARTBEAT_KEY, bounded_by_itself=True):
                    self._composer.put(telemetry_subject(*ids), beat.payload, Lane.TELEMETRY, beat.msg_id)
            await asyncio.sleep(self._config.heartbeat_period_s)  # the heartbeat's period, not a wait for state

    def leave(self) -> None:
        """Closing: no more heartbeat or admission hold (shutdown is queued by close())."""
        for task in (self._heartbeat, self._admission):
            if task is not None:
                task.cancel()
