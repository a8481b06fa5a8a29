"""The server-side JetStream objects (docs/contract.md#streams) and the entity side effects.

On start the real server creates-or-updates its four streams, its durable pull consumers and
(v0.1) the KV bucket ``CONSTELLATION_GLOBAL_STATE``; a restart on the same store finds them and
must not fail. Entity changes made over REST are published to ``CONSTELLATION_ENTITIES``
(and, v0.1, mirrored into the KV bucket), as the real entity service does.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    KeyValueConfig,
    ReplayPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.kv import KeyValue

from alien.logs import get_logger
from alien_testing.emulator import legacy_api, v01_api
from alien_testing.emulator.contract import (
    CONSUMER_ACK_WAIT_S,
    CONSUMER_MAX_ACK_PENDING,
    ENTITIES_SUBJECT,
    KV_BUCKET,
    KV_HISTORY,
    MIB,
    Dialect,
    Release,
    StreamSpec,
    consumer_max_deliver,
    stream_specs,
)
from alien_testing.emulator.store import Row, Store

log = get_logger(__name__)
_PUBLISH_TIMEOUT_S = 2.0


def stream_config(spec: StreamSpec, replicas: int = 1) -> StreamConfig:
    """The stream as the real server creates it; `replicas` > 1 only on a cluster (the real server runs one node)."""
    return StreamConfig(
        name=spec.name,
        subjects=[spec.subject],
        retention=spec.retention,
        max_msgs=spec.max_msgs,
        max_bytes=spec.max_bytes,
        max_age=spec.max_age_s,
        max_msg_size=spec.max_msg_size,
        storage=StorageType.FILE,
        num_replicas=replicas,
        duplicate_window=spec.duplicate_window_s,
        allow_rollup_hdrs=spec.allow_rollup,
        allow_direct=spec.allow_direct,
        discard=spec.discard,
    )


def consumer_config(spec: StreamSpec, max_deliver: int) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=spec.consumer,
        filter_subject=spec.subject,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=CONSUMER_ACK_WAIT_S,
        max_deliver=max_deliver,
        max_ack_pending=CONSUMER_MAX_ACK_PENDING,
        deliver_policy=DeliverPolicy.ALL,
        replay_policy=ReplayPolicy.INSTANT,
    )


class ServerObjects:
    """Create-or-verify the server's streams, consumers and KV bucket."""

    def __init__(
        self,
        js: JetStreamContext,
        dialect: Dialect,
        command_processor: bool,
        release: Release = "v0.1.1",
        replicas: int = 1,
        consumers: bool = True,
    ) -> None:
        self._js = js
        self.replicas = replicas
        self.consumers = consumers
        self._dialect = dialect
        self._release = release
        self.specs = stream_specs(dialect, release)
        self.command_processor = command_processor
        self.kv: KeyValue | None = None

    def runs_consumer(self, spec: StreamSpec) -> bool:
        if spec.consumer is None or not self.consumers:
            return False
        return spec.name != "CONSTELLATION_COMMANDS" or self.command_processor

    async def ensure_all(self) -> None:
        for spec in self.specs:
            await self.ensure(spec)
        if self._dialect == "v0.1":
            self.kv = await self._ensure_kv()

    async def ensure(self, spec: StreamSpec) -> None:
        """Stream: update if present, else add (as the real server does). Then its consumer."""
        config = stream_config(spec, self.replicas)
        try:
            await self._js.stream_info(spec.name)
            await self._js.update_stream(config)
        except nats.js.errors.NotFoundError:
            await self._js.add_stream(config)
        if spec.consumer is None:
            return
        try:
            await self._js.consumer_info(spec.name, spec.consumer)
            present = True
        except nats.js.errors.NotFoundError:
            present = False
        wanted = consumer_config(spec, consumer_max_deliver(self._dialect, self._release))
        if self.runs_consumer(spec) and not present:
            await self._js.add_consumer(spec.name, wanted)
        elif self.runs_consumer(spec) and self._dialect == "v0.1" and self._release == "rc":
            # rc updates existing consumers so retry budgets change on upgrade (nats.go
            # CreateDurableConsumer); older servers leave an existing consumer alone.
            await self._js.add_consumer(spec.name, wanted)
        elif not self.runs_consumer(spec) and present:
            # A deployment without command-processor: one left in the store would refuse
            # every other consumer on the work queue (docs/contract.md#work-queue-consumers, err_code 10100).
            await self._js.delete_consumer(spec.name, spec.consumer)

    async def _ensure_kv(self) -> KeyValue:
        try:
            return await self._js.key_value(KV_BUCKET)
        except nats.js.errors.BucketNotFoundError:
            return await self._js.create_key_value(
                KeyValueConfig(
                    bucket=KV_BUCKET,
                    description="Global state storage for fleets and swarms",
                    history=KV_HISTORY,
                    max_bytes=512 * MIB,
                    storage=StorageType.FILE,
                    replicas=self.replicas,
                    direct=True,  # nats.go CreateKeyValue (the real server's client) allows direct get
                )
            )


class EntityEvents:
    """Publish entity events (and, v0.1, sync KV) after REST changes, like the entity service."""

    def __init__(self, js: JetStreamContext, dialect: Dialect, store: Store, objects: ServerObjects) -> None:
        self._js = js
        self._dialect = dialect
        self._store = store
        self._objects = objects

    async def __call__(self, event_type: str, row: Row) -> None:
        try:
            await asyncio.wait_for(self._publish(event_type, row), _PUBLISH_TIMEOUT_S)
            if self._objects.kv is not None:
                await asyncio.wait_for(self._sync_kv(event_type, row), _PUBLISH_TIMEOUT_S)
        except (nats.errors.Error, asyncio.TimeoutError) as exc:
            # The v0.0.1 server publishes from a goroutine and only logs failures.
            log.warning("entity event %s not published (%s)", event_type, type(exc).__name__)

    def subject(self, event_type: str, org_id: str) -> str:
        # The v0.0.1 server publishes every entity event on ...{org_id}.created (its
        # publishEntityEvent always uses EntityCreatedSubject); v0.1 uses one subject per type.
        suffix = "created" if self._dialect == "v0.0.1" else event_type
        return f"{ENTITIES_SUBJECT}.{org_id}.{suffix}"

    async def _publish(self, event_type: str, row: Row) -> None:
        fresh = event_type == "created"  # the server sends the in-memory entity it just inserted
        render = legacy_api.entity_view if self._dialect == "v0.0.1" else v01_api.entity_view
        view = render(row, fresh=fresh)
        data: dict[str, Any] = {k: row[k] for k in ("entity_id", "org_id", "entity_type", "status", "priority")}
        if event_type in ("created", "updated"):
            data["entity"] = view
        subject = self.subject(event_type, row["org_id"])
        event = {
            "id": str(uuid.uuid4()),
            "type": event_type,
            "subject": subject,
            "data": data,
            "timestamp": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
            "source": "entity-service",
        }
        msg_id = f"{row['entity_id']}-{event_type}-{time.time_ns()}"
        await self._js.publish(subject, json.dumps(event).encode(), headers={"Nats-Msg-Id": msg_id})

    async def _sync_kv(self, event_type: str, row: Row) -> None:
        kv = self._objects.kv
        assert kv is not None
        key = row["entity_id"]
        if event_type == "deleted":
            try:
                await kv.delete(key)
            except nats.js.errors.KeyNotFoundError:
                pass
            return
        state: dict[str, Any] = {}
        try:
            entry = await kv.get(key)
            if entry.value:
                state = json.loads(entry.value)
        except (nats.js.errors.KeyNotFoundError, ValueError):
            pass
        org = self._store.get_org(row["org_id"])
        state.update({k: row[k] for k in ("entity_id", "org_id", "entity_type", "status", "priority", "is_live")})
        state["name"] = row["name"] or ""
        state["updated_at"] = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
        if org is not None and not state.get("org_name"):
            state["org_name"] = org["name"]
        await kv.put(key, json.dumps(state).encode())
