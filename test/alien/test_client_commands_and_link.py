"""AlienClient end to end, commands and the link: real nats-server, the mothership emulator, real HTTP.

Command intake on the real server's layout (docs/contract.md#work-queue-consumers), bad commands
rejected and reported, a failing handler (docs/commands.md#intake); then the NATS link: a server
restart, a late server at first connect, wrong credentials, and the outbox counters logged
meanwhile (docs/delivery.md#counters).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from client_support import DIALECTS, send_command, until

from alien import AlienClient, AlienConfig, NatsAuthError

# --- commands ---


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_auto_intake_falls_back_to_core_on_a_real_server_layout(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], dialect: str
) -> None:
    emulator = make_emulator(dialect=dialect, command_processor=True)
    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    client = AlienClient(make_config(emulator, nats_server))

    async def on_return(data: dict[str, Any]) -> None:
        await received.put(data)

    client.register_command_handler("return_to_base", on_return)
    async with client:
        assert client.command_intake == "core"  # err 10100: the server's command-processor owns the queue
        subject = f"constellation.commands.{client.config.org_id}.{client.config.entity_id}"
        await send_command(nats_server.url, subject, b'{"type": "return_to_base", "speed": 3}')
        await send_command(nats_server.url, subject, b'{"command_type": "return_to_base", "speed": 4}')
        first = await asyncio.wait_for(received.get(), 10)
        second = await asyncio.wait_for(received.get(), 10)
    assert (first["speed"], second["speed"]) == (3, 4)


async def test_jetstream_intake_uses_a_durable_consumer_where_allowed(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig]
) -> None:
    emulator = make_emulator(dialect="v0.0.1", command_processor=False)
    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    config = make_config(emulator, nats_server, command_intake="jetstream")
    async with AlienClient(config) as client:
        client.register_command_handler("stop", received.put)
        assert client.command_intake == "jetstream"
        subject = f"constellation.commands.{client.config.org_id}.{client.config.entity_id}"
        info = await client.js.consumer_info("CONSTELLATION_COMMANDS", f"alien-{client.config.entity_id}")
        assert info.config.durable_name == f"alien-{client.config.entity_id}"
        await send_command(nats_server.url, subject, b'{"type": "stop"}')
        assert (await asyncio.wait_for(received.get(), 10))["type"] == "stop"

    # a command sent while the device is away waits in the stream for the durable consumer
    await send_command(nats_server.url, subject, b'{"type": "stop", "while": "away"}')
    async with AlienClient(make_config(emulator, nats_server, command_intake="jetstream")) as again:
        again.register_command_handler("stop", received.put)
        assert (await asyncio.wait_for(received.get(), 10)).get("while") == "away"


async def test_explicit_jetstream_intake_on_a_real_server_layout_fails_clearly(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig]
) -> None:
    emulator = make_emulator(dialect="v0.0.1", command_processor=True)
    client = AlienClient(make_config(emulator, nats_server, command_intake="jetstream"))
    with pytest.raises(Exception, match=r"10100|not unique"):
        await client.initialize()
    await client.close()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "malformed_json"),
        (b"\xff\xfe", "malformed_json"),
        (b"[1, 2, 3]", "not_an_object"),
        (b'{"params": {}}', "missing_type"),
        (b'{"type": "self_destruct", "command_id": "c-9"}', "unknown_type"),
        (b'{"type": "stop", "pad": "' + b"x" * 40_000 + b'"}', "too_large"),
    ],
)
async def test_bad_commands_are_rejected_and_reported(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], payload: bytes, reason: str
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    handled: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    async with AlienClient(make_config(emulator, nats_server, command_intake="core")) as client:
        client.register_command_handler("stop", handled.put)
        subject = f"constellation.commands.{client.config.org_id}.{client.config.entity_id}"
        await send_command(nats_server.url, subject, payload)
        await emulator.wait_for_async(
            lambda: any(m.subject.endswith(".command_rejected") for m in emulator.events()), 10, "rejection"
        )
        # the intake is still alive after the bad command
        await send_command(nats_server.url, subject, b'{"type": "stop"}')
        assert (await asyncio.wait_for(handled.get(), 10))["type"] == "stop"
    (event,) = [m.json() for m in emulator.events() if m.subject.endswith(".command_rejected")]
    assert event["data"]["reason"] == reason
    assert event["data"]["detail"]
    if reason == "unknown_type":
        assert event["data"]["command_id"] == "c-9" and event["data"]["type"] == "self_destruct"


async def test_a_failing_handler_is_reported_and_does_not_stop_the_intake(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig]
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    handled: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def explode(data: dict[str, Any]) -> None:
        raise RuntimeError("gripper jammed")

    async with AlienClient(make_config(emulator, nats_server)) as client:
        client.register_command_handler("grab", explode)
        client.register_command_handler("stop", handled.put)
        subject = f"constellation.commands.{client.config.org_id}.{client.config.entity_id}"
        await send_command(nats_server.url, subject, b'{"type": "grab", "command_id": "g-1"}')
        await send_command(nats_server.url, subject, b'{"type": "stop"}')
        assert (await asyncio.wait_for(handled.get(), 10))["type"] == "stop"
        await emulator.wait_for_async(
            lambda: any(m.subject.endswith(".command_failed") for m in emulator.events()), 10, "failure event"
        )
    (event,) = [m.json() for m in emulator.events() if m.subject.endswith(".command_failed")]
    assert event["data"] == {
        "command_id": "g-1",
        "type": "grab",
        "error": "gripper jammed",
        "error_type": "RuntimeError",
    }


# --- the link ---


async def test_subscriptions_and_publishing_survive_a_server_restart(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig]
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    async with AlienClient(make_config(emulator, nats_server, command_intake="core")) as client:
        client.register_command_handler("ping", received.put)
        subject = f"constellation.commands.{client.config.org_id}.{client.config.entity_id}"
        nats_server.kill()
        await asyncio.wait_for(until(lambda: not client.link.connected.is_set()), 10)
        queued = await client.publish_telemetry({"during": "outage"})
        nats_server.restart()
        await asyncio.wait_for(client.link.connected.wait(), 20)
        assert client.link.reconnects >= 1
        assert await client.flush(20)
        await send_command(nats_server.url, subject, b'{"type": "ping"}')
        assert (await asyncio.wait_for(received.get(), 10))["type"] == "ping"
    await emulator.wait_for_async(
        lambda: any(m.headers.get("Nats-Msg-Id") == queued for m in emulator.telemetry()), 20, "outage telemetry"
    )


async def test_first_connect_waits_for_a_late_nats_server(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig]
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    async with AlienClient(make_config(emulator, nats_server)):
        pass  # registered; the ids are saved
    nats_server.stop()
    checks_before = len([r for r in emulator.requests() if r.method == "GET"])
    client = AlienClient(make_config(emulator, nats_server))
    starting = asyncio.create_task(client.initialize())
    # the saved entity is verified over REST, then the client waits for NATS instead of failing
    await asyncio.wait_for(
        until(lambda: len([r for r in emulator.requests() if r.method == "GET"]) > checks_before), 10
    )
    await asyncio.sleep(0.5)  # give a wrong implementation time to fail; nothing to wait for here
    assert not starting.done()
    nats_server.restart()
    await asyncio.wait_for(starting, 20)
    assert client.link.is_connected
    await client.close()


async def test_wrong_nats_credentials_fail_fast(make_emulator: Any, make_config: Callable[..., AlienConfig]) -> None:
    from alien_testing import NatsServer

    with NatsServer(token="right-token") as secured:
        emulator = make_emulator(dialect="v0.0.1", nats_url=secured.url, nats_options={"token": "right-token"})
        client = AlienClient(make_config(emulator, secured, nats_token="wrong-token"))
        with pytest.raises(NatsAuthError) as info:
            await asyncio.wait_for(client.initialize(), 15)
        await client.close()
        assert "wrong-token" not in str(info.value)
        good = AlienClient(make_config(emulator, secured, nats_token="right-token"))
        async with good:
            assert good.link.is_connected
        emulator.stop()  # before its nats-server goes away


async def test_outbox_counters_are_logged_while_non_zero(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], caplog: pytest.LogCaptureFixture
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    caplog.set_level("INFO", logger="alien")
    async with AlienClient(make_config(emulator, nats_server, stats_log_interval_s=0.1)) as client:
        nats_server.kill()
        await asyncio.wait_for(until(lambda: not client.link.connected.is_set()), 10)
        for n in range(3):
            await client.publish_telemetry({"n": n})
        await asyncio.wait_for(until(lambda: any("outbox: 3 waiting" in r.message for r in caplog.records)), 10)
        nats_server.restart()
        assert await client.flush(20)
