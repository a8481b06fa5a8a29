"""The settings of AlienConfig, grouped by what reads them (docs/configuration.md).

Each group is a mixin of fields only; AlienConfig (alien/config.py) combines them in this order,
which is the order of the configuration reference, and adds the environment, the validation of
URLs and the identity. The optional features' groups (firmware, encryption, metrics) are in
alien/config_fields_features.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from alien.video import VideoConfig


def _env(field: str, *names: str) -> Any:
    """A field settable by its Python name (constructor) or by any of the env names."""
    return AliasChoices(field, *names)


class SeedFields(BaseModel):
    """The seed API's settings: names, environment variables and defaults kept (docs/index.md#the-seed-api)."""

    mothership_url: str = Field(
        description="REST API of the mothership; beyond loopback https:// (or ALIEN_ALLOW_INSECURE).",
        default="http://localhost:8080",
        validation_alias=_env("mothership_url", "MOTHERSHIP_URL"),
    )
    nats_url: str = Field(
        default="nats://localhost:4222",
        description="One URL or a comma-separated list of servers.",
        validation_alias=_env("nats_url", "NATS_URL"),
    )
    bearer_token: SecretStr = Field(
        description="v0.0.1 bearer token (default: the dev server's); v0.1.x uses it when ALIEN_API_KEY is unset.",
        default=SecretStr("constellation-dev-token"),
        validation_alias=_env("bearer_token", "API_BEARER_TOKEN"),
    )
    org_name: str = Field(
        description="Organization joined by name, or created when none has this name.",
        default="Alien Fleet",
        validation_alias=_env("org_name", "ORG_NAME"),
    )
    org_type: Literal["military", "civilian", "commercial", "ngo"] = Field(
        description="Type of an organization created by alien.",
        default="commercial",
        validation_alias=_env("org_type", "ORG_TYPE"),
    )
    entity_type: str = Field(
        description="Entity type: a friendly name (drone, robot, rover, sensor, boat, ...) or a server enum.",
        default="drone",
        validation_alias=_env("entity_type", "ENTITY_TYPE"),
    )
    entity_name: str | None = Field(
        description="Entity name shown to operators (unset: alien-<ENTITY_TYPE>).",
        default=None,
        validation_alias=_env("entity_name", "ENTITY_NAME"),
    )
    config_file: str = Field(
        description="Identity file: where the registered org/entity ids are saved (mode 0600).",
        default=".alien_config.json",
    )
    # Set, they pin the identity; `org_id` / `entity_id` are the ids in use (pinned, saved or registered).
    pinned_org_id: str | None = Field(
        description="Pin an existing organization instead of joining or creating one by name.",
        default=None,
        validation_alias="ALIEN_ORG_ID",
    )
    pinned_entity_id: str | None = Field(
        description="Pin an existing entity instead of registering one.",
        default=None,
        validation_alias="ALIEN_ENTITY_ID",
    )


class ServerFields(BaseModel):
    """What real servers need: dialect, credentials, TLS, timeouts and retries (docs/contract.md)."""

    dialect: Literal["auto", "v0.0.1", "v0.1"] = Field(
        default="auto",
        description="REST dialect; auto detects it (docs/contract.md#telling-the-dialects-apart).",
    )
    api_key: SecretStr | None = Field(
        default=None,
        description="v0.1.x API key (c4_live_... / c4_test_...), sent as X-API-Key.",
    )
    nats_token: SecretStr | None = Field(description="NATS token authentication.", default=None)
    nats_user: str | None = Field(description="NATS user (with ALIEN_NATS_PASSWORD).", default=None)
    nats_password: SecretStr | None = Field(description="NATS password (with ALIEN_NATS_USER).", default=None)
    nats_nkey_seed: SecretStr | None = Field(
        description="NKey seed (SU...) to log in to NATS; on v0.1.x the API key's seed.", default=None
    )
    nats_nkey_seed_file: Path | None = Field(
        description="File holding the NKey seed (instead of ALIEN_NATS_NKEY_SEED).", default=None
    )
    nats_creds_file: Path | None = Field(
        description="NATS .creds file (user JWT + NKey seed, operator-mode servers).", default=None
    )
    nats_tls_ca: Path | None = Field(
        description="CA certificate to verify the NATS server with; setting it turns TLS on.", default=None
    )
    nats_tls_cert: Path | None = Field(
        description="Client certificate for NATS TLS (with ALIEN_NATS_TLS_KEY).", default=None
    )
    nats_tls_key: Path | None = Field(description="Client certificate key for NATS TLS.", default=None)
    http_tls_ca: Path | None = Field(
        default=None,
        description="CA bundle to verify an HTTPS mothership with (system CAs otherwise).",
    )
    jetstream_domain: str | None = Field(
        default=None,
        description="Only needed through a leaf node; a direct connection uses the local domain.",
    )
    data_dir: Path = Field(
        description="Local state: the outbox and the accepted-command store.", default=Path(".alien")
    )
    command_intake: Literal["auto", "core", "jetstream"] = Field(
        default="auto",
        description="core works on real servers; jetstream needs a commands stream that allows "
        "a second consumer; auto tries jetstream and falls back (docs/contract.md#work-queue-consumers).",
    )
    reregister_deleted_entity: bool = Field(
        default=True,
        description="Register again (and rewrite the identity file) when the server 404s the saved entity.",
    )
    request_timeout_s: float = Field(description="Timeout of one REST request.", default=10.0, gt=0)
    request_attempts: int = Field(
        description="REST attempts for retryable failures (connection errors, timeouts, 5xx, 429).", default=5, ge=1
    )
    retry_backoff_s: float = Field(
        description="First REST retry delay (jittered exponential backoff).", default=0.5, gt=0
    )
    retry_backoff_max_s: float = Field(description="Longest REST retry delay.", default=10.0, gt=0)
    nats_connect_timeout_s: float = Field(description="Timeout of one NATS connection attempt.", default=5.0, gt=0)
    nats_reconnect_wait_s: float = Field(
        description="Pause between NATS reconnect attempts (reconnects never stop).", default=1.0, gt=0
    )
    nats_reconnect_jitter_s: float = Field(
        default=2.0,
        ge=0,
        description="Each NATS reconnect attempt waits a random 0..this much more: a fleet that lost its hub "
        "comes back spread over this window, not all at once (docs/capacity.md#reconnect-storms).",
    )
    nats_ping_interval_s: float = Field(
        default=10.0,
        gt=0,
        description="A dead link is noticed after ping_interval x max_outstanding_pings.",
    )
    nats_max_outstanding_pings: int = Field(
        description="Unanswered pings before the NATS link counts as dead.", default=3, ge=1
    )
    publish_timeout_s: float = Field(
        description="How long a publish waits for its PubAck before it is retried with the same id.", default=5.0, gt=0
    )
    publish_window: int = Field(
        default=256,
        ge=1,
        description="JetStream publishes in flight at once (sent, awaiting their PubAck).",
    )


class DeliveryFields(BaseModel):
    """The outbox: bounds, what goes when full, durability (docs/delivery.md)."""

    outbox_max_messages: int = Field(
        description="Messages queued at most; at the bound the full policy drops telemetry.", default=10_000, ge=1
    )
    outbox_max_bytes: int = Field(default=64 * 1024 * 1024, ge=1024, description="Payload bytes queued at most.")
    outbox_max_age_s: float = Field(
        default=86_400.0, ge=0, description="Telemetry older than this is dropped unsent (0: no age limit)."
    )
    outbox_full_policy: Literal["drop_oldest", "drop_newest"] = Field(
        default="drop_oldest",
        description="Which telemetry goes when a bound is reached; events are never dropped before telemetry.",
    )
    outbox_durability: Literal["memory", "process", "power"] = Field(
        default="process",
        description="process: queued messages survive a killed process (SQLite WAL under data_dir); "
        "power: also a power cut (fsync per message); memory: nothing survives a restart.",
    )
    stats_log_interval_s: float = Field(
        default=60.0, ge=0, description="Outbox counters logged at INFO this often when non-zero (0: never)."
    )


class CommandFields(BaseModel):
    """Command intake and its policy: replay window, signatures, flood limits (docs/commands.md)."""

    command_dedupe_window_s: float = Field(
        default=600.0, gt=0, description="A command_id seen within this window is never executed again."
    )
    command_clock_skew_s: float = Field(
        default=5.0, ge=0, description="Allowance when judging issued_at / expires_at of commands."
    )
    command_progress_rate_hz: float = Field(
        default=2.0, ge=0, description="command_progress events per second per command at most (0: all)."
    )
    # --- signed commands (alien/signing.py; docs/commands.md#signed-commands) ---
    command_trusted_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Operator public keys (O...) whose signatures are trusted; comma-separated in the environment.",
    )
    command_critical_types: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Command types that need a valid signature from a trusted key; comma-separated.",
    )
    command_require_signature: bool = Field(
        default=False, description="Every command type needs a valid signature from a trusted key."
    )
    command_max_age_s: float = Field(
        default=30.0, gt=0, description="Life of a signed command that carries issued_at but no ttl_s / expires_at."
    )
    command_rate_limit_hz: float = Field(
        default=100.0,
        ge=0,
        description="Commands per second taken in at most for this entity (0: no limit); the rest is dropped "
        "unread and counted as rate_limited. Above teleoperation rates (cmd_vel at 50 Hz); a command signed by "
        "a trusted key is never limited.",
    )
    command_burst: int = Field(default=200, ge=1, description="Commands taken in at once above that rate.")
    command_rejections_logged: int = Field(
        default=10,
        ge=0,
        description="Rejected commands logged and reported one by one per ALIEN_COMMAND_REJECTION_WINDOW_S; "
        "beyond that, one summary line and one commands_rejected event per window.",
    )
    command_rejection_window_s: float = Field(
        default=10.0, gt=0, description="The window over which rejected commands are summarised."
    )

    @field_validator("command_trusted_keys", "command_critical_types", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("command_trusted_keys")
    @classmethod
    def _operator_keys(cls, value: list[str]) -> list[str]:
        from alien.signing import SigningKeyError, check_public_key

        try:
            return [check_public_key(key) for key in value]
        except SigningKeyError as exc:
            raise ValueError(f"ALIEN_COMMAND_TRUSTED_KEYS (command_trusted_keys): {exc}") from None


class TelemetryFields(BaseModel):
    """What current (v0.1.x) servers read (docs/contract.md#operator-map-kv, docs/contract.md#telemetry-payloads)."""

    telemetry_format: Literal["auto", "seed", "mavlink", "envelope_v1"] = Field(
        default="auto",
        description="auto: seed on v0.0.1, mavlink on v0.1.x; envelope_v1 for the strict "
        "release-candidate server (docs/contract.md#telemetry-envelope-v1).",
    )
    mavlink_system_id: int = Field(default=1, ge=1, le=255, description="MAVLink system_id of this device.")
    mavlink_component_id: int = Field(default=1, ge=0, le=255, description="MAVLink component_id (1: autopilot).")
    telemetry_source: str | None = Field(default=None, description="envelope_v1 'source' field (left out when unset).")
    heartbeat_period_s: float = Field(
        default=1.0, ge=0, description="HEARTBEAT period of the MAVLink formats (0: no heartbeat)."
    )
    entity_state: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="Merge this device's state into the CONSTELLATION_GLOBAL_STATE KV bucket "
        "(docs/contract.md#operator-map-kv); auto: on v0.1.x servers, switched off when the server denies KV access.",
    )
    entity_state_period_s: float = Field(default=1.0, gt=0, description="KV state writes at most this often.")
    lifecycle_events: bool = Field(
        default=True,
        description="Send bootsequence on every (re)connect and shutdown on close (docs/contract.md#lifecycle-events).",
    )
    admission_grace_s: float = Field(
        default=0.5,
        ge=0,
        description="envelope_v1: after bootsequence is stored, telemetry waits this long for the server "
        "to admit the entity (it admits asynchronously and never answers).",
    )
    device_id: str | None = Field(
        default=None, description="device_id in lifecycle events (default: ENTITY_NAME, else the entity id)."
    )
    video_config: VideoConfig | None = Field(
        default=None,
        description="The entity's video streams as a JSON object (protocol rtsp|rtmp|srt|hls, port, stream_url, "
        "overlay_url, webrtc_url, overlay_webrtc_url, hls_url), sent at registration and on start (v0.1.x servers; "
        "v0.0.1 has no such field).",
    )
    api_key_header: Literal["x-api-key", "bearer"] = Field(
        default="x-api-key", description="How the v0.1.x API key is sent: X-API-Key or Authorization: Bearer."
    )


class LinkProtectionFields(BaseModel):
    """Flood limits (docs/delivery.md#flood-protection) and TLS beyond loopback."""

    telemetry_rate_limit_hz: float = Field(
        default=200.0,
        ge=0,
        description="Telemetry readings per second accepted at most, all keys together (0: no limit); "
        "the rest is dropped and counted as rate_limited. Events and command results are never limited.",
    )
    telemetry_burst: int = Field(default=400, ge=1, description="Readings accepted at once above the overall rate.")
    telemetry_rate_limit_per_key_hz: float = Field(
        default=50.0,
        ge=0,
        description="Readings per second accepted at most per telemetry key (the reading's top-level keys, "
        "e.g. position, power, a mapped topic's key; the heartbeat is its own key) (0: no limit).",
    )
    telemetry_burst_per_key: int = Field(default=100, ge=1, description="Readings of one key accepted at once.")
    allow_insecure: bool = Field(
        default=False,
        description="Allow plain nats:// and http:// to hosts other than loopback (refused by default; "
        "a WARNING is logged when allowed).",
    )
