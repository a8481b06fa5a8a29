"""Settings slices (alien/settings.py): AlienConfig's defaults, frozen, and only what each component reads.

Their reprs are scanned for secrets in test_secrets_scan_config.py.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from alien import AlienConfig, VideoConfig
from alien.settings import EntityDescription, MothershipSettings, NatsSettings


def test_a_slice_built_without_a_config_has_alien_configs_defaults() -> None:
    config = AlienConfig()
    assert NatsSettings() == NatsSettings.from_config(config)
    assert MothershipSettings() == MothershipSettings.from_config(config)
    assert EntityDescription() == EntityDescription.from_config(config)


def test_from_config_takes_the_configured_values() -> None:
    video = VideoConfig(protocol="rtsp", port=8554)
    config = AlienConfig(
        nats_url="nats://127.0.0.1:4222, tls://10.0.0.2:4222",
        jetstream_domain="leaf",
        nats_tls_ca=Path("ca.pem"),
        publish_timeout_s=2.5,
        mothership_url="https://c2.example.com",
        dialect="v0.1",
        api_key_header="bearer",
        request_attempts=2,
        allow_insecure=True,
        entity_type="rover",
        entity_name="R-1",
        video_config=video,
    )
    nats = NatsSettings.from_config(config)
    assert nats.servers == ("nats://127.0.0.1:4222", "tls://10.0.0.2:4222")
    assert (nats.jetstream_domain, nats.tls_ca, nats.publish_timeout_s, nats.allow_insecure) == (
        "leaf",
        Path("ca.pem"),
        2.5,
        True,
    )
    mothership = MothershipSettings.from_config(config)
    assert (mothership.url, mothership.dialect, mothership.api_key_header, mothership.request_attempts) == (
        "https://c2.example.com",
        "v0.1",
        "bearer",
        2,
    )
    assert EntityDescription.from_config(config) == EntityDescription("rover", "R-1", video)


def test_slices_are_frozen() -> None:
    for slice_ in (NatsSettings(), MothershipSettings(), EntityDescription()):
        field = dataclasses.fields(slice_)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(slice_, field, "changed")
