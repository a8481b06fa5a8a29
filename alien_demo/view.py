"""What the demo shows: a live terminal view (rich), or one plain line per milestone (`--no-ui`).

Then the summary: a table and one JSON line (`DEMO_SUMMARY {...}`) for CI and tests.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from alien_demo.state import PHASES, Story

SUMMARY_PREFIX = "DEMO_SUMMARY "
_LEVEL_STYLE = {"OK": "green", "WARN": "yellow", "ERROR": "red"}


def run_with_view(demo: Any) -> dict[str, Any]:
    story: Story = demo.story
    console = Console()
    summary: dict[str, Any]
    if demo.args.no_ui:
        story.on_milestone = lambda line: print(line, flush=True)
        summary = demo.run()
    else:
        with Live(get_renderable=lambda: render(story), console=console, refresh_per_second=4):
            summary = demo.run()
    print_summary(summary, console if not demo.args.no_ui else None)
    return summary


def render(story: Story) -> Group:
    digest = story.digest()
    phases = Text("  ").join(Text(name, style="bold reverse" if name == story.current else "dim") for name in PHASES)
    header = Text.assemble(
        (f"alien demo  t={story.elapsed():5.1f}s  story {story.duration_s:g}s  dialect {story.dialect}   ", "bold"),
        phases,
    )

    received = Table(title="the mothership received", show_header=False, expand=True)
    position = digest.last_position
    received.add_row("positions", f"{digest.positions}")
    received.add_row(
        "last position", "-" if position is None else f"{position[0]:.6f}, {position[1]:.6f}, {position[2]:.0f} m"
    )
    battery = "-" if digest.battery_last is None else f"{digest.battery_last:.0f}% (first {digest.battery_first:.0f}%)"
    received.add_row("battery", battery)
    level = digest.health_level or "-"
    received.add_row("diagnostics", Text(level, style=_LEVEL_STYLE.get(level, "")))
    received.add_row("events", ", ".join(f"{k} {v}" for k, v in sorted(digest.event_counts.items())) or "-")

    outbox = Table(title="the bridge's outbox (/diagnostics)", show_header=False, expand=True)
    status = story.bridge.latest if story.bridge is not None else None
    peak = story.bridge.peak_depth if story.bridge is not None else 0
    if status is None:
        outbox.add_row("state", "waiting for the bridge")
    else:
        outbox.add_row("state", status.state)
        outbox.add_row("queued", Text(f"{status.depth}", style="yellow" if status.depth else "green"))
        outbox.add_row("peak queued", f"{peak}")
        outbox.add_row("enqueued / published", f"{status.enqueued} / {status.published}")
        outbox.add_row("dropped", f"{status.dropped}")
        outbox.add_row("reconnects", status.values.get("reconnects", "0"))
        outbox.add_row("metrics", story.metrics_url or "-")

    tables = Table.grid(expand=True)
    tables.add_column(ratio=3)
    tables.add_column(ratio=2)
    tables.add_row(received, outbox)
    # Text, not markup: "[flying]" and JSON lists are content, not rich style tags
    events = Panel(Text("\n".join(digest.recent_events) or "-"), title="recent events at the mothership")
    milestones = Panel(Text("\n".join(story.milestones[-7:])), title="story")
    return Group(header, tables, events, milestones)


def print_summary(summary: dict[str, Any], console: Console | None) -> None:
    rows = [
        ("positions received", summary["positions"]),
        ("battery first / last", f"{summary['battery_first']} / {summary['battery_last']} %"),
        ("diagnostics WARN seen", summary["warn_seen"]),
        ("command ack / progress / result", _command(summary["command"])),
        ("outage", _outage(summary["outage"])),
        (
            "enqueued / published / received / dropped",
            f"{summary['enqueued']} / {summary['published']} / {summary['received']} / {summary['dropped']}",
        ),
        ("result", "every check holds" if summary["ok"] else "FAILED: " + ", ".join(summary["failed"])),
    ]
    if console is not None:
        table = Table(title="demo summary", show_header=False)
        for name, value in rows:
            table.add_row(name, str(value))
        console.print(table)
    else:
        for name, value in rows:
            print(f"{name:42} {value}")
    if summary.get("failure"):
        print(f"failure: {summary['failure']}", file=sys.stderr)
    print(SUMMARY_PREFIX + json.dumps(summary, sort_keys=True), flush=True)


def _command(command: dict[str, Any]) -> str:
    return f"{command['received']} / {command['progress']} / {command['result']} ({command['status']})"


def _outage(outage: dict[str, Any]) -> str:
    return (
        f"{outage['seconds']}s, {outage['queued_during']} queued meanwhile, peak depth {outage['peak_depth']}, "
        f"drained {outage['drained']}"
    )
