"""Batches: what one task queues, accepted by the outbox together, in one store transaction.

`AlienClient.batch()` (docs/library.md#batches-of-readings). While a batch is open, the messages
its task queues for that outbox wait in the batch; when it closes they enter the outbox in one
store transaction (one commit instead of one per message), each with the id it was given, and the
publisher sends them pipelined. A block that raises queues none of them. The open batch is a
context variable: another task queueing meanwhile (a command's report, a heartbeat, a timer) is
not drawn into it, and a timer scheduled inside one that fires after it closed queues directly.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from types import TracebackType

from alien.delivery.outbox import Outbox, OutgoingMessage

_OPEN: ContextVar[OutboxBatch | None] = ContextVar("alien_open_batch", default=None)


class OutboxBatch:
    """A context manager (`with` or `async with`); a batch inside another of the same outbox joins it."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.messages: list[OutgoingMessage] = []
        self.open = False
        self._outer: OutboxBatch | None = None
        self._token: Token[OutboxBatch | None] | None = None

    def __enter__(self) -> OutboxBatch:
        if self._token is not None:
            raise RuntimeError("a batch is opened once; call client.batch() for another")
        self._outer = _OPEN.get()
        self._token = _OPEN.set(self)
        self.open = True
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.open = False
        if self._token is not None:
            _OPEN.reset(self._token)
        messages, self.messages = self.messages, []
        if exc_type is not None:
            return  # nothing of a block that raised is queued
        outer = _batch_for(self.outbox, self._outer)
        if outer is not None:
            outer.messages.extend(messages)  # the outer batch commits them
            return
        with self.outbox.batch():  # one store transaction; the bounds and their drop policy apply per message
            for message in messages:
                self.outbox.put(message)

    async def __aenter__(self) -> OutboxBatch:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def _batch_for(outbox: Outbox, batch: OutboxBatch | None) -> OutboxBatch | None:
    while batch is not None and not (batch.open and batch.outbox is outbox):
        batch = batch._outer
    return batch


def put(outbox: Outbox, message: OutgoingMessage) -> None:
    """Into the batch open here for `outbox`, else straight into the outbox."""
    batch = _batch_for(outbox, _OPEN.get())
    if batch is None:
        outbox.put(message)
    else:
        batch.messages.append(message)
