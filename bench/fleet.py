"""A fleet at the bridge's default rates, over several AlienFleet processes, against a 3-node NATS cluster.

Each measurement starts its own 3-node cluster (loopback, JetStream, streams and KV with three
replicas) and a v0.1 emulator on it for registration (without its Python consumers: a reader of
the benchmark's own reads the streams, see fleet_reader.py), registers the organization once and
then N entities spread over processes of `fleet_per_process` entities each (fleet_child.py, the
library's AlienFleet with the shipped defaults). The readings' ids and enqueue times come from
the children; what was stored, and when, from the streams themselves.

Phases: `steady` (everything up) and `kill` (the telemetry stream's leader node SIGKILLed a
quarter into the phase and started again at 60 %). Per phase: readings lost and stored twice,
publish -> stored latency p50/p99, messages per second into the streams (telemetry, events and
the KV bucket), CPU of the client processes and of the nats-servers. Then the fleet size is
raised (or lowered) through `fleet_search` to the largest one whose steady phase keeps p99 <= 1 s
with nothing lost or doubled.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psutil
from common import BENCH, PYTHON, ROOT, Figure, Servers, Settings, at_most, percentile, say
from fleet_reader import LiveReader

from alien_testing import DEFAULT_API_KEY, MothershipEmulator
from alien_testing.nats_cluster import NatsCluster

STREAMS = {"CONSTELLATION_TELEMETRY": "constellation.telemetry.>", "CONSTELLATION_EVENTS": "constellation.events.>"}
P99_BOUND_MS = 1000.0
MIB = 1024 * 1024


@dataclass
class Phase:
    name: str
    began: float  # wall clock
    ended: float
    seqs_before: dict[str, int]
    seqs_after: dict[str, int]
    client_cpu_s: float
    server_cpu_s: float


@dataclass
class Children:
    procs: list[subprocess.Popen[str]]
    ids_files: list[Path]
    logs: list[IO[str]]

    def cpu_s(self) -> float:
        return sum(_cpu(proc.pid) for proc in self.procs)

    def lines(self, event: str, timeout: float) -> list[dict[str, Any]]:
        """The next JSON line of each child, which must be `event` (bounded by `timeout`)."""
        out = []
        deadline = time.monotonic() + timeout
        for proc, log in zip(self.procs, self.logs, strict=True):
            assert proc.stdout is not None
            while True:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no {event!r} from every fleet process within {timeout:.0f}s")
                line = proc.stdout.readline()
                if not line:
                    log.flush()
                    tail = Path(log.name).read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"a fleet process exited ({proc.wait()}) before {event!r}:\n{tail}")
                if line.startswith("{"):
                    item = json.loads(line)
                    if item.get("event") == event:
                        out.append(item)
                        break
        return out


def _cpu(pid: int) -> float:
    try:
        times = psutil.Process(pid).cpu_times()
        return float(times.user + times.system)
    except psutil.NoSuchProcess:
        return 0.0


def _create_org(emulator: MothershipEmulator) -> str:
    body = json.dumps({"name": "Bench Fleet", "org_type": "commercial"}).encode()
    request = urllib.request.Request(
        f"{emulator.url}/api/v1/organizations",
        data=body,
        headers={"X-API-Key": DEFAULT_API_KEY, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.load(response)["org_id"])


def _spawn(
    count: int, per_process: int, cluster: NatsCluster, emulator: MothershipEmulator, org_id: str, work: Path
) -> Children:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIEN_") or k == "ALIEN_NATS_SERVER_BIN"}
    for name in ("MOTHERSHIP_URL", "NATS_URL", "API_BEARER_TOKEN", "ORG_NAME", "ENTITY_TYPE", "ENTITY_NAME"):
        env.pop(name, None)
    procs, files, logs = [], [], []
    for index in range(math.ceil(count / per_process)):
        entities = min(per_process, count - index * per_process)
        data = work / f"fleet-{index}"
        child_env = {
            **env,
            "MOTHERSHIP_URL": emulator.url,
            "NATS_URL": cluster.url,
            "ALIEN_API_KEY": DEFAULT_API_KEY,
            "ALIEN_ORG_ID": org_id,
            "ALIEN_DATA_DIR": str(data),
            "ALIEN_CONFIG_FILE": str(data / "identity.json"),
            "ALIEN_COMMAND_INTAKE": "core",  # what real servers allow (their command-processor owns the queue)
            "ALIEN_STATS_LOG_INTERVAL_S": "0",
            "PYTHONPATH": str(ROOT),
        }
        files.append(work / f"fleet-{index}.ids")
        logs.append(open(work / f"fleet-{index}.log", "w"))  # closed in measure()
        args = ["--entities", str(entities), "--prefix", f"bench-{index}", "--ids-out", str(files[-1])]
        procs.append(
            subprocess.Popen(
                [PYTHON, str(BENCH / "fleet_child.py"), *args],
                env=child_env,
                cwd=work,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=logs[-1],
                text=True,
            )
        )
    return Children(procs, files, logs)


def _phase(
    name: str, seconds: float, reader: LiveReader, children: Children, cluster: NatsCluster, kill: bool
) -> Phase:
    servers = [node.pid for node in cluster.nodes if node.pid is not None]
    seqs_before, client_cpu, server_cpu = reader.last_seqs(), children.cpu_s(), sum(_cpu(pid) for pid in servers)
    began = time.time()
    if kill:
        time.sleep(0.25 * seconds)  # the phase's schedule
        victim = cluster.stream_leader("CONSTELLATION_TELEMETRY")
        say(f"  killing {victim.server_name} (leader of CONSTELLATION_TELEMETRY)")
        victim.kill()
        time.sleep(0.35 * seconds)  # the node stays down
        victim.start()
        servers = [node.pid for node in cluster.nodes if node.pid is not None]
        time.sleep(max(0.0, began + seconds - time.time()))
    else:
        time.sleep(seconds)  # the phase's length
    ended = time.time()
    return Phase(
        name,
        began,
        ended,
        seqs_before,
        reader.last_seqs(),
        children.cpu_s() - client_cpu,
        sum(_cpu(pid) for pid in servers) - server_cpu,
    )


def _sent(children: Children) -> dict[str, float]:
    sent: dict[str, float] = {}
    for path in children.ids_files:
        for line in path.read_text().splitlines():
            msg_id, at = line.split()
            sent[msg_id] = float(at)
    return sent


def _phase_result(phase: Phase, sent: dict[str, float], reader: LiveReader, entities: int) -> dict[str, float]:
    logs = reader.logs.values()
    window = {msg_id: at for msg_id, at in sent.items() if phase.began <= at < phase.ended}
    latencies, lost, doubled, gaps = [], 0, 0, []
    for msg_id, at in window.items():
        log = next((log for log in logs if msg_id in log.stored_at), None)
        if log is None:
            lost += 1
            continue
        latencies.append((log.stored_at[msg_id] - at) * 1000)
        if log.copies[msg_id] > 1:
            doubled += 1
            gaps.append(log.again_at.get(msg_id, log.stored_at[msg_id]) - log.stored_at[msg_id])
    seconds = phase.ended - phase.began
    stored = sum(phase.seqs_after[s] - phase.seqs_before.get(s, 0) for s in phase.seqs_after)
    client_cores = phase.client_cpu_s / seconds
    return {
        "seconds": seconds,
        "readings": len(window),
        "lost": lost,
        "doubled": doubled,
        # a second copy needs a retry after the stream's duplicate window (30 s for telemetry)
        "doubled_min_gap_s": min(gaps, default=float("nan")),
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies, default=float("nan")),
        "msg_rate": stored / seconds,
        "client_cores": client_cores,
        "server_cores": phase.server_cpu_s / seconds,
        "entities_per_core": entities / client_cores if client_cores else float("nan"),
    }


@contextmanager
def _workdir() -> Iterator[Path]:
    """A temporary directory; kept (under $BENCH_FLEET_KEEP) when set, to read the processes' logs."""
    keep = os.environ.get("BENCH_FLEET_KEEP")
    path = Path(tempfile.mkdtemp(prefix="alien-fleet-", dir=keep))
    try:
        yield path
    finally:
        if keep:
            say(f"  kept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def measure(entities: int, settings: Settings, kill: bool) -> dict[str, Any]:
    """One fleet of `entities` on a fresh cluster: registration, then the steady (and kill) phase."""
    say(f"fleet of {entities}: cluster, emulator, {math.ceil(entities / settings.fleet_per_process)} processes")
    with _workdir() as work, NatsCluster(3, work / "cluster") as cluster:
        emulator = MothershipEmulator(cluster.url, dialect="v0.1", replicas=3, consumers=False)
        emulator.start()
        reader = LiveReader(cluster.urls, STREAMS, ack={"CONSTELLATION_EVENTS"})
        children: Children | None = None
        try:
            cluster.wait_healthy()
            org_id = _create_org(emulator)
            reader.start()
            began = time.monotonic()
            children = _spawn(entities, settings.fleet_per_process, cluster, emulator, org_id, work)
            ready = children.lines("ready", timeout=60 + entities * 0.5)
            registration_s = time.monotonic() - began
            say(f"  registered in {registration_s:.1f}s; warming up")
            time.sleep(settings.fleet_warmup_s)  # every entity's first readings out before measuring
            phases = [_phase("steady", settings.fleet_steady_s, reader, children, cluster, kill=False)]
            if kill:
                phases.append(_phase("kill", settings.fleet_kill_s, reader, children, cluster, kill=True))
            for proc in children.procs:
                assert proc.stdin is not None
                proc.stdin.write("stop\n")
                proc.stdin.flush()
            done = children.lines("done", timeout=180)
            deadline = time.monotonic() + 60
            while not reader.caught_up() and time.monotonic() < deadline:
                time.sleep(0.2)  # bounded wait for the reader to read the last messages
            sent = _sent(children)
        finally:
            reader.stop()
            if children is not None:
                for proc in children.procs:
                    if proc.poll() is None:
                        proc.terminate()
                    proc.wait(30)
                for log in children.logs:
                    log.close()
            emulator.stop()
    result = {
        "entities": entities,
        "processes": len(ready),
        "registration_s": registration_s,
        "rss_per_entity_kib": (sum(r["rss"] - r["rss_base"] for r in ready) / entities) / 1024,
        "rss_process_mib": statistics.mean(r["rss"] for r in ready) / MIB,
        "dropped": sum(d["dropped"] for d in done),
        "rejected": sum(d["rejected"] for d in done),
        "flushed": all(d["flushed"] for d in done),
        "phases": {p.name: _phase_result(p, sent, reader, entities) for p in phases},
    }
    steady = result["phases"]["steady"]
    say(
        f"  steady: p50 {steady['p50_ms']:.0f} ms, p99 {steady['p99_ms']:.0f} ms, lost {steady['lost']}, "
        f"doubled {steady['doubled']}, {steady['msg_rate']:.0f} msg/s, clients {steady['client_cores']:.2f} "
        f"cores, nats-servers {steady['server_cores']:.2f} cores"
    )
    return result


def carried(result: dict[str, Any]) -> bool:
    steady = result["phases"]["steady"]
    return bool(
        steady["p99_ms"] <= P99_BOUND_MS and steady["lost"] == 0 and steady["doubled"] == 0 and result["flushed"]
    )


def largest_fleet(first: dict[str, Any], settings: Settings) -> tuple[dict[str, Any] | None, str]:
    """Up from the headline fleet while it is carried, or down until one is; and what bounded it."""
    results = {first["entities"]: first}
    began = time.monotonic()
    up = carried(first)
    sizes = [s for s in settings.fleet_search if (s > first["entities"] if up else s < first["entities"])]
    for size in sizes if up else sorted(sizes, reverse=True):
        if time.monotonic() - began > settings.fleet_budget_s:
            say(f"fleet search stopped at its time budget ({settings.fleet_budget_s:.0f}s)")
            break
        results[size] = measure(size, settings, kill=False)
        if carried(results[size]) != up:
            break
    ok = [n for n, r in results.items() if carried(r)]
    largest = max(ok, default=0)
    over = min((n for n in results if n > largest), default=None)
    if over is None:
        return results.get(largest), f"every size tried was carried (up to {largest}); the search ended"
    steady = results[over]["phases"]["steady"]
    return results.get(largest), (
        f"{over} entities: p99 {steady['p99_ms']:.0f} ms, {steady['lost']} lost, {steady['doubled']} stored twice; "
        f"client processes {steady['client_cores']:.2f} cores, nats-servers {steady['server_cores']:.2f} cores "
        f"of {os.cpu_count()} (load average {os.getloadavg()[0]:.1f})"
    )


def run(servers: Servers, settings: Settings, done: dict[str, Figure]) -> list[Figure]:
    n = settings.fleet_entities
    first = measure(n, settings, kill=True)
    best, bound = largest_fleet(first, settings)
    steady, killed = first["phases"]["steady"], first["phases"]["kill"]
    fleet, during = f"fleet of {n}", f"fleet of {n}, stream leader killed"
    rows: list[tuple[str, str, str, float, float | None]] = [  # key, name, unit, value, at most
        ("fleet_registration", f"{fleet}: registration of the whole fleet", "s", first["registration_s"], None),
        ("fleet_client_cores", f"{fleet}: CPU of its client processes", "cores", steady["client_cores"], None),
        ("fleet_server_cores", f"{fleet}: CPU of the three nats-servers", "cores", steady["server_cores"], None),
        ("fleet_rss_per_entity", f"{fleet}: resident memory per entity", "KiB", first["rss_per_entity_kib"], None),
        ("fleet_msg_rate", f"{fleet}: messages into the streams", "msg/s", steady["msg_rate"], None),
        ("fleet_p50", f"{fleet}: publish -> stored, p50", "ms", steady["p50_ms"], None),
        ("fleet_p99", f"{fleet}: publish -> stored, p99", "ms", steady["p99_ms"], P99_BOUND_MS),
        ("fleet_lost", f"{fleet}: readings lost", "msg", steady["lost"], 0),
        ("fleet_doubled", f"{fleet}: readings stored twice", "msg", steady["doubled"], 0),
        ("fleet_kill_msg_rate", f"{during}: messages into the streams", "msg/s", killed["msg_rate"], None),
        ("fleet_kill_p50", f"{during}: publish -> stored, p50", "ms", killed["p50_ms"], None),
        ("fleet_kill_p99", f"{during}: publish -> stored, p99", "ms", killed["p99_ms"], None),
        ("fleet_kill_lost", f"{during}: readings lost", "msg", killed["lost"], 0),
        ("fleet_kill_doubled", f"{during}: readings stored twice", "msg", killed["doubled"], 0),
        ("fleet_largest", "largest fleet carried with p99 <= 1 s and nothing lost", "entities",
         best["entities"] if best else 0, None),
        ("fleet_entities_per_core", "largest fleet carried: entities per core of its client processes", "entities",
         best["phases"]["steady"]["entities_per_core"] if best else 0.0, None),
    ]  # fmt: skip
    figures = []
    for key, name, unit, value, bound_at_most in rows:
        figure = Figure(key, name, unit, [float(value)])
        figures.append(figure if bound_at_most is None else at_most(figure, bound_at_most))
    by_key = {figure.key: figure for figure in figures}
    by_key["fleet_largest"].note = f"bounded by: {bound}"
    if steady["doubled"] or killed["doubled"]:
        gap = min(g for g in (steady["doubled_min_gap_s"], killed["doubled_min_gap_s"]) if not math.isnan(g))
        by_key["fleet_doubled"].note = (
            f"a second copy was stored at least {gap:.0f}s after the first: retried after the stream's "
            "duplicate window (30 s), with the same id (docs/delivery.md)"
        )
    by_key["fleet_registration"].extra = {"result": first, "largest": best}
    return figures
