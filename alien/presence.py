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
from typing import TYPE_CHECKING, Any

from alien.encoders import EncoderIds
from alien.mothership.enums import resolve_entity_type
from alien.outbox import Lane
from alien.telemetry import encode_lifecycle
from alien.wire import event_subject, telemetry_subject

if TYPE_CHECKING:
    from alien.client import AlienClient

HEARTBEAT_KEY = "(heartbeat)"  # the heartbeat's own flood-limit key, apart from any reading's keys


class Presence:
    """The lifecycle events, admission hold, heartbeat and entity state of one AlienClient."""

    def __init__(self, client: AlienClient) -> None:
        self._client = client
        self.status = "active"
        self.health_level: str | None = None  # the last health reading's overall level
        self._heartbeat: asyncio.Task[None] | None = None
        self._admission: asyncio.Task[None] | None = None

    async def announce(self) -> None:
        """Queue `bootsequence` (on connect and after every reconnect); hold telemetry for admission."""
        if self._client._closed:
            return  # a reconnect while closing must not admit a departing device again
        msg_id = self.queue_lifecycle("bootsequence")
        client = self._client
        if msg_id is not None and client.telemetry_format == "envelope_v1":
            client.outbox.hold_telemetry("admission")
            if self._admission is not None:
                self._admission.cancel()
            self._admission = asyncio.create_task(self._release_telemetry_after(msg_id), name="alien-admission")

    async def _release_telemetry_after(self, msg_id: str) -> None:
        client = self._client
        try:
            await client.outbox.settled(msg_id)
            await asyncio.sleep(client.config.admission_grace_s)  # no admission answer exists to wait for
        finally:
            # A newer bootsequence (reconnect) holds telemetry for itself: only the latest releases.
            if self._admission is asyncio.current_task():
                client.outbox.release_telemetry("admission")

    def queue_lifecycle(self, event_type: str) -> str | None:
        """Queue `bootsequence` / `shutdown`; None when lifecycle events are off or not registered."""
        client = self._client
        if not client.config.lifecycle_events or not client.is_registered:
            return None
        org_id, entity_id = client._registered_ids()
        device_id = client.config.device_id or client.config.entity_name or entity_id
        payload = encode_lifecycle(event_type, entity_id, device_id)
        return client._enqueue(event_subject(org_id, event_type), payload, Lane.CONTROL)

    def start(self) -> None:
        """Once the dialect is known: the KV entity state (where the server reads it) and the heartbeat."""
        client = self._client
        state = client.config.entity_state
        dialect = client.wire_format.dialect()
        refused_before = client.config.learnt_denials.holds("entity_state", client.config.nats_url)
        if state == "auto" and dialect == "v0.1" and refused_before and client.entity_state.disabled is None:
            client.entity_state.disabled = "refused on an earlier start (kept in the identity file for a day)"
        if state == "on" or (state == "auto" and dialect == "v0.1" and not refused_before):
            org_id, entity_id = client._registered_ids()
            owned: dict[str, Any] = {
                "entity_id": entity_id,
                "org_id": org_id,
                "entity_type": resolve_entity_type(client.config.entity_type, dialect),
                "status": self.status,
                "is_live": True,
                "priority": "normal",  # the server's default at creation; kept when an operator set another
            }
            if client.config.entity_name:  # never blank out a name another writer set
                owned["name"] = client.config.entity_name
            client.entity_state.update(owned)
            client.entity_state.start()
        elif client.entity_state.disabled is None:
            # Never written on this server: readings need not be turned into state any more.
            client.entity_state.disabled = f"not written (ALIEN_ENTITY_STATE={state}, a {dialect} server)"
        if self._heartbeat is None and client.config.heartbeat_period_s > 0:
            self._heartbeat = asyncio.create_task(self._heartbeats(), name="alien-heartbeat")

    async def _heartbeats(self) -> None:
        """HEARTBEAT once a period while connected (MAVLink formats; seed has none)."""
        client = self._client
        while True:
            await client.link.connected.wait()
            org_id, entity_id = client._ids()
            beat = client.wire_format.encoder().heartbeat(self.status, self.health_level, EncoderIds(org_id, entity_id))
            if beat is None:
                self._heartbeat = None  # this format has none; started again if the format changes
                return
            if not client._rate_limited(HEARTBEAT_KEY, bounded_by_itself=True):
                client._enqueue(telemetry_subject(org_id, entity_id), beat.payload, Lane.TELEMETRY, beat.msg_id)
            await asyncio.sleep(client.config.heartbeat_period_s)  # the heartbeat's period, not a wait for state

    def leave(self) -> None:
        """Closing: no more heartbeat or admission hold (shutdown is queued by close())."""
        for task in (self._heartbeat, self._admission):
            if task is not None:
                task.cancel()
