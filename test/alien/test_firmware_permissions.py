"""Who may read the firmware bucket on v0.1.x servers (docs/firmware.md#permissions), enforced by nats-server.

Real servers grant nothing on object stores: the bucket is the operator's. A v0.1.1 scoped key has
the whole JetStream API, so it can read the bucket (and cannot write firmware); an rc key has no
JetStream API, so its update fails at once naming the permission, until the operator grants the
two direct-get subjects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest
from firmware_support import (
    BUCKET,
    OPERATOR,
    final,
    firmware_command,
    run_command,
    signed_manifest,
    upload,
    write_firmware,
)

from alien import AlienClient, AlienConfig, FirmwareUpdate
from alien_testing.deployment import V01Deployment

pytestmark = pytest.mark.timeout(90)
V011_SCOPED = ["entities:write", "nats:telemetry", "nats:commands"]


def _edge_config(deployment: V01Deployment, tmp_path: Path, **overrides: Any) -> AlienConfig:
    return AlienConfig(
        **deployment.edge_settings(),
        entity_type="drone",
        config_file=str(tmp_path / "edge.json"),
        data_dir=tmp_path / "data",
        publish_timeout_s=2.0,
        nats_reconnect_wait_s=0.1,
        command_trusted_keys=[OPERATOR.public_key],
        **overrides,
    )


async def _update(deployment: V01Deployment, tmp_path: Path, version: str) -> tuple[dict[str, Any], list[str]]:
    image = tmp_path / "fw.bin"
    write_firmware(image, 1024 * 1024)
    await upload(deployment.admin_options(), image, signed_manifest(image, "fw", version))
    installed: list[str] = []

    def install(update: FirmwareUpdate) -> None:
        installed.append(update.version)

    # a large retry budget: a refusal that were only noticed as timeouts would not end within the wait below
    async with AlienClient(_edge_config(deployment, tmp_path, firmware_retry_budget_s=300)) as client:
        client.on_firmware(install)
        command = firmware_command(client, "fw", version, f"c-{version}")
        events = await run_command(deployment.emulator, deployment.admin_options(), client, command, timeout=20)
    return final(events), installed


@pytest.mark.parametrize("v01_deployment", [{"release": "rc"}], indirect=True)
async def test_an_rc_key_cannot_read_the_bucket_and_says_which_permission_it_needs(
    v01_deployment: V01Deployment, tmp_path: Path
) -> None:
    outcome, installed = await _update(v01_deployment, tmp_path, "1.0")
    assert outcome["event_type"] == "command_failed" and outcome["data"]["reason"] == "not_permitted"
    error = outcome["data"]["error"]
    assert f'"$JS.API.DIRECT.GET.OBJ_{BUCKET}"' in error and f'"$JS.API.DIRECT.GET.OBJ_{BUCKET}.>"' in error
    assert installed == []


@pytest.mark.parametrize("v01_deployment", [{"release": "rc", "firmware_bucket": BUCKET}], indirect=True)
async def test_an_rc_key_granted_the_direct_gets_updates(v01_deployment: V01Deployment, tmp_path: Path) -> None:
    outcome, installed = await _update(v01_deployment, tmp_path, "2.0")
    assert outcome["event_type"] == "command_completed", outcome
    assert installed == ["2.0"]


@pytest.mark.parametrize(
    "v01_deployment",
    [{"release": "v0.1.1", "scopes": V011_SCOPED}, {"release": "rc", "firmware_bucket": BUCKET}],
    indirect=True,
    ids=["v0.1.1-scoped", "rc-granted"],
)
async def test_edge_keys_read_the_bucket_but_never_write_firmware(
    v01_deployment: V01Deployment, tmp_path: Path
) -> None:
    image = tmp_path / "fw.bin"
    write_firmware(image, 4096)
    info = await upload(v01_deployment.admin_options(), image, signed_manifest(image, "fw", "3.0"))
    errors: list[str] = []

    async def record(exc: Exception) -> None:
        errors.append(str(exc).lower())

    nc = await nats.connect(**v01_deployment.edge_options(), error_cb=record, allow_reconnect=False)
    try:
        js = nc.jetstream(timeout=1.0)
        chunk = await js.get_msg(f"OBJ_{BUCKET}", seq=1, subject=f"$O.{BUCKET}.C.{info.nuid}", next=True, direct=True)
        assert chunk.data == image.read_bytes()
        await nc.publish(f"$O.{BUCKET}.C.{info.nuid}", b"not firmware")  # what writing a chunk is
        await nc.flush()
        with pytest.raises(nats.errors.TimeoutError):  # refused: never answered
            await nc.request(f"$O.{BUCKET}.M.Zm9v", b"{}", timeout=1.0)
    finally:
        await nc.close()
    assert any(f'publish to "$o.{BUCKET}.c.'.lower() in e for e in errors), errors
