"""What the emulated server received, recorded thread-safely, with a condition to wait on."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MESSAGE_KINDS = ("telemetry", "events", "commands", "entity_events")


@dataclass(frozen=True)
class ReceivedMessage:
    """One JetStream message a server-side processor consumed (and acked)."""

    subject: str
    data: bytes
    headers: dict[str, str]
    stream_seq: int

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass(frozen=True)
class RequestRecord:
    """One HTTP request: header NAMES only, never values (they carry secrets)."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    header_names: tuple[str, ...]


class Recorder:
    """Append-only logs guarded by one re-entrant condition, notified on every change.

    The condition's lock is shared with the store so a wait_for predicate can read any snapshot.
    """

    def __init__(self) -> None:
        self.condition = threading.Condition(threading.RLock())
        self._messages: dict[str, list[ReceivedMessage]] = {kind: [] for kind in MESSAGE_KINDS}
        self._requests: list[RequestRecord] = []

    def add_message(self, kind: str, message: ReceivedMessage) -> None:
        with self.condition:
            self._messages[kind].append(message)
            self.condition.notify_all()

    def add_request(self, record: RequestRecord) -> None:
        with self.condition:
            self._requests.append(record)
            self.condition.notify_all()

    def messages(self, kind: str) -> list[ReceivedMessage]:
        with self.condition:
            return list(self._messages[kind])

    def requests(self) -> list[RequestRecord]:
        with self.condition:
            return list(self._requests)

    def notify(self) -> None:
        with self.condition:
            self.condition.notify_all()

    def wait_for(
        self, predicate: Callable[[], bool], timeout: float, what: str, wake_every: float | None = None
    ) -> None:
        """Block until predicate() is true (re-checked on every notification) or raise TimeoutError.

        ``wake_every`` bounds each wait so predicates over state outside this recorder are re-read.
        """
        deadline = time.monotonic() + timeout
        with self.condition:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what or 'condition'}")
                self.condition.wait(remaining if wake_every is None else min(remaining, wake_every))
