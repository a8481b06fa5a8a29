"""Helpers for tests with real rclpy over DDS: a context per test, spinning with timeouts."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor


@contextmanager
def ros_context() -> Iterator[Context]:
    context = Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        rclpy.try_shutdown(context=context)


def spin_until(executor: SingleThreadedExecutor, predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Spin the test's own executor until `predicate` holds; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        executor.spin_once(timeout_sec=0.05)


def republish_until(
    executor: SingleThreadedExecutor,
    publish: Callable[[], None],
    predicate: Callable[[], bool],
    timeout: float,
    what: str,
    period: float = 0.25,
) -> None:
    """Publish every `period` seconds (best-effort QoS may drop one) until `predicate` holds."""
    deadline = time.monotonic() + timeout
    next_publish = 0.0
    while not predicate():
        now = time.monotonic()
        if now > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        if now >= next_publish:
            publish()
            next_publish = now + period
        executor.spin_once(timeout_sec=0.05)


def wait_matched(executor: SingleThreadedExecutor, publisher: Any, subscription_holder: Callable[[], Any]) -> None:
    """Both ends discovered each other (a volatile message published earlier would be lost)."""
    spin_until(
        executor,
        lambda: (
            publisher.get_subscription_count() > 0
            and subscription_holder() is not None
            and subscription_holder().get_publisher_count() > 0
        ),
        10,
        f"{publisher.topic_name} to match",
    )


def positions_by_entity(emulator: Any) -> dict[str, set[float]]:
    """Entity id -> the latitudes of the positions the emulator received from it."""
    by_entity: dict[str, set[float]] = {}
    for message in emulator.telemetry():
        data = message.json()
        if "position" in data["data"]:
            by_entity.setdefault(data["entity_id"], set()).add(data["data"]["position"]["latitude"])
    return by_entity
