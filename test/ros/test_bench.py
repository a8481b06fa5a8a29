"""The benchmark harness never rots: `bench/run --smoke` runs every benchmark with tiny counts.

The figures of a smoke run say nothing about speed (tiny counts on a shared CI machine); what is
checked is that every benchmark ran and produced a number, and that the smoke run left
docs/performance.md and the committed results alone.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

EXPECTED = {
    "rclpy_ceiling",
    "rclpy_ceiling_events",
    "rclpy_ceiling_battery",
    "rclpy_ceiling_diagnostics",
    "nats_publish_async",
    "ros_to_jetstream",
    "ros_to_jetstream_vs_events",
    "ros_to_jetstream_battery",
    "ros_to_jetstream_diagnostics",
    "ros_to_jetstream_loss",
    "bridge_cpu_flood",
    "library_throughput",
    "library_throughput_concurrent",
    "latency_p50",
    "latency_p95",
    "latency_p99",
    "latency_max",
    "command_topic_p50",
    "command_topic_p99",
    "command_action_p50",
    "command_action_p99",
    "nominal_cpu",
    "nominal_rss",
    *(f"bridge_cpu_{rate}" for rate in (10, 100, 1000)),
    "backlog_drain",
    "backlog_rss_peak",
    "backlog_rss_growth",
    *(f"outbox_{op}_{setting}" for op in ("put", "ack") for setting in ("memory", "process", "power")),
    "flood_every_log",
    "flood_every_lost",
    *(f"flood_{limit}_{figure}" for limit in ("limited", "unlimited") for figure in ("rate", "log", "lost")),
    "e2e_seal_value",
    "e2e_seal_value_new_key",
    "e2e_open_value",
    "e2e_encode_plain",
    "e2e_encode_sealed",
    "e2e_library_throughput_plain",
    "e2e_library_throughput",
    "firmware_update_rate",
    "firmware_nats_get",
    "firmware_rss_growth",
    "firmware_rss_peak",
    "firmware_nats_get_rss_growth",
    "batch_singles_rate",
    "batch_rate",
    "batch_singles_cpu",
    "batch_cpu",
    "metrics_cpu_off",
    "metrics_cpu_on",
    *(f"fleet_{figure}" for figure in ("registration", "client_cores", "server_cores", "rss_per_entity", "msg_rate")),
    *(f"fleet_{phase}{figure}" for phase in ("", "kill_") for figure in ("p50", "p99", "lost", "doubled")),
    "fleet_kill_msg_rate",
    "fleet_largest",
    "fleet_entities_per_core",
}


@pytest.mark.timeout(420)  # the run's own bound below, and what it takes to stop it
def test_smoke_run_produces_every_figure(tmp_path: Path) -> None:
    # bench/run runs in the virtual environment scripts/bootstrap made, the one running this test
    distro = Path(sys.prefix) / ".alien-ros-distro"
    if not distro.is_file():
        pytest.skip(f"bench/run needs a virtual environment made by scripts/bootstrap; {sys.prefix} is not one")
    page_before = (ROOT / "docs" / "performance.md").read_bytes()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIEN_")}
    env.update(ALIEN_VENV=sys.prefix, ALIEN_ROS_DISTRO=distro.read_text().strip())
    if "ROS_DOMAIN_ID" in env:  # the test run's own domain, not a random one that may collide
        env["BENCH_ROS_DOMAIN_ID"] = env["ROS_DOMAIN_ID"]
    # A session of its own: on a timeout every process the run started (bridges, nats-server) goes
    # with it, none is left behind to publish on this test run's ROS domain.
    bench = subprocess.Popen(
        [str(ROOT / "bench" / "run"), "--smoke", "--out", str(tmp_path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _, stderr = bench.communicate(timeout=360)  # ~2 min on a busy 2-core machine
    except subprocess.TimeoutExpired:
        os.killpg(bench.pid, signal.SIGKILL)
        _, stderr = bench.communicate()
        pytest.fail(f"bench/run --smoke took more than 360 s:\n{stderr[-4000:]}")
    assert bench.returncode == 0, stderr[-4000:]
    result = json.loads((tmp_path / "latest.json").read_text())
    figures = {f["key"]: f for f in result["figures"]}
    assert set(figures) == EXPECTED
    for key, figure in figures.items():
        assert figure["values"], key
        assert all(isinstance(v, (int, float)) and math.isfinite(v) for v in figure["values"]), key
        assert isinstance(figure["median"], (int, float)) and math.isfinite(figure["median"]), key
    for key in ("ros_to_jetstream", "ros_to_jetstream_battery", "ros_to_jetstream_diagnostics", "library_throughput"):
        assert figures[key]["median"] > 0, key
    assert figures["library_throughput_concurrent"]["median"] > 0
    assert figures["ros_to_jetstream_loss"]["median"] == 0  # nothing the bridge received went missing
    assert figures["bridge_cpu_100"]["baseline"] == figures["bridge_cpu_flood"]["median"]  # held against the flood
    for limit in ("every", "limited", "unlimited"):  # no event queued before a command flood went missing
        assert figures[f"flood_{limit}_lost"]["median"] == 0
    for phase in ("", "kill_"):  # the small fleet on the 3-node cluster, also while its stream leader is killed
        assert figures[f"fleet_{phase}lost"]["median"] == 0 and figures[f"fleet_{phase}doubled"]["median"] == 0
    assert result["machine"]["mode"] == "smoke" and result["machine"]["cores"]
    table = (tmp_path / "latest.md").read_text()
    assert "| figure | median |" in table and table.count("\n| ") == len(EXPECTED) + 1
    assert (ROOT / "docs" / "performance.md").read_bytes() == page_before
