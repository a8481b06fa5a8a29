"""Soak: publish telemetry for a long time while nats-server is SIGKILLed and restarted.

Starts its own nats-server and mothership emulator (alien_testing, everything on 127.0.0.1, in a
temporary directory), runs one AlienClient with the durable outbox publishing telemetry at
``--rate`` messages per second, and every ``--fault-every`` seconds kills nats-server with SIGKILL,
waits ``--outage`` seconds and starts it again on the same port and JetStream store. At the end it
flushes, compares what was sent with what the server's telemetry consumer received, and prints
one summary line and one JSON dict:

    sent           messages accepted by publish_telemetry
    in_stream      distinct sent ids the server's telemetry consumer received from the stream
    duplicates     extra stream sequences for an id (the same id stored twice)
    unexpected     ids in the stream that were never sent
    dropped        outbox drops of every kind (client.stats().dropped)
    parked         messages the server refused for good
    duplicate_acks replays the server's Nats-Msg-Id window recognised (sent twice, stored once)
    reconnects     NATS reconnects of the client
    faults         nats-server kills done
    max_outbox_depth  most messages queued or in flight (not yet acknowledged) at any sample
    duration_s     wall time of the publishing phase
    flush_s        time the final flush took
    rss_mib        resident memory of this process at the end

The exit status is 0 only if in_stream == sent, duplicates == 0 and dropped == 0.

The emulator speaks dialect v0.1 by default: its telemetry stream keeps messages (limits
retention), so a restarted nats-server rebuilds its duplicate window from them and a replay after
the crash is still recognised. With ``--dialect v0.0.1`` (interest retention: consumed messages are
deleted) a message consumed just before a kill and replayed after it is stored twice with the
same id, which docs/delivery.md states as at-least-once; expect an occasional duplicate there.

Usage::

    python bench/soak.py                       # 10 minutes, 200 msg/s, a kill every 30 s
    python bench/soak.py --minutes 0.5         # a ~35 s smoke run (no fault: shorter than 30 s)
    python bench/soak.py --minutes 2 --fault-every 10 --outage 3 --verbose
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Nothing may leave this machine, as in every test run (docs/development.md); the soak itself uses no ROS.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"

from alien import AlienClient, AlienConfig
from alien_testing import MothershipEmulator, NatsServer

MIB = 1024 * 1024
_SAMPLE_S = 0.1  # how often the outbox depth is sampled
_DESIGN_ENV = ("MOTHERSHIP_URL", "NATS_URL", "API_BEARER_TOKEN", "ORG_NAME", "ORG_TYPE", "ENTITY_TYPE", "ENTITY_NAME")


@dataclass
class Run:
    """What the soak observed while it ran."""

    sent: list[str] = field(default_factory=list)
    faults: int = 0
    max_depth: int = 0
    events: list[str] = field(default_factory=list)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=10.0, help="publishing time (default 10)")
    parser.add_argument("--rate", type=float, default=200.0, help="telemetry messages per second (default 200)")
    parser.add_argument(
        "--fault-every", type=float, default=30.0, help="seconds between nats-server SIGKILLs (default 30)"
    )
    parser.add_argument("--outage", type=float, default=1.0, help="seconds nats-server stays down (default 1)")
    parser.add_argument("--dialect", choices=("v0.1", "v0.0.1"), default="v0.1", help="mothership dialect (v0.1)")
    parser.add_argument("--flush-timeout", type=float, default=120.0, help="seconds allowed for the final flush")
    parser.add_argument("--verbose", action="store_true", help="alien's own log at INFO (default: WARNING)")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.rate <= 0 or args.fault_every <= 0 or args.outage < 0:
        parser.error("--minutes, --rate and --fault-every must be positive, --outage not negative")
    return args


def rss_bytes() -> int:
    """Resident set size now (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def stream_ids(emulator: MothershipEmulator) -> Counter[str]:
    """Nats-Msg-Id of each stored telemetry message, once per stream sequence (redeliveries collapse)."""
    seqs = {(m.stream_seq, m.headers.get("Nats-Msg-Id", "")) for m in emulator.telemetry()}
    return Counter(msg_id for _, msg_id in seqs)


def say(start: float, text: str) -> None:
    print(f"[{time.monotonic() - start:7.1f}s] {text}", file=sys.stderr, flush=True)


async def publish(client: AlienClient, run: Run, rate: float, seconds: float) -> None:
    """Telemetry at `rate` per second for `seconds`, on an absolute schedule (a late loop catches up)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    total = int(rate * seconds)
    while len(run.sent) < total:
        n = len(run.sent)
        run.sent.append(await client.publish_telemetry({"n": n, "battery": 100 - n % 100, "t": time.time()}))
        await asyncio.sleep(max(0.0, start + (n + 1) / rate - loop.time()))  # paces the load


async def sample_depth(client: AlienClient, run: Run) -> None:
    while True:
        stats = client.stats()
        run.max_depth = max(run.max_depth, stats.depth + stats.in_flight)
        await asyncio.sleep(_SAMPLE_S)  # sampling period, not synchronisation


async def inject_faults(server: NatsServer, client: AlienClient, run: Run, args: argparse.Namespace) -> None:
    """SIGKILL nats-server every `fault_every` s (the schedule is the point: sleeps pace it)."""
    loop = asyncio.get_running_loop()
    began, publish_s = loop.time(), args.minutes * 60
    start = time.monotonic()
    while True:
        due = began + (run.faults + 1) * args.fault_every
        if due >= began + publish_s:
            return
        await asyncio.sleep(due - loop.time())
        server.kill()
        run.faults += 1
        await asyncio.sleep(args.outage)  # the outage
        depth = client.stats().depth
        await asyncio.to_thread(server.restart)
        say(start, f"fault #{run.faults}: nats-server killed, back after {args.outage:.1f}s ({depth} queued by then)")


async def soak(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    start = time.monotonic()
    server = NatsServer()
    server.start()
    emulator = MothershipEmulator(server.url, dialect=args.dialect)
    emulator.start()
    run = Run()
    try:
        config = AlienConfig(
            _env_file=None,  # no .env from the current directory
            mothership_url=emulator.url,
            nats_url=server.url,
            config_file=str(workdir / "identity.json"),
            data_dir=workdir / "data",
            entity_name="soak",
            telemetry_rate_limit_hz=0,  # a load test: flood protection (default 200/s, 50/s per key) off
            telemetry_rate_limit_per_key_hz=0,
            api_key=next(iter(emulator.api_keys)) if args.dialect == "v0.1" else None,
        )
        client = AlienClient(config)
        await client.initialize()
        say(
            start,
            f"publishing {args.rate:g} msg/s for {args.minutes:g} min, a SIGKILL every {args.fault_every:g}s "
            f"(dialect {args.dialect})",
        )
        if args.fault_every >= args.minutes * 60:
            say(start, "note: the run is not longer than --fault-every, so no fault will be injected")
        sampler = asyncio.create_task(sample_depth(client, run))
        faults = asyncio.create_task(inject_faults(server, client, run, args))
        began = time.monotonic()
        try:
            await publish(client, run, args.rate, args.minutes * 60)
            duration = time.monotonic() - began
            await faults
            if not server.running:  # killed near the end: bring it back for the flush
                await asyncio.to_thread(server.restart)
            say(start, f"published {len(run.sent)}; flushing {client.stats().depth} queued")
            flush_began = time.monotonic()
            flushed = await client.flush(args.flush_timeout)
            flush_s = time.monotonic() - flush_began
        finally:
            faults.cancel()
            sampler.cancel()
            await asyncio.gather(faults, sampler, return_exceptions=True)
        sent = set(run.sent)
        try:
            await emulator.wait_for_async(
                lambda: len(emulator.telemetry()) >= len(sent) and sent <= set(stream_ids(emulator)), 30, "every id"
            )
        except TimeoutError:
            say(start, "not every sent id reached the server's consumer within 30 s")
        stats = client.stats()
        reconnects = client.link.reconnects
        await client.close()
    finally:
        try:
            emulator.stop()
        except TimeoutError as exc:  # the test emulator's own shutdown; what it recorded is kept
            say(start, f"warning: {exc}")
        server.stop()
    ids = stream_ids(emulator)
    return {
        "sent": len(run.sent),
        "in_stream": len(sent & set(ids)),
        "duplicates": sum(count - 1 for count in ids.values()),
        "unexpected": len(set(ids) - sent),
        "dropped": sum(stats.dropped.values()),
        "dropped_by_reason": stats.dropped,
        "parked": stats.parked,
        "duplicate_acks": stats.duplicates,
        "reconnects": reconnects,
        "faults": run.faults,
        "max_outbox_depth": run.max_depth,
        "flushed": flushed,
        "duration_s": round(duration, 1),
        "flush_s": round(flush_s, 2),
        "rate_achieved": round(len(run.sent) / duration, 1),
        "rss_mib": round(rss_bytes() / MIB, 1),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for name in list(os.environ):  # a developer's shell must not configure the client under test
        if (name.startswith("ALIEN_") and name != "ALIEN_NATS_SERVER_BIN") or name in _DESIGN_ENV:
            del os.environ[name]
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    with tempfile.TemporaryDirectory(prefix="alien-soak-") as workdir:
        result = asyncio.run(soak(args, Path(workdir)))
    ok = result["in_stream"] == result["sent"] and result["duplicates"] == 0 and result["dropped"] == 0
    print(
        f"soak {'PASS' if ok else 'FAIL'}: {result['sent']} sent, {result['in_stream']} in stream, "
        f"{result['duplicates']} duplicates, {result['dropped']} dropped, {result['parked']} parked, "
        f"{result['reconnects']} reconnects over {result['faults']} faults, "
        f"max outbox depth {result['max_outbox_depth']}, {result['duration_s']}s"
    )
    print(json.dumps(result, sort_keys=True))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
