"""The ALIEN_E2E_* settings: parsed from the environment, refused when they cannot work, named in every error.

docs/encryption.md#configuration and docs/encryption.md#what-stays-readable.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from alien import AlienClient, AlienConfig
from alien.e2e import generate_keypair
from alien.errors import ConfigError
from alien.settings import device_opener, field_sealer
from alien.signing import generate_keypair as generate_signing_keypair

READER = generate_keypair()
DEVICE = generate_keypair()


def test_settings_come_comma_separated_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seed_file = tmp_path / "device.xk"
    seed_file.write_text(DEVICE.seed)
    monkeypatch.setenv("ALIEN_E2E_TELEMETRY_KEYS", "camera, payload")
    monkeypatch.setenv("ALIEN_E2E_EVENTS", "door_opened")
    monkeypatch.setenv("ALIEN_E2E_RECIPIENTS", f" {READER.public_key} ,{DEVICE.public_key}")
    monkeypatch.setenv("ALIEN_E2E_DEVICE_SEED_FILE", str(seed_file))
    monkeypatch.setenv("ALIEN_E2E_COMMAND_TYPES", "set_geofence,arm")
    monkeypatch.setenv("ALIEN_COMMAND_CRITICAL_TYPES", "arm,disarm")  # the other lists still parse beside these
    config = AlienConfig()
    assert config.command_critical_types == ["arm", "disarm"]
    assert config.e2e_telemetry_keys == ["camera", "payload"] and config.e2e_events == ["door_opened"]
    assert config.e2e_recipients == [READER.public_key, DEVICE.public_key]
    assert config.e2e_command_types == ["set_geofence", "arm"]
    fields = field_sealer(config)
    assert fields is not None and fields.telemetry_keys == {"camera", "payload"}
    assert fields.sealer.recipients == (READER.public_key, DEVICE.public_key)
    opener = device_opener(config)
    assert opener is not None and opener.key_ids == [DEVICE.public_key]
    assert field_sealer(AlienConfig(_env_file=None, e2e_telemetry_keys=[], e2e_events=[])) is None  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"e2e_telemetry_keys": "camera"},
            "ALIEN_E2E_TELEMETRY_KEYS set, but ALIEN_E2E_RECIPIENTS is empty: nobody could read what is encrypted",
        ),
        ({"e2e_events": "door_opened"}, "ALIEN_E2E_EVENTS set, but ALIEN_E2E_RECIPIENTS is empty"),
        (
            {"e2e_telemetry_keys": "camera,position,battery_level", "e2e_recipients": READER.public_key},
            "ALIEN_E2E_TELEMETRY_KEYS (e2e_telemetry_keys): battery_level, position must stay readable",
        ),
        (
            {"e2e_events": "door_opened,bootsequence,command_completed", "e2e_recipients": READER.public_key},
            "ALIEN_E2E_EVENTS (e2e_events): bootsequence, command_completed must stay readable",
        ),
        (
            {"e2e_events": "door opened", "e2e_recipients": READER.public_key},
            "ALIEN_E2E_EVENTS (e2e_events): event type 'door opened' cannot be a NATS subject token",
        ),
        (
            {"e2e_recipients": generate_signing_keypair().public_key},
            "ALIEN_E2E_RECIPIENTS (e2e_recipients): ",
        ),
        ({"e2e_command_types": "arm"}, "ALIEN_E2E_COMMAND_TYPES set, but this device has no key to decrypt with"),
        (
            {"e2e_device_seed": DEVICE.seed, "e2e_device_seed_file": "device.xk"},
            "set one of ALIEN_E2E_DEVICE_SEED and ALIEN_E2E_DEVICE_SEED_FILE, not both",
        ),
    ],
)
def test_settings_that_cannot_work_are_refused_naming_the_variable(settings: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as raised:
        AlienConfig(**settings)  # type: ignore[arg-type]
    assert str(raised.value).count("\n") == 0
    assert DEVICE.seed not in str(raised.value)


def test_a_recipient_given_a_seed_is_refused_without_showing_it() -> None:
    with pytest.raises(
        ConfigError, match=r"a seed \(S\.\.\.\) was given where a public key \(X\.\.\.\) belongs"
    ) as raised:
        AlienConfig(e2e_recipients=[READER.seed])
    assert READER.seed not in str(raised.value) and READER.seed not in repr(raised.value)


def test_a_device_key_that_cannot_be_read_stops_the_client_from_being_built(tmp_path: Path) -> None:
    missing = tmp_path / "missing.xk"
    with pytest.raises(ConfigError, match=rf"ALIEN_E2E_DEVICE_SEED_FILE: cannot read {re.escape(str(missing))}"):
        AlienClient(AlienConfig(e2e_device_seed_file=missing))
    signing_seed = generate_signing_keypair().seed
    wrong = tmp_path / "operator.nk"
    wrong.write_text(signing_seed)
    with pytest.raises(ConfigError, match=r"operator\.nk: an operator \(command-signing\) seed") as raised:
        AlienClient(AlienConfig(e2e_device_seed_file=wrong))
    assert signing_seed not in str(raised.value)
    with pytest.raises(ConfigError, match=r"ALIEN_E2E_DEVICE_SEED: an operator \(command-signing\) seed") as raised:
        AlienClient(AlienConfig(e2e_device_seed=signing_seed))
    assert signing_seed not in str(raised.value)
    assert AlienClient(AlienConfig(e2e_device_seed=DEVICE.seed)) is not None
