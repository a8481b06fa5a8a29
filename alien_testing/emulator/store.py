"""The emulated database: organizations and entities with the real schema's constraints.

The real server keeps rows in SQLite whose CHECK and FOREIGN KEY constraints are the enum
enforcement of docs/contract.md#enumerations (a violation surfaces as a 500). Rows here mirror the
columns the API exposes; JSON columns (metadata, components, tags, video_config) are stored as
JSON text, which is why the API hands ``metadata`` back as a string.
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
from datetime import datetime, timezone
from typing import Any

from alien_testing.emulator.contract import DB_STATUSES, ORG_TYPES, PRIORITIES

Row = dict[str, Any]

_TEXT_COLUMNS = ("status", "priority", "entity_type", "name")
_REAL_COLUMNS = ("latitude", "longitude", "altitude", "heading", "velocity")
_JSON_COLUMNS = ("metadata", "components", "tags", "video_config")
_RANGES = {"latitude": (-90.0, 90.0), "longitude": (-180.0, 180.0), "heading": (0.0, 360.0)}


class ConstraintError(Exception):
    """A CHECK / FOREIGN KEY / statement failure, as the database would report it."""


class NotFoundError(Exception):
    """No such row."""


class NoUpdatesError(Exception):
    """An update with nothing to change."""


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def go_json(value: Any) -> str:
    """JSON text as Go's encoding/json writes it for maps: compact, keys sorted."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


class Store:
    """Thread-safe rows; every change notifies the shared condition (see records.Recorder)."""

    def __init__(self, condition: threading.Condition, entity_types: tuple[str, ...]) -> None:
        self._cond = condition
        self._entity_types = entity_types
        self._orgs: dict[str, Row] = {}
        self._entities: dict[str, Row] = {}

    # -- organizations -------------------------------------------------------------------------
    def create_org(self, name: str, org_type: str, metadata: Any, org_id: str | None = None) -> Row:
        if org_type not in ORG_TYPES:
            raise ConstraintError("CHECK constraint failed: org_type IN " + _sql_list(ORG_TYPES))
        stamp = now_iso()
        row: Row = {
            "org_id": org_id or str(uuid.uuid4()),
            "name": name,
            "org_type": org_type,
            "metadata": "{}" if metadata is None else go_json(metadata),
            "created_at": stamp,
            "updated_at": stamp,
        }
        with self._cond:
            if row["org_id"] in self._orgs:
                raise ConstraintError("UNIQUE constraint failed: organizations.org_id")
            self._orgs[row["org_id"]] = row
            self._cond.notify_all()
            return dict(row)

    def get_org(self, org_id: str) -> Row | None:
        with self._cond:
            row = self._orgs.get(org_id)
            return None if row is None else dict(row)

    def list_orgs(self) -> list[Row]:
        with self._cond:
            return [dict(row) for row in self._orgs.values()]

    def delete_org(self, org_id: str) -> None:
        with self._cond:
            if self._orgs.pop(org_id, None) is None:
                raise NotFoundError(org_id)
            # ON DELETE CASCADE
            for entity_id in [e for e, row in self._entities.items() if row["org_id"] == org_id]:
                del self._entities[entity_id]
            self._cond.notify_all()

    # -- entities ------------------------------------------------------------------------------
    def create_entity(self, org_id: str, values: Row) -> Row:
        """Insert; ``values`` holds column values already defaulted by the API layer."""
        stamp = now_iso()
        row: Row = {
            "entity_id": str(uuid.uuid4()),
            "org_id": org_id,
            "name": values.get("name"),
            "entity_type": values.get("entity_type", ""),
            "status": values.get("status", "unknown"),
            "priority": values.get("priority", "normal"),
            "is_live": False,
            "latitude": values.get("latitude"),
            "longitude": values.get("longitude"),
            "altitude": values.get("altitude"),
            "heading": None,
            "velocity": None,
            "components": "{}",
            "tags": "",
            "metadata": values.get("metadata", "{}"),
            "video_config": values.get("video_config", "{}"),
            "created_at": stamp,
            "updated_at": stamp,
        }
        self._check_row(row)
        with self._cond:
            if org_id not in self._orgs:
                raise ConstraintError("FOREIGN KEY constraint failed")
            self._entities[row["entity_id"]] = row
            self._cond.notify_all()
            return dict(row)

    def get_entity(self, org_id: str, entity_id: str) -> Row:
        with self._cond:
            row = self._entities.get(entity_id)
            if row is None or row["org_id"] != org_id:
                raise NotFoundError(entity_id)
            return dict(row)

    def list_entities(self, org_id: str) -> list[Row]:
        with self._cond:
            return [dict(row) for row in self._entities.values() if row["org_id"] == org_id]

    def update_entity(self, org_id: str, entity_id: str, updates: Row) -> Row:
        """Apply the known columns of ``updates`` (unknown keys are ignored, as the SQL builder does)."""
        if not updates:
            raise NoUpdatesError("no updates provided")
        if "is_live" in updates and not isinstance(updates["is_live"], bool):
            # The real statement builder appends no argument for a non-bool is_live.
            raise ConstraintError("sql: expected more arguments than were given (is_live)")
        with self._cond:
            current = self._entities.get(entity_id)
            if current is None or current["org_id"] != org_id:
                raise NotFoundError(entity_id)
            row = dict(current)
            for key, value in updates.items():
                if key in _TEXT_COLUMNS or key in _REAL_COLUMNS or key == "is_live":
                    row[key] = value
                elif key in _JSON_COLUMNS:
                    row[key] = go_json(value)
            self._check_row(row)
            row["updated_at"] = now_iso()
            self._entities[entity_id] = row
            self._cond.notify_all()
            return dict(row)

    def delete_entity(self, org_id: str, entity_id: str) -> Row:
        with self._cond:
            row = self._entities.get(entity_id)
            if row is None or row["org_id"] != org_id:
                raise NotFoundError(entity_id)
            del self._entities[entity_id]
            self._cond.notify_all()
            return dict(row)

    def organizations(self) -> list[Row]:
        return copy.deepcopy(self.list_orgs())

    def entities(self) -> list[Row]:
        with self._cond:
            return copy.deepcopy(list(self._entities.values()))

    # -- constraints ---------------------------------------------------------------------------
    def _check_row(self, row: Row) -> None:
        """The schema's CHECK constraints (docs/contract.md#legacy-rest: enum violations are database errors)."""
        for column, allowed in (
            ("entity_type", self._entity_types),
            ("status", DB_STATUSES),
            ("priority", PRIORITIES),
        ):
            if row[column] not in allowed:
                raise ConstraintError(f"CHECK constraint failed: {column} IN " + _sql_list(allowed))
        for column, (low, high) in _RANGES.items():
            value = row[column]
            if value is None:
                continue  # NULL passes a CHECK
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                raise ConstraintError(f"CHECK constraint failed: {column} >= {low:g} AND {column} <= {high:g}")


def _sql_list(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"
