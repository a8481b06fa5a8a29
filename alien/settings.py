"""Settings slices: each component gets a small frozen view of exactly the AlienConfig fields it reads.

A component's dependencies are visible in its signature, and a test builds a slice without a
whole configuration (docs/architecture.md#settings-slices). Defaults are AlienConfig's own (read
from its fields; an unset credential or file is None in both), so the two never drift apart.
Secrets stay `SecretStr`, and URLs are shown without credentials: no repr of a slice ever holds
a secret.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import SecretStr

from alien.config import AlienConfig
from alien.signing import SignaturePolicy
from alien.wire import redact_url

if TYPE_CHECKING:
    from alien.video import VideoConfig


def _default(field: str) -> Any:
    return AlienConfig.model_fields[field].default


_DEV_TOKEN: SecretStr = _default("bearer_token")  # the v0.0.1 dev server's


def _repr(slice_: Any, urls: tuple[str, ...]) -> str:
    """The dataclass repr, with each URL field (a string or a tuple of them) through redact_url."""
    shown = []
    for item in fields(slice_):
        value = getattr(slice_, item.name)
        if item.name in urls:
            value = tuple(map(redact_url, value)) if isinstance(value, tuple) else redact_url(value)
        shown.append(f"{item.name}={value!r}")
    return f"{type(slice_).__name__}({', '.join(shown)})"


@dataclass(frozen=True, repr=False)
class NatsSettings:
    """What the NATS link, its connect options, its TLS client and the NATS transport check read."""

    servers: tuple[str, ...] = tuple(u.strip() for u in _default("nats_url").split(","))
    jetstream_domain: str | None = _default("jetstream_domain")
    connect_timeout_s: float = _default("nats_connect_timeout_s")
    reconnect_wait_s: float = _default("nats_reconnect_wait_s")
    ping_interval_s: float = _default("nats_ping_interval_s")
    max_outstanding_pings: int = _default("nats_max_outstanding_pings")
    publish_timeout_s: float = _default("publish_timeout_s")
    token: SecretStr | None = None
    user: str | None = None
    password: SecretStr | None = None
    nkey_seed: SecretStr | None = None
    nkey_seed_file: Path | None = None
    creds_file: Path | None = None
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    allow_insecure: bool = _default("allow_insecure")

    @classmethod
    def from_config(cls, config: AlienConfig) -> NatsSettings:
        return cls(
            servers=tuple(config.nats_servers),
            jetstream_domain=config.jetstream_domain,
            connect_timeout_s=config.nats_connect_timeout_s,
            reconnect_wait_s=config.nats_reconnect_wait_s,
            ping_interval_s=config.nats_ping_interval_s,
            max_outstanding_pings=config.nats_max_outstanding_pings,
            publish_timeout_s=config.publish_timeout_s,
            token=config.nats_token,
            user=config.nats_user,
            password=config.nats_password,
            nkey_seed=config.nats_nkey_seed,
            nkey_seed_file=config.nats_nkey_seed_file,
            creds_file=config.nats_creds_file,
            tls_ca=config.nats_tls_ca,
            tls_cert=config.nats_tls_cert,
            tls_key=config.nats_tls_key,
            allow_insecure=config.allow_insecure,
        )

    @property
    def url(self) -> str:
        """The server list as NATS_URL writes it; shown only through redact_url (it may hold a password)."""
        return ",".join(self.servers)

    def __repr__(self) -> str:
        return _repr(self, ("servers",))


@dataclass(frozen=True, repr=False)
class MothershipSettings:
    """What the REST client and the HTTP transport check read: where, how to authenticate, how to retry."""

    url: str = _default("mothership_url")
    bearer_token: SecretStr = _DEV_TOKEN
    api_key: SecretStr | None = None
    api_key_header: Literal["x-api-key", "bearer"] = _default("api_key_header")
    request_timeout_s: float = _default("request_timeout_s")
    request_attempts: int = _default("request_attempts")
    retry_backoff_s: float = _default("retry_backoff_s")
    retry_backoff_max_s: float = _default("retry_backoff_max_s")
    http_tls_ca: Path | None = None
    dialect: Literal["auto", "v0.0.1", "v0.1"] = _default("dialect")
    allow_insecure: bool = _default("allow_insecure")

    @classmethod
    def from_config(cls, config: AlienConfig) -> MothershipSettings:
        return cls(
            url=config.mothership_url,
            bearer_token=config.bearer_token,
            api_key=config.api_key,
            api_key_header=config.api_key_header,
            request_timeout_s=config.request_timeout_s,
            request_attempts=config.request_attempts,
            retry_backoff_s=config.retry_backoff_s,
            retry_backoff_max_s=config.retry_backoff_max_s,
            http_tls_ca=config.http_tls_ca,
            dialect=config.dialect,
            allow_insecure=config.allow_insecure,
        )

    def __repr__(self) -> str:
        return _repr(self, ("url",))


@dataclass(frozen=True)
class TelemetrySettings:
    """What the choice of telemetry format and its encoder read (docs/contract.md#telemetry-payloads)."""

    telemetry_format: Literal["auto", "seed", "mavlink", "envelope_v1"] = _default("telemetry_format")
    entity_type: str = _default("entity_type")
    mavlink_system_id: int = _default("mavlink_system_id")
    mavlink_component_id: int = _default("mavlink_component_id")
    telemetry_source: str | None = None

    @classmethod
    def from_config(cls, config: AlienConfig) -> TelemetrySettings:
        return cls(
            telemetry_format=config.telemetry_format,
            entity_type=config.entity_type,
            mavlink_system_id=config.mavlink_system_id,
            mavlink_component_id=config.mavlink_component_id,
            telemetry_source=config.telemetry_source,
        )


@dataclass(frozen=True)
class EntityDescription:
    """The device as registered: its type, its name and its video streams (MothershipClient.create_entity)."""

    entity_type: str = _default("entity_type")
    entity_name: str | None = _default("entity_name")
    video_config: VideoConfig | None = None

    @classmethod
    def from_config(cls, config: AlienConfig) -> EntityDescription:
        return cls(entity_type=config.entity_type, entity_name=config.entity_name, video_config=config.video_config)


@dataclass(frozen=True)
class FirmwareSettings:
    """What a firmware update reads (docs/firmware.md): the bucket, the limits, where files go, whom to trust."""

    bucket: str = _default("firmware_bucket")
    max_bytes: int = _default("firmware_max_bytes")
    retry_budget_s: float = _default("firmware_retry_budget_s")
    directory: Path = Path(".alien/firmware.alien_config")  # the defaults' (data_dir, config_file)
    trusted_keys: frozenset[str] = frozenset()

    @classmethod
    def from_config(cls, config: AlienConfig) -> FirmwareSettings:
        """Files go to `<data_dir>/firmware.<identity stem>/`, one directory per identity like the outbox."""
        return cls(
            bucket=config.firmware_bucket,
            max_bytes=config.firmware_max_bytes,
            retry_budget_s=config.firmware_retry_budget_s,
            directory=config.data_dir / f"firmware.{config.identity_path.stem.lstrip('.') or 'alien'}",
            trusted_keys=frozenset(config.command_trusted_keys),
        )


__all__ = [
    "EntityDescription",
    "FirmwareSettings",
    "MothershipSettings",
    "NatsSettings",
    "TelemetrySettings",
    "signature_policy",
]


def signature_policy(config: AlienConfig) -> SignaturePolicy:
    """The command-signing policy of ALIEN_COMMAND_* (docs/commands.md#signed-commands)."""
    return SignaturePolicy(
        frozenset(config.command_trusted_keys),
        frozenset(config.command_critical_types),
        config.command_require_signature,
        config.command_max_age_s,
    )
