"""The outbox journal: an append-only file in front of the outbox's SQLite database.

A message is durable against a killed process once its bytes are in the kernel: one `write()` to
a file does that for a message, or for every message of a hand-over, where a SQLite commit costs
several page writes (docs/performance.md#the-durable-outbox). The store (`SqliteStore`) appends
each message it is given here, and a record that forgets them (a "settled" record) once they are
acknowledged, one write for all the acknowledgements that came together: a message acknowledged
soon after, the usual case, never reaches SQLite at all, and a crash replays only what was not
yet acknowledged, as with rows. What stays unacknowledged for long, or while the file grows, is
moved into SQLite in one transaction (a checkpoint) and the file starts over.

A record is its body's length and CRC-32, then lane, whether it ends its write, creation time, id,
subject and payload (a settled record: lane 255, the ids). The messages of one write (a batch)
count only with the record that ends it: a kill inside `write()` can leave part of it (that call
never returned), and that part, cut short at the end of the file, is dropped whole, with a
warning. Any other damage names the file and is not repaired.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from alien.delivery.outbox import Lane, OutgoingMessage
from alien.errors import AlienError
from alien.logs import get_logger

logger = get_logger("alien.outbox")

_HEADER = struct.Struct("<II")  # body length, CRC-32 of the body
_FIXED = struct.Struct("<BBdII")  # lane, ends its write (1) or not (0), created, id length, subject length
_LANES = frozenset(int(lane) for lane in Lane)
_SETTLED = 255  # the lane of a record that forgets messages: its "subject" is their ids, one per line


class JournalDamagedError(AlienError):
    """The journal holds bytes that are no record; the message names the file and the offset."""


def journal_path(database: Path) -> Path:
    """Where the journal of the outbox database `database` is: beside it."""
    return database.with_name(database.name + ".journal")


def encode(messages: Sequence[OutgoingMessage]) -> bytes:
    """The records of one write: every message, the last one marked as ending it."""
    last = len(messages) - 1
    return b"".join(
        _record(int(m.lane), index == last, m.created, m.msg_id, m.subject, m.payload)
        for index, m in enumerate(messages)
    )


def encode_settled(msg_ids: Iterable[str]) -> bytes:
    """One record forgetting every message of `msg_ids`."""
    return _record(_SETTLED, True, 0.0, "", "\n".join(msg_ids), b"")


def _record(lane: int, ends_write: bool, created: float, msg_id: str, subject: str, payload: bytes) -> bytes:
    msg_id_bytes, subject_bytes = msg_id.encode(), subject.encode()
    fixed = _FIXED.pack(lane, ends_write, created, len(msg_id_bytes), len(subject_bytes))
    body = b"".join((fixed, msg_id_bytes, subject_bytes, payload))
    return _HEADER.pack(len(body), zlib.crc32(body)) + body


def decode(data: bytes, path: Path) -> list[OutgoingMessage]:
    """The messages a journal's bytes hold unsettled, in order; JournalDamagedError for anything but a cut-short end."""
    messages: dict[str, OutgoingMessage] = {}
    write: list[OutgoingMessage] = []  # the records of a write not ended yet
    write_at = offset = 0
    size = len(data)
    while offset < size:
        record = _record_at(data, offset)
        if record is None:
            if data.count(0, offset) == size - offset:  # what a power cut can leave: a file longer than its data
                _cut_short(path, write_at if write else offset, size, len(write), f"{size - offset} zero byte(s)")
                return list(messages.values())
            if offset + _HEADER.size <= size and _HEADER.unpack_from(data, offset)[0] <= size - offset - _HEADER.size:
                raise _damaged(path, offset)  # a whole record is there, and it is not one the outbox wrote
            if _more_than_cut_short(data, offset):
                raise _damaged(path, offset)  # its length damaged: not what a kill leaves
            _cut_short(path, write_at if write else offset, size, len(write), "a record")
            return list(messages.values())
        lane, ends_write, created, msg_id, subject, payload, end = record
        if not write:
            write_at = offset
        if lane == _SETTLED:
            if write or not ends_write:
                raise _damaged(path, offset)  # the outbox writes a settled record on its own
            for settled in subject.split("\n"):
                messages.pop(settled, None)
        else:
            write.append(OutgoingMessage(msg_id, subject, payload, Lane(lane), created))
            if ends_write:
                messages.update((m.msg_id, m) for m in write)
                write.clear()
        offset = end
    if write:  # cut short right after a record of a write that had more
        _cut_short(path, write_at, size, len(write), "the rest of a write")
    return list(messages.values())


def _record_at(data: bytes, offset: int) -> tuple[int, bool, float, str, str, bytes, int] | None:
    """(lane, ends its write, created, id, subject, payload, end offset) of the record at `offset`; None: none there."""
    if offset + _HEADER.size > len(data):
        return None
    length, crc = _HEADER.unpack_from(data, offset)
    start, end = offset + _HEADER.size, offset + _HEADER.size + length
    if length < _FIXED.size or end > len(data):
        return None
    lane, ends_write, created, id_length, subject_length = _FIXED.unpack_from(data, start)
    id_at = start + _FIXED.size
    payload_at = id_at + id_length + subject_length
    if (lane not in _LANES and lane != _SETTLED) or ends_write > 1 or payload_at > end:
        return None  # checked before the CRC: most offsets that are no record fail here, cheaply
    body = data[start:end]
    if zlib.crc32(body) != crc:
        return None
    try:
        msg_id = data[id_at : id_at + id_length].decode()
        subject = data[id_at + id_length : payload_at].decode()
    except UnicodeDecodeError:
        return None
    return lane, bool(ends_write), created, msg_id, subject, data[payload_at:end], end


def _more_than_cut_short(data: bytes, offset: int) -> bool:
    """Whether the bytes from `offset`, too few for the length there, are more than a record cut short.

    They are when they hold the whole record (its CRC matches what is there: the length was
    damaged) or when a whole record begins after it (a cut-short record is the last thing written).
    """
    if (
        offset + _HEADER.size <= len(data)
        and zlib.crc32(data[offset + _HEADER.size :]) == _HEADER.unpack_from(data, offset)[1]
    ):
        return True
    last = len(data) - _HEADER.size - _FIXED.size
    return any(_record_at(data, start) is not None for start in range(offset + 1, last + 1))


def _damaged(path: Path, offset: int) -> JournalDamagedError:
    return JournalDamagedError(
        f"outbox journal {path} is damaged at byte {offset} (not a record the outbox wrote); "
        "move it aside (the messages in it are then not sent)"
    )


def _cut_short(path: Path, offset: int, size: int, messages: int, what: str) -> None:
    logger.warning(
        "outbox journal %s: its last write (from byte %d of %d: %d whole message record(s), then %s) was cut short "
        "by a crash; the call that made it never returned, so it is dropped and nothing accepted is missing",
        path,
        offset,
        size,
        messages,
        what,
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
        if sync:  # the file's name, too, must survive a power cut
            try:
                directory = os.open(path.parent, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    os.fsync(directory)
                finally:
                    os.close(directory)
            except OSError:
                os.close(self._fd)
                raise

    def read(self) -> list[OutgoingMessage]:
        return read_journal(self.path)

    def append(self, messages: Sequence[OutgoingMessage]) -> None:
        """Every message in one write, all or none: durable against a kill once this returns (OSError if not)."""
        self._write(encode(messages))

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
