"""Every benchmark on one machine in one run: `bench/run` (full) or `bench/run --smoke`.

Writes bench/results/latest.json and latest.md (full run) and, in a full run, the table of
docs/performance.md between the bench markers. The smoke run (tiny counts, CI) writes to
bench/results/smoke/ (or --out) and never touches docs/performance.md or the committed results.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import backlog
import batch
import commands
import cpu
import encryption
import firmware
import fleet
import flood
import latency
import metrics_cost
import nominal
import outbox
import throughput
from common import BENCH, ROOT, Benchmark, Figure, Settings, caught_up, say, servers
from report import machine, write_results

BENCHMARKS: dict[str, Benchmark] = {
    "throughput": throughput.run,
    "latency": latency.run,
    "commands": commands.run,
    "nominal": nominal.run,
    "cpu": cpu.run,
    "backlog": backlog.run,
    "outbox": outbox.run,
    "flood": flood.run,
    "encryption": encryption.run,
    "firmware": firmware.run,
    "batch": batch.run,
    "metrics_cost": metrics_cost.run,
    "fleet": fleet.run,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="tiny counts: checks the harness, not the machine")
    parser.add_argument("--only", action="append", choices=sorted(BENCHMARKS), help="run only these (repeatable)")
    parser.add_argument(
        "--out", type=Path, help="results directory (default: bench/results; smoke: bench/results/smoke)"
    )
    args = parser.parse_args(argv)
    settings = Settings.smoke_run() if args.smoke else Settings.full()
    out = args.out or (BENCH / "results" / ("smoke" if args.smoke else ""))
    info = machine()
    began = time.monotonic()
    figures: dict[str, Figure] = {}
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="alien-bench-") as workdir, servers(Path(workdir)) as running:
        for name, bench in BENCHMARKS.items():
            if args.only and name not in args.only:
                continue
            say(f"{name} ...")
            started = time.monotonic()
            try:
                for figure in bench(running, settings, figures):
                    figures[figure.key] = figure
            except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the others
                failed.append(name)
                say(f"{name} FAILED: {exc!r}")
            # What a benchmark left for the emulator to handle (batch: 120,000 readings) must not
            # delay the next one's bridges: their bootsequences wait behind it otherwise.
            try:
                asyncio.run(caught_up(running.nats.url))
            except Exception as exc:  # noqa: BLE001 - the next benchmark says what is broken
                say(f"warning: the emulator did not catch up after {name}: {exc!r}")
            say(f"{name} took {time.monotonic() - started:.0f}s")
    info["wall_s"] = round(time.monotonic() - began, 1)
    info["mode"] = "smoke" if args.smoke else "full"
    page = None if args.smoke or args.only or failed else ROOT / "docs" / "performance.md"
    print(write_results(list(figures.values()), info, out, page))
    say(f"wrote {out / 'latest.json'} and latest.md in {info['wall_s']}s" + (f"; FAILED: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
