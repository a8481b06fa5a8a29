"""Nominal load (10 Hz fix, 1 Hz battery, 1 Hz diagnostics): CPU and peak RSS."""

from __future__ import annotations

import subprocess
import time

import psutil
from common import PYTHON, Figure, Servers, Settings, at_most, bridge_params, bridge_process


def run(servers: Servers, settings: Settings, done: dict[str, Figure]) -> list[Figure]:
    # The production defaults (config/bridge.yaml rates and status period, flood limits on): what an
    # integrator runs. (bridge_params shortens the status period for the benchmarks that watch it.)
    params = bridge_params(servers, "nominal", status_period_s=1.0)
    window = settings.nominal_s / settings.repeats
    cpu, rss = [], []
    env = servers.client_env()
    for name in ("ALIEN_TELEMETRY_RATE_LIMIT_HZ", "ALIEN_TELEMETRY_RATE_LIMIT_PER_KEY_HZ"):
        env.pop(name, None)
    with bridge_process(servers, params) as proc:
        bridge = psutil.Process(proc.pid)
        load = subprocess.Popen(
            [PYTHON, "bench/ros_flood.py", "--nominal", str(settings.nominal_s + 2)],
            env=servers.client_env(),
            stdout=subprocess.DEVNULL,
        )
        try:
            time.sleep(1.5)  # discovery, then the load runs: the windows start with it flowing
            for _ in range(settings.repeats):
                began, times = time.monotonic(), bridge.cpu_times()
                peak = 0
                while time.monotonic() - began < window:
                    peak = max(peak, bridge.memory_info().rss)
                    time.sleep(0.25)  # the RSS sampling period
                after = bridge.cpu_times()
                used = (after.user + after.system) - (times.user + times.system)
                cpu.append(100 * used / (time.monotonic() - began))
                rss.append(peak / (1024 * 1024))
        finally:
            load.kill()
            load.wait()
    return [
        at_most(Figure("nominal_cpu", "nominal load: bridge CPU (% of one core)", "%", cpu), 3),
        at_most(Figure("nominal_rss", "nominal load: bridge peak RSS", "MiB", rss), 150),
    ]
