"""AlienConfig: the seed API's settings (docs/index.md#the-seed-api), on pydantic-settings.

Source compatible with the seed API: the same field names, environment variables and
defaults (MOTHERSHIP_URL, NATS_URL, API_BEARER_TOKEN, ORG_NAME, ORG_TYPE, ENTITY_TYPE, ENTITY_NAME,
ALIEN_CONFIG_FILE), a `.env` file, `config.org_id` / `config.entity_id`, and `save()` / `load()` of
the persisted ids. What the real servers need beyond it (docs/contract.md) lives in `ALIEN_*`
variables.

Immutable once validated (docs/architecture.md#settings-and-identity): what registration learns
(ids, dialect, refused rights) lives in the config's `identity`, which `org_id`, `entity_id`,
`server_dialect`, `save()` and `load()` read and write through.

Secrets are `SecretStr`: they print as `**********` in reprs, logs and exceptions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pydantic
from pydantic import PrivateAttr, field_serializer, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from alien import config_checks
from alien.config_checks import URL_FIELDS
from alien.config_fields import (
    CommandFields,
    DeliveryFields,
    LinkProtectionFields,
    SeedFields,
    ServerFields,
    TelemetryFields,
)
from alien.config_fields_features import EncryptionFields, FirmwareFields, MetricsFields
from alien.errors import ConfigError
from alien.identity import DeviceIdentity, DeviceNames
from alien.learnt_denials import LearntDenials
from alien.mothership.enums import ORG_TYPES, resolve_entity_type
from alien.wire import redact_url

# Seed API names of fields that hold the settings' part of something registration completes.
_SEED_NAMES = {"org_id": "pinned_org_id", "entity_id": "pinned_entity_id"}


class AlienConfig(
    EncryptionFields,
    FirmwareFields,
    MetricsFields,
    LinkProtectionFields,
    TelemetryFields,
    CommandFields,
    DeliveryFields,
    ServerFields,
    SeedFields,
    BaseSettings,
):
    """Everything alien needs to know; each field is also an environment variable.

    The fields are in alien/config_fields.py and alien/config_fields_features.py, by group; a base
    listed later comes first in order.
    """

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_prefix="ALIEN_",  # a field without an alias is ALIEN_<FIELD NAME>
        extra="ignore",
        env_ignore_empty=True,  # `ALIEN_API_KEY=` in .env means "not set", as in .env.example
        populate_by_name=True,
        frozen=True,
    )

    _identity: DeviceIdentity = PrivateAttr()

    def __init__(self, **values: Any) -> None:
        for seed_name, field in _SEED_NAMES.items():
            if seed_name in values:
                values[field] = values.pop(seed_name)
        error: ConfigError | None = None
        try:
            super().__init__(**values)
        except pydantic.ValidationError as exc:
            error = ConfigError(config_checks.describe(exc, type(self).model_fields))
        if error is not None:
            raise error  # raised outside the except: no __context__ holding the rejected input

    def model_post_init(self, context: Any, /) -> None:
        names = DeviceNames(self.org_name, self.entity_type, self.entity_name)
        self._identity = DeviceIdentity(
            Path(self.config_file), names, pinned_org_id=self.pinned_org_id, pinned_entity_id=self.pinned_entity_id
        )

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):  # pydantic's own bookkeeping and private attributes
            super().__setattr__(name, value)
            return
        raise ConfigError(
            f"AlienConfig is immutable: {name} cannot be set after validation "
            f"(give it to AlienConfig(...), or use config.derive({name}=...) for a new one)"
        )

    def derive(self, **changes: Any) -> AlienConfig:
        """A new, validated config: these settings with `changes`, and an identity of its own.

        ConfigError names a bad setting, as the constructor does.
        """
        for seed_name, field in _SEED_NAMES.items():
            if seed_name in changes:
                changes[field] = changes.pop(seed_name)
        unknown = sorted(set(changes) - set(type(self).model_fields))
        if unknown:  # the constructor ignores unknown names (a shared .env); a typo here is a mistake
            raise ConfigError(f"AlienConfig has no setting {', '.join(map(repr, unknown))}")
        values = {name: getattr(self, name) for name in type(self).model_fields}
        derived = type(self)(**{**values, **changes})
        # what was given stays told apart from defaults (e.g. "org_name" set or not)
        object.__setattr__(derived, "__pydantic_fields_set__", self.model_fields_set | set(changes))
        return derived

    def __repr_args__(self) -> Any:
        # URLs may carry user:password@ (NATS_URL allows it): never shown in reprs.
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if name in URL_FIELDS and isinstance(value, str) else value

    @field_serializer("nats_url", "mothership_url")
    def _without_credentials(self, url: str) -> str:
        return redact_url(url)  # model_dump() feeds logs (the bridge's defaults line)

    @field_validator("video_config", mode="before")
    @classmethod
    def _json_object(cls, value: Any) -> Any:
        if isinstance(value, str):  # a ROS parameter, or a value read from a file
            try:
                value = json.loads(value)
            except ValueError:
                raise ValueError('must be a JSON object, e.g. {"protocol": "rtsp", "port": 8554}') from None
        return value

    @field_validator("entity_type")
    @classmethod
    def _known_entity_type(cls, value: str) -> str:
        resolve_entity_type(value)  # raises ConfigError listing the allowed names
        return value

    @field_validator("mothership_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return config_checks.mothership_url(value)

    @field_validator("nats_url")
    @classmethod
    def _nats_urls(cls, value: str) -> str:
        return config_checks.nats_urls(value)

    @field_validator("metrics_addr")
    @classmethod
    def _metrics_address(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None  # empty (a ROS parameter left "", ALIEN_METRICS_ADDR=) means off
        config_checks.metrics_address(value)
        return value.strip()

    @property
    def identity(self) -> DeviceIdentity:
        """What registration learnt: ids, dialect, refused rights (the only part that changes)."""
        return self._identity

    @property
    def org_id(self) -> str | None:
        """The organization in use: pinned (ALIEN_ORG_ID), saved, or registered; None before that."""
        return self._identity.org_id

    @property
    def entity_id(self) -> str | None:
        """The entity in use: pinned (ALIEN_ENTITY_ID), saved, or registered; None before that."""
        return self._identity.entity_id

    @property
    def server_dialect(self) -> str | None:
        """The server's dialect: configured, else as last detected and saved; None when unknown."""
        return self.dialect if self.dialect != "auto" else self._identity.dialect

    @property
    def learnt_denials(self) -> LearntDenials:
        return self._identity.denials

    @property
    def nats_servers(self) -> list[str]:
        """NATS_URL split into the server list nats-py takes."""
        return [u.strip() for u in self.nats_url.split(",") if u.strip()]

    @property
    def identity_path(self) -> Path:
        return Path(self.config_file)

    @property
    def outbox_path(self) -> Path:
        """One outbox per identity, so several devices in one process never share one."""
        return self.data_dir / f"outbox.{self.identity_path.stem.lstrip('.') or 'alien'}.sqlite3"

    # --- the seed API's persistence methods ---
    def save(self) -> None:
        """Save the ids and names to `config_file` (atomic, mode 0600, never any secret)."""
        self._identity.save()

    def load(self) -> None:
        """Load saved ids from `config_file` if it exists.

        Ids given explicitly (constructor or ALIEN_ORG_ID / ALIEN_ENTITY_ID) win over the file; a
        saved entity that belongs to another organization than the pinned one is not reused.
        A corrupt file raises IdentityFileError naming it.
        """
        self._identity.load()


def env_names(field: str) -> list[str]:
    """The environment variables that set `field`: its seed API name(s), else ALIEN_<FIELD>."""
    return config_checks.env_names(field, AlienConfig.model_fields[field])


# Re-exported for callers who validate org types themselves.
__all__ = ["ORG_TYPES", "AlienConfig"]
