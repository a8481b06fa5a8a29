"""Firmware manifests without a server: what is signed, what a device refuses, and who is a target.

docs/firmware.md#the-manifest. The dispatcher's part (one update at a time, a failure's reason)
is at the end: a real CommandDispatcher, its events captured.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from firmware_support import OPERATOR, STRANGER

from alien.commands import CommandDispatcher
from alien.errors import CommandFailure
from alien.firmware import manifest as manifests
from alien.firmware.manifest import FirmwareError
from alien.signing import SignatureError, sign_command, verify

SHA = "ab" * 32


def _signed(**changes: Any) -> dict[str, Any]:
    document = manifests.build("robot-fw", "1.2.0", 1000, SHA, ["e-1"], ["drone"])
    return manifests.sign({**document, **changes}, OPERATOR.seed)


def test_a_signed_manifest_verifies_and_says_what_it_covers() -> None:
    manifest = manifests.verify(_signed(), [OPERATOR.public_key])
    assert (manifest.name, manifest.version, manifest.size, manifest.sha256) == ("robot-fw", "1.2.0", 1000, SHA)
    assert manifest.signer == OPERATOR.public_key
    assert manifest.targets.entity_ids == ("e-1",) and manifest.targets.entity_types == ("aircraft_multirotor",)
    stored = manifests.encode(_signed())
    assert manifests.verify(manifests.decode([stored]), [OPERATOR.public_key]).name == "robot-fw"  # a header list


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("size", 1001),
        ("sha256", "cd" * 32),
        ("version", "1.2.1"),
        ("name", "other-fw"),
        ("targets", {"entity_ids": ["e-1", "e-2"], "entity_types": ["aircraft_multirotor"]}),
        ("created_at", "2030-01-01T00:00:00Z"),
    ],
)
def test_any_field_changed_after_signing_is_a_bad_signature(field: str, value: Any) -> None:
    document = {**_signed(), field: value}
    with pytest.raises(FirmwareError) as caught:
        manifests.verify(document, [OPERATOR.public_key])
    assert caught.value.reason == "bad_signature"


def test_unsigned_untrusted_and_malformed_manifests_are_refused_with_their_reason() -> None:
    def reason(document: dict[str, Any], trusted: list[str] | None = None) -> str:
        with pytest.raises(FirmwareError) as caught:
            manifests.verify(document, trusted if trusted is not None else [OPERATOR.public_key])
        return caught.value.reason

    unsigned = {k: v for k, v in _signed().items() if k != "signature"}
    assert reason(unsigned) == "unsigned"
    assert reason(_signed(), [STRANGER.public_key]) == "untrusted_key"
    assert reason(_signed(), []) == "untrusted_key"
    assert reason({**_signed(), "install_script": "rm -rf /"}) == "bad_manifest"  # nothing unsigned may ride along
    assert reason({**_signed(), "format": "alien-firmware-manifest/9"}) == "bad_manifest"
    assert reason(_signed(size=0)) == "bad_manifest"
    assert reason(_signed(sha256="AB" * 32)) == "bad_manifest"
    assert reason(_signed(targets={"entity_ids": [], "entity_types": []})) == "bad_manifest"
    assert reason(_signed(name="../etc")) == "bad_manifest"
    for text in ("not json", "[1]", "x" * 20_000, 7):
        with pytest.raises(FirmwareError) as caught:
            manifests.decode(text)
        assert caught.value.reason == "bad_manifest"


def test_a_signature_of_one_kind_never_verifies_as_the_other() -> None:
    """The manifest's context line: a signed manifest is no signed command, and the reverse."""
    signed = _signed()
    as_command = {**signed, "type": "robot-fw", "command_id": "c", "issued_at": "2026-01-01T00:00:00Z"}
    with pytest.raises(SignatureError):
        verify({**as_command, "entity_id": "e-1"}, "e-1", [OPERATOR.public_key])
    command = sign_command({"type": "firmware_update", "command_id": "c-1"}, OPERATOR.seed, "e-1")
    forged = {**_signed(), "signature": command["signature"]}
    with pytest.raises(FirmwareError, match="does not match"):
        manifests.verify(forged, [OPERATOR.public_key])


def test_targets_match_ids_and_server_entity_types_through_friendly_names() -> None:
    targets = manifests.verify(_signed(), [OPERATOR.public_key]).targets
    assert targets.matches("e-1", "rover")  # listed by id
    assert targets.matches("e-9", "drone") and targets.matches("e-9", "quadcopter")  # aircraft_multirotor
    assert targets.matches("e-9", "aircraft_multirotor")
    assert not targets.matches("e-9", "rover") and not targets.matches(None, "boat")


def test_build_refuses_a_manifest_no_device_could_install() -> None:
    with pytest.raises(ValueError, match="at least one target"):
        manifests.build("fw", "1", 10, SHA, [], [])
    with pytest.raises(ValueError, match="not an entity type"):
        manifests.build("fw", "1", 10, SHA, [], ["submarine-ish"])
    with pytest.raises(ValueError, match="entity id"):
        manifests.build("fw", "1", 10, SHA, ["e 1"], [])
    with pytest.raises(ValueError, match="version"):
        manifests.build("fw", "1/2", 10, SHA, ["e-1"], [])


def test_object_digests_read_as_hex() -> None:
    digest = base64.urlsafe_b64encode(bytes.fromhex(SHA)).decode()
    assert manifests.digest_hex(f"SHA-256={digest}") == SHA
    assert manifests.digest_hex("SHA-256=q83vEjRWeJA=") is None  # 8 bytes: no SHA-256
    assert manifests.digest_hex(None) is None and manifests.digest_hex("MD5=x") is None
    assert manifests.digest_hex("SHA-256=!!") is None


# --- the dispatcher: one command of a type at a time, and a failure's reason ---


async def test_an_exclusive_type_runs_one_at_a_time_and_a_failure_carries_its_reason() -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    release = asyncio.Event()

    async def slow(command: dict[str, Any]) -> None:
        await release.wait()
        raise CommandFailure("flash_locked", "the flash is write-protected")

    dispatcher = CommandDispatcher(lambda kind, data: events.append((kind, data)), lambda *_: None)
    dispatcher.register("flash", slow, exclusive=True)
    dispatcher.register("ping", lambda command: {"pong": True})
    for command_id in ("f-1", "f-2"):  # in one go: the second arrives before the first handler ran at all
        dispatcher.dispatch(json.dumps({"type": "flash", "command_id": command_id}).encode())
    dispatcher.dispatch(b'{"type": "ping", "command_id": "p-1"}')  # other types are not held up
    await asyncio.sleep(0)  # the handlers start
    release.set()
    await dispatcher.join()
    dispatcher.dispatch(b'{"type": "flash", "command_id": "f-3"}')  # free again once the first ended
    await dispatcher.join()
    by_id = {(data["command_id"], kind): data for kind, data in events}
    assert by_id[("f-2", "command_rejected")]["reason"] == "busy"
    assert "flash f-1 is running" in by_id[("f-2", "command_rejected")]["detail"]
    assert ("p-1", "command_completed") in by_id
    failed = by_id[("f-1", "command_failed")]
    assert failed["reason"] == "flash_locked" and failed["error"] == "the flash is write-protected"
    assert failed["error_type"] == "CommandFailure"
    assert by_id[("f-3", "command_failed")]["reason"] == "flash_locked"
