"""The identity: which organization and entity this device is on the mothership, as registration learnt it.

`DeviceIdentity` holds it while the client runs (registration writes it; the settings never
change, docs/architecture.md#settings-and-identity); `read` / `write` persist it.

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
from alien.learnt_denials import Feature, LearntDenials
from alien.wire import subject_token

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


@dataclass(frozen=True)
class DeviceNames:
    """What the identity file records beside the ids, so that a reader sees which device it is."""

    org_name: str | None = None
    entity_type: str | None = None
    entity_name: str | None = None


class DeviceIdentity:
    """The ids, the dialect and the refused rights learnt by registration; saved to and loaded from `path`.

    Ids given in the settings are pinned: `load()` never replaces them, and registration only
    replaces an unpinned one. Written from the client's event loop only; other threads read
    whole attribute values.
    """

    def __init__(
        self,
        path: Path,
        names: DeviceNames,
        *,
        pinned_org_id: str | None = None,
        pinned_entity_id: str | None = None,
    ) -> None:
        self.path = path
        self.names = names
        self.org_pinned = pinned_org_id is not None
        self.entity_pinned = pinned_entity_id is not None
        self.org_id = pinned_org_id
        self.entity_id = pinned_entity_id
        # The REST dialect the server last answered in; see Identity.dialect.
        self.dialect: str | None = None
        self.denials = LearntDenials()
        self._subject_ids: tuple[str, str] | None = None

    def subject_ids(self) -> tuple[str, str] | None:
        """(org_id, entity_id) for subjects and payloads; None until both are known.

        Asked for every message: each pair of ids is checked as subject tokens once, not every time.
        """
        org_id, entity_id = self.org_id, self.entity_id
        if not org_id or not entity_id:
            return None
        checked = self._subject_ids
        if checked is None or checked[0] != org_id or checked[1] != entity_id:
            checked = self._subject_ids = (subject_token(org_id, "org_id"), subject_token(entity_id, "entity_id"))
        return checked

    def load(self) -> None:
        """Take the saved ids from `path` if it exists; IdentityFileError names a corrupt file.

        A saved entity that belongs to another organization than the pinned one is not reused.
        """
        saved = read(self.path)
        if saved is None:
            return
        if saved.dialect in ("v0.0.1", "v0.1"):
            self.dialect = saved.dialect
        self.denials = LearntDenials(saved.denied_by, dict(saved.denied or {}))
        if not self.org_pinned:
            self.org_id = saved.org_id
        if not self.entity_pinned and saved.org_id == self.org_id:
            self.entity_id = saved.entity_id

    def save(self) -> None:
        """Write the ids and names to `path` (atomic, mode 0600, never any secret)."""
        write(
            self.path,
            Identity(
                org_id=self.org_id,
                entity_id=self.entity_id,
                org_name=self.names.org_name,
                entity_type=self.names.entity_type,
                entity_name=self.names.entity_name,
                dialect=self.dialect,
                denied=dict(self.denials.denied) or None,
                denied_by=self.denials.servers,
            ),
        )

    def learn_refusal(self, feature: Feature, nats_url: str) -> bool:
        """Record that `nats_url`'s servers refused `feature`; False when that was known already."""
        if self.denials.holds(feature, nats_url):
            return False
        self.denials.learn(feature, nats_url)
        return True

    def forget_entity(self, *, organization_too: bool) -> None:
        """The saved entity is gone from the server: register again (in a new organization when its is gone too)."""
        self.entity_id = None
        if organization_too and not self.org_pinned:
            self.org_id = None


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
