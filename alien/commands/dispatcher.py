"""Validates commands, reports their lifecycle to the C2, and runs their handlers.

Lifecycle events: `command_received` (accepted) or `command_rejected` (reason), then
`command_progress` (rate-limited), then `command_completed` (result) or `command_failed`
(error). A command that came as a request also gets a reply saying whether it was accepted.
Each handler runs as its own task, so a long-running command never delays the next one (a
`stop` must not wait behind a `patrol`).

In this order: the intake limit; the envelope (`parse_command`, including expiry); the target
entity and the signature (`CommandPolicy.authorise`); an id already accepted (`duplicate`, or
`replayed` for a signed command); the allowlist (only types with a handler, or any type when a
fallback handler is set; else `unknown_type`); one at a time for a type registered `exclusive`
(else `busy`); the params. See docs/commands.md.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from alien.commands.context import CommandContext, CommandHandler, Prepare, Reply, Report, command_ids
from alien.commands.envelope import TYPE_PATTERN, Command, CommandRejected, parse_command
from alien.commands.policy import CommandPolicy
from alien.commands.seen import SeenCommandStore
from alien.errors import CommandFailure
from alien.logs import get_logger
from alien.rate_limits import RejectionDigest, TokenBucket
from alien.settings import signature_policy
from alien.signing import SignaturePolicy
from alien.untrusted import DETAIL_LIMIT, ID_LIMIT, shown

if TYPE_CHECKING:
    from alien.config import AlienConfig

logger = get_logger("alien.commands")

# Events anyone on the commands subject can cause at will: the outbox gives them their own lane,
# where they only ever make room among themselves.
REJECTION_EVENTS = frozenset({"command_rejected", "commands_rejected"})


class _Prepared:
    """What a type's `prepare` returned (any value, None included)."""

    def __init__(self, value: Any) -> None:
        self.value = value


class CommandDispatcher:
    """The allowlist, the intake limit and the rejection digest, and one task per accepted command."""

    def __init__(
        self,
        report: Report,
        reply: Reply,
        *,
        dedupe_window_s: float = 600.0,
        clock_skew_s: float = 5.0,
        progress_rate_hz: float = 2.0,
        signature_policy: SignaturePolicy | None = None,
        entity_id: Callable[[], str | None] | None = None,
        intake_limit: TokenBucket | None = None,
        digest: RejectionDigest | None = None,
    ) -> None:
        self._report = report
        self._reply = reply
        self.policy = CommandPolicy(
            signature_policy or SignaturePolicy(),
            entity_id or (lambda: None),
            dedupe_window_s=dedupe_window_s,
            clock_skew_s=clock_skew_s,
        )
        self.handlers: dict[str, CommandHandler] = {}
        self._wants_context: dict[str, bool] = {}
        self._prepare: dict[str, Prepare] = {}
        self._exclusive: dict[str, str | None] = {}  # type -> the command_id running now, or None
        self._fallback: CommandHandler | None = None
        self.progress_rate_hz = progress_rate_hz
        self._tasks: set[asyncio.Task[None]] = set()
        self.counts: Counter[str] = Counter()
        self.intake_limit = intake_limit or TokenBucket(100.0, 200)
        self.digest = digest or RejectionDigest(10, 10.0)
        self._summary: asyncio.TimerHandle | None = None
        # (outcome, seconds from arrival) when a command ends; the metrics' latency (alien.metrics.entity)
        self.on_finished: Callable[[str, float], None] | None = None

    @classmethod
    def from_config(cls, config: AlienConfig, report: Report, reply: Reply) -> CommandDispatcher:
        """The dispatcher the ALIEN_COMMAND_* settings describe, for the entity `config` registers."""
        return cls(
            report,
            reply,
            dedupe_window_s=config.command_dedupe_window_s,
            clock_skew_s=config.command_clock_skew_s,
            progress_rate_hz=config.command_progress_rate_hz,
            signature_policy=signature_policy(config),
            entity_id=lambda: config.entity_id,
            intake_limit=TokenBucket(config.command_rate_limit_hz, config.command_burst),
            digest=RejectionDigest(config.command_rejections_logged, config.command_rejection_window_s),
        )

    @property
    def seen(self) -> SeenCommandStore | None:
        """The persisted replay records (attach_seen_store), or None."""
        return self.policy.seen

    @property
    def running(self) -> int:
        """Handlers running now."""
        return len(self._tasks)

    def register(
        self, command_type: str, handler: CommandHandler, *, prepare: Prepare | None = None, exclusive: bool = False
    ) -> None:
        """Run `handler` for `command_type`.

        `prepare(command)` runs before the command is accepted: a ValueError it raises rejects
        the command (`bad_params`, with the error as detail); what it returns is
        `context.prepared` for the handler. `exclusive`: one command of this type at a time; one
        arriving while another runs is rejected (`busy`).
        """
        if not TYPE_PATTERN.fullmatch(command_type):
            raise ValueError(f"command type {command_type!r} must match {TYPE_PATTERN.pattern}")
        self.handlers[command_type] = handler
        self._wants_context[command_type] = _positional_count(handler) >= 2
        if prepare is not None:
            self._prepare[command_type] = prepare
        if exclusive:
            self._exclusive[command_type] = None

    def set_fallback(self, handler: CommandHandler | None) -> None:
        """Handle every type nobody registered (instead of rejecting it as unknown_type)."""
        self._fallback = handler

    def attach_seen_store(self, store: SeenCommandStore | None) -> None:
        """Persist accepted command ids, so a replay after a restart is refused too."""
        self.policy.seen = store
        if store is not None:
            store.prune(time.time())

    def dispatch(self, raw: bytes, *, reply: str | None = None, message_id: str | None = None) -> None:
        """Validate `raw`; start its handler or report why it was rejected. Never raises."""
        arrived = time.monotonic()
        self.counts["received"] += 1
        # Over the intake limit only a command signed by a trusted key is read on; the byte test
        # keeps a flood of unsigned garbage from costing a JSON parse each.
        over_limit = not self.intake_limit.take()
        policy = self.policy
        if over_limit and not (policy.signature_policy.trusted_keys and b'"signature"' in raw):
            self._over_limit()
            return
        now = time.time()
        try:
            command = parse_command(raw, message_id=message_id, now=now, clock_skew_s=policy.clock_skew_s)
        except CommandRejected as malformed:  # the parser's answer to bytes it cannot accept
            self._reject(malformed, reply)
            return
        admission = policy.authorise(command, now)
        if isinstance(admission, CommandRejected):
            self._reject(admission, reply)
            return
        if over_limit and not admission.signed:
            self._over_limit()
            return
        handler = self.handlers.get(command.type, self._fallback)
        rejection = policy.replayed(command, admission, now)
        if rejection is None and handler is None:
            rejection = self._unknown(command)
        if rejection is None:
            rejection = self._busy(command)
        prepared = self._prepared(command) if rejection is None else rejection
        if isinstance(prepared, CommandRejected):
            self._reject(prepared, reply)
            return
        rejection = policy.remember(command, admission, now)
        if rejection is not None:
            self._reject(rejection, reply)
            return
        assert handler is not None  # else _unknown() rejected it
        self._accept(command, handler, prepared.value, reply, arrived)

    def _accept(
        self, command: Command, handler: CommandHandler, prepared: Any, reply: str | None, arrived: float
    ) -> None:
        self.counts["accepted"] += 1
        accepted = {**command_ids(command), **({"priority": command.priority} if command.priority else {})}
        self._report("command_received", accepted)
        if reply:
            self._reply(reply, {**command_ids(command), "accepted": True})
        task = asyncio.create_task(self._run(handler, command, prepared, arrived), name=f"alien-command-{command.type}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if command.type in self._exclusive:  # taken before the next message is read: no second one slips in
            self._exclusive[command.type] = command.command_id
            task.add_done_callback(lambda _: self._exclusive.__setitem__(command.type, None))

    def _busy(self, command: Command) -> CommandRejected | None:
        running = self._exclusive.get(command.type)
        if running is None:
            return None
        return CommandRejected(
            "busy",
            f"{command.type} {shown(running, ID_LIMIT)} is running; one runs at a time, send it again when it ended",
            command_id=command.command_id,
            type_=command.type,
        )

    def _unknown(self, command: Command) -> CommandRejected:
        known = ", ".join(sorted(self.handlers)) or "none"
        return CommandRejected(
            "unknown_type",
            f"no handler for command type {command.type!r} (handled: {known})",
            command_id=command.command_id,
            type_=command.type,
        )

    def _prepared(self, command: Command) -> _Prepared | CommandRejected:
        prepare = self._prepare.get(command.type)
        if prepare is None:
            return _Prepared(None)
        try:
            return _Prepared(prepare(command))
        except Exception as exc:  # noqa: BLE001 - whatever the params did, it is a rejection
            detail = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            return CommandRejected("bad_params", detail, command_id=command.command_id, type_=command.type)

    async def _run(self, handler: CommandHandler, command: Command, prepared: Any, arrived: float) -> None:
        context = CommandContext(command, self._report, self.progress_rate_hz, prepared)
        try:
            wants_context = self._wants_context.get(command.type, _positional_count(handler) >= 2)
            args = (command.raw, context) if wants_context else (command.raw,)
            result = handler(*args)
            if inspect.isawaitable(result):
                result = await result
        except asyncio.CancelledError:
            context.finish()
            self._fail(command, "cancelled", "CancelledError", arrived)
            raise
        except Exception as exc:  # noqa: BLE001 - a failing handler is reported, never fatal
            context.finish()
            # the error text may quote the command's params: shown escaped and capped
            error = shown(str(exc) or type(exc).__name__, DETAIL_LIMIT)
            error_type = type(exc).__name__
            logger.warning("command %s (%s) failed: %s: %s", command.command_id, command.type, error_type, error)
            reason = exc.reason if isinstance(exc, CommandFailure) and TYPE_PATTERN.fullmatch(exc.reason) else None
            self._fail(command, error, error_type, arrived, reason)
            return
        context.finish()
        self.counts["completed"] += 1
        self._report("command_completed", {**command_ids(command), "result": _as_result(result)})
        self._finished("completed", arrived)

    def _fail(self, command: Command, error: str, error_type: str, arrived: float, reason: str | None = None) -> None:
        self.counts["failed"] += 1
        failed = {**command_ids(command), "error": error, "error_type": error_type}
        self._report("command_failed", {**failed, "reason": reason} if reason else failed)
        self._finished("failed", arrived)

    def _finished(self, outcome: str, arrived: float) -> None:
        if self.on_finished is not None:
            self.on_finished(outcome, time.monotonic() - arrived)

    async def join(self) -> None:
        """Wait until every handler running now has ended."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def stop(self) -> None:
        """Cancel running handlers; each is reported as failed (cancelled). A pending summary goes now."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._summarise()

    def _over_limit(self) -> None:
        self.counts["rate_limited"] += 1
        self.digest.count("rate_limited")
        self._summarise_later()

    def _summarise_later(self) -> None:
        if self._summary is None and self.digest.started is not None:
            delay = max(0.0, self.digest.started + self.digest.window_s - self.digest.clock())
            self._summary = asyncio.get_running_loop().call_later(delay, self._summarise)

    def _summarise(self) -> None:
        """One WARNING line and one `commands_rejected` event for a window's unreported rejections."""
        if self._summary is not None:
            self._summary.cancel()
            self._summary = None
        held = self.digest.close_window()
        if held is None:
            return
        total, reasons = held
        by_reason = ", ".join(f"{reason} {count}" for reason, count in reasons.most_common())
        logger.warning(
            "%d commands rejected in %gs: %s (beyond %d per window they are counted, not logged one by one)",
            total,
            self.digest.window_s,
            by_reason,
            self.digest.per_window,
        )
        self._report("commands_rejected", {"count": total, "window_s": self.digest.window_s, "reasons": dict(reasons)})

    def _reject(self, rejection: CommandRejected, reply: str | None) -> None:
        self.counts["rejected"] += 1
        self.counts[f"rejected.{rejection.reason}"] += 1
        # Whoever sent the command chose these strings: escaped and capped for the log and the C2.
        data = {
            "command_id": None if rejection.command_id is None else shown(rejection.command_id, ID_LIMIT),
            "type": None if rejection.type is None else shown(rejection.type),
            "reason": rejection.reason,
            "detail": shown(rejection.detail, DETAIL_LIMIT),
        }
        if self.digest.offer(rejection.reason):
            logger.warning(
                "command %s (%s) rejected (%s): %s", data["command_id"], data["type"], rejection.reason, data["detail"]
            )
            self._report("command_rejected", data)
        else:
            self._summarise_later()
        if reply:
            self._reply(reply, {**data, "accepted": False})


def _as_result(result: Any) -> dict[str, Any]:
    if result is None:
        return {}
    return result if isinstance(result, dict) else {"value": result}


def _positional_count(handler: CommandHandler) -> int:
    try:
        parameters = inspect.signature(handler).parameters.values()
    except (TypeError, ValueError):
        return 1
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return 2
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in parameters)
