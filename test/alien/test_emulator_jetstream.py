"""The emulator's NATS side against docs/contract.md: entity events, the KV bucket, streams, consumers, restarts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import nats
import nats.js.errors
import pytest
import pytest_asyncio
from emulator_support import BOTH, LEGACY_AUTH, V01_AUTH, Http, legacy_entity, legacy_org, v01_entity
from nats.js.api import ConsumerConfig, DiscardPolicy, RetentionPolicy

from alien_testing import MothershipEmulator, NatsServer
from alien_testing.emulator import KV_BUCKET, stream_specs

pytestmark = pytest.mark.timeout(60)


@pytest_asyncio.fixture
async def js(nats_server: NatsServer) -> AsyncIterator[Any]:
    nc = await nats.connect(nats_server.url, reconnect_time_wait=0.1)
    try:
        yield nc.jetstream()
    finally:
        await nc.close()


# -- entity events and KV ----------------------------------------------------------------------


@pytest.mark.asyncio
@BOTH
async def test_entity_changes_publish_entity_events(emulator: MothershipEmulator, http: Http) -> None:
    em = emulator
    if em.dialect == "v0.0.1":
        org_id = await legacy_org(http, em)
        entity_id = (await legacy_entity(http, em, org_id))["entity_id"]
        await http(
            "PUT",
            f"{em.url}/api/v1/entities",
            params={"org_id": org_id, "entity_id": entity_id},
            json={"status": "active"},
            headers=LEGACY_AUTH,
        )
    else:
        org_id = "default"
        entity_id = (await v01_entity(http, em))["entity_id"]
        await http(
            "PUT",
            f"{em.url}/api/v1/organizations/default/entities/{entity_id}",
            json={"status": "active"},
            headers=V01_AUTH,
        )
    em.delete_entity(org_id, entity_id)
    await em.wait_for_async(lambda: len(em.entity_events()) == 3, what="3 entity events")
    events = [m.json() for m in em.entity_events()]
    assert [e["type"] for e in events] == ["created", "updated", "deleted"]
    assert all(e["data"]["entity_id"] == entity_id for e in events)
    assert all(m.subject.startswith(f"constellation.entities.{org_id}.") for m in em.entity_events())
    assert all("Nats-Msg-Id" in m.headers for m in em.entity_events())
    assert em.entities() == []
    with pytest.raises(LookupError):
        em.delete_entity(org_id, entity_id)


@pytest.mark.asyncio
@BOTH
async def test_kv_bucket_exists_only_for_v01(emulator: MothershipEmulator, js: Any, http: Http) -> None:
    if emulator.dialect == "v0.0.1":
        with pytest.raises(nats.js.errors.BucketNotFoundError):
            await js.key_value(KV_BUCKET)
        return
    kv = await js.key_value(KV_BUCKET)
    entity_id = (await v01_entity(http, emulator))["entity_id"]
    state = json.loads((await kv.get(entity_id)).value)
    assert (state["entity_id"], state["org_id"], state["name"]) == (entity_id, "default", "hawk-1")


# -- docs/contract.md#streams, #work-queue-consumers -------------------------------------------


@pytest.mark.asyncio
@BOTH
async def test_stream_configs_match_the_contract(emulator: MothershipEmulator, js: Any) -> None:
    expected = {  # docs/contract.md#streams: subjects, retention, dup window, max msg, discard
        "CONSTELLATION_ENTITIES": ("constellation.entities.>", RetentionPolicy.LIMITS, 120, 1024 * 1024, "old"),
        "CONSTELLATION_EVENTS": ("constellation.events.>", RetentionPolicy.WORK_QUEUE, 120, 256 * 1024, "old"),
        "CONSTELLATION_TELEMETRY": (
            "constellation.telemetry.>",
            RetentionPolicy.INTEREST if emulator.dialect == "v0.0.1" else RetentionPolicy.LIMITS,
            30,
            64 * 1024 if emulator.dialect == "v0.0.1" else 128 * 1024,
            "old",
        ),
        "CONSTELLATION_COMMANDS": ("constellation.commands.>", RetentionPolicy.WORK_QUEUE, 60, 32 * 1024, "new"),
    }
    consumers = {
        "CONSTELLATION_ENTITIES": "entity-processor",
        "CONSTELLATION_EVENTS": "event-processor",
        "CONSTELLATION_TELEMETRY": "telemetry-processor",
        "CONSTELLATION_COMMANDS": "command-processor",
    }
    for name, (subject, retention, window, max_msg, discard) in expected.items():
        config = (await js.stream_info(name)).config
        assert config.subjects == [subject]
        assert config.retention == retention
        assert config.duplicate_window == window
        assert config.max_msg_size == max_msg
        assert config.discard == DiscardPolicy(discard)
        info = await js.consumer_info(name, consumers[name])
        assert info.config.durable_name == consumers[name] and info.config.deliver_subject is None  # pull
    assert [s.name for s in stream_specs(emulator.dialect)] == list(expected)


@pytest.mark.asyncio
async def test_duplicate_msg_id_within_window_is_flagged(emulator: MothershipEmulator, js: Any) -> None:
    subject = "constellation.telemetry.org-1.ent-1"
    first = await js.publish(subject, b'{"n":1}', headers={"Nats-Msg-Id": "m-1"})
    again = await js.publish(subject, b'{"n":1}', headers={"Nats-Msg-Id": "m-1"})
    assert not first.duplicate and again.duplicate is True and again.seq == first.seq
    await emulator.wait_for_async(lambda: len(emulator.telemetry()) >= 1, what="telemetry")
    received = emulator.telemetry()
    assert len(received) == 1 and received[0].headers["Nats-Msg-Id"] == "m-1"
    assert (received[0].subject, received[0].json(), received[0].stream_seq) == (subject, {"n": 1}, first.seq)


@pytest.mark.asyncio
async def test_paused_processing_stores_but_handles_nothing_until_resumed(
    emulator: MothershipEmulator, js: Any
) -> None:
    subject = "constellation.telemetry.org-1.ent-1"
    emulator.pause_processing(True)
    try:
        acks = [await js.publish(subject, b'{"n":%d}' % n, headers={"Nats-Msg-Id": f"p-{n}"}) for n in range(20)]
        assert (await js.stream_info("CONSTELLATION_TELEMETRY")).state.messages == 20  # stored as ever
        await asyncio.sleep(0.5)  # the window in which nothing may be handled
        assert emulator.telemetry() == []
    finally:
        emulator.pause_processing(False)
    await emulator.wait_for_async(lambda: len(emulator.telemetry()) == 20, what="the stored telemetry, once resumed")
    assert [m.stream_seq for m in emulator.telemetry()] == [ack.seq for ack in acks]


@pytest.mark.asyncio
async def test_command_processor_drains_commands_and_refuses_a_second_consumer(
    emulator: MothershipEmulator, js: Any
) -> None:
    subject = "constellation.commands.org-1.ent-1"
    with pytest.raises(nats.js.errors.BadRequestError) as refused:
        await js.add_consumer(
            "CONSTELLATION_COMMANDS", ConsumerConfig(durable_name="alien-ent-1", filter_subject=subject)
        )
    assert refused.value.err_code == 10100  # filtered consumer not unique on workqueue stream
    ack = await js.publish(subject, json.dumps({"type": "return_to_base"}).encode(), headers={"Nats-Msg-Id": "c1"})
    await emulator.wait_for_async(lambda: len(emulator.commands()) == 1, what="command recorded")
    command = emulator.commands()[0]
    assert (command.subject, command.stream_seq, command.json()["type"]) == (subject, ack.seq, "return_to_base")
    assert (await js.stream_info("CONSTELLATION_COMMANDS")).state.messages == 0  # acked -> gone


@pytest.mark.asyncio
async def test_without_command_processor_a_durable_consumer_is_accepted(make_emulator: Any, js: Any) -> None:
    em = make_emulator(command_processor=False)
    subject = "constellation.commands.org-1.ent-1"
    sub = await js.pull_subscribe(subject, durable="alien-ent-1", stream="CONSTELLATION_COMMANDS")
    await js.publish(subject, b'{"type":"stop"}')
    msgs = await sub.fetch(1, timeout=5)
    assert msgs[0].data == b'{"type":"stop"}'
    await msgs[0].ack()
    assert em.commands() == []
    with pytest.raises(nats.js.errors.NotFoundError):
        await js.consumer_info("CONSTELLATION_COMMANDS", "command-processor")


@pytest.mark.asyncio
async def test_core_subscription_sees_commands_live(emulator: MothershipEmulator, nats_server: NatsServer) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        sub = await nc.subscribe("constellation.commands.org-1.ent-1")
        await nc.flush()
        await nc.jetstream().publish("constellation.commands.org-1.ent-1", b'{"command_type":"land"}')
        assert (await sub.next_msg(timeout=5)).data == b'{"command_type":"land"}'
    finally:
        await nc.close()
    await emulator.wait_for_async(lambda: len(emulator.commands()) == 1, what="command-processor copy")


@pytest.mark.asyncio
@BOTH
async def test_events_are_consumed_and_oversized_commands_refused(emulator: MothershipEmulator, js: Any) -> None:
    ack = await js.publish("constellation.events.org-1.bootsequence", b'{"event_type":"bootsequence"}')
    await emulator.wait_for_async(lambda: len(emulator.events()) == 1, what="event")
    assert emulator.events()[0].stream_seq == ack.seq
    assert (await js.stream_info("CONSTELLATION_EVENTS")).state.messages == 0  # work queue
    with pytest.raises(nats.js.errors.BadRequestError) as refused:
        await js.publish("constellation.commands.org-1.ent-1", b"x" * (32 * 1024 + 1))
    assert refused.value.err_code == 10054  # 32 KiB max message


@pytest.mark.asyncio
@pytest.mark.parametrize("crash", [False, True], ids=["restart", "kill-and-start"])
async def test_emulator_survives_a_nats_server_restart(
    emulator: MothershipEmulator, nats_server: NatsServer, crash: bool
) -> None:
    if crash:  # no goodbye from the server: the processors notice the silence and recover
        nats_server.kill()
        nats_server.start()
    else:
        nats_server.restart()
    nc = await nats.connect(nats_server.url)
    try:
        await nc.jetstream().publish("constellation.commands.org-1.ent-1", b'{"type":"after-restart"}')
    finally:
        await nc.close()
    await emulator.wait_for_async(lambda: len(emulator.commands()) == 1, timeout=15, what="command after restart")
    await emulator.wait_for_async(lambda: emulator.nats_connected, timeout=15, what="emulator reconnected")


@pytest.mark.asyncio
async def test_health_reports_the_nats_link(emulator: MothershipEmulator, nats_server: NatsServer, http: Http) -> None:
    nats_server.kill()
    await emulator.wait_for_async(lambda: not emulator.nats_connected, what="emulator sees NATS down")
    status, _, body = await http("GET", f"{emulator.url}/health")
    assert status == 503 and body["data"]["status"] == "unhealthy"
    assert body["data"]["details"]["nats"].startswith("unhealthy")
    nats_server.start()
    await emulator.wait_for_async(lambda: emulator.nats_connected, what="emulator reconnected")
    assert (await http("GET", f"{emulator.url}/health"))[0] == 200


@pytest.mark.asyncio
async def test_restart_on_an_existing_store_reuses_the_streams(nats_server: NatsServer) -> None:
    subject = "constellation.commands.org-1.ent-1"
    with MothershipEmulator(nats_server.url) as first:
        nc = await nats.connect(nats_server.url)
        await nc.jetstream().publish(subject, b"{}")
        await nc.close()
        await first.wait_for_async(lambda: len(first.commands()) == 1, what="command")  # acked (confirmed)
    await asyncio.to_thread(nats_server.restart)
    second = MothershipEmulator(nats_server.url)
    await asyncio.to_thread(second.start)  # create-or-verify: existing streams and consumers are fine
    try:
        nc = await nats.connect(nats_server.url)
        state = (await nc.jetstream().stream_info("CONSTELLATION_COMMANDS")).state
        await nc.close()
        assert (state.last_seq, state.messages) == (1, 0)  # the store survived; the command was consumed once
        assert second.commands() == []
    finally:
        await asyncio.to_thread(second.stop)
