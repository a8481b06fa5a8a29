"""The outbox journal: an append-only file in front of the outbox's SQLite database.

A message is durable against a killed process once its bytes are in the kernel: one `write()` to
a file does that for a message, or for every message of a hand-over, where a SQLite commit costs
several page writes (docs/performance.md#the-durable-outbox). The store (`SqliteStore`) appends
each message it is given here, and a record that forgets them (a "settled" record) once they are
acknowledged, one write for all the acknowledgements that came together: a message acknowledged
soon after, the usual case, never reaches SQLite at all, and a crash replays only what was not
yet acknowledged, as with rows. What stays unacknowledged for long, or while the file grows, is
moved into SQLite in one transaction (a checkpoint) and the file starts over.

A record is its body's length and CRC-32, then lane, creation time, id, subject and payload (a
settled record: lane 255, the ids). A record cut short at the end of the file is what a kill
inside `write()` leaves (that call never returned): it is dropped, with a warning. Any other
damage names the file and is not repaired.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterable
from pathlib import Path

from alien.delivery.outbox import Lane, OutgoingMessage
from alien.errors import AlienError
from alien.logs import get_logger

logger = get_logger("alien.outbox")

_HEADER = struct.Struct("<II")  # body length, CRC-32 of the body
_FIXED = struct.Struct("<BdII")  # lane, created, id length, subject length
_LANES = frozenset(int(lane) for lane in Lane)
_SETTLED = 255  # the lane of a record that forgets messages: its "subject" is their ids, one per line


class JournalDamagedError(AlienError):
    """The journal holds bytes that are no record; the message names the file and the offset."""


def journal_path(database: Path) -> Path:
    """Where the journal of the outbox database `database` is: beside it."""
    return database.with_name(database.name + ".journal")


def encode(message: OutgoingMessage) -> bytes:
    return _record(int(message.lane), message.created, message.msg_id, message.subject, message.payload)


def encode_settled(msg_ids: Iterable[str]) -> bytes:
    """One record forgetting every message of `msg_ids`."""
    return _record(_SETTLED, 0.0, "", "\n".join(msg_ids), b"")


def _record(lane: int, created: float, msg_id: str, subject: str, payload: bytes) -> bytes:
    msg_id_bytes, subject_bytes = msg_id.encode(), subject.encode()
    body = b"".join(
        (_FIXED.pack(lane, created, len(msg_id_bytes), len(subject_bytes)), msg_id_bytes, subject_bytes, payload)
    )
    return _HEADER.pack(len(body), zlib.crc32(body)) + body


def decode(data: bytes, path: Path) -> list[OutgoingMessage]:
    """The messages a journal's bytes hold unsettled, in order; JournalDamagedError for anything but a cut-short end."""
    messages: dict[str, OutgoingMessage] = {}
    offset, size = 0, len(data)
    while offset < size:
        if not any(data[offset:]):
            logger.warning("outbox journal %s: %d zero byte(s) at its end dropped", path, size - offset)
            break
        if offset + _HEADER.size > size:
            _cut_short(path, offset, size)
            break
        length, crc = _HEADER.unpack_from(data, offset)
        start, end = offset + _HEADER.size, offset + _HEADER.size + length
        if end > size:
            _cut_short(path, offset, size)
            break
        body = data[start:end]
        record = _record_of(body) if zlib.crc32(body) == crc else None
        if record is None:
            raise JournalDamagedError(
                f"outbox journal {path} is damaged at byte {offset} (not a record the outbox wrote); "
                "move it aside (the messages in it are then not sent)"
            )
        lane, created, msg_id, subject, payload = record
        if lane == _SETTLED:
            for settled in subject.split("\n"):
                messages.pop(settled, None)
        else:
            messages[msg_id] = OutgoingMessage(msg_id, subject, payload, Lane(lane), created)
        offset = end
    return list(messages.values())


def _record_of(body: bytes) -> tuple[int, float, str, str, bytes] | None:
    """(lane, created, id, subject, payload) of a record's body; None: not a record."""
    if len(body) < _FIXED.size:
        return None
    lane, created, id_length, subject_length = _FIXED.unpack_from(body)
    payload_at = _FIXED.size + id_length + subject_length
    if (lane not in _LANES and lane != _SETTLED) or payload_at > len(body):
        return None
    try:
        msg_id = body[_FIXED.size : _FIXED.size + id_length].decode()
        subject = body[_FIXED.size + id_length : payload_at].decode()
    except UnicodeDecodeError:
        return None
    return lane, created, msg_id, subject, body[payload_at:]


def _cut_short(path: Path, offset: int, size: int) -> None:
    logger.warning(
        "outbox journal %s: the last record (at byte %d of %d) was cut short by a crash while it was written; "
        "its call never returned, so nothing accepted is missing",
        path,
        offset,
        size,
    )


def read_journal(path: Path) -> list[OutgoingMessage]:
    """The messages in the journal at `path` ([] when there is none), without changing it."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return decode(data, path)


class Journal:
    """The open journal file of one outbox; used from one thread (the client's loop)."""

    def __init__(self, path: Path, *, sync: bool) -> None:
        """`sync`: fdatasync after every append (durability `power`)."""
        self.path = path
        self._sync = sync
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self.size = os.fstat(self._fd).st_size

    def read(self) -> list[OutgoingMessage]:
        return read_journal(self.path)

    def append(self, messages: Iterable[OutgoingMessage]) -> None:
        """Every message in one write: durable against a kill once this returns (OSError if not)."""
        self._write(b"".join(encode(message) for message in messages))

    def settle(self, msg_ids: Iterable[str]) -> None:
        """Forget these messages (acknowledged, dropped): a restart does not send them again."""
        self._write(encode_settled(msg_ids))

    def _write(self, data: bytes) -> None:
        try:
            written = os.write(self._fd, data)
            while written < len(data):  # a regular file takes it all at once unless the disk is full
                more = os.write(self._fd, data[written:])
                if more == 0:
                    raise OSError(f"no room for {len(data) - written} more bytes")
                written += more
            if self._sync:
                os.fdatasync(self._fd)
        except OSError:
            os.ftruncate(self._fd, self.size)  # no part of a record stays in front of the next one
            raise
        self.size += len(data)

    def clear(self) -> None:
        """Empty the file: everything in it is settled or in the database."""
        os.ftruncate(self._fd, 0)
        if self._sync:
            os.fdatasync(self._fd)
        self.size = 0

    def close(self) -> None:
        os.close(self._fd)
