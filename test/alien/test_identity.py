"""Identity persistence: atomic, private, and loud about corruption."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from alien import IdentityFileError
from alien.identity import Identity, read, write


def test_write_is_private_and_readable_back(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "ids.json"
    write(path, Identity(org_id="o", entity_id="e", org_name="Fleet", entity_type="drone", entity_name="n"))
    assert path.stat().st_mode & 0o777 == 0o600
    assert read(path) == Identity("o", "e", "Fleet", "drone", "n")
    assert json.loads(path.read_text())["format_version"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["ids.json"]  # no temp file left behind


def test_failed_write_leaves_previous_file_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ids.json"
    write(path, Identity(org_id="o1", entity_id="e1"))
    before = path.read_text()

    def fail_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail_replace)
    with pytest.raises(IdentityFileError) as info:
        write(path, Identity(org_id="o2", entity_id="e2"))
    assert str(path) in str(info.value) and "No space left" in str(info.value)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ids.json"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("not json at all", "not valid JSON"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"org_id": 42}', "'org_id' must be a string"),
        (b"\xff\xfe\x00garbage", "cannot be read"),
    ],
)
def test_corrupt_file_raises_naming_file_and_reason(tmp_path: Path, content: str | bytes, reason: str) -> None:
    path = tmp_path / "ids.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(IdentityFileError) as info:
        read(path)
    assert str(path) in str(info.value)
    assert reason in str(info.value)


def test_missing_file_is_not_an_error(tmp_path: Path) -> None:
    assert read(tmp_path / "absent.json") is None
