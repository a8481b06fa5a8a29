"""The outbox journal in front of SQLite: one write per message, nothing lost to a kill or a cut-short record."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from alien.cli.outbox_counters import read_counters
from alien.delivery import outbox_store
from alien.delivery.journal import Journal, encode, journal_path, read_journal
from alien.delivery.outbox import Lane, Outbox, OutgoingMessage
from alien.delivery.outbox_store import OutboxStoreError, SqliteStore


def _msg(msg_id: str, lane: Lane = Lane.TELEMETRY) -> OutgoingMessage:
    return OutgoingMessage(msg_id, f"constellation.telemetry.o.{msg_id}", f"payload-{msg_id}".encode(), lane)


def _rows(path: Path) -> list[tuple[str, str | None]]:
    """(msg_id, parked reason) of the database's rows, read by a connection of the test's own."""
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT msg_id, parked_reason FROM messages ORDER BY seq").fetchall()
    finally:
        db.close()


def _crashed(path: Path, *names: str) -> None:
    """The journal a killed client left: these messages in it, unsettled."""
    journal = Journal(journal_path(path), sync=False)
    for name in names:
        journal.append([_msg(name)])
    journal.close()


async def test_a_message_acknowledged_soon_is_never_a_row_and_a_settled_journal_is_emptied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "outbox.sqlite3"
    outbox = Outbox(100, SqliteStore(path))
    for name in ("a", "b", "c"):
        outbox.put(_msg(name))
    assert [m.msg_id for m in read_journal(journal_path(path))] == ["a", "b", "c"]  # on disk, one write each
    taken = await outbox.take(10)
    outbox.ack_many([(m, False) for m in taken[:2]])
    assert [m.msg_id for m in read_journal(journal_path(path))] == ["c"]  # a and b settled: a restart skips them
    monkeypatch.setattr(outbox_store, "EMPTY_SETTLED_BYTES", 0)
    outbox.ack(taken[2], duplicate=False)
    assert journal_path(path).stat().st_size == 0  # all settled: emptied instead of growing
    outbox.close()
    assert _rows(path) == []  # none of them ever became a row


async def test_what_waits_is_moved_into_the_database_and_a_reopen_keeps_the_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "outbox.sqlite3"
    outbox = Outbox(100, SqliteStore(path))
    outbox.put(_msg("old-1"))
    outbox.put(_msg("old-2"))
    monkeypatch.setattr(outbox_store, "CHECKPOINT_AGE_S", 0.0)  # the next write finds the journal "old"
    outbox.put(_msg("new-1"))
    assert journal_path(path).stat().st_size == 0
    monkeypatch.setattr(outbox_store, "CHECKPOINT_AGE_S", 3600.0)
    outbox.put(_msg("new-2"))  # in the journal again, behind the three rows
    assert [m.msg_id for m in read_journal(journal_path(path))] == ["new-2"]
    outbox.close()  # what is still in the journal goes into the database
    assert _rows(path) == [("old-1", None), ("old-2", None), ("new-1", None), ("new-2", None)]
    assert journal_path(path).stat().st_size == 0
    _crashed(path, "newer")  # a later run killed: its message only in the journal

    again = Outbox(100, SqliteStore(path))
    assert again.restored == 5
    assert [m.msg_id for m in await again.take(10)] == ["old-1", "old-2", "new-1", "new-2", "newer"]
    assert journal_path(path).stat().st_size == 0  # taken over into the database at the start
    again.close()


async def test_a_parked_message_from_the_journal_keeps_its_reason(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    outbox = Outbox(100, SqliteStore(path))
    outbox.put(_msg("bad"))
    outbox.put(_msg("good"))
    bad, good = await outbox.take(10)
    outbox.reject(bad, "message size exceeds maximum allowed")
    outbox.retry([good])
    outbox.close()
    assert _rows(path) == [("bad", "message size exceeds maximum allowed"), ("good", None)]
    again = Outbox(100, SqliteStore(path))
    assert (again.restored, again.parked) == (1, 1)
    again.close()


def test_a_record_cut_short_at_the_end_is_dropped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "outbox.sqlite3"
    _crashed(path, "a", "b", "c")
    journal = journal_path(path)
    journal.write_bytes(journal.read_bytes()[:-5])  # what a kill inside the third write() leaves
    with caplog.at_level(logging.WARNING, logger="alien.outbox"):
        again = Outbox(100, SqliteStore(path))
    assert again.restored == 2
    assert any("cut short" in r.getMessage() and str(journal) in r.getMessage() for r in caplog.records)
    again.close()


@pytest.mark.parametrize("cut", ["inside its third record", "after its second record"])
def test_a_batch_cut_short_by_a_kill_is_dropped_whole(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, cut: str
) -> None:
    path = tmp_path / "outbox.sqlite3"
    _crashed(path, "before")
    journal = journal_path(path)
    whole = journal.stat().st_size
    writer = Journal(journal, sync=False)
    writer.append([_msg(f"batch-{k}") for k in range(5)])  # one write, as client.batch() makes it
    writer.close()
    records = [len(encode([_msg(f"batch-{k}")])) for k in range(5)]
    keep = whole + sum(records[:2]) + (records[2] // 2 if cut == "inside its third record" else 0)
    journal.write_bytes(journal.read_bytes()[:keep])  # what a kill inside that write() can leave
    with caplog.at_level(logging.WARNING, logger="alien.outbox"):
        again = Outbox(100, SqliteStore(path))
    assert again.restored == 1  # the message before it; none of the batch, whose call never returned
    assert any(
        "cut short" in r.getMessage() and f"from byte {whole} of {keep}: 2 whole message record(s)" in r.getMessage()
        for r in caplog.records
    )
    again.close()


def test_zero_bytes_at_the_end_are_dropped_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "outbox.sqlite3"
    _crashed(path, "a", "b")
    journal = journal_path(path)
    journal.write_bytes(journal.read_bytes() + bytes(4096))  # a file longer than what reached the disk
    with caplog.at_level(logging.WARNING, logger="alien.outbox"):
        assert [m.msg_id for m in read_journal(journal)] == ["a", "b"]
    assert any("4096 zero byte(s)" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("record", [0, 1, 2])
def test_a_damaged_length_is_named_not_taken_for_a_cut_short_end(tmp_path: Path, record: int) -> None:
    """A length grown past the file's end looks like a record cut short; it is named as damage."""
    path = tmp_path / "outbox.sqlite3"
    _crashed(path, "a", "b", "c")
    journal = journal_path(path)
    data = bytearray(journal.read_bytes())
    at = sum(len(encode([_msg(name)])) for name in "abc"[:record])
    data[at + 3] = 0x7F  # the length's high byte: far past the end of the file
    journal.write_bytes(bytes(data))
    with pytest.raises(OutboxStoreError, match=f"{journal} is damaged at byte {at}"):
        SqliteStore(path)
    assert journal.read_bytes() == bytes(data)


def test_a_damaged_journal_is_named_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    _crashed(path, "a", "b")
    journal = journal_path(path)
    data = bytearray(journal.read_bytes())
    data[12] ^= 0xFF  # a flipped bit inside the first record: not what a kill leaves
    journal.write_bytes(bytes(data))
    with pytest.raises(OutboxStoreError, match=f"{journal} is damaged at byte 0.*move it aside"):
        SqliteStore(path)
    assert journal.read_bytes() == bytes(data)
    SqliteStore(path.with_name("other.sqlite3")).close()  # the failed open left no lock behind
    assert _rows(path) == []


def test_the_cli_counts_what_a_killed_client_left_in_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    store = SqliteStore(path)
    store.insert(_msg("a"))
    store.close()  # a row
    _crashed(path, "b", "c", "d")
    journal = Journal(journal_path(path), sync=False)
    journal.settle(["c"])  # acknowledged before the kill
    journal.close()
    counters = read_counters(path)
    assert (counters["state"], counters["waiting"], counters["parked"]) == ("ok", 3, 0)
    assert counters["bytes"] == sum(len(f"payload-{n}") for n in "abd")


KILLED_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from alien.delivery.outbox import Lane, Outbox, OutgoingMessage
    from alien.delivery.outbox_store import SqliteStore

    outbox = Outbox(100_000, SqliteStore(Path(sys.argv[1])))
    n = 0
    while True:  # put() returns once the message is on disk: then it is announced
        if n % 7 == 3:
            with outbox.batch():
                for k in range(5):
                    outbox.put(OutgoingMessage(f"b{n}-{k}", "constellation.telemetry.o.e", b"x" * n, Lane.TELEMETRY))
            print(*(f"b{n}-{k}" for k in range(5)), flush=True)
        else:
            outbox.put(OutgoingMessage(f"m{n}", "constellation.telemetry.o.e", b"x" * n, Lane.TELEMETRY))
            print(f"m{n}", flush=True)
        n += 1
    """
)


async def test_a_killed_writer_loses_nothing_whose_put_returned(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert writer.stdout is not None
    announced: list[str] = []
    while len(announced) < 3000:  # some of it moved into the database by a checkpoint, the rest not
        line = writer.stdout.readline()
        assert line, f"the writer ended ({writer.wait(10)})"
        announced += line.split()
    writer.send_signal(signal.SIGKILL)
    writer.wait(10)
    announced += writer.stdout.read().split()  # printed before the kill, not read yet
    outbox = Outbox(100_000, SqliteStore(path))
    restored = [m.msg_id for m in await outbox.take(100_000)]
    assert restored[: len(announced)] == announced  # every one, in order
    assert len(restored) <= len(announced) + 5  # and at most the put (or batch) the kill interrupted
    outbox.close()


FULL_DISK = textwrap.dedent(
    """
    import resource, signal, sys
    from pathlib import Path
    from alien.delivery.outbox import Lane, Outbox, OutgoingMessage
    from alien.delivery.outbox_store import OutboxStoreError, SqliteStore

    outbox = Outbox(100, SqliteStore(Path(sys.argv[1])))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
    outbox.put(OutgoingMessage("fits", "constellation.telemetry.o.e", b"x" * 100, Lane.TELEMETRY))
    try:
        outbox.put(OutgoingMessage("too-big", "constellation.telemetry.o.e", b"x" * 8000, Lane.TELEMETRY))
    except OutboxStoreError as exc:
        print("refused:", exc, flush=True)
    print("queued:", [m.msg_id for lane in outbox._lanes.values() for m in lane], flush=True)
    outbox.put(OutgoingMessage("after", "constellation.telemetry.o.e", b"x" * 100, Lane.TELEMETRY))
    """
)


def test_a_write_the_disk_refuses_is_told_and_leaves_no_part_record_behind(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    run = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        check=True,
    )
    lines = run.stdout.splitlines()
    assert lines[0].startswith(f"refused: outbox journal {journal_path(path)} cannot be written")
    assert lines[1] == "queued: ['fits']"  # put() raised: the caller knows it was not accepted
    assert [m.msg_id for m in read_journal(journal_path(path))] == ["fits", "after"]
