"""Edge credentials as a v0.1.x server mints them (docs/contract.md#edge-permissions).

An edge key is an API key with scopes plus an NKey user whose NATS permissions the server derives
from those scopes.

What the real server does (Constellation-Overwatch/constellation-overwatch,
pkg/services/embedded-nats/nats.go ``BuildNATSPermissions``; the key's NKey user is added with
``AddNKeyUser`` / ``RestoreNKeyUsers`` and a key whose scopes derive no permissions gets no NATS
user at all):

- **v0.1.1** (scopes of pkg/authz/apikey_scopes.go and the server's API-key scopes page): every scoped key gets
  ``$JS.API.>`` and ``_INBOX.>`` to publish *and* subscribe, plus per scope
  ``nats:telemetry`` pub+sub ``constellation.telemetry.{org}.>``, ``nats:commands`` sub and
  ``nats:commands:write`` pub ``constellation.commands.{org}.>``, ``nats:entities`` pub+sub
  ``constellation.entities.{org}.>``, ``nats:events`` sub ``constellation.events.>`` (every org);
  ``nats:all`` is ``>`` both ways. Consequences, checked against a real nats-server: a scoped key
  can read KV and can administer JetStream (create/delete streams), but cannot write KV
  (``$KV.`` is not granted) nor publish events. Only ``nats:all`` writes the entity state.
- **rc** (pkg/shared/scopes.go): least privilege, no ``$JS.API`` at all:
  ``nats:telemetry:write`` pub ``constellation.telemetry.{org}.>``, ``nats:events:write`` pub and
  ``nats:events:read`` sub ``constellation.events.{org}.>`` + ``constellation.events.*.{org}.>``,
  ``nats:commands:read`` sub / ``nats:commands:write`` pub ``constellation.commands.{org}.>``,
  ``nats:entities:read`` sub / ``nats:entities:write`` pub ``constellation.entities.{org}.>``;
  subscribe always includes ``_INBOX.>`` (JetStream acks). ``nats:all`` / ``nats:telemetry`` are
  refused, and so is an empty organization.

``kv=True`` adds what no real release grants but an operator may provision by hand: the least
rights to read and compare-and-set ``CONSTELLATION_GLOBAL_STATE`` keys with nats-py
(``js.key_value``, ``kv.get``, ``kv.create``, ``kv.update(last=...)``, ``kv.put``,
``kv.delete``), and nothing else of JetStream (found by experiment against nats-server).

``firmware_bucket="B"`` likewise adds read access to a firmware object store bucket, which no
release grants either (the bucket is the operator's, docs/contract.md#object-stores): publish on
``$JS.API.DIRECT.GET.OBJ_B`` and ``$JS.API.DIRECT.GET.OBJ_B.>``, all a device needs to read it
(docs/firmware.md#permissions). A v0.1.1 scoped key needs no grant (it has ``$JS.API.>``); an rc
key has no JetStream API at all without it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from alien_testing.emulator.contract import (
    DEFAULT_ORG_ID,
    KV_BUCKET,
    NATS_SCOPES,
    REST_SCOPES,
    Release,
)
from alien_testing.nats_auth import NkeyUser, generate_nkey_user

__all__ = [
    "KV_EDGE_PUBLISH",
    "EdgeKey",
    "edge_permissions",
    "firmware_read_subjects",
    "mint_edge_key",
    "valid_scopes",
]

# The least KV rights (publish side; replies come back on _INBOX.>): key writes, the bucket's
# stream info (js.key_value), direct get (the server's bucket allows direct) and message get
# (a bucket without allow_direct).
KV_EDGE_PUBLISH = (
    f"$KV.{KV_BUCKET}.>",
    f"$JS.API.STREAM.INFO.KV_{KV_BUCKET}",
    f"$JS.API.DIRECT.GET.KV_{KV_BUCKET}.>",
    f"$JS.API.STREAM.MSG.GET.KV_{KV_BUCKET}",
)
_INBOX = "_INBOX.>"


def firmware_read_subjects(bucket: str) -> tuple[str, str]:
    """What an operator grants (publish) for a device to read firmware bucket `bucket`: direct gets only."""
    return f"$JS.API.DIRECT.GET.OBJ_{bucket}", f"$JS.API.DIRECT.GET.OBJ_{bucket}.>"


def valid_scopes(release: Release) -> frozenset[str]:
    """Every scope a key may carry on this release (REST scopes and the release's NATS scopes)."""
    return REST_SCOPES | NATS_SCOPES[release]


def edge_permissions(
    org_id: str,
    scopes: Iterable[str],
    *,
    release: Release = "v0.1.1",
    kv: bool = False,
    firmware_bucket: str | None = None,
) -> dict[str, Any] | None:
    """The NATS permissions a key with ``scopes`` in ``org_id`` gets on ``release``.

    None when the server would create no NATS user for the key (no NATS scope; on rc also a
    legacy scope or an empty organization): such a key cannot connect to NATS at all.
    """
    wanted = list(dict.fromkeys(scopes))  # the server walks the scope list in order
    perms = _v011(org_id, wanted) if release == "v0.1.1" else _rc(org_id, wanted)
    if kv:
        perms = perms or {"publish": {"allow": []}, "subscribe": {"allow": [_INBOX]}}
        perms["publish"]["allow"] = _union(perms["publish"]["allow"], KV_EDGE_PUBLISH)
        perms["subscribe"]["allow"] = _union(perms["subscribe"]["allow"], [_INBOX])
    if firmware_bucket is not None:
        perms = perms or {"publish": {"allow": []}, "subscribe": {"allow": [_INBOX]}}
        perms["publish"]["allow"] = _union(perms["publish"]["allow"], firmware_read_subjects(firmware_bucket))
        perms["subscribe"]["allow"] = _union(perms["subscribe"]["allow"], [_INBOX])
    return perms


def _v011(org_id: str, scopes: list[str]) -> dict[str, Any] | None:
    pub: list[str] = []
    sub: list[str] = []
    for scope in scopes:
        if scope == "nats:all":
            return {"publish": {"allow": [">"]}, "subscribe": {"allow": [">"]}}
        if scope == "nats:telemetry":
            pub.append(f"constellation.telemetry.{org_id}.>")
            sub.append(f"constellation.telemetry.{org_id}.>")
        elif scope == "nats:commands":
            sub.append(f"constellation.commands.{org_id}.>")
        elif scope == "nats:commands:write":
            pub.append(f"constellation.commands.{org_id}.>")
        elif scope == "nats:entities":
            pub.append(f"constellation.entities.{org_id}.>")
            sub.append(f"constellation.entities.{org_id}.>")
        elif scope == "nats:events":
            sub.append("constellation.events.>")
    if not pub and not sub:
        return None
    base = ["$JS.API.>", _INBOX]
    return {"publish": {"allow": base + pub}, "subscribe": {"allow": base + sub}}


def _rc(org_id: str, scopes: list[str]) -> dict[str, Any] | None:
    if not org_id:
        return None
    events = [f"constellation.events.{org_id}.>", f"constellation.events.*.{org_id}.>"]
    pub: list[str] = []
    sub: list[str] = []
    for scope in scopes:
        if scope == "nats:telemetry:write":
            pub.append(f"constellation.telemetry.{org_id}.>")
        elif scope == "nats:commands:read":
            sub.append(f"constellation.commands.{org_id}.>")
        elif scope == "nats:commands:write":
            pub.append(f"constellation.commands.{org_id}.>")
        elif scope == "nats:entities:read":
            sub.append(f"constellation.entities.{org_id}.>")
        elif scope == "nats:entities:write":
            pub.append(f"constellation.entities.{org_id}.>")
        elif scope == "nats:events:read":
            sub.extend(events)
        elif scope == "nats:events:write":
            pub.extend(events)
    if not pub and not sub:
        return None
    return {"publish": {"allow": pub}, "subscribe": {"allow": [_INBOX, *sub]}}


def _union(first: Iterable[str], second: Iterable[str]) -> list[str]:
    return list(dict.fromkeys([*first, *second]))


@dataclass(frozen=True)
class EdgeKey:
    """One edge identity: API key (REST), NKey seed (NATS), the organization and the scopes."""

    api_key: str = field(repr=False)
    scopes: frozenset[str]
    nkey_seed: str = field(repr=False)
    nkey_public: str
    org_id: str = DEFAULT_ORG_ID
    release: Release = "v0.1.1"
    kv: bool = False
    firmware_bucket: str | None = None

    @property
    def permissions(self) -> dict[str, Any] | None:
        return edge_permissions(
            self.org_id, sorted(self.scopes), release=self.release, kv=self.kv, firmware_bucket=self.firmware_bucket
        )

    def nkey_user(self) -> NkeyUser | None:
        """The nats-server user for this key; None when the server would register none."""
        perms = self.permissions
        return None if perms is None else NkeyUser(self.nkey_public, perms)

    def connect_options(self) -> dict[str, Any]:
        """nats.connect kwargs authenticating as this key's NKey user."""
        return {"nkeys_seed_str": self.nkey_seed}


def mint_edge_key(
    scopes: Iterable[str],
    *,
    org_id: str = DEFAULT_ORG_ID,
    release: Release = "v0.1.1",
    kv: bool = False,
    api_key: str | None = None,
    firmware_bucket: str | None = None,
) -> EdgeKey:
    """A fresh edge key; unknown scopes are refused, as the real server refuses them at creation."""
    wanted = frozenset(s.strip() for s in scopes)
    unknown = wanted - valid_scopes(release)
    if unknown or not wanted:
        raise ValueError(f"invalid API key scope(s) for {release}: {sorted(unknown) or 'none given'}")
    seed, public = generate_nkey_user()
    key = api_key or "c4_test_" + os.urandom(16).hex()
    return EdgeKey(key, wanted, seed, public, org_id, release, kv, firmware_bucket)
