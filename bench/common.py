"""Shared pieces of the benchmark harness: servers, processes, stream counts, statistics, results.

Every figure is a `Figure`: the values of its repetitions, summarised as median and min-max, with
an optional baseline measured in the same run and a target. `main.py` collects them and
`report.py` writes `bench/results/latest.json` and `latest.md`.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import yaml

from alien_ros.params_file import NODE_KEY
from alien_testing import MothershipEmulator, NatsServer

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PYTHON = sys.executable
TELEMETRY_STREAM = "CONSTELLATION_TELEMETRY"
EVENTS_STREAM = "CONSTELLATION_EVENTS"
# Load tests: the library's flood limits (200/s overall, 50/s per key by default) are off.
FLOOD_LIMITS_OFF = {"ALIEN_TELEMETRY_RATE_LIMIT_HZ": "0", "ALIEN_TELEMETRY_RATE_LIMIT_PER_KEY_HZ": "0"}


@dataclass
class Settings:
    """How much work each benchmark does: `full()` for the table, `smoke()` so the harness never rots."""

    smoke: bool
    repeats: int
    flood_count: int  # NavSatFix messages offered per flood repetition
    flood_rate: float  # offered msg/s (above the ceiling: the receiver is what limits)
    type_flood_count: int  # BatteryState / DiagnosticArray messages offered per flood repetition
    nats_count: int  # ROS-free throughput messages per repetition
    callers: int  # concurrent publish_telemetry callers of the second library figure
    rate_window_s: float  # seconds of NavSatFix at 1,000 msg/s per CPU-per-message repetition (10x at 100, 20x at 10)
    latency_s: float  # seconds at 100 Hz per repetition
    commands: int  # commands per kind per repetition
    nominal_s: float  # nominal load, split into `repeats` windows
    backlog: int  # messages queued during the outage
    outbox_count: int  # outbox put/ack messages per repetition (power: a twentieth)
    flood_commands: int  # hostile commands per command flood
    flood_markers: int  # events queued before each command flood, all of which must arrive
    fleet_entities: int = 1000  # the fleet benchmark's headline fleet (bench/fleet.py)
    fleet_per_process: int = 250  # entities per AlienFleet process
    fleet_warmup_s: float = 5.0
    fleet_steady_s: float = 20.0
    fleet_kill_s: float = 30.0
    fleet_search: tuple[int, ...] = (250, 350, 500, 750, 1500, 2000, 3000)  # sizes tried for the largest fleet
    fleet_budget_s: float = 600.0  # the search stops trying larger fleets after this long

    @classmethod
    def full(cls) -> Settings:
        return cls(False, 3, 60_000, 30_000, 20_000, 20_000, 10, 1.5, 10.0, 200, 60.0, 20_000, 20_000, 50_000, 200)

    @classmethod
    def smoke_run(cls) -> Settings:
        fleet = (20, 10, 1.0, 3.0, 6.0, (), 0.0)  # 20 entities, no search for the largest fleet
        return cls(True, 2, 300, 3_000, 200, 300, 10, 0.1, 1.0, 5, 3.0, 300, 400, 2_000, 20, *fleet)


@dataclass
class Figure:
    """One row of the table."""

    key: str
    name: str
    unit: str
    values: list[float]
    baseline: float | None = None  # median of the baseline figure, same run
    baseline_name: str = ""
    target: str = ""  # human-readable target
    met: bool | None = None  # None: no target
    higher_is_better: bool = True
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or not self.baseline or not self.values:
            return None
        return self.median / self.baseline

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "unit": self.unit,
            "values": [round(v, 4) for v in self.values],
            "median": round(self.median, 4),
            "min": round(min(self.values), 4) if self.values else None,
            "max": round(max(self.values), 4) if self.values else None,
            "baseline": None if self.baseline is None else round(self.baseline, 4),
            "baseline_name": self.baseline_name,
            "ratio": None if self.ratio is None else round(self.ratio, 4),
            "target": self.target,
            "met": self.met,
            "note": self.note,
            **({"extra": self.extra} if self.extra else {}),
        }


def at_least(figure: Figure, ratio: float | None = None, value: float | None = None) -> Figure:
    """Mark `figure` met when its ratio (or median) reaches the bound."""
    if ratio is not None:
        figure.target = f"ratio >= {ratio:g}"
        figure.met = figure.ratio is not None and figure.ratio >= ratio
    elif value is not None:
        figure.target = f">= {value:g} {figure.unit}"
        figure.met = figure.median >= value
    return figure


def at_most(figure: Figure, value: float | None = None, ratio: float | None = None) -> Figure:
    """Mark `figure` met when its median (or its ratio to the baseline) stays within the bound."""
    if ratio is not None:
        figure.target = f"ratio <= {ratio:g}"
        figure.met = figure.ratio is not None and figure.ratio <= ratio
    elif value is not None:
        figure.target = f"<= {value:g} {figure.unit}"
        figure.met = figure.median <= value
    figure.higher_is_better = False
    return figure


def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (0..100), nearest rank: a measured sample, never an interpolation."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def say(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- servers


@dataclass
class Servers:
    nats: NatsServer
    emulator: MothershipEmulator
    workdir: Path

    @property
    def api_key(self) -> str:
        return next(iter(self.emulator.api_keys))

    def client_env(self, **extra: str) -> dict[str, str]:
        """Environment of a child process: this run's servers, ROS isolation, nothing from the shell."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("ALIEN_") or k == "ALIEN_NATS_SERVER_BIN"}
        for name in ("MOTHERSHIP_URL", "NATS_URL", "API_BEARER_TOKEN", "ORG_NAME", "ENTITY_TYPE", "ENTITY_NAME"):
            env.pop(name, None)
        env.update(
            MOTHERSHIP_URL=self.emulator.url,
            NATS_URL=self.nats.url,
            ALIEN_API_KEY=self.api_key,
            PYTHONPATH=str(ROOT),
            **FLOOD_LIMITS_OFF,
        )
        env.update(extra)
        return env


@contextmanager
def servers(workdir: Path) -> Iterator[Servers]:
    """A nats-server and a v0.1 mothership emulator (limits retention: stored messages stay countable)."""
    server = NatsServer()
    server.start()
    emulator = MothershipEmulator(server.url, dialect="v0.1")
    try:
        emulator.start()
        yield Servers(server, emulator, workdir)
    finally:
        try:
            emulator.stop()
        except TimeoutError as exc:
            say(f"warning: {exc}")
        server.stop()


@contextmanager
def processing_paused(servers: Servers) -> Iterator[None]:
    """The emulator's consumers paused meanwhile (MothershipEmulator.pause_processing), and caught up after.

    The mothership's work on what it stores runs on its own machines, not on the robot's cores;
    here it would share the 2 cores with the bridge it is measured against. The streams store,
    and count, all the same.
    """
    servers.emulator.pause_processing(True)
    try:
        yield
    finally:
        servers.emulator.pause_processing(False)
        asyncio.run(caught_up(servers.nats.url))


async def caught_up(nats_url: str, timeout: float = 300.0) -> None:
    """Until the emulator's telemetry and event consumers have nothing pending (bounded poll)."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        deadline = time.monotonic() + timeout
        for stream, consumer in ((TELEMETRY_STREAM, "telemetry-processor"), (EVENTS_STREAM, "event-processor")):
            while True:
                info = await js.consumer_info(stream, consumer)
                if not info.num_pending and not info.num_ack_pending:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{consumer}: {info.num_pending} pending after {timeout}s")
                await asyncio.sleep(0.2)  # bounded poll of the consumer's counters
    finally:
        await nc.close()


# --------------------------------------------------------------------------- stream counts


async def stream_last_seq(nats_url: str, stream: str = TELEMETRY_STREAM) -> int:
    nc = await nats.connect(nats_url)
    try:
        info = await nc.jetstream().stream_info(stream)
        return int(info.state.last_seq)
    finally:
        await nc.close()


async def stored_since(
    nats_url: str,
    after_seq: int,
    settle_s: float = 1.0,
    timeout: float = 120.0,
    stream: str = TELEMETRY_STREAM,
    count_only: bool = False,
) -> dict[str, Any]:
    """Messages stored in `stream` after `after_seq`, once the count stops growing, with their server time span.

    Rate = (n - 1) / (time of the last - time of the first), from the server's own timestamps;
    `count_only`: the count alone (a work-queue stream's messages are gone once consumed).
    """
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        deadline = time.monotonic() + timeout
        last, changed = -1, time.monotonic()
        while time.monotonic() < deadline:
            seq = int((await js.stream_info(stream)).state.last_seq)
            if seq != last:
                last, changed = seq, time.monotonic()
            elif time.monotonic() - changed >= settle_s:
                break
            await asyncio.sleep(0.05)  # bounded poll of the stream's counter
        count = last - after_seq
        result: dict[str, Any] = {"count": count, "rate": 0.0, "span_s": 0.0}
        if count >= 2 and not count_only:
            first = await js.get_msg(stream, after_seq + 1)
            final = await js.get_msg(stream, last)
            assert first.time is not None and final.time is not None
            span = (final.time - first.time).total_seconds()
            result.update(span_s=span, rate=(count - 1) / span if span > 0 else 0.0)
        return result
    finally:
        await nc.close()


# --------------------------------------------------------------------------- processes


def run_json(args: list[str], env: dict[str, str], timeout: float, cwd: Path | None = None) -> dict[str, Any]:
    """Run a helper script that prints one JSON line last; its stderr is shown on failure."""
    proc = subprocess.run(
        [PYTHON, *args], check=False, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(args[:2])} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return dict(json.loads(lines[-1]))


def bridge_params(servers: Servers, name: str, **values: Any) -> Path:
    """config/bridge.yaml with this run's servers and `values` filled in."""
    params = yaml.safe_load((ROOT / "config" / "bridge.yaml").read_text())
    node = params[NODE_KEY]["ros__parameters"]
    node.update(
        mothership_url=servers.emulator.url,
        nats_url=servers.nats.url,
        identity_file=str(servers.workdir / f"{name}.identity.json"),
        data_dir=str(servers.workdir / f"{name}.data"),
        entity_type="rover",
        entity_name=f"bench-{name}",
        status_period_s=0.2,
        shutdown_timeout_s=3.0,
    )
    node.update(values)
    path = servers.workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def bridge_command() -> list[str]:
    """`python -m alien_ros.main`, or BENCH_BRIDGE_SCRIPT (e.g. a profiling wrapper) when set."""
    script = os.environ.get("BENCH_BRIDGE_SCRIPT")
    return [PYTHON, script] if script else [PYTHON, "-m", "alien_ros.main"]


@contextmanager
def bridge_process(servers: Servers, params: Path, **env: str) -> Iterator[subprocess.Popen[str]]:
    """The bridge as integrators run it (`python -m alien_ros.main`), stopped with SIGINT."""
    before = len(servers.emulator.events())
    log = open(servers.workdir / f"{params.stem}.log", "a")
    proc = subprocess.Popen(
        [*bridge_command(), "--ros-args", "--params-file", str(params)],
        env=servers.client_env(**env),
        cwd=servers.workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        servers.emulator.wait_for(  # the bridge registered and connected: its bootsequence is stored
            lambda: (
                any(m.json().get("event_type") == "bootsequence" for m in servers.emulator.events()[before:])
                or proc.poll() is not None
            ),
            30,
            "the bridge's bootsequence",
        )
        if proc.poll() is not None:
            raise RuntimeError(f"the bridge exited ({proc.returncode}); see {log.name}")
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(2)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


Benchmark = Callable[[Servers, Settings, dict[str, Figure]], list[Figure]]
