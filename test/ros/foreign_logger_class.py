"""A pytest plugin that does to logging what ROS 2's `launch` does when it is imported.

launch_testing's and launch_pytest's plugins import `launch`, which calls `logging.setLoggerClass`
with a class whose loggers do not propagate (launch/logging/__init__.py, LaunchLogger). Loaded
with `-p foreign_logger_class`, before the conftest imports the library, as on a ROS install.
"""

from __future__ import annotations

import logging
from typing import Any

_Base: Any = logging.getLoggerClass()


class NonPropagatingLogger(_Base):  # type: ignore[misc]
    created: list[logging.Logger] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.propagate = False
        NonPropagatingLogger.created.append(self)


logging.setLoggerClass(NonPropagatingLogger)
