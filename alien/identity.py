"""The persisted identity: which organization and entity this device is on the mothership.

Written atomically (temp file in the same directory, fsync, rename, fsync of the directory) with
mode 0600, so a crash never leaves a half-written file. A file that exists but cannot be read or
parsed is an error naming it: replacing it silently would register a second entity.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from alien.errors import IdentityFileError

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Identity:
    org_id: str | None
    entity_id: str | None
    org_name: str | None = None
    entity_type: str | None = None
    entity_name: str | None = None
    # The REST dialect the server spoke when last reached, so a device that boots while the
    # server is unreachable still encodes telemetry for it (telemetry_format "auto").
    dialect: str | None = None
    # Rights refused on an earlier start (alien.learnt_denials): feature -> when, and by which servers.
    denied: dict[str, str] | None = None
    denied_by: str | None = None


def read(path: Path) -> Identity | None:
    """The saved identity, None when there is no file; IdentityFileError when it is unusable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise IdentityFileError(str(path), f"cannot be read ({exc.__class__.__name__}: {exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise IdentityFileError(str(path), f"is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise IdentityFileError(str(path), f"must hold a JSON object, found {type(data).__name__}")
    fields: dict[str, Any] = {}
    for name in Identity.__dataclass_fields__:
        value = data.get(name)
        if name == "denied":
            if value is not None and not (isinstance(value, dict) and all(isinstance(v, str) for v in value.values())):
                raise IdentityFileError(str(path), f"field 'denied' must map names to times, found {value!r}")
        elif value is not None and not isinstance(value, str):
            raise IdentityFileError(str(path), f"field {name!r} must be a string, found {value!r}")
        fields[name] = value
    return Identity(**fields)


def write(path: Path, ident: Identity) -> None:
    """Replace `path` atomically with `ident`, readable by the owner only."""
    directory = path.parent if str(path.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    payload = json.dumps({**asdict(ident), "format_version": FORMAT_VERSION}, indent=2) + "\n"
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except OSError as exc:
        Path(tmp_name).unlink(missing_ok=True)
        raise IdentityFileError(str(path), f"cannot be written ({exc})") from None
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable across a power cut (POSIX); not all platforms allow it.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
