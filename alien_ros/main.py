"""Console script `bridge`: runs the alien_bridge node (what the launch file starts).

`ros2 run alien_ros bridge --ros-args --params-file config/bridge.yaml`. SIGINT / SIGTERM flush
what is queued (bounded wait), send the `shutdown` event, store status inactive, and exit 0.
"""

from __future__ import annotations

import logging
import sys

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

from alien.errors import AlienError
from alien_ros.bridge_node import BridgeNode
from alien_ros.message_types import MessageTypeError
from alien_ros.parameters import ParameterError


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s] [%(name)s]: %(message)s")
    rclpy.init(args=argv if argv is not None else sys.argv)
    node: BridgeNode | None = None
    try:
        node = BridgeNode()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ParameterError, MessageTypeError, AlienError) as exc:
        print(f"alien_bridge: {exc}", file=sys.stderr)
        return 2
    finally:
        if node is not None:
            node.shutdown()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
