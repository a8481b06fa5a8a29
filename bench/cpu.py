"""CPU per message of the bridge at robot rates: NavSatFix at 10, 100 and 1,000 msg/s.

The bridge runs with the rate policy off (every fix is sent) and the flood limits off, as in the
flood. Each repetition publishes fixes at each rate (bench/ros_flood.py, 20x the 1,000 msg/s
window at 10 msg/s, 10x at 100) and divides the bridge process's CPU time from the first message
to the last (and 0.2 s more, for the last to be sent) by the fixes it received. Idle work (timers,
wake-ups, periodic status) is part of the figure: at 10 msg/s it is most of it. The 100 msg/s
figure is held against the flood's figure of the same run (bench/throughput.py).
"""

from __future__ import annotations

import json
import subprocess
import time

import psutil
from common import PYTHON, Figure, Servers, Settings, at_most, bridge_params, bridge_process, processing_paused, say

RATES = (10, 100, 1000)
_TAIL_S = 0.2  # after the last message: the bridge sends it (a few ms) within this


def one_window(servers: Servers, bridge: psutil.Process, rate: int, seconds: float) -> tuple[float, int]:
    """(bridge CPU seconds, fixes received) while `rate` msg/s are published for `seconds`."""
    args = ["bench/ros_flood.py", "--count", str(max(2, round(rate * seconds))), "--rate", str(rate)]
    flood = subprocess.Popen(
        [PYTHON, *args, "--phases", "--watch-bridge"], env=servers.client_env(), stdout=subprocess.PIPE, text=True
    )
    try:
        assert flood.stdout is not None
        lines = (line for line in iter(flood.stdout.readline, "") if line.startswith("{"))
        phase = ""
        while phase != "publishing":
            phase = json.loads(next(lines)).get("phase", "")
        before = bridge.cpu_times()
        while phase != "published":
            phase = json.loads(next(lines)).get("phase", "")
        time.sleep(_TAIL_S)
        after = bridge.cpu_times()
        result = json.loads(next(lines))
        flood.wait(60)
    except StopIteration:
        raise RuntimeError(f"bench/ros_flood.py ended early ({flood.wait(10)}): {' '.join(args)}") from None
    finally:
        if flood.poll() is None:
            flood.kill()
            flood.wait()
    return (after.user + after.system) - (before.user + before.system), int(result["bridge"].get("received.fix", 0))


def run(servers: Servers, settings: Settings, done: dict[str, Figure]) -> list[Figure]:
    params = bridge_params(servers, "cpu", **{"fix.rate_hz": 0.0, "fix.qos": "reliable"})
    per_rate: dict[int, list[float]] = {rate: [] for rate in RATES}
    received = 0
    with bridge_process(servers, params) as proc, processing_paused(servers):
        bridge = psutil.Process(proc.pid)
        for _ in range(settings.repeats):
            for rate in RATES:
                seconds = settings.rate_window_s * {10: 20, 100: 10, 1000: 1}[rate]
                used, total = one_window(servers, bridge, rate, seconds)
                taken, received = total - received, total
                per_rate[rate].append(used / max(1, taken) * 1e6)
                say(f"cpu at {rate} msg/s: {taken} fixes, {used:.2f} s CPU, {per_rate[rate][-1]:.0f} us per message")
    flood = done.get("bridge_cpu_flood")
    figures = []
    for rate in RATES:
        figure = Figure(
            f"bridge_cpu_{rate}",
            f"bridge CPU per message at {rate:,} msg/s",
            "us",
            per_rate[rate],
            flood.median if flood is not None and rate == 100 else None,
            "flood" if rate == 100 else "",
        )
        figures.append(at_most(figure, ratio=2) if rate == 100 else figure)
    return figures
