"""Fixtures shared by the split test modules here, defined beside their helpers in the *_support modules."""

import pytest

# their asserts report as a test's do
pytest.register_assert_rewrite("emulator_support", "emulator_v01_support", "encoders_support")

from emulator_support import http  # noqa: E402
from emulator_v01_support import edge_errors, edge_nc  # noqa: E402

__all__ = ["edge_errors", "edge_nc", "http"]
