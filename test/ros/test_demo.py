"""The README's demo: the whole story end to end (subprocess, `--no-ui`), and its pure parts.

The end-to-end runs start everything the demo starts (nats-server, the emulator, the simulated
robot and the bridge as processes) and assert the figures of the summary's JSON line.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from diagnostic_msgs.msg import DiagnosticStatus

from alien_demo.mothership import MothershipDigest
from alien_demo.sim_robot import (
    LatLon,
    battery_diagnostic,
    battery_fraction,
    between,
    distance_m,
    fibonacci,
    loop_position,
    offset,
)
from alien_demo.state import verdict
from alien_demo.story import parse_args
from alien_demo.view import SUMMARY_PREFIX

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo.py"
BASE = LatLon(47.3977, 8.5456)


def _demo_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ALIEN_") or k == "ALIEN_NATS_SERVER_BIN"}


def _summary(stdout: str) -> dict[str, Any]:
    (line,) = [line for line in stdout.splitlines() if line.startswith(SUMMARY_PREFIX)]
    summary: dict[str, Any] = json.loads(line.removeprefix(SUMMARY_PREFIX))
    return summary


# ---------------------------------------------------------------- the whole story


@pytest.mark.parametrize("dialect", ["v0.1", "v0.0.1"])
def test_the_demo_tells_the_whole_story_and_exits_0(dialect: str, tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(DEMO), "--no-ui", "--duration", "20", "--dialect", dialect],
        env=_demo_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    summary = _summary(run.stdout)
    assert summary["ok"] and summary["failed"] == [] and all(summary["checks"].values())
    assert summary["dialect"] == dialect
    # the robot's path at 2 positions/s over ~15 s of flight and the rest at base
    assert summary["positions"] >= 20
    # it takes off when the bridge subscribes: the first reading is near full whatever the startup took
    assert 80 <= summary["battery_first"] <= 95 and summary["battery_last"] < summary["battery_first"] - 30
    assert summary["warn_seen"] is True
    assert summary["events"]["diagnostic_level_changed"] == 1  # OK -> WARN, once
    # ack -> one progress per leg home (6) -> the Fibonacci result
    assert summary["command"] == {"received": 1, "progress": 6, "result": "command_completed", "status": "SUCCEEDED"}
    outage = summary["outage"]
    assert outage["seconds"] >= 3 and outage["queued_during"] >= 5
    assert outage["peak_depth"] >= 5 and outage["drained"] is True
    assert summary["enqueued"] == summary["published"] == summary["received"] > 30 and summary["dropped"] == 0
    assert summary["bridge_exit"] == 0 and summary["events"]["shutdown"] == 1
    # the milestones tell the story in order
    phases = ("[starting]", "[flying]", "[command]", "[outage]", "[draining]", "[done]")
    positions = [run.stdout.index(p) for p in phases]
    assert positions == sorted(positions)
    assert "ack: command_received" in run.stdout and "result: command_completed" in run.stdout
    # the bridge's metrics endpoint, scraped at the end as `alien metrics` shows it
    metrics = summary["metrics"]
    assert metrics["url"].startswith("http://127.0.0.1:") and metrics["published"] >= summary["published"]
    assert "the bridge's metrics endpoint (alien metrics):" in run.stdout and "enqueue -> PubAck " in run.stdout


def test_ctrl_c_stops_every_process_the_demo_started(tmp_path: Path) -> None:
    demo = subprocess.Popen(
        [sys.executable, str(DEMO), "--no-ui", "--duration", "60"],
        env=_demo_env(),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert demo.stdout is not None
        for line in demo.stdout:  # until the story is under way: every child is running then
            if "[flying]" in line:
                break
        children = psutil.Process(demo.pid).children(recursive=True)
        names = " ".join(" ".join(c.cmdline()) for c in children)
        assert "nats-server" in names and "alien_demo.sim_robot" in names and "--params-file" in names
        demo.send_signal(signal.SIGINT)
        output, _ = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.communicate()
    assert demo.returncode == 130, output
    assert "demo interrupted" in output
    _, alive = psutil.wait_procs(children, timeout=5)
    assert alive == []


# The bridge refuses its params file (exit 2): the demo must stop at once, not wait for a timeout.
_BROKEN_BRIDGE = """
import sys
from alien_demo import processes, story
good = processes.bridge_params
def broken(*args, **kwargs):
    path = good(*args, **kwargs)
    path.write_text(path.read_text().replace("fix.qos: auto", "fix.qos: sometimes"))
    return path
processes.bridge_params = broken
sys.exit(story.main(["--no-ui", "--duration", "20"]))
"""


def test_a_bridge_that_cannot_start_fails_the_demo_at_once_naming_why(tmp_path: Path) -> None:
    began = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-c", _BROKEN_BRIDGE],
        env=_demo_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert time.monotonic() - began < 30  # not the 60 s registration timeout
    summary = _summary(run.stdout)
    assert summary["ok"] is False and summary["failed"][0] == "story completed"
    assert summary["failure"] == "bridge exited with status 2 while waiting for the bridge to register and connect"
    assert "parameter 'fix.qos' is 'sometimes'" in run.stdout  # the bridge's own words, from its log


def test_a_duration_below_the_minimum_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--duration", "5"])
    assert exit_info.value.code == 2
    assert "--duration must be at least 20 seconds, got 5" in capsys.readouterr().err


# ---------------------------------------------------------------- the verdict


def _good_figures() -> tuple[MothershipDigest, dict[str, Any]]:
    digest = MothershipDigest(positions=30, battery_first=90.0, battery_last=25.0, warn_seen=True)
    digest.event_counts = {"command_received": 1, "command_progress": 6, "command_completed": 1, "shutdown": 1}
    digest.command_result = {"event": "command_completed", "result": {"status": "SUCCEEDED"}}
    result = {
        "outage": {"seconds": 3.0, "queued_during": 12, "peak_depth": 12, "drained": True},
        "enqueued": 80,
        "published": 80,
        "received": 80,
        "dropped": 0,
        "bridge_exit": 0,
        "metrics": {"url": "http://127.0.0.1:9464/metrics", "registered": True, "connected": True, "published": 82},
    }
    return digest, result


def test_the_verdict_holds_when_every_figure_is_right() -> None:
    digest, result = _good_figures()
    summary = verdict(digest, result, None, "v0.1", 22.0)
    assert summary["ok"] is True and summary["failed"] == []


@pytest.mark.parametrize(
    ("change", "failed"),
    [
        ({"received": 79}, "nothing lost"),
        ({"enqueued": 81}, "nothing lost"),
        ({"dropped": 1}, "nothing dropped"),
        ({"outage": {"peak_depth": 0, "drained": True}}, "outbox filled in the outage"),
        ({"outage": {"peak_depth": 9, "drained": False}}, "outbox drained"),
        ({"bridge_exit": 1}, "bridge exited cleanly"),
        ({"metrics": {"error": "not reachable"}}, "metrics endpoint served"),
        ({"metrics": {"registered": True, "connected": True, "published": 79}}, "metrics endpoint served"),
    ],
)
def test_the_verdict_names_the_check_that_failed(change: dict[str, Any], failed: str) -> None:
    digest, result = _good_figures()
    result.update(change)
    summary = verdict(digest, result, None, "v0.1", 22.0)
    assert summary["ok"] is False and summary["failed"] == [failed]


def test_an_unfinished_story_fails_with_its_reason() -> None:
    digest, result = _good_figures()
    summary = verdict(digest, result, "not within 30s: the outbox to drain", "v0.1", 40.0)
    assert summary["failed"] == ["story completed"] and summary["failure"].endswith("the outbox to drain")
    assert next(iter(summary["checks"])) == "story completed"  # named first: it explains the rest


def test_the_verdict_wants_a_draining_battery_a_warn_and_a_succeeded_command() -> None:
    digest, result = _good_figures()
    digest.battery_last, digest.warn_seen = 90.0, False
    digest.command_result = {"event": "command_failed", "error": "action server return_to_base is not available"}
    assert verdict(digest, result, None, "v0.1", 22.0)["failed"] == [
        "battery draining",
        "diagnostics WARN seen",
        "command succeeded",
    ]


# ---------------------------------------------------------------- what the mothership received


def test_the_digest_reads_the_seed_shape() -> None:
    digest = MothershipDigest()

    def seed(data: dict[str, Any]) -> dict[str, Any]:  # the seed telemetry shape
        return {"entity_id": "e", "timestamp": "2026-11-28T03:21:57Z", "data": data}

    digest.add_telemetry("a", seed({"position": {"latitude": 1.5, "longitude": 2.5, "altitude": 30.0}}))
    digest.add_telemetry("b", seed({"power": {"percentage": 93.0}}))
    digest.add_telemetry("c", seed({"power": {"percentage": 91.0}}))
    digest.add_telemetry("d", seed({"health": {"level": "WARN"}}))
    assert digest.positions == 1 and digest.last_position == (1.5, 2.5, 30.0)
    assert (digest.battery_first, digest.battery_last) == (93.0, 91.0)
    assert digest.health_level == "WARN" and digest.warn_seen and digest.received == 4


def test_the_digest_reads_mavlink_telemetry_and_counts_a_redelivery_once() -> None:
    digest = MothershipDigest()
    position = {"message_type": "GLOBAL_POSITION_INT", "data": {"lat": 473977000, "lon": 85456000, "alt": 30000}}
    digest.add_telemetry("p1", position)
    digest.add_telemetry("p1", position)  # the same message delivered again after the outage
    digest.add_telemetry("b1", {"message_type": "BATTERY_STATUS", "data": {"battery_remaining": 88}})
    digest.add_event("h1", {"event_type": "telemetry", "data": {"health": {"level": "OK"}}})
    assert digest.positions == 1 and digest.last_position == pytest.approx((47.3977, 8.5456, 30.0))
    assert digest.battery_last == 88.0 and digest.health_level == "OK" and not digest.warn_seen
    assert digest.received == 3 and digest.event_counts == {}  # the health event is telemetry, not an event


def test_the_digest_follows_the_command_and_the_diagnostics_events() -> None:
    digest = MothershipDigest()
    warn = {"name": "sim_robot: battery", "previous": "OK", "level": "WARN", "message": "battery low: 49%"}
    done = {"command_id": "r", "result": {"status": "SUCCEEDED"}}
    digest.add_event("1", {"event_type": "diagnostic_level_changed", "data": warn})
    digest.add_event("2", {"event_type": "command_received", "data": {"command_id": "r", "type": "return_to_base"}})
    digest.add_event(
        "3", {"event_type": "command_progress", "data": {"command_id": "r", "progress": {"sequence": [0]}}}
    )
    digest.add_event("4", {"event_type": "command_completed", "data": done})
    assert digest.warn_seen
    assert digest.event_counts == {
        "diagnostic_level_changed": 1,
        "command_received": 1,
        "command_progress": 1,
        "command_completed": 1,
    }
    assert digest.command_result == {"event": "command_completed", **done}
    assert digest.recent_events[0].endswith("OK -> WARN (battery low: 49%)")


# ---------------------------------------------------------------- the simulated robot's maths


def test_the_loop_starts_and_ends_a_lap_at_base_and_keeps_its_radius() -> None:
    radius, lap = 120.0, 30.0
    assert distance_m(loop_position(BASE, radius, lap, 0.0), BASE) == pytest.approx(0.0, abs=1e-6)
    assert distance_m(loop_position(BASE, radius, lap, lap), BASE) == pytest.approx(0.0, abs=1e-3)
    assert distance_m(loop_position(BASE, radius, lap, lap / 2), BASE) == pytest.approx(2 * radius, rel=1e-3)
    centre = offset(BASE, 0.0, radius)
    for t in (1.0, 7.5, 12.0, 22.2):
        assert distance_m(loop_position(BASE, radius, lap, t), centre) == pytest.approx(radius, rel=1e-3)


def test_the_way_home_is_a_straight_line_clamped_at_both_ends() -> None:
    far = offset(BASE, 240.0, 0.0)
    assert between(far, BASE, 0.0) == far and between(far, BASE, 1.0) == BASE
    assert between(far, BASE, -1.0) == far and between(far, BASE, 2.0) == BASE
    assert distance_m(between(far, BASE, 0.25), BASE) == pytest.approx(180.0, rel=1e-3)


def test_offset_moves_the_given_metres() -> None:
    assert distance_m(BASE, offset(BASE, 300.0, 400.0)) == pytest.approx(500.0, rel=1e-3)


def test_the_battery_drains_linearly_down_to_its_floor() -> None:
    assert battery_fraction(0.95, 0.01, 0.0) == pytest.approx(0.95)
    assert battery_fraction(0.95, 0.01, 45.0) == pytest.approx(0.5)
    assert battery_fraction(0.95, 0.01, 1000.0) == 0.05  # never empty: the robot must still land
    assert math.isclose(battery_fraction(0.95, 0.0, 1000.0), 0.95)


def test_the_battery_diagnostic_turns_warn_below_its_threshold() -> None:
    assert battery_diagnostic(0.51, 0.5) == (DiagnosticStatus.OK, "battery 51%")
    level, message = battery_diagnostic(0.49, 0.5)
    assert level == DiagnosticStatus.WARN and message.startswith("battery low: 49%")


def test_fibonacci_is_the_actions_sequence() -> None:
    assert fibonacci(0) == [] and fibonacci(1) == [0] and fibonacci(2) == [0, 1]
    assert fibonacci(7) == [0, 1, 1, 2, 3, 5, 8]


def test_the_story_phases_are_timed_to_the_duration() -> None:
    from alien_demo.story import Demo

    demo = Demo(parse_args(["--duration", "40"]), ROOT)
    assert (demo.fly_s, demo.return_s, demo.outage_s, demo.tail_s) == (10.0, 10.0, 6.0, 4.0)
