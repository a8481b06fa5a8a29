"""A v0.1 mothership deployment for tests: nats-server, the emulator and edge keys.

nats-server runs with per-user permissions: the emulator connects as a privileged user, and edge
keys are NKey users whose permissions are derived from their API-key scopes as the real server
derives them (see :mod:`alien_testing.emulator.edge_auth`).

The real server connects its own workers with an internal token that may do anything; here the
emulator is the user ``mothership`` without restrictions, and every edge key is an NKey user
restricted to what its scopes grant on the chosen release.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from alien_testing.emulator import DEFAULT_API_KEY, EdgeKey, MothershipEmulator, Release, mint_edge_key
from alien_testing.emulator.contract import DEFAULT_ORG_ID, SCOPE_ADMIN
from alien_testing.nats_server import NatsServer, make_tls_files

__all__ = ["DEFAULT_EDGE_SCOPES", "V01Deployment"]

# What an edge device needs on each line. v0.1.1: only nats:all lets an edge publish its lifecycle
# events and write its KV entity state (scoped keys get neither, see edge_auth.py); rc: the
# least-privilege data-plane scopes (telemetry out, events out, commands in).
DEFAULT_EDGE_SCOPES: dict[Release, tuple[str, ...]] = {
    "v0.1.1": ("organizations:read", "entities:read", "entities:write", "nats:all"),
    "rc": (
        "organizations:read",
        "entities:read",
        "entities:write",
        "nats:telemetry:write",
        "nats:events:write",
        "nats:commands:read",
    ),
}
ADMIN_USER = "mothership"


@dataclass
class V01Deployment:
    """nats-server + v0.1 emulator + edge keys; a context manager (start on enter, stop on exit).

    ``edges`` maps a name to :class:`EdgeKey`; ``edge`` is the one named "edge".
    """

    release: Release = "v0.1.1"
    scopes: Iterable[str] | None = None
    kv: bool = False
    firmware_bucket: str | None = None  # read access to this firmware bucket, as an operator grants it
    tls: bool = False
    org_id: str = DEFAULT_ORG_ID
    extra_edges: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    emulator_options: Mapping[str, Any] = field(default_factory=dict)
    workdir: Path | None = None

    def __post_init__(self) -> None:
        scopes = DEFAULT_EDGE_SCOPES[self.release] if self.scopes is None else tuple(self.scopes)
        self.edges: dict[str, EdgeKey] = {
            "edge": mint_edge_key(
                scopes, org_id=self.org_id, release=self.release, kv=self.kv, firmware_bucket=self.firmware_bucket
            )
        }
        for name, spec in self.extra_edges.items():
            self.edges[name] = mint_edge_key(
                spec.get("scopes", scopes),
                org_id=spec.get("org_id", self.org_id),
                release=self.release,
                kv=spec.get("kv", self.kv),
                firmware_bucket=spec.get("firmware_bucket", self.firmware_bucket),
            )
        self.admin_password = os.urandom(12).hex()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._nats_server: NatsServer | None = None
        self._emulator: MothershipEmulator | None = None

    @property
    def edge(self) -> EdgeKey:
        return self.edges["edge"]

    @property
    def nats_server(self) -> NatsServer:
        if self._nats_server is None:
            raise RuntimeError("deployment not started")
        return self._nats_server

    @property
    def emulator(self) -> MothershipEmulator:
        if self._emulator is None:
            raise RuntimeError("deployment not started")
        return self._emulator

    # -- connecting ----------------------------------------------------------------------------
    def admin_options(self) -> dict[str, Any]:
        """nats.connect kwargs for the privileged user (what the server's own workers may do)."""
        return self.nats_server.connect_options()

    def edge_options(self, name: str = "edge") -> dict[str, Any]:
        """nats.connect kwargs for an edge key's NKey user (TLS trust included when TLS is on)."""
        options = {k: v for k, v in self.admin_options().items() if k not in ("user", "password")}
        return {**options, **self.edges[name].connect_options()}

    def edge_settings(self, name: str = "edge") -> dict[str, Any]:
        """The AlienConfig fields an integrator sets for edge key `name`: URLs, API key, NKey seed, org id.

        TLS trust too when TLS is on.
        """
        edge = self.edges[name]
        settings: dict[str, Any] = {
            "mothership_url": self.emulator.url,
            "nats_url": self.nats_server.url,
            "api_key": edge.api_key,
            "nats_nkey_seed": edge.nkey_seed,
            "org_id": edge.org_id,  # an edge key may not create organizations (docs/contract.md#api-keys-and-scopes)
        }
        if self.ca_file is not None:
            settings["nats_tls_ca"] = self.ca_file
        return settings

    @property
    def ca_file(self) -> Path | None:
        tls = self.nats_server.tls
        return None if tls is None else tls.ca_file

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> V01Deployment:
        if self._nats_server is not None:
            return self
        workdir = self.workdir
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="alien-v01-")
            workdir = Path(self._tmp.name)
        tls = make_tls_files(workdir / "tls") if self.tls else None
        users = [u for u in (key.nkey_user() for key in self.edges.values()) if u is not None]
        server = NatsServer(user=ADMIN_USER, password=self.admin_password, nkey_users=users, tls=tls)
        server.start()
        self._nats_server = server
        try:
            # The edge key first: test/conftest.py's make_config picks the emulator's first key.
            api_keys = {**{k.api_key: set(k.scopes) for k in self.edges.values()}, DEFAULT_API_KEY: {SCOPE_ADMIN}}
            options = {"dialect": "v0.1", "release": self.release, "api_keys": api_keys, **self.emulator_options}
            emulator = MothershipEmulator(server.url, nats_options=server.connect_options(), **options)
            emulator.start()
            self._emulator = emulator
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._emulator is not None:
            self._emulator.stop()
            self._emulator = None
        if self._nats_server is not None:
            self._nats_server.stop()
            self._nats_server = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> V01Deployment:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"V01Deployment(release={self.release!r}, edges={sorted(self.edges)}, tls={self.tls})"
