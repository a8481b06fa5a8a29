"""Which parts of readings and events are sealed, and sealing them (docs/encryption.md#what-is-encrypted).

A reading's chosen top-level keys are sealed one by one, each under its own context (the key
and the entity), so the rest of the reading stays as the server expects it. An event of a
chosen type has its whole `data` sealed; its envelope (`entity_id`, `event_type`, `timestamp`)
stays readable. What the server itself reads can never be chosen (`RESERVED_*`): position,
power and battery level feed its map, lifecycle and status events its entity state, command
lifecycle events the operator's view of a command.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from alien.e2e.sealed import Sealer, context

RESERVED_TELEMETRY_KEYS = frozenset({"position", "power", "battery_level"})
RESERVED_EVENTS = frozenset(
    {
        "bootsequence",
        "shutdown",
        "status_changed",
        "telemetry",  # what a MAVLink format cannot carry: its keys are chosen as telemetry keys
        "command_received",
        "command_rejected",
        "commands_rejected",
        "command_progress",
        "command_completed",
        "command_failed",
    }
)


def reserved_telemetry_keys(keys: Iterable[str]) -> list[str]:
    return sorted(set(keys) & RESERVED_TELEMETRY_KEYS)


def reserved_events(event_types: Iterable[str]) -> list[str]:
    return sorted(set(event_types) & RESERVED_EVENTS)


class FieldSealer:
    """Seals the chosen telemetry keys and event types of one device to its readers."""

    def __init__(self, sealer: Sealer, telemetry_keys: Iterable[str] = (), event_types: Iterable[str] = ()) -> None:
        self.sealer = sealer
        self.telemetry_keys = frozenset(telemetry_keys)
        self.event_types = frozenset(event_types)

    def reading(self, data: dict[str, Any], entity_id: str) -> dict[str, Any]:
        """`data` with each chosen key's value sealed (`data` itself when it has none)."""
        chosen = self.telemetry_keys.intersection(data)
        if not chosen:
            return data
        seal = self.sealer.seal
        return {
            key: seal(value, context("telemetry", entity_id, key)) if key in chosen else value
            for key, value in data.items()
        }

    def event(self, event_type: str, data: dict[str, Any], entity_id: str) -> dict[str, Any]:
        """The event's `data`, sealed as a whole when its type is chosen."""
        if event_type not in self.event_types:
            return data
        return self.sealer.seal(data, context("event", entity_id, event_type))
