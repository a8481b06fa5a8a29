"""AlienClient end to end, registration: real nats-server, the mothership emulator, real HTTP.

The device registers once and reuses its saved ids (docs/contract.md#rest-dialects), registers
again when the server deleted its entity, stops on a corrupt identity file, and waits out a
mothership that is down at first boot with its telemetry queued (docs/delivery.md).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from client_support import DIALECTS

from alien import AlienClient, AlienConfig, IdentityFileError, NotFoundError


def _registrations(emulator: Any) -> list[Any]:
    return [r for r in emulator.requests() if r.method == "POST"]


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_registers_once_and_reuses_ids_across_restarts(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], identity_file: Path, dialect: str
) -> None:
    emulator = make_emulator(dialect=dialect)
    async with AlienClient(make_config(emulator, nats_server, entity_name="HAWK-1")) as first:
        org_id, entity_id = first.config.org_id, first.config.entity_id
    assert org_id and entity_id
    saved = json.loads(identity_file.read_text())
    assert (saved["org_id"], saved["entity_id"]) == (org_id, entity_id)
    posts = len(_registrations(emulator))
    assert posts == 2  # one organization, one entity

    async with AlienClient(make_config(emulator, nats_server, entity_name="HAWK-1")) as second:
        assert (second.config.org_id, second.config.entity_id) == (org_id, entity_id)
    assert len(_registrations(emulator)) == posts  # nothing created again
    assert len(emulator.entities()) == 1


async def test_existing_organization_is_matched_by_name(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], tmp_path: Path
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    async with AlienClient(make_config(emulator, nats_server, org_name="Fleet A")) as one:
        org_id = one.config.org_id
    other = make_config(emulator, nats_server, org_name="Fleet A", config_file=str(tmp_path / "second.json"))
    async with AlienClient(other) as two:
        assert two.config.org_id == org_id
        assert two.config.entity_id != one.config.entity_id
    assert len([o for o in emulator.organizations() if o["name"] == "Fleet A"]) == 1


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_deleted_entity_is_registered_again(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], identity_file: Path, dialect: str
) -> None:
    emulator = make_emulator(dialect=dialect)
    async with AlienClient(make_config(emulator, nats_server)) as first:
        org_id, old_entity = first.config.org_id, first.config.entity_id
    emulator.delete_entity(org_id, old_entity)
    async with AlienClient(make_config(emulator, nats_server)) as second:
        assert second.config.org_id == org_id
        assert second.config.entity_id not in (None, old_entity)
    assert json.loads(identity_file.read_text())["entity_id"] == second.config.entity_id


async def test_reregistration_can_be_switched_off(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig]
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    async with AlienClient(make_config(emulator, nats_server)) as first:
        org_id, entity_id = first.config.org_id, first.config.entity_id
    emulator.delete_entity(org_id, entity_id)
    client = AlienClient(make_config(emulator, nats_server, reregister_deleted_entity=False))
    with pytest.raises(NotFoundError):
        await client.initialize()
    await client.close()


async def test_corrupt_identity_file_stops_before_any_registration(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], identity_file: Path
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    identity_file.write_text("{broken")
    client = AlienClient(make_config(emulator, nats_server))
    with pytest.raises(IdentityFileError, match=re.escape(str(identity_file))):
        await client.initialize()
    await client.close()
    assert _registrations(emulator) == []
    assert identity_file.read_text() == "{broken"


async def test_mothership_down_at_first_boot_telemetry_waits_and_goes_out_after_registration(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig]
) -> None:
    """Fault suite 3: REST down at first boot; registered when it returns; buffered telemetry delivered."""
    emulator = make_emulator(dialect="v0.0.1")
    emulator.set_unavailable(True)
    client = AlienClient(make_config(emulator, nats_server, retry_backoff_s=0.05, retry_backoff_max_s=0.2))
    queued = [await client.publish_telemetry({"n": n}) for n in range(50)]  # produced before registration
    queued.append(await client.publish_event("boot_note", {"early": True}))
    starting = asyncio.create_task(client.initialize())
    await emulator.wait_for_async(lambda: sum(r.status == 503 for r in emulator.requests()) >= 3, 10, "retries")
    assert not starting.done() and client.config.entity_id is None
    emulator.set_unavailable(False)
    await asyncio.wait_for(starting, 20)
    assert await client.flush(10)
    org_id, entity_id = client.config.org_id, client.config.entity_id
    await client.close()
    await emulator.wait_for_async(
        lambda: len(emulator.telemetry()) >= 50 and emulator.events(), 10, "buffered messages"
    )
    assert {m.headers["Nats-Msg-Id"] for m in emulator.telemetry()} == set(queued[:50])
    assert {m.subject for m in emulator.telemetry()} == {f"constellation.telemetry.{org_id}.{entity_id}"}
    assert all(m.json()["entity_id"] == entity_id for m in emulator.telemetry())
    (early,) = [m for m in emulator.events() if m.subject.endswith(".boot_note")]
    assert early.subject == f"constellation.events.{org_id}.boot_note" and early.json()["entity_id"] == entity_id


# User text that an earlier version took for its id placeholders and rewrote inside the payload.
LOOKS_LIKE_IDS = {"note": "@org_id@ / @entity_id@", "@org_id@": ["@entity_id@", "x@org_id@y"]}


@pytest.mark.parametrize("telemetry_format", ["seed", "auto"])
async def test_user_data_that_looks_like_id_placeholders_arrives_unchanged(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], telemetry_format: str
) -> None:
    """Before registration (REST down at first boot) and after: the data as given, the envelope's ids right."""
    emulator = make_emulator(dialect="v0.0.1")
    emulator.set_unavailable(True)
    config = make_config(
        emulator, nats_server, telemetry_format=telemetry_format, retry_backoff_s=0.05, retry_backoff_max_s=0.2
    )
    client = AlienClient(config)
    sent: dict[str, tuple[str, str]] = {}
    sent["before"] = (
        await client.publish_telemetry({**LOOKS_LIKE_IDS, "when": "before"}),
        await client.publish_event("note", {**LOOKS_LIKE_IDS, "when": "before"}),
    )
    starting = asyncio.create_task(client.initialize())
    await emulator.wait_for_async(lambda: any(r.status == 503 for r in emulator.requests()), 10, "a refusal")
    assert not starting.done() and client.config.entity_id is None
    emulator.set_unavailable(False)
    await asyncio.wait_for(starting, 20)
    sent["after"] = (
        await client.publish_telemetry({**LOOKS_LIKE_IDS, "when": "after"}),
        await client.publish_event("note", {**LOOKS_LIKE_IDS, "when": "after"}),
    )
    assert await client.flush(10)
    org_id, entity_id = client.config.org_id, client.config.entity_id
    await client.close()
    await emulator.wait_for_async(
        lambda: (
            len(emulator.telemetry()) >= 2 and len([m for m in emulator.events() if m.subject.endswith(".note")]) >= 2
        ),
        10,
        "both readings and both events",
    )
    telemetry = {m.headers["Nats-Msg-Id"]: m for m in emulator.telemetry()}
    events = {m.headers["Nats-Msg-Id"]: m for m in emulator.events()}
    for when, (reading_id, event_id) in sent.items():
        reading, event = telemetry[reading_id], events[event_id]
        assert reading.subject == f"constellation.telemetry.{org_id}.{entity_id}", when
        assert event.subject == f"constellation.events.{org_id}.note", when
        assert reading.json()["entity_id"] == entity_id and event.json()["entity_id"] == entity_id, when
        assert reading.json()["data"] == {**LOOKS_LIKE_IDS, "when": when}, when
        assert event.json()["data"] == {**LOOKS_LIKE_IDS, "when": when}, when
