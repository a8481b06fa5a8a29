"""Style checks in the ament manner, so `colcon test` covers style as well as behaviour.

The ament_flake8 / ament_pep257 Python packages are not on PyPI; ruff (configured in
pyproject.toml with pycodestyle, pyflakes, pydocstyle and more) does their job here. On a ROS
install without ruff these skip, naming what is missing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _ruff() -> str:
    found = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if not found:
        pytest.skip("ruff is not installed (pip install ruff); style is not checked")
    return found


@pytest.mark.linter
def test_ruff_lint() -> None:
    run = subprocess.run([_ruff(), "check", "--no-cache", str(ROOT)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.linter
def test_ruff_format() -> None:
    run = subprocess.run(
        [_ruff(), "format", "--check", "--no-cache", str(ROOT)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr
