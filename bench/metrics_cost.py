"""What the metrics endpoint costs: two bridges at nominal load, endpoint off and on, measured side by side.

Both run at once on the same ROS inputs (10 Hz fix, 1 Hz battery, 1 Hz diagnostics) with the
shipped defaults; the second serves ALIEN_METRICS_ADDR on loopback and is scraped once a second
(Prometheus' default is every 15 s). Measuring them in the same windows puts the machine's noise
on both.
"""

from __future__ import annotations

import subprocess
import threading
import time
import urllib.request

import psutil
from common import PYTHON, Figure, Servers, Settings, bridge_params, bridge_process

from alien_testing.nats_binary import free_port

SCRAPE_PERIOD_S = 1.0


def _scrape_every(url: str, stop: threading.Event, scrapes: list[int]) -> None:
    while not stop.wait(SCRAPE_PERIOD_S):  # the scrape period
        with urllib.request.urlopen(url, timeout=5) as response:
            if b"alien_messages_published_total" in response.read():
                scrapes[0] += 1


def run(servers: Servers, settings: Settings, done: dict[str, Figure]) -> list[Figure]:
    port = free_port()
    off_params = bridge_params(servers, "metrics_off")
    on_params = bridge_params(servers, "metrics_on", metrics_addr=f"127.0.0.1:{port}")
    window = settings.nominal_s / settings.repeats
    cpu: dict[str, list[float]] = {"off": [], "on": []}
    scrapes = [0]
    with bridge_process(servers, off_params) as off, bridge_process(servers, on_params) as on:
        bridges = {"off": psutil.Process(off.pid), "on": psutil.Process(on.pid)}
        load = subprocess.Popen(
            [PYTHON, "bench/ros_flood.py", "--nominal", str(settings.nominal_s + 2)],
            env=servers.client_env(),
            stdout=subprocess.DEVNULL,
        )
        stop = threading.Event()
        scraper = threading.Thread(
            target=_scrape_every, args=(f"http://127.0.0.1:{port}/metrics", stop, scrapes), daemon=True
        )
        scraper.start()
        try:
            time.sleep(1.5)  # discovery, then the load runs: the windows start with it flowing
            for _ in range(settings.repeats):
                began = time.monotonic()
                before = {name: sum(p.cpu_times()[:2]) for name, p in bridges.items()}
                time.sleep(window)  # the measurement window
                elapsed = time.monotonic() - began
                for name, process in bridges.items():
                    cpu[name].append(100 * (sum(process.cpu_times()[:2]) - before[name]) / elapsed)
        finally:
            stop.set()
            scraper.join(10)
            load.kill()
            load.wait()
    if not scrapes[0]:
        raise RuntimeError("the metrics endpoint was never scraped")
    off_figure = Figure("metrics_cpu_off", "nominal load, metrics endpoint off: bridge CPU", "%", cpu["off"])
    off_figure.higher_is_better = False
    on_figure = Figure(
        "metrics_cpu_on",
        "nominal load, metrics endpoint on (scraped 1/s): bridge CPU",
        "%",
        cpu["on"],
        off_figure.median,
        "endpoint off",
    )
    on_figure.higher_is_better = False
    on_figure.note = (
        f"both bridges measured in the same windows; {scrapes[0]} scrapes, each also reading the process' "
        "CPU and memory from /proc (docs/metrics.md#cost)"
    )
    return [off_figure, on_figure]
