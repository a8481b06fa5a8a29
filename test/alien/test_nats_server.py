"""NatsServer: the real nats-server binary on loopback, its lifecycle, auth and TLS."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import urllib.request
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest
from nats.aio.client import Client as NATS
from nats.js.api import StreamConfig

from alien_testing import (
    NatsServer,
    NatsServerError,
    NkeyUser,
    find_nats_server_binary,
    generate_nkey_user,
    make_tls_files,
)

pytestmark = pytest.mark.timeout(60)


async def _quiet(exc: Exception) -> None:
    """error_cb that keeps expected auth failures out of the log."""


async def connect(url: str, **options: Any) -> NATS:
    return await nats.connect(
        url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2, error_cb=_quiet, **options
    )


async def round_trip(url: str, **options: Any) -> None:
    """Connect, prove the link works with a flush, close."""
    nc = await connect(url, **options)
    try:
        await nc.flush(timeout=2)
    finally:
        await nc.close()


def test_start_binds_loopback_and_stop_is_idempotent() -> None:
    server = NatsServer()
    server.start()
    try:
        assert server.url == f"nats://127.0.0.1:{server.port}"
        assert server.start_seconds is not None and server.start_seconds < 5
        with urllib.request.urlopen(f"http://127.0.0.1:{server.monitor_port}/varz", timeout=2) as resp:
            varz = json.load(resp)
        assert varz["host"] == "127.0.0.1"
        assert varz["jetstream"]["config"]["domain"] == "constellation"  # docs/contract.md#nats
        asyncio.run(round_trip(server.url))
    finally:
        server.stop()
    server.stop()
    assert not server.running
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()


def test_context_manager_and_jetstream_domain() -> None:
    async def check(url: str) -> None:
        nc = await connect(url)
        try:
            info = await nc.jetstream(domain="constellation").account_info()
            assert info.domain == "constellation"
        finally:
            await nc.close()

    with NatsServer() as server:
        assert server.running
        asyncio.run(check(server.url))
    assert not server.running


@pytest.mark.parametrize("crash", [False, True], ids=["sigterm", "sigkill"])
def test_restart_keeps_port_and_jetstream_data(crash: bool) -> None:
    async def publish(url: str) -> None:
        nc = await connect(url)
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name="KEEP", subjects=["keep.>"]))
        await js.publish("keep.one", b"1")
        await nc.close()

    async def count(url: str) -> int:
        nc = await connect(url)
        info = await nc.jetstream().stream_info("KEEP")
        await nc.close()
        return int(info.state.messages)

    with NatsServer() as server:
        port, store = server.port, server.store_dir
        asyncio.run(publish(server.url))
        if crash:
            server.kill()
            assert not server.running
            server.start()
        else:
            server.restart()
        assert (server.port, server.store_dir) == (port, store)
        assert asyncio.run(count(server.url)) == 1


def test_explicit_store_dir_survives_stop(tmp_path: Path) -> None:
    with NatsServer(tmp_path / "store"):
        pass
    assert (tmp_path / "store" / "jetstream").is_dir()


@pytest.mark.asyncio
async def test_pause_stalls_clients_until_resume() -> None:
    with NatsServer() as server:
        nc = await connect(server.url)
        try:
            sub = await nc.subscribe("paused.path")
            await nc.flush(timeout=2)
            server.pause()
            await nc.publish("paused.path", b"held")
            with pytest.raises(nats.errors.TimeoutError):
                await sub.next_msg(timeout=0.3)  # the connection stays up; nothing is answered
            server.resume()
            assert (await sub.next_msg(timeout=2)).data == b"held"
        finally:
            await nc.close()


@pytest.mark.asyncio
async def test_token_auth() -> None:
    with NatsServer(token="t0ken-for-test") as server:
        await round_trip(server.url, token="t0ken-for-test")
        assert server.connect_options()["token"] == "t0ken-for-test"
        for wrong in ("wrong", None):
            with pytest.raises(nats.errors.Error, match="Authorization Violation"):
                await round_trip(server.url, token=wrong)


@pytest.mark.asyncio
async def test_user_password_auth() -> None:
    with NatsServer(user="alien", password="pw-for-test") as server:
        await round_trip(server.url, user="alien", password="pw-for-test")
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await round_trip(server.url, user="alien", password="wrong")


@pytest.mark.asyncio
async def test_nkey_auth() -> None:
    seed, public = generate_nkey_user()
    other_seed, _ = generate_nkey_user()
    assert seed.startswith("SU") and public.startswith("U")
    with NatsServer(nkey_users=[public]) as server:
        await round_trip(server.url, nkeys_seed_str=seed)
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await round_trip(server.url, nkeys_seed_str=other_seed)
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await round_trip(server.url)


@pytest.mark.asyncio
async def test_users_carry_permissions() -> None:
    """Several users at once, each with its own allow/deny lists (what an edge key gets)."""
    edge_seed, edge_public = generate_nkey_user()
    plain_seed, plain_public = generate_nkey_user()
    edge = NkeyUser(edge_public, {"publish": {"allow": ["edge.>"], "deny": ["edge.secret"]}, "subscribe": ["_INBOX.>"]})
    with NatsServer(
        user="admin",
        password="pw-for-test",
        user_permissions={"publish": ["admin.>", "edge.>"], "subscribe": [">"], "allow_responses": True},
        nkey_users=[edge, plain_public],  # a bare public key: no restrictions, as before
    ) as server:
        admin = await connect(server.url, user="admin", password="pw-for-test")
        sub = await admin.subscribe("edge.>")
        await admin.flush()
        errors: list[str] = []
        changed = asyncio.Condition()

        async def record(exc: Exception) -> None:
            async with changed:
                errors.append(str(exc).lower())
                changed.notify_all()

        async def reported(text: str) -> None:
            async with changed:
                await asyncio.wait_for(changed.wait_for(lambda: any(text in e for e in errors)), 2)

        nc = await nats.connect(server.url, nkeys_seed_str=edge_seed, allow_reconnect=False, error_cb=record)
        try:
            for subject in ("edge.secret", "elsewhere", "edge.ok"):
                await nc.publish(subject, b"x")
            await nc.flush()
            assert (await sub.next_msg(timeout=2)).subject == "edge.ok"  # the denied ones never arrived
            await reported('publish to "edge.secret"')
            await reported('publish to "elsewhere"')
            await nc.subscribe("edge.>")
            await reported('subscription to "edge.>"')
        finally:
            await nc.close()
            await admin.close()
        await round_trip(server.url, nkeys_seed_str=plain_seed)


def test_permissions_are_checked_early() -> None:
    _, public = generate_nkey_user()
    for bad in ({"pub": ["a"]}, {"publish": "a.>"}, {"publish": {"allow": ["a"], "maybe": []}}, {"allow_responses": 3}):
        with pytest.raises(ValueError):
            NatsServer(nkey_users=[NkeyUser(public, bad)])
    with pytest.raises(ValueError, match="need a user"):
        NatsServer(user_permissions={"publish": ["a"]})


def test_token_with_users_is_refused_early() -> None:
    with pytest.raises(ValueError, match="token"):
        NatsServer(token="t", user="u", password="p")


@pytest.mark.asyncio
async def test_tls_server(tmp_path: Path) -> None:
    tls = make_tls_files(tmp_path / "certs")
    with NatsServer(tls=tls) as server:
        assert server.url.startswith("tls://127.0.0.1:")
        await round_trip(server.url, tls=tls.client_ssl_context(), tls_hostname="127.0.0.1")
        with pytest.raises((nats.errors.Error, OSError)):
            await round_trip(server.url.replace("tls://", "nats://"))


@pytest.mark.asyncio
async def test_tls_client_certificates_verified(tmp_path: Path) -> None:
    tls = make_tls_files(tmp_path / "certs", verify_clients=True)
    with NatsServer(tls=tls) as server:
        await round_trip(server.url, **{k: v for k, v in server.connect_options().items() if k != "servers"})
        with pytest.raises((nats.errors.Error, OSError)):
            await round_trip(server.url, tls=tls.client_ssl_context(with_client_cert=False), tls_hostname="127.0.0.1")


def test_start_failure_reports_server_log() -> None:
    server = NatsServer(extra_config="this is not { valid")
    with pytest.raises(NatsServerError, match="exited"):
        server.start(timeout=5)
    assert not server.running
    server.stop()


def test_missing_binary_names_what_was_searched(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ALIEN_NATS_SERVER_BIN", str(tmp_path / "env-bin"))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NatsServerError) as caught:
        find_nats_server_binary(str(tmp_path / "arg-bin"))
    message = str(caught.value)
    for searched in ("arg-bin", "env-bin", str(tmp_path / "nats-server"), "PATH"):
        assert searched in message


def test_binary_lookup_prefers_argument_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    real = find_nats_server_binary()
    monkeypatch.setenv("ALIEN_NATS_SERVER_BIN", real)
    assert find_nats_server_binary() == real
    assert find_nats_server_binary(real) == real
