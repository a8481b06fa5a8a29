"""The settings of AlienConfig's optional features: firmware updates, end-to-end encryption, metrics.

Mixins of fields only, as in alien/config_fields.py (docs/configuration.md); AlienConfig
(alien/config.py) combines them with the other groups, in the order of the configuration reference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from alien import config_checks
from alien.e2e.fields import reserved_events, reserved_telemetry_keys
from alien.e2e.keys import E2EKeyError, check_public_key
from alien.wire import subject_token


class FirmwareFields(BaseModel):
    """Firmware over the air: where it comes from, how big it may be, how long a download retries (docs/firmware.md)."""

    firmware_bucket: str = Field(
        default="alien_firmware",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="JetStream object store bucket firmware_update reads from, unless the command names another "
        "(the operator's bucket: `alien firmware upload` creates it).",
    )
    firmware_max_bytes: int = Field(
        default=512 * 1024 * 1024,
        ge=1,
        description="Largest firmware file accepted; a bigger one is refused before anything is downloaded.",
    )
    firmware_retry_budget_s: float = Field(
        default=120.0,
        gt=0,
        description="How long an interrupted firmware download keeps retrying (reconnects, server restarts: "
        "it resumes at the chunk it was reading) without receiving anything, before it fails.",
    )


class EncryptionFields(BaseModel):
    """End-to-end encryption of sensitive data (docs/encryption.md)."""

    e2e_telemetry_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Telemetry keys (a reading's top-level keys, e.g. camera,payload) sent encrypted to "
        "ALIEN_E2E_RECIPIENTS; comma-separated. position, power and battery_level stay readable.",
    )
    e2e_events: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Event types whose data is sent encrypted to ALIEN_E2E_RECIPIENTS; comma-separated. "
        "Lifecycle, status, telemetry and command events stay readable.",
    )
    e2e_recipients: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Public keys (X...) of the operators who may read what is encrypted; comma-separated.",
    )
    e2e_device_seed: SecretStr | None = Field(
        default=None,
        description="This device's encryption key (seed SX...): command params encrypted to its public key "
        "are decrypted with it.",
    )
    e2e_device_seed_file: Path | None = Field(
        default=None, description="File holding that seed (mode 0600; instead of ALIEN_E2E_DEVICE_SEED)."
    )
    e2e_command_types: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Command types whose params must arrive encrypted to this device's key (others are rejected "
        "as not_encrypted); comma-separated.",
    )

    @field_validator("e2e_telemetry_keys", "e2e_events", "e2e_recipients", "e2e_command_types", mode="before")
    @classmethod
    def _e2e_comma_separated(cls, value: Any) -> Any:  # its own name: one like CommandFields' would hide that
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @model_validator(mode="after")
    def _work_together(self) -> EncryptionFields:
        config_checks.encryption(self)
        return self

    @field_validator("e2e_recipients")
    @classmethod
    def _public_keys(cls, value: list[str]) -> list[str]:
        try:
            return [check_public_key(key) for key in value]
        except E2EKeyError as exc:
            raise ValueError(f"ALIEN_E2E_RECIPIENTS (e2e_recipients): {exc}") from None

    @field_validator("e2e_telemetry_keys")
    @classmethod
    def _readable_keys_stay_readable(cls, value: list[str]) -> list[str]:
        reserved = reserved_telemetry_keys(value)
        if reserved:
            raise ValueError(
                f"ALIEN_E2E_TELEMETRY_KEYS (e2e_telemetry_keys): {', '.join(reserved)} must stay readable: "
                "the server shows them on its map (docs/encryption.md#what-stays-readable)"
            )
        return value

    @field_validator("e2e_events")
    @classmethod
    def _readable_events_stay_readable(cls, value: list[str]) -> list[str]:
        reserved = reserved_events(value)
        if reserved:
            raise ValueError(
                f"ALIEN_E2E_EVENTS (e2e_events): {', '.join(reserved)} must stay readable: the server or the "
                "operator's tools act on them; a telemetry key goes in ALIEN_E2E_TELEMETRY_KEYS "
                "(docs/encryption.md#what-stays-readable)"
            )
        for event_type in value:
            subject_token(event_type, "ALIEN_E2E_EVENTS (e2e_events): event type")
        return value


class MetricsFields(BaseModel):
    """The Prometheus metrics endpoint, off unless set (docs/metrics.md)."""

    metrics_addr: str | None = Field(
        default=None,
        description="Serve Prometheus metrics at http://HOST:PORT/metrics (e.g. 127.0.0.1:9464; port 0: any free "
        "port; a port alone: 127.0.0.1). Unset: no endpoint.",
    )
    metrics_allow_remote: bool = Field(
        default=False,
        description="Allow ALIEN_METRICS_ADDR on an address other than loopback (e.g. 0.0.0.0): the endpoint has "
        "no authentication, so anyone who reaches it reads the device's ids and counters (a WARNING is logged).",
    )
