"""Command signatures without a dispatcher: operator keys, the canonical encoding, sign / verify, settings."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import nkeys
import pytest
from signing_support import ENTITY, KEYS, OTHER, _iso

from alien import AlienConfig
from alien.settings import signature_policy
from alien.signing import SignatureError, SigningKeyError, canonical_bytes, public_key_of, sign_command, verify


def _flip_first(sig: str) -> str:
    return ("B" if sig[0] != "B" else "C") + sig[1:]


# --- keys and the canonical encoding ---


def test_keys_are_operator_nkeys_and_the_seed_is_never_printed() -> None:
    assert KEYS.public_key.startswith("O") and KEYS.seed.startswith("SO")
    assert public_key_of(KEYS.seed) == KEYS.public_key
    assert KEYS.seed not in repr(KEYS)
    user_seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER).decode()  # a NATS login seed
    with pytest.raises(SigningKeyError) as info:
        public_key_of(user_seed)
    assert "operator seed" in str(info.value) and user_seed not in str(info.value)


def test_canonical_encoding_is_sorted_compact_utf8() -> None:
    command = {
        "type": "move",
        "command_id": "c-1",
        "issued_at": "2026-11-27T12:00:00Z",
        "params": {"b": 1, "a": "é"},
        "priority": "high",
    }
    assert (
        canonical_bytes(command, ENTITY)
        == (
            '{"command_id":"c-1","entity_id":"entity-1","issued_at":"2026-11-27T12:00:00Z",'
            '"params":{"a":"é","b":1},"priority":"high","type":"move"}'
        ).encode()
    )
    # every field but the signature is covered, top-level params included, for the target entity
    flat = {"type": "return_to_base", "speed": 3, "command_id": "c-2", "issued_at": "x", "signature": {}}
    covered = json.loads(canonical_bytes(flat, ENTITY))
    assert covered == {"type": "return_to_base", "speed": 3, "command_id": "c-2", "issued_at": "x", "entity_id": ENTITY}


@pytest.mark.parametrize(
    "smuggled",
    [
        {"params": {"speed": 1}, "speed": 100},  # a top-level field next to the signed params
        {"command_type": "estop"},  # an alias next to the signed type
        {"extra": "anything"},
    ],
)
def test_no_field_can_be_added_to_a_signed_command(smuggled: dict[str, Any]) -> None:
    signed = sign_command({"type": "move", "params": {"speed": 1}}, KEYS.seed, ENTITY)
    with pytest.raises(SignatureError) as info:
        verify({**signed, **smuggled}, ENTITY, {KEYS.public_key})
    assert info.value.reason == "bad_signature"


def test_sign_then_verify() -> None:
    signed = sign_command({"type": "move", "params": {"linear": {"x": 0.5}}, "ttl_s": 10}, KEYS.seed, ENTITY)
    assert signed["entity_id"] == ENTITY and signed["command_id"] and signed["issued_at"].endswith("Z")
    assert signed["signature"]["key"] == KEYS.public_key
    assert "=" not in signed["signature"]["sig"]  # base64url, unpadded
    assert verify(signed, ENTITY, [KEYS.public_key]) == KEYS.public_key
    assert verify(json.loads(json.dumps(signed)), ENTITY, [OTHER.public_key, KEYS.public_key]) == KEYS.public_key


@pytest.mark.parametrize(
    "tamper",
    [
        lambda c: c.update(type="stop"),
        lambda c: c["params"]["linear"].update(x=5.0),
        lambda c: c["params"].update(extra=1),
        lambda c: c.update(command_id="c-other"),
        lambda c: c.update(issued_at=_iso(1)),
        lambda c: c.update(ttl_s=3600),
        lambda c: c.pop("ttl_s"),
        lambda c: c.update(priority="low"),
        lambda c: c.update(entity_id="entity-2"),
        lambda c: c["signature"].update(sig=_flip_first(c["signature"]["sig"])),
        lambda c: c["signature"].update(sig="not base64!"),
        lambda c: c["signature"].update(sig=12),
        lambda c: c.update(signature="bad"),
    ],
)
def test_any_tampering_is_a_bad_signature(tamper: Callable[[dict[str, Any]], Any]) -> None:
    signed = sign_command({"type": "move", "params": {"linear": {"x": 0.5}}, "ttl_s": 10}, KEYS.seed, ENTITY)
    tamper(signed)
    with pytest.raises(SignatureError) as info:
        verify(signed, ENTITY, [KEYS.public_key])
    assert info.value.reason == "bad_signature"
    assert signed["signature"] == "bad" or str(signed["signature"].get("sig")) not in info.value.detail


def test_signed_for_another_entity_untrusted_and_unsigned() -> None:
    for_other = sign_command({"type": "stop"}, KEYS.seed, "entity-2")
    with pytest.raises(SignatureError) as info:
        verify(for_other, ENTITY, [KEYS.public_key])
    assert (info.value.reason, "entity-2" in info.value.detail) == ("wrong_entity", True)
    with pytest.raises(SignatureError) as info:
        verify(sign_command({"type": "stop"}, OTHER.seed, ENTITY), ENTITY, [KEYS.public_key])
    assert info.value.reason == "untrusted_key"
    with pytest.raises(SignatureError) as info:
        verify({"type": "stop"}, ENTITY, [KEYS.public_key])
    assert info.value.reason == "unsigned"


def test_trusted_keys_and_critical_types_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALIEN_COMMAND_TRUSTED_KEYS", f"{KEYS.public_key}, {OTHER.public_key}")
    monkeypatch.setenv("ALIEN_COMMAND_CRITICAL_TYPES", "move,return_to_base")
    monkeypatch.setenv("ALIEN_COMMAND_MAX_AGE_S", "12")
    policy = signature_policy(AlienConfig())
    assert policy.trusted_keys == {KEYS.public_key, OTHER.public_key}
    assert policy.requires_signature("move") and not policy.requires_signature("ping")
    assert policy.max_age_s == 12
    monkeypatch.setenv("ALIEN_COMMAND_TRUSTED_KEYS", KEYS.seed)  # a seed pasted by mistake
    with pytest.raises(Exception) as info:
        AlienConfig()
    assert "ALIEN_COMMAND_TRUSTED_KEYS" in str(info.value) and KEYS.seed[:4] not in str(info.value)
