"""Rights the server refused are asked for once, not at every start (each refusal is a line in its log)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from alien import AlienClient, AlienConfig
from alien.errors import IdentityFileError
from alien.learnt_denials import RELEARN_AFTER, LearntDenials, feature_of
from alien_testing.deployment import V01Deployment

RC = {"release": "rc"}


def edge_config(deployment: V01Deployment, tmp_path: Path) -> AlienConfig:
    return AlienConfig(
        **deployment.edge_settings(),
        entity_type="drone",
        config_file=str(tmp_path / "identity.json"),
        data_dir=tmp_path / "data",
        publish_timeout_s=2.0,
        entity_state_period_s=0.05,
    )


async def start_publish_close(deployment: V01Deployment, tmp_path: Path) -> tuple[dict[Any, int], AlienClient]:
    client = AlienClient(edge_config(deployment, tmp_path))
    try:
        await asyncio.wait_for(client.initialize(), 20)
        await client.publish_telemetry({"position": {"latitude": 1.0, "longitude": 2.0}})
        assert await client.flush(10)
        await client.entity_state.write()  # the KV attempt, now rather than after its period
        return dict(client.link.denied), client
    finally:
        await client.close(timeout=3)


@pytest.mark.parametrize("v01_deployment", [RC], indirect=True)
async def test_a_refused_right_is_not_asked_for_again_at_the_next_start(
    v01_deployment: V01Deployment, tmp_path: Path
) -> None:
    first, client = await start_publish_close(v01_deployment, tmp_path)
    refused = {subject for _, subject in first}
    assert any("kv_constellation_global_state" in s for s in refused)  # the KV bucket
    assert any(s.startswith("$js.api.stream.names") for s in refused)  # the command intake's stream lookup
    saved = json.loads((tmp_path / "identity.json").read_text())
    assert set(saved["denied"]) == {"entity_state", "jetstream_api"}

    second, client = await start_publish_close(v01_deployment, tmp_path)
    assert second == {}  # nothing refused: nothing asked
    assert client.command_intake == "core"
    assert client.entity_state.disabled is not None and "earlier start" in client.entity_state.disabled


async def test_a_key_with_the_rights_writes_the_entity_state_at_every_start(
    v01_deployment: V01Deployment, tmp_path: Path
) -> None:
    for _ in range(2):
        denied, client = await start_publish_close(v01_deployment, tmp_path)
        assert denied == {} and client.entity_state.writes >= 1
    assert json.loads((tmp_path / "identity.json").read_text())["denied"] is None  # nothing refused, nothing kept


def test_what_was_learnt_holds_for_its_servers_and_a_day() -> None:
    learnt = LearntDenials()
    now = datetime(2026, 12, 3, tzinfo=timezone.utc)
    learnt.learn("entity_state", "nats://alice:pw@10.0.0.1:4222", now)
    assert learnt.servers is not None and "pw" not in learnt.servers  # never a password in the file
    assert learnt.holds("entity_state", "nats://alice:pw@10.0.0.1:4222", now + RELEARN_AFTER / 2)
    assert not learnt.holds("entity_state", "nats://alice:pw@10.0.0.1:4222", now + RELEARN_AFTER)  # asked again
    assert not learnt.holds("entity_state", "nats://10.0.0.2:4222", now)  # other servers: not known
    assert not learnt.holds("jetstream_api", "nats://alice:pw@10.0.0.1:4222", now)
    learnt.learn("jetstream_api", "nats://10.0.0.2:4222", now)
    assert learnt.denied.keys() == {"jetstream_api"}  # what the first servers refused is forgotten


def test_features_of_refused_subjects() -> None:
    api, bucket = "$js.api.", "constellation_global_state"
    assert feature_of("$kv.constellation_global_state.e1", api, bucket) == "entity_state"
    assert feature_of("$js.api.stream.info.kv_constellation_global_state", api, bucket) == "entity_state"
    assert feature_of("$js.api.stream.names", api, bucket) == "jetstream_api"
    assert feature_of("constellation.events.o.bootsequence", api, bucket) is None
    # a firmware bucket the operator did not open to this key is no reason to stop asking for the API
    assert feature_of("$js.api.direct.get.obj_alien_firmware.$o.alien_firmware.m.zm9v", api, bucket) is None


def test_an_old_identity_file_loads_and_a_bad_denied_field_is_named(tmp_path: Path) -> None:
    path = tmp_path / "identity.json"
    path.write_text(json.dumps({"org_id": "o", "entity_id": "e", "format_version": 1}))
    config = AlienConfig(entity_type="drone", config_file=str(path))
    config.load()
    assert config.entity_id == "e" and config.learnt_denials.denied == {}
    path.write_text(json.dumps({"org_id": "o", "entity_id": "e", "denied": ["entity_state"]}))
    with pytest.raises(IdentityFileError, match=r"identity\.json.*'denied'"):
        AlienConfig(entity_type="drone", config_file=str(path)).load()
