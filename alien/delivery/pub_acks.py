"""JetStream publish acknowledgements for core-NATS publishes: one inbox subscription, a future per message.

A JetStream publish is a core-NATS publish with a reply subject; the stream answers on it with a
PubAck (`{"stream", "seq", "duplicate"}`) or an error (`{"error": {...}}`), and the server answers
503 "no responders" when no stream captures the subject. nats-py's `publish_async` does the same
with a semaphore, a random token and a done-callback per message and a PubAck object per answer;
the publisher already bounds what is in flight, so this does only what it needs: measured, it
costs 0.6 of `publish_async`'s CPU per message (docs/performance.md#the-durable-outbox).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import nats.js.errors

_STATUS, _NO_RESPONDERS = "Status", "503"


class AckInbox:
    """Reply subjects for publishes on one connection, and the futures their answers resolve.

    A future's result is whether the stream already had the message (`duplicate`); its exception
    the server's refusal (nats.js.errors.APIError) or NoStreamResponseError.
    """

    def __init__(self) -> None:
        self._nc: Any = None
        self._prefix = ""
        self._subscription: Any = None
        self._waiting: dict[str, asyncio.Future[bool]] = {}
        self._tokens = itertools.count()

    async def open(self, nc: Any) -> None:
        """Subscribe on `nc` (again when the connection object changed); at once when already done."""
        if self._nc is nc:
            return
        self._prefix = nc.new_inbox()  # the connection's inbox prefix: what its permissions allow
        self._subscription = await nc.subscribe(f"{self._prefix}.*", cb=self._answer)
        self._nc = nc
        for future in self._waiting.values():  # asked on the connection before: never answered now
            future.cancel()
        self._waiting.clear()

    def expect(self) -> tuple[str, asyncio.Future[bool]]:
        """A new reply subject and the future its answer resolves."""
        token = f"{next(self._tokens):x}"
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting[token] = future
        return f"{self._prefix}.{token}", future

    def forget(self, reply: str) -> None:
        """No answer is awaited on `reply` any more (sent or not, answered or not)."""
        self._waiting.pop(reply[len(self._prefix) + 1 :], None)

    async def close(self) -> None:
        subscription, self._subscription, self._nc = self._subscription, None, None
        for future in self._waiting.values():
            future.cancel()
        self._waiting.clear()
        if subscription is not None:
            try:
                await subscription.unsubscribe()
            except Exception:  # noqa: BLE001 - the connection is gone: so is the subscription
                pass

    async def _answer(self, msg: Any) -> None:
        future = self._waiting.pop(msg.subject[len(self._prefix) + 1 :], None)
        if future is None or future.done():
            return  # given up on (a timeout, a stop) or answered twice
        if msg.headers and msg.headers.get(_STATUS) == _NO_RESPONDERS:
            future.set_exception(nats.js.errors.NoStreamResponseError())
            return
        data = msg.data
        if data.startswith(b'{"stream":') and b'"error"' not in data and b'"duplicate"' not in data:
            future.set_result(False)  # the usual PubAck: a new message stored, no JSON parse needed
            return
        try:
            answer = json.loads(msg.data)
        except ValueError as exc:
            future.set_exception(exc)
            return
        if not isinstance(answer, dict):
            future.set_exception(ValueError(f"not a JetStream answer: {msg.data[:80]!r}"))
        elif isinstance(answer.get("error"), dict):
            future.set_exception(_refusal(answer["error"]))
        else:
            future.set_result(bool(answer.get("duplicate", False)))


def _refusal(error: dict[str, Any]) -> Exception:
    """nats-py's exception for a JetStream error answer.

    `APIError.from_error` raises it rather than returning it: inside nats-py's own answer
    callback that leaves the publish unanswered for good (nats-io/nats.py#985); here it is caught.
    """
    try:
        nats.js.errors.APIError.from_error(error)
    except nats.js.errors.APIError as exc:
        return exc
    except (KeyError, TypeError):  # no code: an answer nats-py cannot read either
        pass
    return nats.js.errors.APIError(description=str(error)[:200])
