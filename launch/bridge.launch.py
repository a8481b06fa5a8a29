"""Launch the alien_bridge node: `ros2 launch alien_ros bridge.launch.py`.

Arguments: namespace, params_file (default: the package's config/bridge.yaml), log_level,
use_sim_time. The params file applies in any namespace: a section keyed `alien_bridge:` (which
rcl applies only at the root namespace) is passed on keyed `/**/alien_bridge:`. Remap inputs on
the command line of a launch file that includes this one, or set fix_topic / battery_topic /
diagnostics_topic in the params file (see README, "Wiring").
"""

import os
import tempfile

import yaml
from ament_index_python.packages import get_package_share_directory
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from alien_ros import params_file


def _params_for_any_namespace(path: str) -> str:
    """`path` itself, or a copy keyed to apply in any namespace when it is keyed for the root one."""
    document = params_file.load(path)  # a missing or malformed file fails the launch, naming it
    rekeyed = params_file.rekeyed(document, params_file.NODE_NAME)
    if list(rekeyed) == list(document):
        return path
    with tempfile.NamedTemporaryFile("w", prefix="alien_bridge_", suffix=".yaml", delete=False) as copy:
        yaml.safe_dump(rekeyed, copy, sort_keys=False)
    return copy.name


def _bridge(context: LaunchContext) -> list[Node]:
    params = _params_for_any_namespace(LaunchConfiguration("params_file").perform(context))
    return [
        Node(
            package="alien_ros",
            executable="bridge",
            name=params_file.NODE_NAME,
            namespace=LaunchConfiguration("namespace"),
            parameters=[params, {"use_sim_time": LaunchConfiguration("use_sim_time")}],
            arguments=["--ros-args", "--log-level", LaunchConfiguration("log_level")],
            output="screen",
            emulate_tty=True,
        )
    ]


def generate_launch_description() -> LaunchDescription:
    default_params = os.path.join(get_package_share_directory("alien_ros"), "config", "bridge.yaml")
    return LaunchDescription(
        [
            DeclareLaunchArgument("namespace", default_value="", description="namespace of the node and its topics"),
            DeclareLaunchArgument("params_file", default_value=default_params, description="parameters file"),
            DeclareLaunchArgument("log_level", default_value="info", description="debug | info | warn | error"),
            DeclareLaunchArgument("use_sim_time", default_value="false", description="use /clock"),
            OpaqueFunction(function=_bridge),
        ]
    )
