"""Launch the alien_bridge node: `ros2 launch alien_ros bridge.launch.py`.

Arguments: namespace, params_file (default: the package's config/bridge.yaml), log_level,
use_sim_time. The params file applies in any namespace: a section keyed `alien_bridge:` (which
rcl applies only at the root namespace) is passed on keyed `/**/alien_bridge:`. Remap inputs on
the command line of a launch file that includes this one, or set fix_topic / battery_topic /
diagnostics_topic in the params file (see docs/bridge.md#several-robots-on-one-ros-graph).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from alien_ros import params_file


def _bridge(context: LaunchContext) -> list[Node]:
    # a missing or malformed file fails the launch, naming it
    params = params_file.for_any_namespace(LaunchConfiguration("params_file").perform(context))
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
