"""Durable storage behind the outbox: SQLite in WAL mode (standard library), with a journal in front.

Every queued message is on disk until JetStream acknowledges it, so a killed process (or, with
`durability="power"`, a power cut) loses nothing: the next start loads the messages back, in
order, with the ids they were given, and the server's duplicate window drops what had already
arrived. Messages the server refused for good are kept as parked rows with the reason.

A message first goes to the journal (`alien.delivery.journal`: one write, where a SQLite commit
costs several); one acknowledged soon after is only marked settled there (one write for all the
acknowledgements that came together). Those still waiting after a few seconds, or once the
journal has grown, are moved into the database in one transaction. At the next start whatever
the journal holds unsettled is moved into the database first.

The database is opened in exclusive locking mode: two processes sharing one outbox would send
each other's messages, so the second one fails with a clear error instead. Only its holder
touches the journal.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from alien.delivery.journal import Journal, JournalDamagedError, journal_path
from alien.delivery.outbox import Lane, OutgoingMessage
from alien.errors import AlienError
from alien.logs import get_logger

logger = get_logger("alien.outbox")

Durability = Literal["process", "power"]
# A checkpoint moves what the journal holds unsettled into the database when its oldest record is
# this old (well inside the server's 30 s duplicate window: a crash then replays nothing older) or
# when it has grown this large.
CHECKPOINT_AGE_S = 5.0
CHECKPOINT_BYTES = 4 * 1024 * 1024
# Once everything in the journal is settled, a journal this large is emptied instead of growing.
EMPTY_SETTLED_BYTES = 64 * 1024
_INSERT = "INSERT OR IGNORE INTO messages (msg_id, subject, payload, lane, created) VALUES (?, ?, ?, ?, ?)"

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
        self._journaled: dict[str, OutgoingMessage] = {}  # in the journal, unsettled, not in the database
        self._batch: dict[str, OutgoingMessage] | None = None  # inserts of the open batch(), written at its end
        self._journal_began = 0.0  # monotonic time of the first record since the journal was last emptied
        try:
            self.journal = Journal(journal_path(path), sync=durability == "power")
        except OSError as exc:
            self._db.close()
            raise OutboxStoreError(f"outbox journal {journal_path(path)} cannot be opened ({exc})") from None
        try:
            self._recover()
        except (JournalDamagedError, OutboxStoreError) as exc:
            self.journal.close()  # left as it is: named, not repaired
            self._db.close()
            raise OutboxStoreError(str(exc)) from None

    def _recover(self) -> None:
        """What an earlier run left in the journal goes into the database (in order, after its rows)."""
        if not self.journal.size:
            return
        left = self.journal.read()
        self._commit_rows(left)
        self._clear_journal()
        if left:
            logger.info("outbox %s: %d message(s) taken over from its journal", self.path, len(left))

    def load(self) -> tuple[list[OutgoingMessage], int]:
        """Queued messages in the order they entered, and the number of parked ones."""
        rows = self._db.execute(
            "SELECT msg_id, subject, payload, lane, created FROM messages WHERE parked_reason IS NULL ORDER BY seq"
        ).fetchall()
        parked = self._db.execute("SELECT COUNT(*) FROM messages WHERE parked_reason IS NOT NULL").fetchone()[0]
        return [OutgoingMessage(m, s, bytes(p), Lane(lane), created) for m, s, p, lane, created in rows], int(parked)

    def insert(self, message: OutgoingMessage) -> None:
        """On disk when this returns (in a batch(): at the batch's end); OutboxStoreError when it cannot be."""
        if self._db.in_transaction:  # inside transaction(): a row, with the rest of the transaction
            self._write(_INSERT, _row(message))
        elif self._batch is not None:
            self._batch[message.msg_id] = message
        else:
            self._append((message,))

    def delete(self, msg_id: str) -> None:
        self.delete_many([msg_id])

    def delete_many(self, msg_ids: list[str]) -> None:
        """Forget settled messages: in the journal with one write, in the database in one transaction.

        Safe to group: a delete lost to a kill only replays a message with its id, which the
        server's duplicate window drops.
        """
        journaled, batch = self._journaled, self._batch
        rows: list[tuple[object, ...]] = []
        settled: list[str] = []
        for msg_id in msg_ids:
            if journaled.pop(msg_id, None) is not None:
                settled.append(msg_id)
            elif batch is None or batch.pop(msg_id, None) is None:
                rows.append((msg_id,))
        if rows:
            with self._sqlite_batch():
                self._write_many("DELETE FROM messages WHERE msg_id = ?", rows)
        if not settled:
            return
        try:
            if not journaled and self.journal.size > EMPTY_SETTLED_BYTES:
                self.journal.clear()  # everything in it is settled
            else:
                self.journal.settle(settled)
        except OSError as exc:
            logger.warning("outbox journal %s: %s; a restart may send these messages again", self.journal.path, exc)

    def park(self, msg_id: str, reason: str) -> None:
        if msg_id in self._journaled:
            self.checkpoint()  # the row must exist to carry the reason
        self._write("UPDATE messages SET parked_reason = ? WHERE msg_id = ?", (reason[:500], msg_id))

    def checkpoint(self) -> None:
        """Move what the journal holds unsettled into the database (one transaction), then empty it.

        OutboxStoreError when the database cannot take them: the journal then stays as it is.
        """
        if self._journaled:
            self._commit_rows(list(self._journaled.values()))
            self._journaled.clear()
        if self.journal.size:
            self._clear_journal()

    def _append(self, messages: tuple[OutgoingMessage, ...] | list[OutgoingMessage]) -> None:
        if not self.journal.size:
            self._journal_began = time.monotonic()
        try:
            self.journal.append(messages)
        except OSError as exc:
            raise OutboxStoreError(f"outbox journal {self.journal.path} cannot be written ({exc})") from None
        for message in messages:
            self._journaled[message.msg_id] = message
        if self.journal.size > CHECKPOINT_BYTES or time.monotonic() - self._journal_began > CHECKPOINT_AGE_S:
            try:
                self.checkpoint()
            except OutboxStoreError as exc:  # the messages are on disk already: in the journal
                self._journal_began = time.monotonic()  # tried again in a while, not at every message
                logger.warning("%s; its journal keeps the messages meanwhile", exc)

    def _commit_rows(self, messages: list[OutgoingMessage]) -> None:
        """Insert `messages` in one transaction that commits or raises OutboxStoreError (never half)."""
        try:
            self._db.execute("BEGIN")
            self._db.executemany(_INSERT, [_row(message) for message in messages])
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise OutboxStoreError(f"outbox {self.path} cannot be written ({exc})") from None

    def _clear_journal(self) -> None:
        try:
            self.journal.clear()
        except OSError as exc:
            raise OutboxStoreError(f"outbox journal {self.journal.path} cannot be written ({exc})") from None

    def parked(self) -> list[tuple[str, str, str]]:
        """(msg_id, subject, reason) of every parked message, oldest first."""
        return self._db.execute(
            "SELECT msg_id, subject, parked_reason FROM messages WHERE parked_reason IS NOT NULL ORDER BY seq"
        ).fetchall()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Every insert inside goes to disk in one journal write, at the end (nested: the outer one's).

        Only for writes nobody has been told are stored yet (e.g. readings handed over from
        another thread in one go): a kill before the end loses the whole batch. When the write
        fails (disk full), the messages stay queued in memory and are still sent.
        """
        if self._batch is not None or self._db.in_transaction:
            yield
            return
        batch: dict[str, OutgoingMessage] = {}
        self._batch = batch
        try:
            yield
        finally:
            self._batch = None
        if not batch:
            return
        try:
            self._append(list(batch.values()))
        except OutboxStoreError as exc:
            logger.warning("%s; until sent, %d message(s) are in memory only", exc, len(batch))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Every write inside (inserts, deletes, parks) in one database transaction: all of it or none.

        The journal is checkpointed first, so that what it held cannot be replayed around it.
        """
        if self._db.in_transaction:
            yield
            return
        self.checkpoint()
        with self._sqlite_batch():
            yield

    @contextmanager
    def _sqlite_batch(self) -> Iterator[None]:
        """Every database write inside in one transaction, at the end (nested: the outer one's)."""
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
        """Unsettled messages go into the database (left in the journal if it cannot take them)."""
        try:
            self.checkpoint()
        except OutboxStoreError as exc:
            logger.warning("%s; its journal keeps the messages for the next start", exc)
        self.journal.close()
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


def _row(message: OutgoingMessage) -> tuple[object, ...]:
    return (message.msg_id, message.subject, message.payload, int(message.lane), message.created)
