"""The library's loggers: standard, propagating loggers, whatever logger class the process set.

ROS 2's `launch` package calls `logging.setLoggerClass()` with a class whose loggers do not
propagate; an `alien.*` logger created after `import launch` (a launch file, launch_testing's
pytest plugin) would then never reach the application's handlers or pytest's log capture.
Ours propagate, as Python's own loggers do.
"""

from __future__ import annotations

import logging


def get_logger(name: str) -> logging.Logger:
    """`logging.getLogger(name)`, propagating to its parents and the root logger."""
    logger = logging.getLogger(name)
    logger.propagate = True
    return logger
