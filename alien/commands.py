"""Commands from the mothership: intake (core or JetStream), validation and dispatch.

Contract §2: a real server's `command-processor` consumer owns the commands work-queue stream, so
the design document's durable consumer `alien-{entity_id}` is refused there (err_code 10100) and
the server deletes each command within about a second. A plain core subscription receives
commands live on real servers; a durable JetStream consumer also gets the commands sent while the
device was away, where the deployment's stream allows it. `auto` tries JetStream and falls back.

Nothing a sender can put on the wire crashes the client: malformed JSON, a missing or unknown
type, or a handler that raises, are reported to the C2 as `command_rejected` / `command_failed`
events (the design document only logs a warning).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import ConsumerConfig, DeliverPolicy, RetentionPolicy

from alien.link import NatsLink

logger = logging.getLogger("alien.commands")

CommandHandler = Callable[[dict[str, Any]], Awaitable[Any] | Any]
Report = Callable[[str, dict[str, Any]], None]
IntakeMode = Literal["auto", "core", "jetstream"]

MAX_COMMAND_BYTES = 32 * 1024  # contract §2: CONSTELLATION_COMMANDS max message size
_WORKQUEUE_CONFLICT = 10100  # "filtered consumer not unique on workqueue stream"


class CommandDispatcher:
    """Validates a raw command and runs its handler in a task of its own.

    Each handler runs as its own task, so a long-running command never delays the next one
    (a `stop` must not wait behind a `patrol`).
    """

    def __init__(self, report: Report) -> None:
        self._report = report
        self.handlers: dict[str, CommandHandler] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.received = 0
        self.rejected = 0
        self.failed = 0

    def register(self, command_type: str, handler: CommandHandler) -> None:
        self.handlers[command_type] = handler

    def dispatch(self, raw: bytes) -> None:
        """Validate `raw`; start its handler or report why it was rejected."""
        self.received += 1
        command, reason, detail = _parse(raw)
        if command is None:
            self._reject(None, reason, detail)
            return
        command_type = str(command.get("type") or command.get("command_type") or "")
        if not command_type:
            self._reject(command, "missing_type", "the command has neither 'type' nor 'command_type'")
            return
        handler = self.handlers.get(command_type)
        if handler is None:
            known = ", ".join(sorted(self.handlers)) or "none"
            self._reject(command, "unknown_type", f"no handler for command type {command_type!r} (handled: {known})")
            return
        task = asyncio.create_task(self._run(handler, command_type, command), name=f"alien-command-{command_type}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, handler: CommandHandler, command_type: str, command: dict[str, Any]) -> None:
        try:
            result = handler(command)
            if inspect.isawaitable(result):
                await result
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a failing handler is reported, never fatal
            self.failed += 1
            logger.warning("handler for command %r failed: %s: %s", command_type, type(exc).__name__, exc)
            self._report(
                "command_failed",
                {**_ids(command), "command_type": command_type, "error": str(exc), "error_type": type(exc).__name__},
            )

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _reject(self, command: dict[str, Any] | None, reason: str, detail: str) -> None:
        self.rejected += 1
        command_type = None
        if command is not None:
            command_type = command.get("type") or command.get("command_type")
        logger.warning("command rejected (%s): %s", reason, detail)
        self._report(
            "command_rejected",
            {**_ids(command), "command_type": command_type, "reason": reason, "detail": detail},
        )


def _parse(raw: bytes) -> tuple[dict[str, Any] | None, str, str]:
    if len(raw) > MAX_COMMAND_BYTES:
        return None, "too_large", f"command is {len(raw)} bytes; the limit is {MAX_COMMAND_BYTES}"
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, "malformed_json", f"command is not valid JSON: {exc}"
    except RecursionError:
        return None, "malformed_json", "command JSON is nested too deeply"
    if not isinstance(value, dict):
        return None, "not_an_object", f"command must be a JSON object, got {type(value).__name__}"
    return value, "", ""


def _ids(command: dict[str, Any] | None) -> dict[str, Any]:
    command_id = command.get("command_id") if command else None
    return {"command_id": command_id if isinstance(command_id, (str, int)) else None}


class CommandIntake:
    """Subscribes to the entity's command subject in the configured mode."""

    def __init__(self, link: NatsLink, subject: str, durable: str, dispatcher: CommandDispatcher) -> None:
        self.link = link
        self.subject = subject
        self.durable = durable
        self.dispatcher = dispatcher
        self.mode: Literal["core", "jetstream"] | None = None
        self._sub: Subscription | None = None

    async def start(self, mode: IntakeMode) -> Literal["core", "jetstream"]:
        if mode in ("jetstream", "auto"):
            try:
                await self._start_jetstream()
            except (nats.js.errors.APIError, nats.errors.TimeoutError, nats.errors.NoRespondersError) as exc:
                if mode == "jetstream":
                    raise
                logger.info(
                    "JetStream command consumer %r not possible here (%s); using a core subscription on %s",
                    self.durable,
                    _why(exc),
                    self.subject,
                )
            else:
                return "jetstream"
        self._sub = await self.link.nc.subscribe(self.subject, cb=self._on_core)
        # SUB is only buffered until now: a flush (PING/PONG) means the server has it, so a
        # command sent after initialize() returns is never missed.
        await self.link.nc.flush(timeout=max(1, round(self.link.config.publish_timeout_s)))
        self.mode = "core"
        logger.info("receiving commands on %s (core subscription)", self.subject)
        return "core"

    async def _start_jetstream(self) -> None:
        js = self.link.js
        stream = await js.find_stream_name_by_subject(self.subject)
        info = await js.stream_info(stream)
        # A first start must not execute an old backlog (DeliverPolicy.NEW), but a work-queue
        # stream only allows "all" (err 10101): there, what waits is what nobody took yet.
        work_queue = info.config.retention == RetentionPolicy.WORK_QUEUE
        self._sub = await js.subscribe(
            self.subject,
            durable=self.durable,
            stream=stream,
            manual_ack=True,
            cb=self._on_jetstream,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL if work_queue else DeliverPolicy.NEW),
        )
        self.mode = "jetstream"
        logger.info("receiving commands on %s (JetStream durable consumer %s)", self.subject, self.durable)

    async def _on_core(self, msg: Msg) -> None:
        self.dispatcher.dispatch(msg.data)

    async def _on_jetstream(self, msg: Msg) -> None:
        # Ack on receipt: a command is executed at most once; a redelivery after a slow handler
        # (ack_wait) would move the robot twice.
        try:
            await msg.ack()
        except Exception as exc:  # noqa: BLE001 - the command is still handled
            logger.warning("could not ack command: %s", exc)
        self.dispatcher.dispatch(msg.data)

    async def stop(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            try:
                await sub.unsubscribe()
            except Exception as exc:  # noqa: BLE001 - the connection may already be gone
                logger.debug("unsubscribe failed: %s", exc)


def _why(exc: BaseException) -> str:
    code = getattr(exc, "err_code", None)
    if code == _WORKQUEUE_CONFLICT:
        return "the server's command-processor owns the commands work queue (err 10100)"
    if isinstance(exc, nats.js.errors.NotFoundError):
        return "no stream holds the commands subject"
    if isinstance(exc, (nats.errors.TimeoutError, nats.errors.NoRespondersError)):
        return "no JetStream API answer (no JetStream, or no permission)"
    return str(exc) or type(exc).__name__
