"""Parameters given to the bridge that it will never read, said once each at startup.

Two mistakes leave a bridge running on defaults without a word from rcl: a params file whose
section does not apply in the node's namespace, and a misspelt parameter name. Both are a
WARNING naming the file or parameter and what was probably meant (docs/bridge.md#running-the-bridge).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from rclpy.node import Node
from rclpy.parameter import Parameter

from alien_ros import params_file, ros_arguments


def warn_about_unused_parameters(node: Node, argv: Sequence[str], overrides: Iterable[Parameter]) -> list[str]:
    """Warn about params-file sections and parameters the node ignores; returns the warnings."""
    fully_qualified_name = node.get_fully_qualified_name()
    arguments = ros_arguments.parse(argv, node.get_name())
    given: dict[str, str] = {}  # parameter -> where it was given
    warnings: list[str] = []
    for path in arguments.params_files:
        document = params_file.load(path)
        for key in params_file.meant_for(document, node.get_name(), fully_qualified_name):
            warnings.append(
                f"params file {path!r}: its section '{key}' does not apply to {fully_qualified_name}, so none of"
                f" its parameters are used; key it '/**/{node.get_name()}:' to apply in any namespace"
            )
        given.update(dict.fromkeys(params_file.parameters_for(document, fully_qualified_name), f"params file {path!r}"))
    given.update(dict.fromkeys(arguments.parameters, "--ros-args -p"))
    given.update(dict.fromkeys((p.name for p in overrides), "parameter overrides"))
    known = list(node.list_parameters([], 0).names)
    for name, where in given.items():
        if not node.has_parameter(name):
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            warnings.append(f"parameter '{name}' ({where}) is not a parameter of {fully_qualified_name}, ignored{hint}")
    for warning in warnings:
        node.get_logger().warning(warning)
    return warnings
