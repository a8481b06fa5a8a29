"""The demo's state (phase, milestones, figures) and its verdict: the checks behind the exit code."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from alien_demo.bridge_status import BridgeWatch
from alien_demo.mothership import MothershipDigest, MothershipWatch

PHASES = ("starting", "flying", "command", "outage", "draining", "done")


class Story:
    def __init__(self, dialect: str, duration_s: float) -> None:
        self.dialect = dialect
        self.duration_s = duration_s
        self.started = time.monotonic()
        self.current = "starting"
        self.milestones: list[str] = []
        self.result: dict[str, Any] = {}
        self.failure: str | None = None
        self.mothership: MothershipWatch | None = None
        self.bridge: BridgeWatch | None = None
        self.metrics_url: str | None = None  # the bridge's metrics endpoint (docs/metrics.md)
        self.on_milestone: Callable[[str], None] = lambda line: None
        self._lock = threading.Lock()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def phase(self, name: str, detail: str) -> None:
        self.current = name
        self.milestone(f"[{name}] {detail}")

    def milestone(self, text: str) -> None:
        line = f"{self.elapsed():6.1f}s  {text}"
        with self._lock:
            self.milestones.append(line)
        self.on_milestone(line)

    def digest(self) -> MothershipDigest:
        return self.mothership.update() if self.mothership is not None else MothershipDigest()

    def summary(self) -> dict[str, Any]:
        return verdict(self.digest(), self.result, self.failure, self.dialect, round(self.elapsed(), 1))


def verdict(
    digest: MothershipDigest, result: dict[str, Any], failure: str | None, dialect: str, elapsed_s: float
) -> dict[str, Any]:
    """The summary's figures and every check; `ok` only when each one holds."""
    command = digest.command_result or {}
    outage = result.get("outage", {})
    metrics = result.get("metrics", {})
    figures: dict[str, Any] = {
        "dialect": dialect,
        "elapsed_s": elapsed_s,
        "positions": digest.positions,
        "battery_first": digest.battery_first,
        "battery_last": digest.battery_last,
        "warn_seen": digest.warn_seen,
        "command": {
            "received": digest.event_counts.get("command_received", 0),
            "progress": digest.event_counts.get("command_progress", 0),
            "result": command.get("event"),
            "status": (command.get("result") or {}).get("status"),
        },
        "outage": {
            "seconds": outage.get("seconds"),
            "queued_during": outage.get("queued_during"),
            "peak_depth": outage.get("peak_depth"),
            "drained": outage.get("drained", False),
        },
        "enqueued": result.get("enqueued"),
        "published": result.get("published"),
        "received": result.get("received"),
        "dropped": result.get("dropped"),
        "bridge_exit": result.get("bridge_exit"),
        "metrics": metrics,
        "events": dict(sorted(digest.event_counts.items())),
    }
    first, last = digest.battery_first, digest.battery_last
    checks = {
        "positions received": digest.positions >= 5,
        "battery draining": first is not None and last is not None and last < first,
        "diagnostics WARN seen": digest.warn_seen,
        "command acknowledged": figures["command"]["received"] == 1,
        "command progress": figures["command"]["progress"] >= 1,
        "command succeeded": command.get("event") == "command_completed"
        and figures["command"]["status"] == "SUCCEEDED",
        "outbox filled in the outage": (outage.get("peak_depth") or 0) > 0,
        "outbox drained": outage.get("drained", False),
        "nothing lost": result.get("published") is not None
        and result.get("enqueued") == result.get("published") == result.get("received"),
        "nothing dropped": result.get("dropped") == 0,
        "bridge exited cleanly": result.get("bridge_exit") == 0 and digest.event_counts.get("shutdown", 0) == 1,
        # the endpoint, scraped after the comparison: registered, connected, and at least what was compared
        "metrics endpoint served": bool(metrics.get("registered") and metrics.get("connected"))
        and (metrics.get("published") or 0) >= (result.get("published") or 1),
    }
    if failure:  # named first: the later checks failed because the story stopped
        checks = {"story completed": False, **checks}
    figures["checks"] = checks
    figures["failed"] = [name for name, held in checks.items() if not held]
    if failure:
        figures["failure"] = failure
    figures["ok"] = not figures["failed"]
    return figures
