"""NatsCluster: three routed nats-servers on loopback, the emulator's replicated streams, node faults."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.request
from typing import Any

import nats
import pytest

from alien_testing import MothershipEmulator, NatsServer
from alien_testing.emulator.contract import KV_BUCKET
from alien_testing.nats_cluster import NatsCluster

pytestmark = pytest.mark.timeout(90)

TELEMETRY = "CONSTELLATION_TELEMETRY"


def monitor(node: NatsServer, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{node.monitor_port}{path}", timeout=5) as response:
        return json.load(response)


async def stream_cluster(cluster: NatsCluster, stream: str) -> Any:
    nc = await nats.connect([node.url for node in cluster.running])
    try:
        info = await nc.jetstream().stream_info(stream)
        return info.config, info.cluster
    finally:
        await nc.close()


async def test_three_nodes_on_loopback_hold_the_mothership_streams_and_kv_with_three_replicas(
    nats_cluster: NatsCluster, cluster_emulator: MothershipEmulator
) -> None:
    assert len({node.port for node in nats_cluster.nodes}) == 3
    for node in nats_cluster.nodes:
        varz = monitor(node, "/varz")
        assert varz["host"] == "127.0.0.1" and varz["cluster"]["addr"] == "127.0.0.1"  # nothing leaves the machine
        assert varz["jetstream"]["config"]["domain"] == "constellation"
        routes = monitor(node, "/routez")["routes"]
        assert routes and {route["ip"] for route in routes} == {"127.0.0.1"}
        assert {route["remote_name"] for route in routes} == {n.server_name for n in nats_cluster.nodes} - {
            node.server_name
        }
        assert monitor(node, "/jsz")["meta_cluster"]["cluster_size"] == 3
    for stream in (TELEMETRY, "CONSTELLATION_EVENTS", "CONSTELLATION_COMMANDS", f"KV_{KV_BUCKET}"):
        config, cluster = await stream_cluster(nats_cluster, stream)
        assert config.num_replicas == 3, stream
        assert cluster.leader in {node.server_name for node in nats_cluster.nodes}
        assert len(cluster.replicas) == 2 and all(peer.current for peer in cluster.replicas), stream
    assert nats_cluster.url == ",".join(node.url for node in nats_cluster.nodes)  # NATS_URL of the whole cluster


async def test_a_killed_leader_is_replaced_and_comes_back_on_its_own_port_and_store(
    nats_cluster: NatsCluster, cluster_emulator: MothershipEmulator
) -> None:
    leader = nats_cluster.stream_leader(TELEMETRY)
    port, store = leader.port, leader.store_dir
    leader.kill()
    assert not leader.running and store.is_dir()  # SIGKILL keeps the store for the restart
    successor = nats_cluster.stream_leader(TELEMETRY)  # elected by the two others (Raft: seconds)
    assert successor is not leader and successor.running
    leader.start()
    nats_cluster.wait_healthy()
    assert (leader.port, leader.store_dir) == (port, store)
    _, cluster = await stream_cluster(nats_cluster, TELEMETRY)
    peers = {cluster.leader, *(peer.name for peer in cluster.replicas)}
    assert peers == {node.server_name for node in nats_cluster.nodes}
    assert all(peer.current for peer in cluster.replicas)


def read_until(proc: subprocess.Popen[bytes], needle: str, timeout: float) -> str:
    """proc's stdout until it contains needle (bounded, raw reads)."""
    assert proc.stdout is not None
    text = ""
    deadline = time.monotonic() + timeout
    while needle not in text:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([proc.stdout], [], [], remaining)[0]:
            raise TimeoutError(f"no {needle!r} in {text!r}")
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            raise RuntimeError(f"exited early: {text!r}")
        text += chunk.decode()
    return text


def test_main_runs_a_cluster_whose_nodes_stdin_drives() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "alien_testing", "--dialect", "v0.1", "--cluster", "3"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert proc.stdin is not None
    try:
        text = read_until(proc, "Ctrl-C", timeout=30)
        nats_url = next(line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("NATS"))
        urls = nats_url.strip().split(",")
        assert len(urls) == 3 and all(url.startswith("nats://127.0.0.1:") for url in urls)
        node_lines = [line for line in text.splitlines() if line.strip().startswith("node ")]
        assert len(node_lines) == 3
        proc.stdin.write(b"kill 2\n")
        proc.stdin.flush()
        assert "down" in read_until(proc, "node 2 (", timeout=10)
        proc.stdin.write(b"start 2\nnode 9\n")
        proc.stdin.flush()
        answer = read_until(proc, "use kill N", timeout=20)
        assert "running" in answer
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.terminate()  # lets it stop its nats-servers; SIGKILL would orphan them
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
