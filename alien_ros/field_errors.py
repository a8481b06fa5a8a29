"""What a command parameter that does not fit a ROS message is told, in one line."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

# (JSON value, path, nested message levels still allowed) -> value ready to assign to the field.
Filler = Callable[[Any, str, int], Any]


class FieldError(ValueError):
    """A command parameter that does not fit the message: wrong type, out of range, unknown field.

    ``path`` locates it (``params.pose.position.x``, ``params.poses[3]``), ``expected`` describes
    what the field takes (``float64 (a number)``), ``got`` what was sent (``'fast' (str)``). The
    message is one line: ``<path>: expected <expected>, got <got>``.
    """

    def __init__(self, path: str, expected: str, got: str) -> None:
        super().__init__(f"{path}: expected {expected}, got {got}")
        self.path = path
        self.expected = expected
        self.got = got


class DepthExceeded(Exception):
    """Raised deep in the walk; fill_message turns it into a FieldError naming its own limit."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
SHOWN_CHARS = 40


def key_path(path: str, key: Any) -> str:
    """Path of a (possibly hostile) key: 'params.name', or "params['two words']" when not a plain name."""
    if isinstance(key, str) and NAME_RE.fullmatch(key):
        return f"{path}.{key}"
    return f"{path}[{show_value(key)}]"


def show(value: Any) -> str:
    """A short, one-line description of a received value: "'fast' (str)", '256 (int)', 'a list of 3 items'."""
    if value is None:
        return "null"
    if isinstance(value, list | tuple):
        return f"a list of {len(value)} items"
    if isinstance(value, Mapping):
        return "an object"
    return f"{show_value(value)} ({type(value).__name__})"


def show_value(value: Any) -> str:
    if isinstance(value, str):
        shown = repr(value[:SHOWN_CHARS])  # repr escapes newlines: the message stays on one line
        return shown + "..." if len(value) > SHOWN_CHARS else shown
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"an integer of {value.bit_length()} bits"  # str() of a huge int is slow (and limited)
    if isinstance(value, bool | int | float | bytes):
        return repr(value)[:SHOWN_CHARS]
    return f"a {type(value).__name__}"
