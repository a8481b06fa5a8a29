"""The console scripts (`alien`, `bridge`) of the alien_ros package that these tests import.

Found from where the package was installed, so the tests run what a user runs:
- `pip install .` / a virtual environment: `<prefix>/bin/<name>`;
- colcon (setup.cfg's install_scripts): `install/alien_ros/lib/alien_ros/<name>`;
- an editable install or `colcon test` (the package imported from the source tree): the
  colcon prefixes on AMENT_PREFIX_PATH, this interpreter's scripts directory, then PATH.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path

import alien_ros

PACKAGE = "alien_ros"


def candidates(name: str, package_file: str | Path = alien_ros.__file__) -> list[Path]:
    """Where `name` would be, most specific first, for the package imported from `package_file`."""
    places: list[Path] = []
    package_dir = Path(package_file).resolve().parent
    site = next((p for p in package_dir.parents if p.name in ("site-packages", "dist-packages")), None)
    if site is not None and site.parent.parent.name == "lib":  # <prefix>/lib/pythonX.Y/site-packages
        prefix = site.parent.parent.parent
        places += [prefix / "lib" / PACKAGE / name, prefix / "bin" / name]
    ament_prefixes = [Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    places += [prefix / "lib" / PACKAGE / name for prefix in ament_prefixes]
    places.append(Path(sysconfig.get_path("scripts")) / name)
    places.append(Path(sys.executable).parent / name)
    return places


def console_script(name: str) -> Path:
    """The installed console script `name`; FileNotFoundError naming every place looked at."""
    places = candidates(name)
    for place in places:
        if place.is_file():
            return place
    on_path = shutil.which(name)
    if on_path:
        return Path(on_path)
    raise FileNotFoundError(f"console script {name!r} not found in {', '.join(map(str, places))} or on PATH")
