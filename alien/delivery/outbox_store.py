"""Durable storage behind the outbox: SQLite in WAL mode (standard library).

Every queued message is a row until JetStream acknowledges it, so a killed process (or, with
`durability="power"`, a power cut) loses nothing: the next start loads the rows back, in order,
with the ids they were given, and the server's duplicate window drops what had already arrived.
Messages the server refused for good are kept as parked rows with the reason.

The database is opened in exclusive locking mode: two processes sharing one outbox would send
each other's messages, so the second one fails with a clear error instead.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from alien.delivery.outbox import Lane, OutgoingMessage
from alien.errors import AlienError
from alien.logs import get_logger

logger = get_logger("alien.outbox")

Durability = Literal["process", "power"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY,  -- a new row always gets max + 1: entry order without AUTOINCREMENT's extra write
    msg_id TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    payload BLOB NOT NULL,
    lane INTEGER NOT NULL,
    created REAL NOT NULL,
    parked_reason TEXT
)
"""


class OutboxStoreError(AlienError):
    """The outbox database cannot be opened or written; the message names the file."""


class SqliteStore:
    def __init__(self, path: Path, durability: Durability = "process") -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA locking_mode=EXCLUSIVE")
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL: a commit reaches the OS (survives a process kill); FULL: fsync per commit
            # (survives a power cut), at a cost measured in bench/.
            self._db.execute(f"PRAGMA synchronous={'FULL' if durability == 'power' else 'NORMAL'}")
            self._db.execute(_SCHEMA)
            self._db.execute("BEGIN IMMEDIATE")  # takes the exclusive lock now, not at first write
            self._db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            reason = "is in use by another process" if "locked" in str(exc) else f"cannot be opened ({exc})"
            raise OutboxStoreError(f"outbox {path} {reason}") from None
        except sqlite3.DatabaseError as exc:
            raise OutboxStoreError(f"outbox {path} is not a usable SQLite database ({exc}); move it aside") from None

    def load(self) -> tuple[list[OutgoingMessage], int]:
        """Queued messages in the order they entered, and the number of parked ones."""
        rows = self._db.execute(
            "SELECT msg_id, subject, payload, lane, created FROM messages WHERE parked_reason IS NULL ORDER BY seq"
        ).fetchall()
        parked = self._db.execute("SELECT COUNT(*) FROM messages WHERE parked_reason IS NOT NULL").fetchone()[0]
        return [OutgoingMessage(m, s, bytes(p), Lane(lane), created) for m, s, p, lane, created in rows], int(parked)

    def insert(self, message: OutgoingMessage) -> None:
        self._write(
            "INSERT OR IGNORE INTO messages (msg_id, subject, payload, lane, created) VALUES (?, ?, ?, ?, ?)",
            (message.msg_id, message.subject, message.payload, int(message.lane), message.created),
        )

    def delete(self, msg_id: str) -> None:
        self._write("DELETE FROM messages WHERE msg_id = ?", (msg_id,))

    def delete_many(self, msg_ids: list[str]) -> None:
        """Delete acknowledged messages in one transaction (one WAL commit, not one per message).

        Safe to group: a delete lost to a kill only replays a message with its id, which the
        server's duplicate window drops.
        """
        if not msg_ids:
            return
        with self.batch():
            self._write_many("DELETE FROM messages WHERE msg_id = ?", [(m,) for m in msg_ids])

    def park(self, msg_id: str, reason: str) -> None:
        self._write("UPDATE messages SET parked_reason = ? WHERE msg_id = ?", (reason[:500], msg_id))

    def parked(self) -> list[tuple[str, str, str]]:
        """(msg_id, subject, reason) of every parked message, oldest first."""
        return self._db.execute(
            "SELECT msg_id, subject, parked_reason FROM messages WHERE parked_reason IS NOT NULL ORDER BY seq"
        ).fetchall()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Every write inside goes to disk in one transaction, at the end (nested: the outer one's).

        Only for writes nobody has been told are stored yet (e.g. readings handed over from
        another thread in one go): a kill before the end loses the whole batch.
        """
        if self._db.in_transaction:
            yield
            return
        self._write("BEGIN", ())
        try:
            yield
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        if not self._db.in_transaction:
            # A write inside failed (disk full, I/O error) and SQLite rolled the whole batch back;
            # that writer was told. The messages stay queued in memory and are still sent.
            logger.warning(
                "outbox %s: a batch of writes was rolled back by SQLite; until sent, it is in memory only", self.path
            )
            return
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise OutboxStoreError(f"outbox {self.path} cannot be written ({exc})") from None

    def close(self) -> None:
        self._db.close()

    def _write_many(self, sql: str, rows: list[tuple[object, ...]]) -> None:
        try:
            self._db.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise OutboxStoreError(f"outbox {self.path} cannot be written ({exc})") from None

    def _write(self, sql: str, args: tuple[object, ...]) -> None:
        try:
            self._db.execute(sql, args)
        except sqlite3.Error as exc:
            raise OutboxStoreError(f"outbox {self.path} cannot be written ({exc})") from None
