"""docs/architecture.md draws the library's layers; pyproject.toml's import-linter contract enforces them.

The drawing is the contract: they must list the same layers in the same order.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _contract_layers() -> list[str]:
    if sys.version_info < (3, 11):
        pytest.skip("tomllib is Python 3.11+")
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    (layers,) = [c["layers"] for c in contracts if c["type"] == "layers"]
    return list(layers)


def _drawn_layers() -> list[str]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = re.search(r"<!-- layers:begin -->\n```text\n(.*?)```\n<!-- layers:end -->", text, re.DOTALL)
    assert block is not None, "docs/architecture.md has no layers block"
    return [line.strip() for line in block.group(1).splitlines() if line.strip() and line.strip() != "↓"]


def test_the_drawn_module_graph_is_the_enforced_contract() -> None:
    assert _drawn_layers() == _contract_layers()


def test_every_library_module_has_a_layer_or_is_a_package_front() -> None:
    """A new module must be placed in the picture (and so under the contract), not left outside it."""
    named = {m.strip() for layer in _contract_layers() for m in re.split(r"[|:]", layer)}
    fronts = {
        "alien",
        "alien.__main__",
        "alien.version",
        "alien.mothership",
        "alien.commands",
        "alien.telemetry",
        "alien.delivery",
        "alien.firmware",
        "alien.metrics",
    }
    modules = set()
    for path in (ROOT / "alien").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules.add(name)
    covered = {m for m in modules if any(m == n or m.startswith(n + ".") for n in named)}
    assert sorted(modules - covered - fronts) == []
