"""Every third-party import is named by a dependency list: package.xml for ROS, setup.py for pip.

A module that imports a package no list names works here (requirements.txt installs it) and
fails on a robot installed with rosdep or pip. Python libraries that have a rosdep key are in
package.xml under it; those that have none are in the pip command of docs/bridge.md.
"""

from __future__ import annotations

import ast
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OWN = {"alien", "alien_ros", "alien_testing", "alien_demo"}
# rosdep keys whose pip name is not python3-<name> (from ros/rosdistro rosdep/python.yaml)
ROSDEP_PIP_NAMES = {"python3-yaml": "pyyaml", "python3-dotenv": "python-dotenv"}
# where the pip-only libraries are documented (no rosdep key exists for them)
BRIDGE_PAGE_PIP_LINE = re.compile(r"pip install (?P<names>[A-Za-z0-9_.\- ]+)")


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imports(paths: Iterable[Path]) -> Iterator[tuple[str, Path]]:
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                yield from ((alias.name.split(".")[0], path) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                yield node.module.split(".")[0], path


def _third_party(paths: Iterable[Path]) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for module, path in _imports(paths):
        if module not in sys.stdlib_module_names and module not in OWN and module != "__future__":
            found.setdefault(module, []).append(path)
    return found


def _setup_lists() -> tuple[set[str], set[str]]:
    """install_requires and extras_require['test'] of setup.py, as normalized distribution names."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup")
    values = {
        k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg in ("install_requires", "extras_require")
    }

    def names(requirements: list[str]) -> set[str]:
        return {_normalize(re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0]) for r in requirements}

    return names(values["install_requires"]), names(values["extras_require"]["test"])


def _package_xml() -> tuple[set[str], set[str]]:
    root = ET.parse(ROOT / "package.xml").getroot()
    runtime = {e.text or "" for tag in ("depend", "exec_depend") for e in root.iter(tag)}
    test = {e.text or "" for e in root.iter("test_depend")}
    return runtime, runtime | test


def _distribution(module: str) -> str | None:
    """The pip distribution that provides `module` here; None for the PyPI ROS wheels and unknown ones."""
    names = metadata.packages_distributions().get(module, [])
    pip = [n for n in names if not _normalize(n).startswith("ros-")]
    return _normalize(pip[0]) if pip and len(pip) == len(names) else None


def _bridge_page_pip_names() -> set[str]:
    text = (ROOT / "docs" / "bridge.md").read_text()
    return {_normalize(n) for m in BRIDGE_PAGE_PIP_LINE.finditer(text) for n in m.group("names").split()}


def _rosdep_pip_names(keys: set[str]) -> set[str]:
    return {_normalize(ROSDEP_PIP_NAMES.get(k, k.removeprefix("python3-"))) for k in keys if k.startswith("python3-")}


def _missing(modules: dict[str, list[Path]], pip_names: set[str], ros_names: set[str]) -> list[str]:
    problems = []
    for module, paths in sorted(modules.items()):
        where = ", ".join(sorted({str(p.relative_to(ROOT)) for p in paths}))
        if module in ros_names:  # a ROS package (apt installs them as plain distributions too)
            continue
        distribution = _distribution(module)
        if distribution is None:
            problems.append(f"{module} (imported by {where}) is not a dependency in package.xml")
        elif distribution not in pip_names:
            problems.append(f"{module} (distribution {distribution}, imported by {where}) is not in setup.py")
    return problems


def _runtime_modules() -> list[Path]:
    return [*ROOT.glob("alien/**/*.py"), *ROOT.glob("alien_ros/**/*.py"), *ROOT.glob("launch/*.py")]


def test_every_runtime_import_is_a_declared_dependency() -> None:
    install_requires, _ = _setup_lists()
    ros_runtime, _ = _package_xml()
    assert _missing(_third_party(_runtime_modules()), install_requires, ros_runtime) == []


def test_every_test_import_is_a_declared_test_dependency() -> None:
    """alien_testing (the emulator and fixtures), alien_demo and test/ run under `colcon test` on a ROS install."""
    install_requires, test_extra = _setup_lists()
    _, ros_all = _package_xml()
    files = [*ROOT.glob("alien_testing/**/*.py"), *ROOT.glob("alien_demo/**/*.py"), *ROOT.glob("test/**/*.py")]
    modules = {m: p for m, p in _third_party(files).items() if m not in _local_test_modules()}
    assert _missing(modules, install_requires | test_extra, ros_all) == []


def _local_test_modules() -> set[str]:
    return {p.stem for p in (ROOT / "test").glob("**/*.py")}


def test_pip_libraries_have_their_rosdep_key_or_the_bridge_page_pip_command() -> None:
    install_requires, _ = _setup_lists()
    ros_runtime, _ = _package_xml()
    covered = _rosdep_pip_names(ros_runtime) | _bridge_page_pip_names()
    assert sorted(install_requires - covered - {"setuptools"}) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import nats.js\n", ["nats"]),
        ("from yaml import safe_load\n", ["yaml"]),
        ("def f():\n    import rclpy.node\n", ["rclpy"]),
        ("from . import sibling\nimport json\nfrom alien import x\n", []),
    ],
)
def test_the_import_scan_finds_nested_and_ignores_own_and_stdlib(
    tmp_path: Path, source: str, expected: list[str]
) -> None:
    module = tmp_path / "m.py"
    module.write_text(source)
    assert sorted(_third_party([module])) == expected


def test_an_undeclared_import_is_reported(tmp_path: Path) -> None:
    module = ROOT / "alien_ros" / "params_file.py"  # a real runtime module, as a stand-in for a new one
    modules = _third_party([module])
    assert modules == {"yaml": [module]}
    assert _missing(modules, pip_names=set(), ros_names=set()) == [
        "yaml (distribution pyyaml, imported by alien_ros/params_file.py) is not in setup.py"
    ]
    assert _missing({"unheard_of_msgs": [module]}, set(), set())[0].endswith("is not a dependency in package.xml")
    assert _missing({"unheard_of_msgs": [module]}, set(), {"unheard_of_msgs"}) == []  # a ROS package named there
