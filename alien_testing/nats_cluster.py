"""A NATS cluster on loopback for fault drills: nats-servers with JetStream, routed to each other.

Each node is a :class:`~alien_testing.nats_server.NatsServer` with a ``cluster`` block: client,
monitoring and route ports are free loopback ports, and routes go to 127.0.0.1 only (nothing leaves
the machine). The nodes share the JetStream domain ``constellation``, so a stream created with
three replicas lives on all three; any node can be stopped (SIGTERM), killed (SIGKILL) and
started again on its own ports and store. What the cluster looks like from outside (who leads a
stream, whether JetStream is settled) comes from the nodes' monitoring endpoints.

A fresh cluster needs a JetStream meta leader before anything can be created: nats-server's Raft
waits a randomised 4-9 s before its first election, so :meth:`NatsCluster.start` takes that long.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from alien_testing.nats_binary import LOOPBACK, NatsServerError, free_port
from alien_testing.nats_config import cluster_config
from alien_testing.nats_server import NatsServer

__all__ = ["NatsCluster"]

_PORT_RETRIES = 3
_POLL_S = 0.05


class NatsCluster:
    """`size` routed nats-servers with JetStream on 127.0.0.1; a context manager (start, stop)."""

    def __init__(
        self,
        size: int = 3,
        workdir: Path | str | None = None,
        *,
        name: str = "alien",
        jetstream_domain: str | None = "constellation",
        binary: str | None = None,
    ) -> None:
        if size < 1:
            raise ValueError("a cluster has at least one node")
        self.size = size
        self.name = name
        self._domain = jetstream_domain
        self._binary = binary
        self._own_root = workdir is None
        self._root: Path | None = None if workdir is None else Path(workdir)
        self.nodes: list[NatsServer] = []

    # -- addresses -----------------------------------------------------------------------------
    @property
    def urls(self) -> list[str]:
        """Every node's client URL, in node order."""
        return [node.url for node in self.nodes]

    @property
    def url(self) -> str:
        """All the nodes as NATS_URL writes them (comma-separated)."""
        return ",".join(self.urls)

    @property
    def running(self) -> list[NatsServer]:
        return [node for node in self.nodes if node.running]

    def node_named(self, server_name: str) -> NatsServer:
        for node in self.nodes:
            if node.server_name == server_name:
                return node
        raise LookupError(f"no node named {server_name!r} (nodes: {[n.server_name for n in self.nodes]})")

    def node_on_port(self, port: int) -> NatsServer:
        """The node whose client port is `port` (e.g. what a client's connected_url says)."""
        for node in self.nodes:
            if node.port == port:
                return node
        raise LookupError(f"no node serves clients on port {port} (ports: {[n.port for n in self.nodes]})")

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> None:
        """Start every node and wait (bounded) until JetStream is settled on all of them."""
        if self.nodes and all(node.running for node in self.nodes):
            return
        if self.nodes:  # some were stopped: start those again on their own ports and stores
            for node in self.nodes:
                node.start(timeout)
            self.wait_healthy(timeout)
            return
        for attempt in range(_PORT_RETRIES):
            self.nodes = self._new_nodes()
            try:
                for node in self.nodes:
                    node.start(timeout)
                self.wait_healthy(timeout)
                return
            except NatsServerError as exc:
                # A port chosen free can be taken before nats-server binds it: new ports, new stores.
                for index, node in enumerate(self.nodes):
                    node.kill()
                    shutil.rmtree(self.root / f"node{index}", ignore_errors=True)
                self.nodes = []
                if "address already in use" not in str(exc) or attempt == _PORT_RETRIES - 1:
                    raise

    def stop(self) -> None:
        """Stop every node (SIGTERM); idempotent. Removes a temporary working directory."""
        for node in self.nodes:
            node.stop()
        if self._own_root and self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None
            self.nodes = []

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Bounded poll until every running node's /healthz is ok: a meta leader, every stream and consumer current."""
        deadline = time.monotonic() + timeout
        while True:
            problems = {node.server_name: _health(node) for node in self.running}
            problems = {name: problem for name, problem in problems.items() if problem is not None}
            if not problems:
                return
            if time.monotonic() > deadline:
                raise NatsServerError(f"cluster not healthy after {timeout:.0f}s: {problems}")
            time.sleep(_POLL_S)

    def stream_leader(self, stream: str, timeout: float = 30.0) -> NatsServer:
        """The running node leading `stream`'s Raft group, once one is elected (bounded poll of /jsz).

        The survivors of a killed leader name it until they elect another: a leader that is not
        running is waited out.
        """
        deadline = time.monotonic() + timeout
        while True:
            for node in self.running:
                name = _stream_leader(node, stream)
                leader = self.node_named(name) if name else None
                if leader is not None and leader.running:
                    return leader
            if time.monotonic() > deadline:
                raise NatsServerError(f"no leader for stream {stream} after {timeout:.0f}s")
            time.sleep(_POLL_S)

    def __enter__(self) -> NatsCluster:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"NatsCluster(urls={self.urls!r}, running={len(self.running)}/{len(self.nodes)})"

    # -- internals -----------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="alien-nats-cluster-"))
        return self._root

    def _new_nodes(self) -> list[NatsServer]:
        ports = _distinct_free_ports(2 * self.size)
        clients, routes = ports[: self.size], ports[self.size :]
        return [
            NatsServer(
                self.root / f"node{index}",
                port=clients[index],
                jetstream_domain=self._domain,
                binary=self._binary,
                extra_config=cluster_config(self.name, routes[index], [r for r in routes if r != routes[index]]),
            )
            for index in range(self.size)
        ]


def _distinct_free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def _get_json(node: NatsServer, path: str) -> tuple[int, Any]:
    url = f"http://{LOOPBACK}:{node.monitor_port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:
            return int(response.status), json.load(response)
    except urllib.error.HTTPError as exc:  # /healthz answers 503 with a JSON reason
        try:
            return exc.code, json.load(exc)
        except ValueError:
            return exc.code, None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return 0, {"error": str(exc)}


def _health(node: NatsServer) -> str | None:
    """None when the node says JetStream is healthy on it, else its reason."""
    status, body = _get_json(node, "/healthz")
    if status == 200:
        return None
    return str(body.get("error") if isinstance(body, dict) else body)


def _stream_leader(node: NatsServer, stream: str) -> str | None:
    status, body = _get_json(node, "/jsz?accounts=true&streams=true")
    if status != 200 or not isinstance(body, dict):
        return None
    for account in body.get("account_details") or []:
        for detail in account.get("stream_detail") or []:
            if detail.get("name") == stream:
                leader = (detail.get("cluster") or {}).get("leader")
                return str(leader) if leader else None
    return None
