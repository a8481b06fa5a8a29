"""What a running handler gets besides the command dict: ids, params, prepared values, progress."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from alien.commands.envelope import Command
from alien.rate_limits import LatestValueThrottle

CommandHandler = Callable[..., Awaitable[Any] | Any]
Report = Callable[[str, dict[str, Any]], None]
Reply = Callable[[str, dict[str, Any]], None]
Prepare = Callable[[Command], Any]


def command_ids(command: Command) -> dict[str, Any]:
    """The fields every lifecycle event of `command` carries."""
    return {"command_id": command.command_id, "type": command.type}


class CommandContext:
    """What a handler taking two arguments gets besides the command dict: ids, params, progress."""

    def __init__(self, command: Command, report: Report, progress_rate_hz: float, prepared: Any = None) -> None:
        self.command = command
        self.command_id = command.command_id
        self.type = command.type
        self.params = command.params
        self._report = report
        self._throttle: LatestValueThrottle[dict[str, Any]] = LatestValueThrottle(progress_rate_hz)
        self._flush: asyncio.TimerHandle | None = None
        self.progress_sent = 0
        self._finished = False
        self.prepared: Any = prepared  # what the type's `prepare` returned (CommandDispatcher.register)

    def progress(self, data: dict[str, Any]) -> None:
        """Report progress; rate-limited, and the latest value of each period always goes out."""
        if self._finished:
            return  # late feedback after the final event would confuse the C2
        loop = asyncio.get_running_loop()
        decision = self._throttle.offer(data, loop.time())
        if decision.send_now is not None:
            self._send(decision.send_now)
        if decision.flush_at is not None:
            self._flush = loop.call_at(decision.flush_at, self._flush_now)

    def _flush_now(self) -> None:
        self._flush = None
        data = self._throttle.flush(asyncio.get_running_loop().time())
        if data is not None:
            self._send(data)

    def finish(self) -> None:
        """The command ended: progress still waiting goes out before the final event."""
        self._finished = True
        if self._flush is not None:
            self._flush.cancel()
            self._flush_now()

    def _send(self, data: dict[str, Any]) -> None:
        self.progress_sent += 1
        self._report("command_progress", {**command_ids(self.command), "progress": data})
