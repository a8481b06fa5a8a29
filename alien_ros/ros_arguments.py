"""What a command line's `--ros-args` sections give the node: params files and `-p` parameters.

rclpy applies these itself; the bridge reads them only to check them before rcl does (a
missing or malformed params file is one line naming it) and to name parameters it does not know.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

_PARAMS_FILE = ("--params-file",)
_PARAM = ("-p", "--param")


@dataclass(frozen=True)
class RosArguments:
    params_files: list[str] = field(default_factory=list)
    # -p name:=value, by name; `node:name:=value` is kept only when it names `node_name`
    parameters: dict[str, str] = field(default_factory=dict)


def parse(argv: Sequence[str], node_name: str) -> RosArguments:
    """The params files and parameters in every `--ros-args ... [--]` section of `argv`."""
    result = RosArguments()
    in_ros_args = False
    words = iter(argv)
    for word in words:
        if word == "--ros-args":
            in_ros_args = True
        elif word == "--":
            in_ros_args = False
        elif in_ros_args and word in _PARAMS_FILE:
            result.params_files.append(next(words, ""))
        elif in_ros_args and word in _PARAM:
            name, _, value = next(words, "").partition(":=")
            target, _, bare = name.rpartition(":")
            if not target or target == node_name:
                result.parameters[bare] = value
    return result
