"""Console script `bridge`: runs the alien_bridge node (what the launch file starts).

`ros2 run alien_ros bridge --ros-args --params-file config/bridge.yaml`. SIGINT / SIGTERM flush
what is queued (bounded wait), send the `shutdown` event, store status inactive, and exit 0, at
any moment: while the modules load, while the node is built, while registration is retried.
Signals after the first one do not cut the (bounded) shutdown short. A bad params file, bad
`--ros-args` or a parameter the bridge cannot use is one line on stderr and exit code 2.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

_stop_requested = threading.Event()


def _on_stop_signal(signum: int, frame: FrameType | None) -> None:
    _stop_requested.set()


def _install_stop_handlers() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _on_stop_signal)


# Before the imports below: rclpy and numpy take about a second to load, and a Ctrl-C meanwhile
# would be a KeyboardInterrupt traceback (launch files and `ros2 run` pass Ctrl-C on at once).
if threading.current_thread() is threading.main_thread():
    _install_stop_handlers()

import logging  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
from collections.abc import Sequence  # noqa: E402

import rclpy  # noqa: E402
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor  # noqa: E402

from alien.errors import AlienError  # noqa: E402
from alien_ros import params_file, ros_arguments  # noqa: E402
from alien_ros.bridge_node import BridgeNode  # noqa: E402
from alien_ros.message_types import MessageTypeError  # noqa: E402
from alien_ros.parameters import ParameterError  # noqa: E402

EXIT_OK, EXIT_USAGE = 0, 2
_logger = logging.getLogger(params_file.NODE_NAME)  # for what is said once rclpy's context is gone


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s] [%(name)s]: %(message)s")
    args = list(argv if argv is not None else sys.argv)
    stop_requested = install_stop_handlers()  # before rclpy.init, which chains to them
    try:
        return _start_and_run(args, stop_requested)
    finally:
        ignore_stop_signals()
        if stop_requested.is_set():
            _logger.info("stopped")  # the last line of a clean stop


def _start_and_run(args: list[str], stop_requested: threading.Event) -> int:
    if stop_requested.is_set():
        return EXIT_OK  # stopped while the modules loaded: nothing started, nothing to flush
    try:
        for path in ros_arguments.parse(args, params_file.NODE_NAME).params_files:
            params_file.load(path)  # rcl's own message for these is a C source location
        rclpy.init(args=args)
    except params_file.ParamsFileError as exc:
        return _usage_error(str(exc))
    except RuntimeError as exc:  # rclpy's RCLError / UnknownROSArgsError: bad --ros-args
        return _usage_error(f"bad ROS arguments: {describe_rcl_error(exc)}")
    try:
        # The executor first: once the node's alien client runs (it starts last), a Ctrl-C may
        # come at any moment, and rclpy objects built after it are half built (RCLError, and
        # "Exception ignored in __del__" tracebacks when they are collected).
        executor = SingleThreadedExecutor()
        node = BridgeNode(argv=args)
    except (ParameterError, MessageTypeError, AlienError, params_file.ParamsFileError) as exc:
        rclpy.try_shutdown()
        return _usage_error(str(exc))
    except Exception:
        rclpy.try_shutdown()
        if stop_requested.is_set():
            # the signal's rclpy handler shut the context down under the node being built; the
            # alien client starts last, so nothing was started and nothing needs flushing
            return EXIT_OK
        raise
    return run(node, executor, stop_requested)


def install_stop_handlers() -> threading.Event:
    """SIGINT / SIGTERM set the returned event instead of raising KeyboardInterrupt.

    rclpy's own handlers (installed by rclpy.init, which calls these afterwards) shut the
    context down and wake the executor, so the bridge stops without a KeyboardInterrupt that
    could land inside rclpy's C++ code (where it surfaces as a RuntimeError, mid-take). The
    event is set already when a signal came while this module loaded.
    """
    _install_stop_handlers()
    return _stop_requested


def ignore_stop_signals() -> None:
    """The bridge has stopped: a further Ctrl-C must not kill the exiting interpreter.

    Python restores the default handlers while it shuts down, and `ros2 launch` forwards the
    Ctrl-C the terminal sent to the bridge as well: without this, the second one ends the
    process with -SIGINT instead of 0.
    """
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)


def run(node: BridgeNode, executor: SingleThreadedExecutor, stop_requested: threading.Event) -> int:
    """Spin until stopped, then flush (bounded), send `shutdown`, and close; the exit code."""
    try:
        if not stop_requested.is_set():  # a signal before rclpy.init never reached rclpy
            spin_until_stopped(node, executor, stop_requested)
    finally:
        node.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=node.context)
    return EXIT_OK


def spin_until_stopped(node: BridgeNode, executor: SingleThreadedExecutor, stop_requested: threading.Event) -> None:
    """Spin until a stop signal; whatever rclpy raises once it came is part of stopping.

    An exception with no signal and the context still up is a real failure and propagates.
    """
    try:
        executor.add_node(node)  # raises too when the signal just shut the context down
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as exc:
        if not stop_requested.is_set() and node.context.ok():
            raise
        # not the node's logger: with the context shut down, rcl fails to copy it to /rosout
        # and says so on stderr
        _logger.info("stopping: rclpy raised %s while the signal stopped it", type(exc).__name__)


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
