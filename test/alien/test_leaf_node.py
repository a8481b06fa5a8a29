"""Edge deployments that outgrow the outbox: the client talks to a NATS leaf node on the robot,
and the leaf node forwards to the hub (the mothership's NATS) across the uplink."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alien import AlienClient, AlienConfig
from alien_testing import NatsServer
from alien_testing.nats_server import free_port

CLIENT_LIFECYCLE = ("bootsequence", "shutdown")  # the client's own events (docs/contract.md#lifecycle-events)


def _events(emulator: Any) -> list[Any]:
    """The events the hub stored, but the client's lifecycle events."""
    return [m for m in emulator.events() if m.json()["event_type"] not in CLIENT_LIFECYCLE]


async def test_client_through_a_leaf_node_reaches_the_hub_streams(
    make_emulator: Any, make_config: Callable[..., AlienConfig], tmp_path: Path
) -> None:
    leaf_port = free_port()
    hub = NatsServer(tmp_path / "hub", extra_config=f'leafnodes {{ listen: "127.0.0.1:{leaf_port}" }}')
    hub.start()
    # the robot's own server: JetStream of its own (domain "robot"), a leaf connection to the hub
    leaf = NatsServer(
        tmp_path / "leaf",
        jetstream_domain="robot",
        extra_config=f'leafnodes {{ remotes: [ {{ url: "nats-leaf://127.0.0.1:{leaf_port}" }} ] }}',
    )
    leaf.start()
    try:
        emulator = make_emulator(dialect="v0.0.1", nats_url=hub.url)  # the mothership sits on the hub
        # the hub's domain (docs/contract.md#nats)
        config = make_config(emulator, leaf, jetstream_domain="constellation")
        async with AlienClient(config) as client:
            ids = [await client.publish_telemetry({"n": n}) for n in range(20)]
            event_id = await client.publish_event("via_leaf", {"ok": True})
            assert await client.flush(15)
        await emulator.wait_for_async(
            lambda: len(emulator.telemetry()) >= 20 and _events(emulator), 15, "messages on the hub"
        )
        assert {m.headers["Nats-Msg-Id"] for m in emulator.telemetry()} == set(ids)
        assert [m.headers["Nats-Msg-Id"] for m in _events(emulator)] == [event_id]
        emulator.stop()
    finally:
        leaf.stop()
        hub.stop()
