"""The library's logs reach the application and pytest whatever logger class the process set.

ROS 2's `launch` installs a non-propagating logger class when imported (test/ros/foreign_logger_class.py
does the same); these tests run with it installed first, in processes of their own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TEST = Path(__file__).resolve().parent
ROOT = TEST.parents[1]

_EVERY_LIBRARY_LOGGER = """
import importlib, logging, pkgutil, sys
sys.path.insert(0, sys.argv[1])
import foreign_logger_class  # first, as launch's pytest plugins are
import alien
for module in pkgutil.walk_packages(alien.__path__, "alien."):
    if not module.name.endswith("__main__"):  # runs the CLI
        importlib.import_module(module.name)
seen = []
handler = logging.Handler()
handler.emit = lambda record: seen.append(record.name)
logging.getLogger().addHandler(handler)
ours = sorted(n for n, lg in logging.Logger.manager.loggerDict.items()
              if n.split(".")[0] == "alien" and isinstance(lg, logging.Logger))
for name in ours:
    logging.getLogger(name).warning("probe")
assert foreign_logger_class.NonPropagatingLogger.created, "the foreign class created no logger"
print(len(ours), "library loggers;", "missing at the root:", sorted(set(ours) - set(seen)))
"""


def test_every_library_logger_reaches_the_root_handlers() -> None:
    run = subprocess.run(
        [sys.executable, "-c", _EVERY_LIBRARY_LOGGER, str(TEST)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    count = int(run.stdout.split()[0])
    assert count >= 10 and run.stdout.strip().endswith("missing at the root: []"), run.stdout


def test_the_log_reading_tests_pass_with_a_non_propagating_logger_class() -> None:
    """The tests that failed with `nothing was logged` where launch_testing was installed."""
    selection = [
        "test/alien/test_secrets_scan_flows.py::test_the_scanner_finds_a_planted_secret",
        "test/alien/test_secrets_scan_flows.py::test_unreachable_servers_leak_nothing",
        "test/alien/test_secrets_scan_config.py::test_credentials_in_the_nats_url_leak_nothing",
        "test/alien/test_link.py",
    ]
    # not the outer run's options (colcon test passes --junit-xml=<its file> in PYTEST_ADDOPTS)
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    env["PYTHONPATH"] = os.pathsep.join([str(TEST), os.environ.get("PYTHONPATH", "")])
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "foreign_logger_class", *selection],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "failed" not in run.stdout.splitlines()[-1]
