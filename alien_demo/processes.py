"""The demo's child processes: the simulated robot and the bridge, each as an integrator runs it.

Both get the demo's ROS settings (loopback discovery, the demo's own domain id) and no ALIEN_* or
mothership variables from the caller's shell: the bridge's params file says where the servers
are. Each runs in a session of its own so the demo decides the order of shutdown (the bridge
flushes while nats-server is still up); `stop()` signals, waits (bounded) and kills if it must.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from alien.config import AlienConfig, env_names
from alien_ros.params_file import NODE_KEY


def _bridge_params_file() -> Path:
    """config/bridge.yaml: from the source tree (editable install), else the installed package's share/."""
    in_tree = Path(__file__).resolve().parents[1] / "config" / "bridge.yaml"
    if in_tree.exists():
        return in_tree
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory("alien_ros")) / "config" / "bridge.yaml"


# the variables a developer's shell may carry that would configure the bridge behind the params file
_CALLER_SETTINGS = frozenset(name for field in AlienConfig.model_fields for name in env_names(field))


def child_environment(domain_id: int, api_key: str | None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith("ALIEN_") and k != "ALIEN_NATS_SERVER_BIN") and k not in _CALLER_SETTINGS
    }
    env.update(ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_DOMAIN_ID=str(domain_id), PYTHONUNBUFFERED="1")
    if api_key:
        env["ALIEN_API_KEY"] = api_key  # a secret: the environment, never a parameter
    return env


def bridge_params(
    workdir: Path, mothership_url: str, nats_url: str, dialect: str, return_timeout_s: float, metrics_addr: str
) -> Path:
    """The package's config/bridge.yaml with the demo's servers, rates, metrics endpoint and return_to_base mapping."""
    params = yaml.safe_load(_bridge_params_file().read_text())
    values = params[NODE_KEY]["ros__parameters"]
    values.update(
        {
            "mothership_url": mothership_url,
            "nats_url": nats_url,
            "dialect": dialect,
            "org_name": "Demo Fleet",
            "entity_type": "drone",
            "entity_name": "demo-drone",
            "identity_file": str(workdir / "identity.json"),
            "data_dir": str(workdir / "bridge-data"),
            "fix.rate_hz": 2.0,
            "battery.rate_hz": 1.0,
            "diagnostics.rate_hz": 0.5,
            "status_period_s": 0.5,
            "metrics_addr": metrics_addr,  # loopback: docs/metrics.md
            "commands": ["return_to_base"],
            # The only action type installable here is test_msgs' Fibonacci (the simulated robot
            # serves it). On a real robot: nav2_msgs/action/NavigateToPose, target navigate_to_pose.
            "commands.return_to_base.kind": "action",
            "commands.return_to_base.type": "test_msgs/action/Fibonacci",
            "commands.return_to_base.target": "return_to_base",
            "commands.return_to_base.timeout_s": return_timeout_s,
        }
    )
    path = workdir / "bridge.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def robot_arguments(duration_s: float, leg_s: float) -> list[str]:
    """The robot's parameters, scaled to the story.

    The robot takes off when the bridge subscribes; the battery drains from 95% and falls under
    50% (WARN) 0.375 x duration later: late in the flying phase or on the way home, before it
    lands (0.5 x duration after take-off at the earliest), at 15-35%.
    """
    values = {
        "battery_drain_per_s": 1.2 / duration_s,
        "battery_warn_below": 0.5,
        "leg_s": leg_s,
        "lap_s": duration_s / 2,
    }
    return [arg for name, value in values.items() for arg in ("-p", f"{name}:={float(value)!r}")]


class Child:
    """One child process, its output in a log file of the demo's temporary directory."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            command, env=env, cwd=workdir, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def running(self) -> bool:
        return self.proc.poll() is None

    def exited(self) -> str | None:
        """Why this child is no longer there, or None while it runs."""
        code = self.proc.poll()
        return None if code is None else f"{self.name} exited with status {code}"

    def stop(self, timeout: float = 15.0) -> int:
        """SIGINT (the node's clean shutdown), then SIGKILL after `timeout`; returns the exit code."""
        if self.running():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _console_script(name: str, module: str) -> list[str]:
    script = shutil.which(name, path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", module]


def start_robot(env: dict[str, str], workdir: Path, arguments: list[str]) -> Child:
    return Child("sim_robot", [sys.executable, "-m", "alien_demo.sim_robot", "--ros-args", *arguments], env, workdir)


def start_bridge(env: dict[str, str], workdir: Path, params: Path) -> Child:
    command = [*_console_script("bridge", "alien_ros.main"), "--ros-args", "--params-file", str(params)]
    return Child("bridge", command, env, workdir)


def stop_all(children: list[Any]) -> None:
    for child in reversed(children):
        child.stop()
