"""The mothership facts the emulator reproduces, in one place (docs/contract.md, test/alien/test_emulator_*.py).

Values the contract leaves open (stream age/size limits, consumer settings, KV history) were read
from the real server's source (Constellation-Overwatch/constellation-overwatch,
pkg/services/embedded-nats/nats.go) so the read-back stream configs look like a real server's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from nats.js.api import DiscardPolicy, RetentionPolicy

Dialect = Literal["v0.0.1", "v0.1"]
DIALECTS: tuple[Dialect, ...] = ("v0.0.1", "v0.1")
# The v0.1 dialect's server release lines (docs/contract.md#server-versions): the tagged release
# v0.1.1 and the release-candidate line with the strict telemetry envelope ("rc").
Release = Literal["v0.1.1", "rc"]
RELEASES: tuple[Release, ...] = ("v0.1.1", "rc")

# docs/contract.md#legacy-rest: the dev bearer token.
DEFAULT_BEARER_TOKEN = "constellation-dev-token"
# docs/contract.md#api-keys-and-scopes: API keys carry a c4_live_/c4_test_ prefix and scopes.
DEFAULT_API_KEY = "c4_test_alien_dev"
API_KEY_PREFIXES = ("c4_live_", "c4_test_")
SCOPE_ADMIN = "admin"
REST_SCOPES = frozenset({"organizations:read", "organizations:write", "entities:read", "entities:write", SCOPE_ADMIN})
# NATS scopes by release (the server turns them into the key's NKey permissions, see edge_auth.py).
# v0.1.1: pkg/services/embedded-nats/nats.go BuildNATSPermissions, pkg/authz/apikey_scopes.go.
NATS_SCOPES_V011 = frozenset(
    {"nats:telemetry", "nats:commands", "nats:commands:write", "nats:entities", "nats:events", "nats:all"}
)
# rc: pkg/shared/scopes.go (one data-plane direction per scope; nats:all and nats:telemetry are gone).
NATS_SCOPES_RC = frozenset(
    {
        "nats:telemetry:write",
        "nats:commands:read",
        "nats:commands:write",
        "nats:entities:read",
        "nats:entities:write",
        "nats:events:read",
        "nats:events:write",
    }
)
NATS_SCOPES: dict[Release, frozenset[str]] = {"v0.1.1": NATS_SCOPES_V011, "rc": NATS_SCOPES_RC}
# Accepted for old callers; no real release knows them (they grant nothing on NATS).
LEGACY_NATS_SCOPES = frozenset({"nats:publish", "nats:subscribe"})
SCOPES = REST_SCOPES | NATS_SCOPES_V011 | NATS_SCOPES_RC | LEGACY_NATS_SCOPES
# docs/contract.md#api-keys-and-scopes: a first boot already has this organization.
DEFAULT_ORG_ID = "default"
SERVICE_NAME = "constellation-overwatch"

# docs/contract.md#enumerations, enforced by the database (CHECK constraints).
ORG_TYPES = ("military", "civilian", "commercial", "ngo")
ENTITY_TYPES_V001 = (
    "aircraft_fixed_wing",
    "aircraft_multirotor",
    "aircraft_vtol",
    "aircraft_helicopter",
    "ground_vehicle_wheeled",
    "ground_vehicle_tracked",
    "surface_vessel_usv",
    "underwater_vehicle",
    "sensor_platform",
    "payload_system",
    "operator_station",
    "waypoint",
    "no_fly_zone",
    "geofence",
)
ENTITY_TYPES_V01 = (*ENTITY_TYPES_V001[:4], "aircraft_airship", *ENTITY_TYPES_V001[4:])
DB_STATUSES = ("active", "inactive", "pending", "error", "maintenance", "unknown")
# docs/contract.md#enumerations: the v0.1 API layer narrows status further than the database.
V01_API_STATUSES = ("active", "inactive", "unknown")
PRIORITIES = ("critical", "high", "normal", "low")


def entity_types(dialect: Dialect) -> tuple[str, ...]:
    return ENTITY_TYPES_V001 if dialect == "v0.0.1" else ENTITY_TYPES_V01


# docs/contract.md#subjects and server-side objects.
ENTITIES_SUBJECT = "constellation.entities"
KV_BUCKET = "CONSTELLATION_GLOBAL_STATE"
KV_HISTORY = 10

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class StreamSpec:
    """One server-created stream and the durable pull consumer the server runs on it."""

    name: str
    subject: str
    retention: RetentionPolicy
    duplicate_window_s: float
    max_msg_size: int
    discard: DiscardPolicy
    max_msgs: int
    max_bytes: int
    max_age_s: float
    allow_rollup: bool
    allow_direct: bool
    consumer: str | None  # None: the server runs no consumer on it (the quarantine stream)
    kind: str  # which record list the consumer feeds: entity_events, events, telemetry, commands


# rc: poison messages are moved here (pkg/shared/subjects.go StreamQuarantine / SubjectQuarantineAll,
# created in pkg/services/embedded-nats/nats.go CreateConstellationStreams).
QUARANTINE_STREAM = "CONSTELLATION_QUARANTINE"
QUARANTINE_SUBJECT = "constellation.quarantine"
# pkg/services/workers/base.go: quarantineAfterDeliveries, record subject token of "TelemetryWorker"
QUARANTINE_AFTER_DELIVERIES = 3


def stream_specs(dialect: Dialect, release: Release = "v0.1.1") -> tuple[StreamSpec, ...]:
    """docs/contract.md#streams, exactly; the telemetry row differs by dialect, and rc adds the quarantine stream."""
    legacy = dialect == "v0.0.1"
    hour = 3600.0
    quarantine = (
        StreamSpec(
            QUARANTINE_STREAM,
            QUARANTINE_SUBJECT + ".>",
            RetentionPolicy.LIMITS,
            120.0,
            512 * KIB,
            DiscardPolicy.OLD,
            10_000,
            64 * MIB,
            7 * 24 * hour,
            False,
            False,
            None,
            "",
        ),
    )
    return (
        StreamSpec(
            "CONSTELLATION_ENTITIES",
            "constellation.entities.>",
            RetentionPolicy.LIMITS,
            120.0,
            1 * MIB,
            DiscardPolicy.OLD,
            100_000,
            256 * MIB,
            7 * 24 * hour,
            True,
            True,
            "entity-processor",
            "entity_events",
        ),
        StreamSpec(
            "CONSTELLATION_EVENTS",
            "constellation.events.>",
            RetentionPolicy.WORK_QUEUE,
            120.0,
            256 * KIB,
            DiscardPolicy.OLD,
            50_000,
            128 * MIB,
            24 * hour,
            False,
            True,
            "event-processor",
            "events",
        ),
        StreamSpec(
            "CONSTELLATION_TELEMETRY",
            "constellation.telemetry.>",
            RetentionPolicy.INTEREST if legacy else RetentionPolicy.LIMITS,
            30.0,
            64 * KIB if legacy else 128 * KIB,
            DiscardPolicy.OLD,
            25_000 if legacy else 100_000,
            64 * MIB if legacy else 256 * MIB,
            hour if legacy else 2 * hour,
            True,
            True,
            "telemetry-processor",
            "telemetry",
        ),
        StreamSpec(
            "CONSTELLATION_COMMANDS",
            "constellation.commands.>",
            RetentionPolicy.WORK_QUEUE,
            60.0,
            32 * KIB,
            DiscardPolicy.NEW,
            10_000,
            32 * MIB,
            15 * 60.0,
            False,
            False,
            "command-processor",
            "commands",
        ),
    ) + (quarantine if dialect == "v0.1" and release == "rc" else ())


# The real server's durable consumer settings (CreateDurableConsumer). MaxDeliver is 3 up to
# v0.1.1 and 5 on rc, which quarantines after 3 deliveries instead (nats.go of each release).
CONSUMER_ACK_WAIT_S = 30.0
CONSUMER_MAX_DELIVER = 3
CONSUMER_MAX_DELIVER_RC = 5
CONSUMER_MAX_ACK_PENDING = 1000


def consumer_max_deliver(dialect: Dialect, release: Release) -> int:
    return CONSUMER_MAX_DELIVER_RC if dialect == "v0.1" and release == "rc" else CONSUMER_MAX_DELIVER
