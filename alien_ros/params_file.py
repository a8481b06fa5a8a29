"""ROS 2 parameter files as rcl reads them: which sections apply to a node, and what they set.

Pure (no rclpy): the bridge uses it to warn when a params file never reaches it (a file keyed
`alien_bridge:` applies only at the root namespace) and to name parameters it does not know;
the launch file uses it to make any params file apply in the node's namespace. The matching
rules are rcl's (docs/bridge.md#several-robots-on-one-ros-graph).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

NODE_NAME = "alien_bridge"
# The key config/bridge.yaml uses: the bridge in any namespace.
NODE_KEY = f"/**/{NODE_NAME}"
PARAMETERS = "ros__parameters"


class ParamsFileError(ValueError):
    """A params file cannot be used; the message names the file and what is wrong."""


def load(path: str | Path) -> dict[str, Any]:
    """The file's YAML document; a missing, unreadable or malformed file raises ParamsFileError."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParamsFileError(f"params file {str(path)!r} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ParamsFileError(f"params file {str(path)!r} cannot be read: {exc}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ParamsFileError(f"params file {str(path)!r} is not valid YAML{line}: {problem}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ParamsFileError(f"params file {str(path)!r} must map node names to '{PARAMETERS}'")
    return document


def sections(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(node key, flattened parameters) of every section; nested namespaces are joined with '/'."""
    yield from _sections(document, "")


def _sections(node: dict[str, Any], prefix: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for key, value in node.items():
        path = f"{prefix}/{key}" if prefix else str(key)
        if not isinstance(value, dict):
            continue
        if PARAMETERS in value:
            parameters = value[PARAMETERS]
            yield path, _flatten(parameters, "") if isinstance(parameters, dict) else {}
        else:
            yield from _sections(value, path)


def _flatten(parameters: dict[str, Any], prefix: str) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in parameters.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(_flatten(value, name))
        else:
            flat[name] = value
    return flat


def applies(key: str, fully_qualified_name: str) -> bool:
    """Whether the section `key` applies to the node `fully_qualified_name` (e.g. /robot1/alien_bridge).

    A key without a leading '/' is relative to the root namespace; `*` stands for one name
    token and `/**` for any number of namespace levels, as in rcl.
    """
    key = key if key.startswith("/") else f"/{key}"
    pattern = re.escape(key).replace(r"/\*\*", "(?:/[^/]+)*").replace(r"\*", "[^/]+")
    return re.fullmatch(pattern, fully_qualified_name) is not None


def parameters_for(document: dict[str, Any], fully_qualified_name: str) -> dict[str, Any]:
    """What the file sets for the node, later sections winning, as rcl applies them."""
    merged: dict[str, Any] = {}
    for key, parameters in sections(document):
        if applies(key, fully_qualified_name):
            merged.update(parameters)
    return merged


def meant_for(document: dict[str, Any], node_name: str, fully_qualified_name: str) -> list[str]:
    """Keys that name this node but will not reach it: the mistakes a WARNING should name.

    A root-namespace key (`alien_bridge`) that does not apply always is one. Other keys are
    one only when none naming the node applies: a file with a section per robot
    (`/robot1/alien_bridge`, `/robot2/alien_bridge`) is fine as soon as one of them applies.
    """
    naming = [key for key, _ in sections(document) if key.rsplit("/", 1)[-1] == node_name]
    missed = [key for key in naming if not applies(key, fully_qualified_name)]
    if len(missed) == len(naming):
        return missed
    return [key for key in missed if _root_key(key, node_name)]


def _root_key(key: str, node_name: str) -> bool:
    """`alien_bridge` / `/alien_bridge`: a section rcl applies only at the root namespace."""
    return key in (node_name, f"/{node_name}")


def rekeyed(document: dict[str, Any], node_name: str) -> dict[str, Any]:
    """The file with its root-namespace sections for the node (`alien_bridge:`) keyed for any namespace.

    Everything else (wildcards, other nodes, sections for a named namespace) stays as it is, in
    its place, so the file means what it meant, only no longer limited to the root namespace.
    """
    out: dict[str, dict[str, Any]] = {}
    for key, values in sections(document):
        section = out.setdefault(f"/**/{node_name}" if _root_key(key, node_name) else key, {PARAMETERS: {}})
        section[PARAMETERS].update(values)
    return out


def for_any_namespace(path: str, directory: str | Path | None = None) -> str:
    """`path` itself, or a copy rekeyed (see `rekeyed`) when it has root-namespace sections.

    The copy keeps the file's name (the node's warnings name it) in a folder named by its
    content under `directory` (default: the temporary directory), so launching again reuses it
    instead of adding files; it is readable by this user only.
    """
    document = load(path)
    if not any(_root_key(key, NODE_NAME) for key, _ in sections(document)):
        return path
    text = yaml.safe_dump(rekeyed(document, NODE_NAME), sort_keys=False)
    digest = hashlib.sha256(f"{path}\n{text}".encode()).hexdigest()[:16]
    folder = Path(directory if directory is not None else tempfile.gettempdir()) / f"{NODE_NAME}_params" / digest
    copy = folder / Path(path).name
    if not copy.is_file():
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = folder / f".{copy.name}.{os.getpid()}.tmp"
        partial.touch(mode=0o600)
        partial.write_text(text, encoding="utf-8")
        partial.replace(copy)  # whole or absent, also with two launches at once
    return str(copy)
