"""Params files as rcl reads them (alien_ros.params_file) and the warnings for unused parameters.

The matching rules are checked against rclpy itself: a node in a namespace is given the file by
rcl, and what it received is compared with what `parameters_for` says it should have.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import rclpy
import yaml
from rclpy.context import Context
from rclpy.node import Node
from rclpy.parameter import Parameter

from alien_ros import params_file, ros_arguments
from alien_ros.parameter_check import warn_about_unused_parameters

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("key", "node", "applies"),
    [
        ("alien_bridge", "/alien_bridge", True),
        ("alien_bridge", "/robot1/alien_bridge", False),
        ("/alien_bridge", "/robot1/alien_bridge", False),
        ("/**/alien_bridge", "/alien_bridge", True),
        ("/**/alien_bridge", "/robot1/alien_bridge", True),
        ("/**/alien_bridge", "/fleet/robot1/alien_bridge", True),
        ("/**", "/robot1/alien_bridge", True),
        ("/*/alien_bridge", "/robot1/alien_bridge", True),
        ("/*/alien_bridge", "/alien_bridge", False),
        ("/robot1/alien_bridge", "/robot1/alien_bridge", True),
        ("/robot1/alien_bridge", "/robot2/alien_bridge", False),
        ("/**/alien_bridge", "/robot1/alien_bridge_2", False),
        ("/**/other", "/robot1/alien_bridge", False),
    ],
)
def test_which_sections_apply(key: str, node: str, applies: bool) -> None:
    assert params_file.applies(key, node) is applies


def _node_in(tmp_path: Path, document: dict[str, Any], namespace: str) -> tuple[Context, Node, list[str]]:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(document))
    argv = ["bridge", "--ros-args", "--params-file", str(path)]
    context = Context()
    rclpy.init(args=argv, context=context)
    node = Node(
        "alien_bridge", namespace=namespace, context=context, automatically_declare_parameters_from_overrides=True
    )
    return context, node, argv


@pytest.mark.parametrize("namespace", ["", "robot1", "fleet/robot1"])
@pytest.mark.parametrize("key", ["alien_bridge", "/**/alien_bridge", "/**", "/robot1/alien_bridge"])
def test_what_rcl_gives_a_node_is_what_parameters_for_says(tmp_path: Path, key: str, namespace: str) -> None:
    document = {key: {"ros__parameters": {"fix_topic": "/gps/fix", "fix": {"rate_hz": 5.0}}}}
    context, node, _ = _node_in(tmp_path, document, namespace)
    try:
        received = {
            name: node.get_parameter(name).value for name in ("fix_topic", "fix.rate_hz") if node.has_parameter(name)
        }
        assert received == params_file.parameters_for(document, node.get_fully_qualified_name())
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def test_rekeyed_makes_a_root_file_apply_in_any_namespace(tmp_path: Path) -> None:
    shipped = yaml.safe_load((ROOT / "config" / "bridge.yaml").read_text())
    assert list(shipped) == [params_file.NODE_KEY]  # the package's own file applies everywhere
    root_keyed = {
        "alien_bridge": {"ros__parameters": {"fix_topic": "/gps/fix", "entity_name": "robot1"}},
        "/robot2/alien_bridge": {"ros__parameters": {"entity_name": "robot2"}},
        "other_node": {"ros__parameters": {"x": 1}},
    }
    rekeyed = params_file.rekeyed(root_keyed, "alien_bridge")
    assert rekeyed == {
        "/**/alien_bridge": {"ros__parameters": {"fix_topic": "/gps/fix", "entity_name": "robot1"}},
        "/robot2/alien_bridge": {"ros__parameters": {"entity_name": "robot2"}},
        "other_node": {"ros__parameters": {"x": 1}},
    }
    assert params_file.parameters_for(rekeyed, "/robot1/alien_bridge") == {
        "fix_topic": "/gps/fix",
        "entity_name": "robot1",
    }
    assert params_file.parameters_for(rekeyed, "/robot2/alien_bridge")["entity_name"] == "robot2"  # later wins
    assert params_file.rekeyed(shipped, "alien_bridge") == {
        key: {"ros__parameters": values} for key, values in params_file.sections(shipped)
    }


def test_the_launch_files_copy_applies_in_a_namespace_and_is_reused(tmp_path: Path) -> None:
    """What bridge.launch.py passes on: rcl gives /robot1/alien_bridge the root-keyed file's values."""
    root_keyed = tmp_path / "robot1.yaml"
    root_keyed.write_text(yaml.safe_dump({"alien_bridge": {"ros__parameters": {"fix_topic": "/gps/fix"}}}))
    copies = tmp_path / "copies"
    copies.mkdir()
    copy = params_file.for_any_namespace(str(root_keyed), copies)
    assert copy != str(root_keyed) and params_file.for_any_namespace(str(root_keyed), copies) == copy
    assert Path(copy).name == "robot1.yaml"  # the node's warnings name the user's file
    assert [p.relative_to(copies) for p in copies.rglob("*") if p.is_file()] == [Path(copy).relative_to(copies)]
    assert Path(copy).stat().st_mode & 0o077 == 0
    context, node, _ = _node_in(tmp_path, params_file.load(copy), "robot1")
    try:
        assert node.get_parameter("fix_topic").value == "/gps/fix"
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    shipped = str(ROOT / "config" / "bridge.yaml")
    assert params_file.for_any_namespace(shipped, copies) == shipped  # already applies everywhere


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "not found"),
        ("alien_bridge:\n  ros__parameters:\n    fix_topic: [1, 2\n", "not valid YAML at line"),
        ("- a list\n", "must map node names"),
    ],
)
def test_a_params_file_that_cannot_be_used_is_named(tmp_path: Path, content: str | None, words: str) -> None:
    path = tmp_path / "robot1.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(params_file.ParamsFileError) as raised:
        params_file.load(path)
    assert str(path) in str(raised.value) and words in str(raised.value)


def test_ros_arguments_are_read_from_every_ros_args_section() -> None:
    argv = ["bridge", "--ros-args", "--params-file", "a.yaml", "-p", "fix_topic:=/x", "-r", "__ns:=/r1", "--"]
    argv += ["--not-ros", "-p", "ignored:=1", "--ros-args", "--param", "alien_bridge:battery_topic:=b"]
    argv += ["-p", "other_node:x:=1", "--params-file", "b.yaml"]
    parsed = ros_arguments.parse(argv, "alien_bridge")
    assert parsed.params_files == ["a.yaml", "b.yaml"]
    assert parsed.parameters == {"fix_topic": "/x", "battery_topic": "b"}


def _declared_node(context: Context, namespace: str) -> Node:
    node = Node("alien_bridge", namespace=namespace, context=context)
    for name in ("fix_topic", "battery_topic", "mappings.imu.topic"):
        node.declare_parameter(name, "")
    return node


def test_a_root_keyed_file_in_a_namespace_and_a_misspelt_name_are_warned(tmp_path: Path) -> None:
    document = {
        "alien_bridge": {"ros__parameters": {"fix_topic": "/gps/fix"}},
        "/**/alien_bridge": {"ros__parameters": {"fix_topc": "/gps/fix", "mappings": {"imuu": {"topic": "imu"}}}},
    }
    path = tmp_path / "robot1.yaml"
    path.write_text(yaml.safe_dump(document))
    argv = ["bridge", "--ros-args", "--params-file", str(path), "-p", "battery_topik:=/bms"]
    context = Context()
    rclpy.init(args=argv, context=context)
    node = _declared_node(context, "robot1")
    try:
        warnings = warn_about_unused_parameters(node, argv, [Parameter("batery_topic", value="x")])
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    assert warnings == [
        f"params file {str(path)!r}: its section 'alien_bridge' does not apply to /robot1/alien_bridge, so none of"
        " its parameters are used; key it '/**/alien_bridge:' to apply in any namespace",
        f"parameter 'fix_topc' (params file {str(path)!r}) is not a parameter of /robot1/alien_bridge, ignored;"
        " did you mean 'fix_topic'?",
        f"parameter 'mappings.imuu.topic' (params file {str(path)!r}) is not a parameter of /robot1/alien_bridge,"
        " ignored; did you mean 'mappings.imu.topic'?",
        "parameter 'battery_topik' (--ros-args -p) is not a parameter of /robot1/alien_bridge, ignored;"
        " did you mean 'battery_topic'?",
        "parameter 'batery_topic' (parameter overrides) is not a parameter of /robot1/alien_bridge, ignored;"
        " did you mean 'battery_topic'?",
    ]


def test_a_section_per_robot_is_not_a_mistake() -> None:
    per_robot = {f"/{r}/alien_bridge": {"ros__parameters": {"entity_name": r}} for r in ("robot1", "robot2")}
    assert params_file.meant_for(per_robot, "alien_bridge", "/robot1/alien_bridge") == []
    assert params_file.meant_for(per_robot, "alien_bridge", "/robot3/alien_bridge") == [
        "/robot1/alien_bridge",
        "/robot2/alien_bridge",
    ]
    wildcard = {"/**": {"ros__parameters": {"use_sim_time": True}}, **per_robot}  # no section for robot3 still
    assert len(params_file.meant_for(wildcard, "alien_bridge", "/robot3/alien_bridge")) == 2


def test_known_parameters_and_an_applying_file_give_no_warning(tmp_path: Path) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text(yaml.safe_dump({"/**/alien_bridge": {"ros__parameters": {"fix_topic": "/gps/fix"}}}))
    argv = ["bridge", "--ros-args", "--params-file", str(path), "-p", "use_sim_time:=false"]
    context = Context()
    rclpy.init(args=argv, context=context)
    node = _declared_node(context, "robot1")
    try:
        assert warn_about_unused_parameters(node, argv, [Parameter("fix_topic", value="x")]) == []
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)
