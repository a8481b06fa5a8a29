"""What the emulated server received, recorded thread-safely, with a condition to wait on."""

from __future__ import annotations

import base64
import copy
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

MESSAGE_KINDS = ("telemetry", "events", "commands", "entity_events")


@dataclass(frozen=True)
class ReceivedMessage:
    """One JetStream message a server-side processor consumed (and acked)."""

    subject: str
    data: bytes
    headers: dict[str, str]
    stream_seq: int
    stored_at: datetime | None = None  # when the stream stored it (the server's clock)

    def json(self) -> Any:
        return json.loads(self.data)


Verdict = Literal["accepted", "ignored", "rejected"]


@dataclass(frozen=True)
class TelemetryVerdict:
    """What the v0.1 telemetry worker did with one delivery of one message.

    ``accepted``: applied (rc: written to the entity state); ``ignored``: acked without effect (rc:
    not newer than the last message of its type; v0.1.1: a type it does not decode); ``rejected``:
    the handler failed with ``reason`` and the message was NAKed (redelivered) or, on rc's third
    delivery, quarantined.
    """

    outcome: Verdict
    subject: str
    data: bytes
    stream_seq: int
    delivery: int
    reason: str | None = None
    message_type: str | None = None
    entity_id: str | None = None
    org_id: str | None = None
    timestamp: str | None = None
    warnings: tuple[str, ...] = ()
    quarantined: bool = False

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass(frozen=True)
class QuarantinedMessage:
    """One record on CONSTELLATION_QUARANTINE (rc; pkg/services/workers/base.go QuarantineRecord)."""

    subject: str
    record: dict[str, Any] = field(repr=False)

    @property
    def original_subject(self) -> str:
        return str(self.record["original_subject"])

    @property
    def original_data(self) -> bytes:
        return base64.b64decode(self.record["original_data"])  # Go marshals []byte as base64

    @property
    def error(self) -> str:
        return str(self.record["error"])

    @property
    def num_delivered(self) -> int:
        return int(self.record["num_delivered"])

    @property
    def stream_sequence(self) -> int:
        return int(self.record["stream_sequence"])

    def original_json(self) -> Any:
        return json.loads(self.original_data)


@dataclass(frozen=True)
class RequestRecord:
    """One HTTP request: header NAMES only, never values (they carry secrets)."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    header_names: tuple[str, ...]


class _Condition(threading.Condition):
    """A condition that counts its notifications, so waiters can evaluate outside the lock."""

    def __init__(self) -> None:
        super().__init__(threading.RLock())
        self.generation = 0

    def notify_all(self) -> None:
        self.generation += 1
        super().notify_all()


class Recorder:
    """Append-only logs guarded by one re-entrant condition, notified on every change.

    The condition's lock is shared with the store so a wait_for predicate can read any snapshot.
    """

    def __init__(self) -> None:
        self.condition = _Condition()
        self._messages: dict[str, list[ReceivedMessage]] = {kind: [] for kind in MESSAGE_KINDS}
        self._requests: list[RequestRecord] = []
        self._verdicts: list[TelemetryVerdict] = []
        self._quarantined: list[QuarantinedMessage] = []
        self._admitted: set[str] = set()
        self._worker_states: dict[str, dict[str, Any]] = {}  # v0.1.1: the worker's in-memory state

    def add_message(self, kind: str, message: ReceivedMessage) -> None:
        with self.condition:
            self._messages[kind].append(message)
            self.condition.notify_all()

    def add_request(self, record: RequestRecord) -> None:
        with self.condition:
            self._requests.append(record)
            self.condition.notify_all()

    def set_worker_state(self, entity_id: str, state: dict[str, Any]) -> None:
        with self.condition:
            self._worker_states[entity_id] = copy.deepcopy(state)
            self.condition.notify_all()

    def worker_state(self, entity_id: str) -> dict[str, Any] | None:
        with self.condition:
            state = self._worker_states.get(entity_id)
            return copy.deepcopy(state) if state is not None else None

    def add_verdict(self, verdict: TelemetryVerdict) -> None:
        with self.condition:
            self._verdicts.append(verdict)
            self.condition.notify_all()

    def verdicts(self, outcome: Verdict) -> list[TelemetryVerdict]:
        with self.condition:
            return [v for v in self._verdicts if v.outcome == outcome]

    def add_quarantined(self, record: QuarantinedMessage) -> None:
        with self.condition:
            self._quarantined.append(record)
            self.condition.notify_all()

    def quarantined(self) -> list[QuarantinedMessage]:
        with self.condition:
            return list(self._quarantined)

    def admit(self, entity_id: str, admitted: bool = True) -> None:
        """The server's in-memory entity registry (telemetry admission)."""
        with self.condition:
            if admitted:
                self._admitted.add(entity_id)
            else:
                self._admitted.discard(entity_id)
            self.condition.notify_all()

    def admitted(self) -> frozenset[str]:
        with self.condition:
            return frozenset(self._admitted)

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
        while True:
            with self.condition:
                generation = self.condition.generation
            # Evaluated without the lock: a predicate may wait on the emulator's loop (a KV read),
            # which may itself be waiting for this lock to record something.
            if predicate():
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what or 'condition'}")
            with self.condition:
                if self.condition.generation == generation:  # nothing changed since the check
                    self.condition.wait(remaining if wake_every is None else min(remaining, wake_every))
