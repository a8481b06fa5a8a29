"""Server enumerations and the friendly names alien accepts for them.

docs/contract.md#enumerations: the server enforces these enums in its database (v0.0.1 answers a
violation with HTTP 500, v0.1.x with 422), and the seed API's own examples (`drone`,
`robot`, `sensor`, status `returning`) are rejected. alien therefore maps friendly names to server
values before any request, and refuses anything it cannot map, listing what is allowed.
"""

from __future__ import annotations

from typing import Final, Literal

from alien.errors import ConfigError

Dialect = Literal["v0.0.1", "v0.1"]

ORG_TYPES: Final = ("military", "civilian", "commercial", "ngo")

# docs/contract.md#enumerations, v0.0.1 list; later versions add aircraft_airship.
_ENTITY_TYPES_V001: Final = (
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
SERVER_ENTITY_TYPES: Final[dict[Dialect, tuple[str, ...]]] = {
    "v0.0.1": _ENTITY_TYPES_V001,
    "v0.1": (*_ENTITY_TYPES_V001, "aircraft_airship"),
}

# Friendly entity types (the seed API's and the Go peer's, docs/contract.md#peers) -> server enum.
FRIENDLY_ENTITY_TYPES: Final[dict[str, str]] = {
    "drone": "aircraft_multirotor",
    "uav": "aircraft_multirotor",
    "multirotor": "aircraft_multirotor",
    "quadcopter": "aircraft_multirotor",
    "plane": "aircraft_fixed_wing",
    "fixed_wing": "aircraft_fixed_wing",
    "vtol": "aircraft_vtol",
    "helicopter": "aircraft_helicopter",
    "robot": "ground_vehicle_wheeled",
    "rover": "ground_vehicle_wheeled",
    "ugv": "ground_vehicle_wheeled",
    "tracked_robot": "ground_vehicle_tracked",
    "boat": "surface_vessel_usv",
    "usv": "surface_vessel_usv",
    "auv": "underwater_vehicle",
    "uuv": "underwater_vehicle",
    "sensor": "sensor_platform",
    "isr_sensor": "sensor_platform",
    "camera": "sensor_platform",
    "weather_station": "sensor_platform",
    "payload": "payload_system",
    "gcs": "operator_station",
    "ground_station": "operator_station",
    "airship": "aircraft_airship",
}

SERVER_STATUSES: Final[dict[Dialect, tuple[str, ...]]] = {
    "v0.0.1": ("active", "inactive", "pending", "error", "maintenance", "unknown"),
    "v0.1": ("active", "inactive", "unknown"),
}

# Nearest accepted status for statuses a server does not store (docs/contract.md#enumerations). The exact status
# always travels in the `status_changed` event, so nothing is lost by the mapping.
_NEAREST_STATUS: Final[dict[str, dict[Dialect, str]]] = {
    # busy doing something: the entity is up
    **{
        s: {"v0.0.1": "active", "v0.1": "active"}
        for s in (
            "returning",
            "returning_to_base",
            "moving",
            "patrolling",
            "mission",
            "busy",
            "idle",
            "online",
            "armed",
            "flying",
            "driving",
            "charging_active",
        )
    },
    # deliberately not operating
    **{
        s: {"v0.0.1": "inactive", "v0.1": "inactive"}
        for s in ("offline", "stopped", "shutdown", "parked", "docked", "landed", "disarmed", "charging")
    },
    # statuses v0.0.1 stores but v0.1 does not
    "pending": {"v0.0.1": "pending", "v0.1": "unknown"},
    "error": {"v0.0.1": "error", "v0.1": "unknown"},
    "fault": {"v0.0.1": "error", "v0.1": "unknown"},
    "failed": {"v0.0.1": "error", "v0.1": "unknown"},
    "emergency": {"v0.0.1": "error", "v0.1": "unknown"},
    "maintenance": {"v0.0.1": "maintenance", "v0.1": "inactive"},
}


def all_entity_type_names() -> list[str]:
    """Every name `resolve_entity_type` can accept on some dialect, sorted."""
    return sorted(set(FRIENDLY_ENTITY_TYPES) | set(SERVER_ENTITY_TYPES["v0.1"]))


def resolve_entity_type(name: str, dialect: Dialect | None = None) -> str:
    """Map a friendly or server entity type to the server enum, or raise naming what is allowed.

    With `dialect=None` the check is against every known server version (used at config time,
    before the server is known).
    """
    key = name.strip().lower()
    value = FRIENDLY_ENTITY_TYPES.get(key, key)
    allowed = SERVER_ENTITY_TYPES[dialect] if dialect else SERVER_ENTITY_TYPES["v0.1"]
    if value not in allowed:
        where = f"a {dialect} server" if dialect else "the mothership"
        raise ConfigError(
            f"ENTITY_TYPE (entity_type): {name!r} is not an entity type {where} accepts; "
            f"allowed: {', '.join(n for n in all_entity_type_names() if _accepted(n, allowed))}"
        )
    return value


def _accepted(name: str, allowed: tuple[str, ...]) -> bool:
    return FRIENDLY_ENTITY_TYPES.get(name, name) in allowed


def nearest_status(status: str, dialect: Dialect) -> str:
    """The status the server stores for `status`: itself if accepted, else the nearest one."""
    key = status.strip().lower()
    if key in SERVER_STATUSES[dialect]:
        return key
    mapped = _NEAREST_STATUS.get(key)
    return mapped[dialect] if mapped else "unknown"
