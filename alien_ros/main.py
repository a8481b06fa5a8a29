"""Console script `bridge`: runs the alien_bridge node (what the launch file starts).

`ros2 run alien_ros bridge --ros-args --params-file config/bridge.yaml`. SIGINT / SIGTERM flush
what is queued (bounded wait), send the `shutdown` event, store status inactive, and exit 0.
A bad params file, bad `--ros-args` or a parameter the bridge cannot use is one line on stderr
and exit code 2.
"""

from __future__ import annotations

import logging
import re
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

from alien.errors import AlienError
from alien_ros import params_file, ros_arguments
from alien_ros.bridge_node import BridgeNode
from alien_ros.message_types import MessageTypeError
from alien_ros.parameters import ParameterError

EXIT_OK, EXIT_USAGE = 0, 2


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s] [%(name)s]: %(message)s")
    args = list(argv if argv is not None else sys.argv)
    stop_requested = install_stop_handlers()  # before rclpy.init, which chains to them
    try:
        for path in ros_arguments.parse(args, params_file.NODE_NAME).params_files:
            params_file.load(path)  # rcl's own message for these is a C source location
        rclpy.init(args=args)
    except params_file.ParamsFileError as exc:
        return _usage_error(str(exc))
    except RuntimeError as exc:  # rclpy's RCLError / UnknownROSArgsError: bad --ros-args
        return _usage_error(f"bad ROS arguments: {describe_rcl_error(exc)}")
    try:
        node = BridgeNode(argv=args)
    except (ParameterError, MessageTypeError, AlienError, params_file.ParamsFileError) as exc:
        rclpy.try_shutdown()
        return _usage_error(str(exc))
    return run(node, stop_requested)


def install_stop_handlers() -> threading.Event:
    """SIGINT / SIGTERM set the returned event instead of raising KeyboardInterrupt.

    rclpy's own handlers (installed by rclpy.init, which calls these afterwards) shut the
    context down and wake the executor, so the bridge stops without a KeyboardInterrupt that
    could land inside rclpy's C++ code (where it surfaces as a RuntimeError, mid-take).
    """
    stop_requested = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    return stop_requested


def run(node: BridgeNode, stop_requested: threading.Event) -> int:
    """Spin until stopped, then flush (bounded), send `shutdown`, and close; the exit code."""
    try:
        spin_until_stopped(node, stop_requested)
    finally:
        node.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=node.context)
    return EXIT_OK


def spin_until_stopped(node: BridgeNode, stop_requested: threading.Event) -> None:
    """Spin until a stop signal; whatever rclpy raises once it came is part of stopping.

    An exception with no signal and the context still up is a real failure and propagates.
    """
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as exc:
        if not stop_requested.is_set() and node.context.ok():
            raise
        node.get_logger().info(f"stopping: rclpy raised {type(exc).__name__} while the signal stopped it")


def describe_rcl_error(exc: RuntimeError) -> str:
    """The rcl error text without the C source locations it appends (`, at /src/rcl/arguments.c:380`)."""
    text = str(exc).removeprefix("failed to initialize rcl: ")
    if text.startswith("["):  # UnknownROSArgsError: the list of arguments rcl did not know
        return f"unknown arguments {text}"
    return re.sub(r", at \S+:\d+", "", text).strip()


def _usage_error(message: str) -> int:
    print(f"alien_bridge: {message}", file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
