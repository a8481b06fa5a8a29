"""Resolve ROS 2 interface type names ("sensor_msgs/msg/Imu") to their Python classes, safely.

Type names come from configuration and from mothership commands, so they are untrusted: every part
is checked against a strict pattern before anything is imported, the package is located without
running its code, and only a real ``<pkg>.<kind>`` subpackage is ever imported. Nothing is evaluated.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import re
from typing import Any, Literal

__all__ = [
    "InterfaceKind",
    "MessageTypeError",
    "resolve_action_type",
    "resolve_interface_type",
    "resolve_message_type",
    "resolve_service_type",
]

InterfaceKind = Literal["msg", "srv", "action"]

# ROS 2 naming rules (REP 144 for packages, rosidl for type names); ASCII only, no dunders, no dots.
_PACKAGE_RE = re.compile(r"[a-z][a-z0-9_]*")
_KIND_RE = re.compile(r"msg|srv|action")
_TYPE_RE = re.compile(r"[A-Z][A-Za-z0-9]*")

_KINDS: tuple[InterfaceKind, ...] = ("msg", "srv", "action")
_ACCEPTED_FORMS = "'pkg/{kind}/Type', 'pkg/Type' or 'pkg.{kind}.Type'"

# What a generated class must expose to count as an interface of each kind (rosidl_generator_py).
_REQUIRED_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "msg": ("get_fields_and_field_types", "SLOT_TYPES"),
    "srv": ("Request", "Response"),
    "action": ("Goal", "Result", "Feedback"),
}


class MessageTypeError(ValueError):
    """An interface type name that is malformed, not installed, or not a ROS interface.

    ``reason`` is one of ``"format"``, ``"kind"``, ``"package"``, ``"type"`` so callers (and
    command rejections) can report the cause without parsing the text.
    """

    def __init__(self, name: str, reason: str, detail: str) -> None:
        super().__init__(f"invalid ROS interface type {name!r}: {detail}")
        self.name = name
        self.reason = reason


def resolve_message_type(name: str) -> type:
    """Return the message class for ``name`` ('sensor_msgs/msg/Imu', 'sensor_msgs/Imu', 'sensor_msgs.msg.Imu')."""
    return resolve_interface_type(name, "msg")


def resolve_service_type(name: str) -> Any:  # a generated class: Request, Response, ...
    """Return the service class for ``name`` ('std_srvs/srv/Trigger' or 'std_srvs/Trigger')."""
    return resolve_interface_type(name, "srv")


def resolve_action_type(name: str) -> Any:  # a generated class: Goal, Result, Feedback
    """Return the action class for ``name`` ('test_msgs/action/Fibonacci' or 'test_msgs/Fibonacci')."""
    return resolve_interface_type(name, "action")


def resolve_interface_type(name: str, kind: InterfaceKind = "msg") -> type:
    """Validate ``name``, import ``<pkg>.<kind>`` and return the class, or raise MessageTypeError."""
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, not {kind!r}")
    package, type_name = _parse(name, kind)
    module = _import_interface_module(name, package, kind)
    cls = getattr(module, type_name, None)
    if cls is None:
        raise MessageTypeError(name, "type", f"package {package!r} has no {kind} type {type_name!r}")
    return _interface_class(name, cls, kind)


def _parse(name: str, kind: InterfaceKind) -> tuple[str, str]:
    """Split and validate the name; returns (package, type name). Pure string work, no imports."""
    if not isinstance(name, str):
        raise MessageTypeError(repr(name), "format", "the type name must be a string")
    separator = "/" if "/" in name else "."
    parts = name.split(separator)
    # 'pkg.Type' is not accepted: the dotted form is only the full Python module path.
    if len(parts) == 2 and separator == "/":
        parts.insert(1, kind)
    if len(parts) != 3:
        raise MessageTypeError(name, "format", f"expected {_ACCEPTED_FORMS.format(kind=kind)}")
    package, found_kind, type_name = parts
    if not _PACKAGE_RE.fullmatch(package):
        raise MessageTypeError(name, "format", f"package {package!r} does not match {_PACKAGE_RE.pattern}")
    if not _KIND_RE.fullmatch(found_kind):
        raise MessageTypeError(name, "format", f"{found_kind!r} is not one of msg, srv, action")
    if not _TYPE_RE.fullmatch(type_name):
        raise MessageTypeError(name, "format", f"type {type_name!r} does not match {_TYPE_RE.pattern}")
    if found_kind != kind:
        raise MessageTypeError(name, "kind", f"expected a {kind} type, got a {found_kind} type")
    return package, type_name


def _import_interface_module(name: str, package: str, kind: str) -> object:
    """Import ``<package>.<kind>``; locate both first so no unrelated package's code ever runs."""
    try:
        spec = importlib.util.find_spec(package)  # top-level lookup: does not import anything
    except ValueError:  # a module in sys.modules without __spec__: not an installed package
        spec = None
    if spec is None or spec.submodule_search_locations is None:
        raise MessageTypeError(
            name, "package", f"package {package!r} is not installed (no Python package of that name)"
        )
    # PathFinder looks inside the package directory without executing the package's __init__.
    sub_spec = importlib.machinery.PathFinder.find_spec(f"{package}.{kind}", list(spec.submodule_search_locations))
    if sub_spec is None:
        raise MessageTypeError(name, "package", f"package {package!r} has no {kind} interfaces")
    try:
        return importlib.import_module(f"{package}.{kind}")
    except ImportError as exc:
        raise MessageTypeError(name, "package", f"cannot import {package}.{kind}: {exc}") from exc


def _interface_class(name: str, cls: object, kind: str) -> type:
    """Return ``cls`` if it is a generated interface class of the wanted kind; reject anything else."""
    if not isinstance(cls, type) or not all(hasattr(cls, attr) for attr in _REQUIRED_ATTRIBUTES[kind]):
        raise MessageTypeError(name, "type", f"{name!r} exists but is not a ROS {kind} class")
    return cls
