"""Interface type resolution: real ROS classes for good names, a reasoned error for everything else."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
from sensor_msgs.msg import Imu
from std_srvs.srv import Trigger
from test_msgs.action import Fibonacci

from alien_ros.message_types import (
    MessageTypeError,
    resolve_action_type,
    resolve_interface_type,
    resolve_message_type,
    resolve_service_type,
)


@pytest.mark.parametrize("name", ["sensor_msgs/msg/Imu", "sensor_msgs/Imu", "sensor_msgs.msg.Imu"])
def test_message_name_forms_resolve_to_the_class(name: str) -> None:
    assert resolve_message_type(name) is Imu


@pytest.mark.parametrize("name", ["std_srvs/srv/Trigger", "std_srvs/Trigger", "std_srvs.srv.Trigger"])
def test_service_name_forms_resolve_to_the_class(name: str) -> None:
    assert resolve_service_type(name) is Trigger


@pytest.mark.parametrize("name", ["test_msgs/action/Fibonacci", "test_msgs/Fibonacci", "test_msgs.action.Fibonacci"])
def test_action_name_forms_resolve_to_the_class(name: str) -> None:
    assert resolve_action_type(name) is Fibonacci


def test_generic_resolver_takes_the_kind() -> None:
    assert resolve_interface_type("std_srvs/srv/Trigger", "srv") is Trigger
    with pytest.raises(ValueError, match="kind must be one of"):
        resolve_interface_type("std_srvs/srv/Trigger", "topic")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name",
    [
        "os/msg/system",  # lower-case type: could be a function, never a generated class
        "sensor_msgs/msg/Imu; import os",
        "__import__('os')",
        "../x",
        "../../etc/msg/Passwd",
        "sensor_msgs/msg/../Imu",
        "sensor_msgs/msg/Imu/extra",
        "sensor_msgs.Imu",  # the dotted form is only the full module path
        "sensor_msgs/msg.Imu",
        "",
        "sensor_msgs//Imu",
        " sensor_msgs/msg/Imu",
        "sensor_msgs/msg/Imu\n",
        "sensor_msgs/msg/Imu_",
        "sensor_msgs/msg/Metaclass_Imu",  # generated helper classes are not interfaces
        "_private/msg/Imu",
        "sénsor_msgs/msg/Imu",
    ],
)
def test_malformed_and_injection_names_are_format_errors(name: str) -> None:
    modules_before = set(sys.modules)
    with pytest.raises(MessageTypeError) as caught:
        resolve_message_type(name)
    assert caught.value.reason == "format"
    assert repr(name) in str(caught.value)
    assert set(sys.modules) == modules_before  # rejected before any import happened


@pytest.mark.parametrize(
    "name", ["Sensor_msgs/msg/Imu", "sensor_msgs/msg/imu", "sensor_msgs/MSG/Imu", "SENSOR_MSGS/Imu"]
)
def test_case_errors_are_format_errors(name: str) -> None:
    with pytest.raises(MessageTypeError, match="invalid ROS interface type") as caught:
        resolve_message_type(name)
    assert caught.value.reason == "format"


def test_non_string_is_a_format_error() -> None:
    with pytest.raises(MessageTypeError) as caught:
        resolve_message_type(42)  # type: ignore[arg-type]
    assert caught.value.reason == "format"


@pytest.mark.parametrize(
    ("resolver", "name", "expected"),
    [
        (resolve_message_type, "std_srvs/srv/Trigger", "expected a msg type, got a srv type"),
        (resolve_service_type, "sensor_msgs/msg/Imu", "expected a srv type, got a msg type"),
        (resolve_action_type, "std_srvs/srv/Trigger", "expected a action type, got a srv type"),
    ],
)
def test_kind_mismatch_is_reported(resolver: object, name: str, expected: str) -> None:
    with pytest.raises(MessageTypeError, match=expected) as caught:
        resolver(name)  # type: ignore[operator]
    assert caught.value.reason == "kind"


def test_missing_package_is_a_package_error() -> None:
    with pytest.raises(MessageTypeError, match="'no_such_pkg_xyz' is not installed") as caught:
        resolve_message_type("no_such_pkg_xyz/msg/Thing")
    assert caught.value.reason == "package"
    assert "no_such_pkg_xyz/msg/Thing" in str(caught.value)


def test_plain_module_is_not_a_package() -> None:
    # 'os' is a module, not a package: found, but there is nothing to import below it.
    with pytest.raises(MessageTypeError, match="'os' is not installed") as caught:
        resolve_message_type("os/msg/System")
    assert caught.value.reason == "package"


def test_package_without_that_kind_is_a_package_error() -> None:
    with pytest.raises(MessageTypeError, match="has no action interfaces") as caught:
        resolve_action_type("sensor_msgs/action/Imu")
    assert caught.value.reason == "package"


def test_unrelated_package_code_is_not_executed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A package without a msg/ subpackage must be rejected without running its __init__.
    package = tmp_path / "sneaky_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("raise RuntimeError('package code ran')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    with pytest.raises(MessageTypeError) as caught:
        resolve_message_type("sneaky_pkg/msg/Thing")
    assert caught.value.reason == "package"
    assert "sneaky_pkg" not in sys.modules


def test_missing_type_is_a_type_error() -> None:
    with pytest.raises(MessageTypeError, match="package 'sensor_msgs' has no msg type 'NoSuchType'") as caught:
        resolve_message_type("sensor_msgs/msg/NoSuchType")
    assert caught.value.reason == "type"


def test_non_interface_class_is_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A package shaped like an interface package whose attribute is an ordinary class or function.
    msg_dir = tmp_path / "fake_iface_pkg" / "msg"
    msg_dir.mkdir(parents=True)
    (msg_dir.parent / "__init__.py").write_text("")
    (msg_dir / "__init__.py").write_text("class Plain:\n    pass\n\n\ndef Function():\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    try:
        for type_name in ("Plain", "Function"):
            with pytest.raises(MessageTypeError, match="is not a ROS msg class") as caught:
                resolve_message_type(f"fake_iface_pkg/msg/{type_name}")
            assert caught.value.reason == "type"
    finally:
        sys.modules.pop("fake_iface_pkg.msg", None)
        sys.modules.pop("fake_iface_pkg", None)


def test_error_is_a_value_error() -> None:
    assert issubclass(MessageTypeError, ValueError)
