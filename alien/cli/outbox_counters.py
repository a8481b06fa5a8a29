"""The counters of a durable outbox file, read without sending (or changing) anything.

A running client holds its outbox in exclusive locking mode (alien/delivery/outbox_store.py), so a busy
database means "in use by a running client", not an error. What a stopped client left in the
outbox's journal (alien/delivery/journal.py) is waiting too: it is counted with the rows.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from alien.delivery.journal import JournalDamagedError, journal_path, read_journal


def read_counters(path: Path, *, now: float | None = None) -> dict[str, Any]:
    """{"path", "state", waiting, bytes, oldest_age_s, parked}; state: ok, absent, in_use or unreadable."""
    report: dict[str, Any] = {"path": str(path)}
    if not path.exists():
        return {**report, "state": "absent", "waiting": 0, "bytes": 0, "oldest_age_s": None, "parked": 0}
    try:
        # Read-only: a crash's leftover WAL is read as it is, never checkpointed into the file
        # here. timeout=0: a client holding the lock answers at once with "database is locked".
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=0)
    except sqlite3.Error as exc:
        return {**report, "state": "unreadable", "error": str(exc)}
    try:
        waiting, size, oldest = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0), MIN(created) FROM messages WHERE parked_reason IS NULL"
        ).fetchone()
        (parked,) = db.execute("SELECT COUNT(*) FROM messages WHERE parked_reason IS NOT NULL").fetchone()
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            return {**report, "state": "in_use", "error": "held by a running client (its counters are in its log)"}
        return {**report, "state": "unreadable", "error": str(exc)}
    except sqlite3.DatabaseError as exc:
        return {**report, "state": "unreadable", "error": str(exc)}
    finally:
        db.close()
    try:
        journaled = read_journal(journal_path(path))
    except (JournalDamagedError, OSError) as exc:
        return {**report, "state": "unreadable", "error": str(exc)}
    waiting, size = int(waiting) + len(journaled), int(size) + sum(len(m.payload) for m in journaled)
    created = [float(oldest)] if oldest is not None else []
    created += [m.created for m in journaled]
    age = max(0.0, (now if now is not None else time.time()) - min(created)) if created else None
    return {**report, "state": "ok", "waiting": waiting, "bytes": size, "oldest_age_s": age, "parked": parked}
