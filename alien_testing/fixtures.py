"""pytest plugin: a real nats-server and a mothership emulator per test.

Load it from test/conftest.py with ``pytest_plugins = ["alien_testing.fixtures"]``.

- ``nats_server``: a started :class:`NatsServer` (no auth, JetStream domain ``constellation``).
- ``emulator``: a started :class:`MothershipEmulator` on that server. Dialect ``v0.0.1`` unless
  the test parametrizes it, either indirectly
  (``@pytest.mark.parametrize("emulator", ["v0.1"], indirect=True)``) or through
  ``mothership_dialect`` (``@pytest.mark.parametrize("mothership_dialect", ["v0.0.1", "v0.1"])``).
- ``emulator_v01``: the same in the v0.1 dialect. Use one emulator per nats-server: the two
  dialects configure CONSTELLATION_TELEMETRY differently.
- ``make_emulator(**kwargs)``: build and start more (defaults to the ``nats_server`` URL);
  all are stopped after the test.
- ``nats_cluster``: a started 3-node :class:`~alien_testing.nats_cluster.NatsCluster` (JetStream on
  every node, loopback, its own ports); ``cluster_emulator``: a v0.1 emulator on it whose streams and
  KV bucket have 3 replicas (parametrize indirectly with a dialect, as ``emulator``).
- ``v01_deployment``: a :class:`~alien_testing.deployment.V01Deployment` started for the test: its
  own nats-server (the emulator as privileged user ``mothership``, edge keys as NKey users with the
  permissions their API-key scopes get on the release) and a v0.1 emulator. Parametrize indirectly
  with a dict of its fields, e.g. ``{"release": "rc", "scopes": [...], "tls": True, "kv": False,
  "extra_edges": {"other": {"org_id": "other-org"}}}``; ``release`` defaults to ``v0.1.1``.

Start times are collected and summarised at the end of the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from alien_testing.deployment import V01Deployment
from alien_testing.emulator import MothershipEmulator
from alien_testing.emulator.contract import Dialect
from alien_testing.nats_cluster import NatsCluster
from alien_testing.nats_server import NatsServer

_START_TIMES: dict[str, list[float]] = {"nats-server": [], "nats cluster": [], "emulator": []}


@pytest.fixture
def nats_server() -> Iterator[NatsServer]:
    server = NatsServer()
    server.start()
    if server.start_seconds is not None:
        _START_TIMES["nats-server"].append(server.start_seconds)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mothership_dialect(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "v0.0.1"))


@pytest.fixture
def make_emulator(nats_server: NatsServer) -> Iterator[Callable[..., MothershipEmulator]]:
    started: list[MothershipEmulator] = []

    def factory(nats_url: str | None = None, **kwargs: Any) -> MothershipEmulator:
        emulator = MothershipEmulator(nats_url or nats_server.url, **kwargs)
        began = time.monotonic()
        emulator.start()
        _START_TIMES["emulator"].append(time.monotonic() - began)
        started.append(emulator)
        return emulator

    try:
        yield factory
    finally:
        for emulator in reversed(started):
            emulator.stop()


@pytest.fixture
def emulator(
    request: pytest.FixtureRequest, make_emulator: Callable[..., MothershipEmulator], mothership_dialect: str
) -> MothershipEmulator:
    dialect = getattr(request, "param", None) or mothership_dialect
    return make_emulator(dialect=dialect)


@pytest.fixture
def emulator_v01(make_emulator: Callable[..., MothershipEmulator]) -> MothershipEmulator:
    return make_emulator(dialect="v0.1")


@pytest.fixture
def nats_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    cluster = NatsCluster(3, tmp_path_factory.mktemp("cluster"))
    began = time.monotonic()
    cluster.start()
    _START_TIMES["nats cluster"].append(time.monotonic() - began)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster_emulator(request: pytest.FixtureRequest, nats_cluster: NatsCluster) -> Iterator[MothershipEmulator]:
    dialect: Dialect = getattr(request, "param", None) or "v0.1"
    emulator = MothershipEmulator(nats_cluster.url, dialect=dialect, replicas=len(nats_cluster.nodes))
    began = time.monotonic()
    emulator.start()
    nats_cluster.wait_healthy()  # every replica of the new streams current: tests start from a settled cluster
    _START_TIMES["emulator"].append(time.monotonic() - began)
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def v01_deployment(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[V01Deployment]:
    params: dict[str, Any] = dict(getattr(request, "param", None) or {})
    deployment = V01Deployment(workdir=tmp_path_factory.mktemp("v01"), **params)
    deployment.start()
    if deployment.nats_server.start_seconds is not None:
        _START_TIMES["nats-server"].append(deployment.nats_server.start_seconds)
    try:
        yield deployment
    finally:
        deployment.stop()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    parts = []
    for name, times in _START_TIMES.items():
        if times:
            mean_ms = 1000 * sum(times) / len(times)
            parts.append(f"{len(times)} {name} starts, mean {mean_ms:.0f} ms, max {1000 * max(times):.0f} ms")
    if parts:
        terminalreporter.write_line("alien_testing: " + "; ".join(parts))
