"""v0.1.x edge credentials: permissions derived from API-key scopes as the real server does, enforced by nats-server."""

from __future__ import annotations

import asyncio
import json

import nats
import nats.errors
import nats.js.errors
import pytest
from emulator_v01_support import RC, register
from nats.aio.client import Client as NATS
from nats.js.api import ConsumerConfig, StreamConfig

from alien_testing import edge_permissions, mint_edge_key
from alien_testing.deployment import V01Deployment
from alien_testing.emulator import KV_BUCKET

pytestmark = pytest.mark.timeout(60)

RC_TELEMETRY_ONLY = ["entities:write", "nats:telemetry:write"]
V011_SCOPED = ["entities:write", "nats:telemetry", "nats:commands"]
JS_TIMEOUT = 0.5  # a denied JetStream request shows as a timeout (the server drops it)


async def _quiet(exc: Exception) -> None:
    """error_cb: expected permission violations stay out of the log."""


# -- edge permissions: derivation (pkg/services/embedded-nats/nats.go BuildNATSPermissions) ---------


def test_rc_permissions_are_least_privilege_as_the_real_server_derives_them() -> None:
    scopes = ["nats:telemetry:write", "nats:commands:read", "nats:events:write"]
    assert edge_permissions("org-a", scopes, release="rc") == {  # the server's own unit test case
        "publish": {
            "allow": [
                "constellation.telemetry.org-a.>",
                "constellation.events.org-a.>",
                "constellation.events.*.org-a.>",
            ]
        },
        "subscribe": {"allow": ["_INBOX.>", "constellation.commands.org-a.>"]},
    }
    for refused in (["nats:all"], ["nats:telemetry"], ["entities:write"]):
        assert edge_permissions("org-a", refused, release="rc") is None
    assert edge_permissions("", ["nats:telemetry:write"], release="rc") is None


def test_v011_permissions_include_the_whole_jetstream_api() -> None:
    perms = edge_permissions("org-a", ["nats:telemetry", "nats:commands", "nats:events"], release="v0.1.1")
    assert perms == {
        "publish": {"allow": ["$JS.API.>", "_INBOX.>", "constellation.telemetry.org-a.>"]},
        "subscribe": {
            "allow": [
                "$JS.API.>",
                "_INBOX.>",
                "constellation.telemetry.org-a.>",
                "constellation.commands.org-a.>",
                "constellation.events.>",
            ]
        },
    }
    assert edge_permissions("org-a", ["entities:read", "nats:all"]) == {
        "publish": {"allow": [">"]},
        "subscribe": {"allow": [">"]},
    }
    assert edge_permissions("org-a", ["entities:read"]) is None  # no NATS user at all


def test_kv_grant_and_minting() -> None:
    perms = edge_permissions("o", ["nats:telemetry:write"], release="rc", kv=True)
    assert perms is not None
    assert f"$KV.{KV_BUCKET}.>" in perms["publish"]["allow"]
    assert not any(s in ("$JS.API.>", ">") for s in perms["publish"]["allow"])
    key = mint_edge_key(["entities:write", "nats:telemetry:write"], release="rc")
    assert key.api_key.startswith("c4_test_") and key.nkey_seed.startswith("SU") and key.org_id == "default"
    assert key.api_key not in repr(key) and key.nkey_seed not in repr(key)
    with pytest.raises(ValueError, match="nats:all"):
        mint_edge_key(["nats:all"], release="rc")  # refused at key creation, as the real server does


# -- edge permissions bite (real nats-server) --------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("v01_deployment", [{"release": "rc", "scopes": RC_TELEMETRY_ONLY}], indirect=True)
async def test_rc_edge_publishes_only_its_org_and_has_no_jetstream_or_kv(
    v01_deployment: V01Deployment, edge_nc: NATS, edge_errors: list[str]
) -> None:
    js = edge_nc.jetstream(timeout=JS_TIMEOUT)
    ack = await js.publish("constellation.telemetry.default.e1", b"{}")  # PubAck comes back on _INBOX
    assert ack.stream == "CONSTELLATION_TELEMETRY"
    outcomes = await asyncio.gather(
        js.publish("constellation.telemetry.other-org.e1", b"{}"),
        js.publish("constellation.events.default.bootsequence", b"{}"),  # no nats:events:write
        js.add_stream(StreamConfig(name="ROGUE", subjects=["rogue.>"])),
        js.add_consumer("CONSTELLATION_TELEMETRY", ConsumerConfig(durable_name="rogue")),
        js.delete_stream("CONSTELLATION_TELEMETRY"),
        js.key_value(KV_BUCKET),  # docs/contract.md#operator-map-kv: newest servers give edge keys no KV rights
        return_exceptions=True,
    )
    assert all(isinstance(outcome, nats.errors.TimeoutError) for outcome in outcomes), outcomes
    for subject in (
        "constellation.telemetry.other-org.e1",
        "constellation.events.default.bootsequence",
        "$js.api.stream.create.rogue",
        "$js.api.consumer.",
        "$js.api.stream.delete.constellation_telemetry",
        f"$js.api.stream.info.kv_{KV_BUCKET.lower()}",
    ):
        assert any("permissions violation" in e and subject in e for e in edge_errors), (subject, edge_errors)


@pytest.mark.asyncio
@pytest.mark.parametrize("v01_deployment", [{"release": "v0.1.1", "scopes": V011_SCOPED}], indirect=True)
async def test_v011_scoped_edge_reads_kv_but_cannot_write_it(
    v01_deployment: V01Deployment, edge_nc: NATS, edge_errors: list[str]
) -> None:
    js = edge_nc.jetstream(timeout=JS_TIMEOUT)
    await js.publish("constellation.telemetry.default.e1", b"{}")
    entity_id = await register(v01_deployment)
    kv = await js.key_value(KV_BUCKET)
    entry = await kv.get(entity_id)  # $JS.API.> covers reads
    outcomes = await asyncio.gather(
        js.publish("constellation.telemetry.other-org.e1", b"{}"),
        kv.update(entity_id, b"{}", last=entry.revision),  # $KV.> is not granted
        return_exceptions=True,
    )
    assert all(isinstance(outcome, nats.errors.TimeoutError) for outcome in outcomes), outcomes
    assert any(f"$kv.{KV_BUCKET.lower()}.{entity_id}" in e for e in edge_errors), edge_errors
    # The real v0.1.1 grant is the whole JetStream API: a scoped key can even create streams.
    await js.add_stream(StreamConfig(name="ROGUE", subjects=["rogue.>"]))


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "v01_deployment",
    [{"release": "v0.1.1"}, {"release": "rc", "scopes": RC_TELEMETRY_ONLY, "kv": True}],
    ids=["v0.1.1-nats-all", "rc-kv-grant"],
    indirect=True,
)
async def test_kv_compare_and_set_where_granted(v01_deployment: V01Deployment, edge_nc: NATS) -> None:
    entity_id = await register(v01_deployment)
    kv = await edge_nc.jetstream(timeout=JS_TIMEOUT).key_value(KV_BUCKET)
    entry = await kv.get(entity_id)
    state = json.loads(entry.value or b"")
    state["position"] = {"global": {"latitude": 32.94881, "longitude": -96.80132, "altitude_msl": 152.4}}
    revision = await kv.update(entity_id, json.dumps(state).encode(), last=entry.revision)
    with pytest.raises(nats.js.errors.KeyWrongLastSequenceError):
        await kv.update(entity_id, b"{}", last=entry.revision)  # a stale revision loses
    assert revision > entry.revision
    await kv.create(f"{entity_id}-twin", b"{}")
    with pytest.raises(nats.js.errors.KeyWrongLastSequenceError):
        await kv.create(f"{entity_id}-twin", b"{}")
    em = v01_deployment.emulator

    def written() -> bool:  # a predicate may read the operator map (a KV read on the emulator's loop)
        shown = em.entity_state(entity_id) or {}
        return bool(shown.get("position", {}).get("global", {}).get("latitude") == 32.94881)

    await em.wait_for_async(written, what="the edge's own write on the operator map")
    if v01_deployment.release == "rc":  # the KV grant is KV only
        with pytest.raises(nats.errors.TimeoutError):
            await edge_nc.jetstream(timeout=JS_TIMEOUT).add_stream(StreamConfig(name="ROGUE", subjects=["r.>"]))


@pytest.mark.asyncio
@RC
async def test_wrong_credentials_are_refused(v01_deployment: V01Deployment) -> None:
    stranger = mint_edge_key(["nats:telemetry:write"], release="rc")  # never registered with the server
    rest_only = mint_edge_key(["entities:read"], release="rc")  # no NATS scope: no NATS user
    assert rest_only.nkey_user() is None
    for key in (stranger, rest_only):
        options = {**v01_deployment.edge_options(), **key.connect_options()}
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await nats.connect(**options, error_cb=_quiet, allow_reconnect=False, max_reconnect_attempts=0)


@pytest.mark.asyncio
@pytest.mark.parametrize("v01_deployment", [{"release": "rc", "tls": True}], indirect=True)
async def test_tls_deployment(v01_deployment: V01Deployment, edge_nc: NATS) -> None:
    assert v01_deployment.nats_server.url.startswith("tls://") and v01_deployment.ca_file is not None
    assert v01_deployment.emulator.nats_connected
    await edge_nc.jetstream().publish("constellation.telemetry.default.e1", b"{}")
