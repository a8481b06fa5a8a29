"""Command ids already accepted, persisted, so a replay after a restart is still refused.

One small SQLite file under `data_dir` (standard library, WAL), one per identity like the
outbox. A row is kept until the command could no longer be accepted anyway: its expiry plus
the clock-skew allowance (signed commands always have one), or the dedupe window for commands
without an expiry. Rows past that are pruned on open and every few hundred inserts, and the
table is bounded (oldest rows go first). Only explicit `command_id`s are stored: ids derived
from a transport (a JetStream sequence) are not stable across servers.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alien.errors import AlienError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    command_id TEXT PRIMARY KEY,
    seen_at REAL NOT NULL,
    keep_until REAL NOT NULL,
    protected INTEGER NOT NULL DEFAULT 0
)
"""
_PRUNE_EVERY = 256


class SeenCommandsError(AlienError):
    """The seen-commands database cannot be opened or written; the message names the file."""


def seen_commands_path(data_dir: Path, identity_file: Path) -> Path:
    """Next to the outbox: `commands.<identity stem>.sqlite3`."""
    return data_dir / f"commands.{identity_file.stem.lstrip('.') or 'alien'}.sqlite3"


class SeenCommandStore:
    def __init__(self, path: Path, *, max_rows: int = 100_000) -> None:
        self.path = path
        self.max_rows = max_rows
        self._inserts = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # a commit survives a power cut: robots lose power
            self._db.execute(_SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(seen)")}
            if "protected" not in columns:  # a store written before signed ids were protected
                self._db.execute("ALTER TABLE seen ADD COLUMN protected INTEGER NOT NULL DEFAULT 0")
        except sqlite3.DatabaseError as exc:
            raise SeenCommandsError(f"seen-commands store {path} cannot be opened ({exc}); move it aside") from None

    def seen_at(self, command_id: str, now: float) -> float | None:
        """When `command_id` was accepted, if that still counts at `now`."""
        try:
            row = self._db.execute(
                "SELECT seen_at FROM seen WHERE command_id = ? AND keep_until >= ?", (command_id, now)
            ).fetchone()
        except sqlite3.Error as exc:
            raise SeenCommandsError(f"seen-commands store {self.path} cannot be read ({exc})") from None
        return float(row[0]) if row else None

    def add(self, command_id: str, now: float, keep_until: float, *, protected: bool = False) -> None:
        """Record `command_id`; a `protected` (signed) one is never evicted for space, only when it expires."""
        try:
            self._db.execute(
                "INSERT OR REPLACE INTO seen (command_id, seen_at, keep_until, protected) VALUES (?, ?, ?, ?)",
                (command_id, now, keep_until, int(protected)),
            )
        except sqlite3.Error as exc:
            raise SeenCommandsError(f"seen-commands store {self.path} cannot be written ({exc})") from None
        self._inserts += 1
        if self._inserts % _PRUNE_EVERY == 0:
            self.prune(now)

    def prune(self, now: float) -> int:
        """Drop rows that no longer count, then the oldest beyond `max_rows`; returns how many went."""
        try:
            gone = self._db.execute("DELETE FROM seen WHERE keep_until < ?", (now,)).rowcount
            gone += self._db.execute(
                "DELETE FROM seen WHERE command_id IN (SELECT command_id FROM seen WHERE protected = 0 "
                "ORDER BY seen_at DESC LIMIT -1 OFFSET ?)",
                (self.max_rows,),
            ).rowcount
        except sqlite3.Error as exc:
            raise SeenCommandsError(f"seen-commands store {self.path} cannot be written ({exc})") from None
        return int(gone)

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM seen").fetchone()[0])

    def close(self) -> None:
        self._db.close()
