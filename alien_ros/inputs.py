"""The bridge's input subscriptions: a node and an executor of their own, in a thread of their own.

The bridge node keeps what needs rclpy's SingleThreadedExecutor (timers, the command router's
service and action clients, its status publisher). Its inputs live on a second node in the same
process and context, spun by rclpy's EventsExecutor (C++; it cannot run guard conditions, which
this node has none of) in its own thread, so that receiving a message costs no pass through the
Python wait-set of a SingleThreadedExecutor (docs/performance.md#the-bridges-ros-path). Where
rclpy has no EventsExecutor, the same thread runs a SingleThreadedExecutor.

The input node is hidden (its name starts with "_") and takes no command-line arguments: the
bridge node resolves every topic (its namespace and remappings applied), and the input node
subscribes to the resolved name. Its subscriptions, their QoS refresh (`auto` follows the
publishers) and their callbacks all run on the input thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile
from rclpy.serialization import deserialize_message
from rclpy.subscription import Subscription

from alien_ros.cdr import CdrError
from alien_ros.qos import describe, profile_for


def _events_executor() -> Callable[..., Any] | None:
    """The EventsExecutor of rclpy (7.1.6 in Jazzy and 9.1 in Kilted have it), or None."""
    try:
        from rclpy.experimental import EventsExecutor
    except ImportError:  # an rclpy without it: the input thread runs a SingleThreadedExecutor
        return None
    return EventsExecutor


EventsExecutor = _events_executor()

Callback = Callable[[Any], None]
Decoder = Callable[[bytes], Any]
_REFRESH_PERIOD_S = 1.0  # how soon an `auto` input follows a change in the number of its publishers
_FULL_REFRESH_EVERY = 10  # ... and every this many periods, their QoS read again (a publisher replaced by another)
_SPIN_TIMEOUT_S = 1.0  # a wake-up while idle, at most: stop() wakes the thread at once


class Input:
    """One subscription whose QoS may follow its publishers (`auto`).

    With a `decoder` it takes the serialized bytes and decodes them itself (alien_ros.cdr); bytes
    the decoder does not read are deserialized by rclpy, so `callback` always gets the message.
    """

    def __init__(
        self, inputs: Inputs, topic: str, msg_type: type, qos: str, callback: Callback, decoder: Decoder | None
    ) -> None:
        self.inputs, self.topic, self.msg_type, self.qos = inputs, topic, msg_type, qos
        self.callback = self._decoding(callback, decoder) if decoder is not None else callback
        self.raw = decoder is not None
        self.profile: QoSProfile | None = None
        self.subscription: Subscription | None = None
        self._publishers = -1  # as counted at the last refresh
        self.refresh()

    def _decoding(self, callback: Callback, decoder: Decoder) -> Callback:
        msg_type = self.msg_type

        def on_bytes(data: bytes) -> None:
            try:
                msg = decoder(data)
            except CdrError:
                msg = deserialize_message(data, msg_type)  # another encapsulation: rclpy reads it
            callback(msg)

        return on_bytes

    def refresh(self, *, full: bool = True) -> None:
        """(Re)subscribe when the QoS the publishers call for differs from the current one.

        Not `full`: only when the number of publishers changed (counting them is cheap; reading
        their QoS builds a profile per publisher, which an idle bridge would pay every second).
        """
        node = self.inputs.node
        if self.subscription is not None and self.qos != "auto":
            return  # a fixed QoS: the publishers do not change it
        count = node.count_publishers(self.topic)
        if not full and count == self._publishers:
            return
        self._publishers = count
        publishers = [info.qos_profile for info in node.get_publishers_info_by_topic(self.topic)]
        profile = profile_for(self.qos, publishers)
        if self.profile is not None and describe(profile) == describe(self.profile):
            return
        if self.subscription is not None:
            node.destroy_subscription(self.subscription)
        self.subscription = node.create_subscription(self.msg_type, self.topic, self.callback, profile, raw=self.raw)
        self.profile = profile
        self.inputs.logger.info(
            f"subscribed to {self.topic} ({self.msg_type.__name__}) with qos {describe(profile)}"
            + (f" (qos {self.qos}, {len(publishers)} publisher(s))" if self.qos == "auto" else "")
        )


class Inputs:
    """The input subscriptions of `bridge`, on a hidden node spun by an executor in a thread of its own."""

    def __init__(self, bridge: Node) -> None:
        self.bridge = bridge
        self.logger = bridge.get_logger()
        self.node = Node(
            f"_{bridge.get_name()}_inputs",
            namespace=bridge.get_namespace(),
            context=bridge.context,
            use_global_arguments=False,  # the bridge node resolved every name it subscribes to
            start_parameter_services=False,
            enable_rosout=False,
        )
        self.executor: Any = (EventsExecutor or SingleThreadedExecutor)(context=bridge.context)
        self.executor.add_node(self.node)  # before the subscriptions: the EventsExecutor sees those made after
        self.items: list[Input] = []
        self._running = True
        self._refreshes = 0
        self._thread = threading.Thread(target=self._spin, name="alien-ros-inputs", daemon=True)

    @property
    def events_executor(self) -> bool:
        return EventsExecutor is not None

    def add(self, topic: str, msg_type: type, qos: str, callback: Callback, decoder: Decoder | None = None) -> Input:
        """Subscribe to `topic` as the bridge node resolves it (before start(), from the constructing thread)."""
        item = Input(self, self.bridge.resolve_topic_name(topic), msg_type, qos, callback, decoder)
        self.items.append(item)
        return item

    def start(self) -> None:
        self.node.create_timer(_REFRESH_PERIOD_S, self._refresh)
        self._thread.start()

    def stop(self) -> None:
        """Stop taking messages (idempotent): the thread ends, the node is destroyed."""
        if not self._running:
            return
        self._running = False
        if self._thread.is_alive():
            self.executor.wake()
            self._thread.join(timeout=5)
        self.executor.remove_node(self.node)
        self.node.destroy_node()
        self.executor.shutdown()

    def _refresh(self) -> None:
        self._refreshes += 1
        full = self._refreshes % _FULL_REFRESH_EVERY == 0
        for item in self.items:
            item.refresh(full=full)

    def _spin(self) -> None:
        # spin_once in a loop: the wheels' EventsExecutor.spin() holds the GIL while it waits
        # (context.ok() is not asked per message: it takes a lock; a shut-down context raises instead)
        said: set[str] = set()
        spin_once = self.executor.spin_once
        while self._running:
            try:
                spin_once(timeout_sec=_SPIN_TIMEOUT_S)
            except ExternalShutdownException:
                return  # the context was shut down (Ctrl-C): the bridge node is stopping too
            except Exception as exc:  # noqa: BLE001 - one bad message must not stop every input
                if not self._running or not self.bridge.context.ok():
                    return
                text = f"{type(exc).__name__}: {exc}"
                # said once at ERROR, then at DEBUG: a publisher repeating the same bad message floods nothing
                (self.logger.debug if text in said else self.logger.error)(f"an input message was not taken: {text}")
                said.add(text)
