"""SIGINT / SIGTERM end the bridge with exit 0, whatever rclpy raises while the signal stops it.

Python's default SIGINT handler raises KeyboardInterrupt; when that lands inside rclpy's C++ code
(taking a message) it surfaces as `RuntimeError: Unable to convert call argument '0' to Python
object`. The bridge's handlers only note the signal (rclpy's own handling stops the executor),
and anything rclpy raises once the signal came is part of stopping. The first test makes such
an exception happen on purpose in a real bridge process; the last sends real SIGINTs while the
bridge is taking a flood.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from installed import console_script

FLOOD_REPEATS = int(os.environ.get("ALIEN_SIGINT_REPEATS", "4"))

# The bridge's main(), with one timer that makes rclpy's executor raise as it does when a
# signal lands mid-call: the signal is real (rclpy's handler shuts the context down), the
# exception is the one pybind11 raises in place of an interrupted call.
_INTERRUPTED_MID_CALL = """
import os, signal, sys
from alien_ros import main as bridge

class InterruptedMidCall(bridge.BridgeNode):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.alien.ready.wait(20)
        self.create_timer(0.2, self.interrupted_mid_call)

    def interrupted_mid_call(self):
        if os.environ["SIGNAL_FIRST"] == "1":
            os.kill(os.getpid(), signal.SIGINT)
        raise RuntimeError("Unable to convert call argument '0' to Python object")

bridge.BridgeNode = InterruptedMidCall
sys.exit(bridge.main())
"""


def _params(emulator: Any, nats_server: Any, tmp_path: Path, **extra: str) -> list[str]:
    values = {
        "mothership_url": emulator.url,
        "nats_url": nats_server.url,
        "identity_file": str(tmp_path / "identity.json"),
        "data_dir": str(tmp_path / "data"),
        "entity_name": "stopper",
        **extra,
    }
    return ["--ros-args", *[arg for k, v in values.items() for arg in ("-p", f"{k}:={v}")]]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ALIEN_")}


def _interrupted_bridge(emulator: Any, nats_server: Any, tmp_path: Path, *, signal_first: bool) -> Any:
    return subprocess.run(
        [sys.executable, "-c", _INTERRUPTED_MID_CALL, *_params(emulator, nats_server, tmp_path)],
        env={**_env(), "SIGNAL_FIRST": "1" if signal_first else "0"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_an_exception_from_rclpy_while_sigint_stops_it_is_a_clean_stop(
    make_emulator: Any, nats_server: Any, tmp_path: Path
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    run = _interrupted_bridge(emulator, nats_server, tmp_path, signal_first=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "stopping: rclpy raised RuntimeError while the signal stopped it" in run.stderr
    assert "Traceback" not in run.stderr
    (entity,) = emulator.entities()
    assert entity["status"] == "inactive"  # the normal shutdown ran: flush, shutdown event, status
    assert [m.json()["event_type"] for m in emulator.events()].count("shutdown") == 1


def test_the_same_exception_without_a_signal_is_a_failure(make_emulator: Any, nats_server: Any, tmp_path: Path) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    run = _interrupted_bridge(emulator, nats_server, tmp_path, signal_first=False)
    assert run.returncode == 1
    assert "RuntimeError: Unable to convert call argument" in run.stderr
    (entity,) = emulator.entities()
    assert entity["status"] == "inactive"  # still flushed and closed on the way out


_FLOOD = """
import sys, rclpy
from sensor_msgs.msg import NavSatFix, NavSatStatus
rclpy.init()
node = rclpy.create_node("flood")
publisher = node.create_publisher(NavSatFix, "fix", 100)
fix = NavSatFix(latitude=1.0, longitude=2.0)
fix.status.status = NavSatStatus.STATUS_FIX
while rclpy.ok():
    publisher.publish(fix)
"""


def test_sigint_while_the_bridge_takes_a_flood_exits_0_every_time(
    make_emulator: Any, nats_server: Any, tmp_path: Path
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    bridge = [str(console_script("bridge")), *_params(emulator, nats_server, tmp_path, shutdown_timeout_s="2.0")]
    flood = subprocess.Popen([sys.executable, "-c", _FLOOD], env=_env(), stdout=subprocess.DEVNULL)
    codes: list[int] = []
    try:
        for attempt in range(FLOOD_REPEATS):
            proc = subprocess.Popen(bridge, env=_env(), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            try:
                seen = len(emulator.telemetry())
                # a position sent proves the subscription is taking the flood (fix.rate_hz 1: the
                # callback runs for every message, one a second is sent)
                emulator.wait_for(
                    lambda seen=seen: len(emulator.telemetry()) > seen, 30, f"a position (attempt {attempt})"
                )
                proc.send_signal(signal.SIGINT)
                output, _ = proc.communicate(timeout=30)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
            codes.append(proc.returncode)
            assert proc.returncode == 0, f"attempt {attempt}: exit {proc.returncode}\n{output.decode()}"
    finally:
        flood.terminate()
        flood.wait(10)
    assert codes == [0] * FLOOD_REPEATS
    assert [m.json()["event_type"] for m in emulator.events()].count("shutdown") == FLOOD_REPEATS
