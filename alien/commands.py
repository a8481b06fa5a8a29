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
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import ConsumerConfig, DeliverPolicy, RetentionPolicy

from alien.command_envelope import TYPE_PATTERN, Command, CommandRejected, RecentCommandIds, parse_command
from alien.errors import NatsPermissionError
from alien.link import NatsLink
from alien.logs import get_logger
from alien.policies import LatestValueThrottle, RejectionDigest, TokenBucket
from alien.seen_commands import SeenCommandStore
from alien.signing import SignatureError, SignaturePolicy, verify
from alien.untrusted import DETAIL_LIMIT, ID_LIMIT, quoted, shown

logger = get_logger("alien.commands")

CommandHandler = Callable[..., Awaitable[Any] | Any]
Report = Callable[[str, dict[str, Any]], None]
Reply = Callable[[str, dict[str, Any]], None]
Prepare = Callable[[Command], Any]
IntakeMode = Literal["auto", "core", "jetstream"]

_WORKQUEUE_CONFLICT = 10100  # "filtered consumer not unique on workqueue stream"
# Events anyone on the commands subject can cause at will: the outbox gives them their own lane,
# where they only ever make room among themselves.
REJECTION_EVENTS = frozenset({"command_rejected", "commands_rejected"})


class CommandContext:
    """What a handler taking two arguments gets besides the command dict: ids, params, progress."""

    def __init__(self, command: Command, report: Report, progress_rate_hz: float) -> None:
        self.command = command
        self.command_id = command.command_id
        self.type = command.type
        self.params = command.params
        self._report = report
        self._throttle: LatestValueThrottle[dict[str, Any]] = LatestValueThrottle(progress_rate_hz)
        self._flush: asyncio.TimerHandle | None = None
        self.progress_sent = 0
        self._finished = False
        self.prepared: Any = None  # what the type's `prepare` returned (see CommandDispatcher.register)

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
        self._report("command_progress", {**_ids(self.command), "progress": data})


class CommandDispatcher:
    """Validates commands, reports their lifecycle to the C2, and runs handlers.

    Lifecycle events (ARCHITECTURE.md): `command_received` (accepted) or `command_rejected`
    (reason), then `command_progress` (rate-limited), then `command_completed` (result) or
    `command_failed` (error). A command that came as a request also gets a reply saying whether
    it was accepted. Each handler runs as its own task, so a long-running command never delays
    the next one (a `stop` must not wait behind a `patrol`).

    Policy, in this order: the envelope (parse_command, including expiry); the target entity and
    the signature (`signature_policy`: critical types, or every type, need a valid signature
    from a trusted key; a signature that is present is always checked); a command id already
    accepted (`duplicate`, or `replayed` for a signed command; in memory within the dedupe
    window, and in the persisted `seen` store across restarts); the allowlist (only types with
    a handler, or any type when a fallback handler is set; else `unknown_type`); the params.
    """

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
        self.signature_policy = signature_policy or SignaturePolicy()
        self._entity_id = entity_id or (lambda: None)
        self.seen: SeenCommandStore | None = None  # attach_seen_store(): replay protection across restarts
        self.dedupe_window_s = dedupe_window_s
        self.handlers: dict[str, CommandHandler] = {}
        self._wants_context: dict[str, bool] = {}
        self._prepare: dict[str, Prepare] = {}
        self._fallback: CommandHandler | None = None
        self._recent = RecentCommandIds(dedupe_window_s)
        self.clock_skew_s = clock_skew_s
        self.progress_rate_hz = progress_rate_hz
        self._tasks: set[asyncio.Task[None]] = set()
        self.counts: Counter[str] = Counter()
        self.intake_limit = intake_limit or TokenBucket(100.0, 200)
        self.digest = digest or RejectionDigest(10, 10.0)
        self._summary: asyncio.TimerHandle | None = None

    def register(self, command_type: str, handler: CommandHandler, *, prepare: Prepare | None = None) -> None:
        """Run `handler` for `command_type`.

        `prepare(command)` runs before the command is accepted: a ValueError it raises rejects
        the command (`bad_params`, with the error as detail); what it returns is
        `context.prepared` for the handler.
        """
        if not TYPE_PATTERN.fullmatch(command_type):
            raise ValueError(f"command type {command_type!r} must match {TYPE_PATTERN.pattern}")
        self.handlers[command_type] = handler
        self._wants_context[command_type] = _positional_count(handler) >= 2
        if prepare is not None:
            self._prepare[command_type] = prepare

    def set_fallback(self, handler: CommandHandler | None) -> None:
        """Handle every type nobody registered (instead of rejecting it as unknown_type)."""
        self._fallback = handler

    def attach_seen_store(self, store: SeenCommandStore | None) -> None:
        """Persist accepted command ids, so a replay after a restart is refused too."""
        self.seen = store
        if store is not None:
            store.prune(time.time())

    def dispatch(self, raw: bytes, *, reply: str | None = None, message_id: str | None = None) -> None:
        """Validate `raw`; start its handler or report why it was rejected. Never raises."""
        self.counts["received"] += 1
        # Over the intake limit only a command signed by a trusted key is read on; the byte test
        # keeps a flood of unsigned garbage from costing a JSON parse each.
        over_limit = not self.intake_limit.take()
        if over_limit and not (self.signature_policy.trusted_keys and b'"signature"' in raw):
            self._over_limit()
            return
        now = time.time()
        try:
            command = parse_command(raw, message_id=message_id, now=now, clock_skew_s=self.clock_skew_s)
            signer, expires_at = self._authorise(command, now)
            signed = signer is not None
            if over_limit and not signed:
                self._over_limit()
                return
            # Signed ids live in their signer's space: an unsigned command claiming the id of a
            # coming signed one (a predictable C2 id) cannot get the genuine one refused.
            seen_key = f"s:{signer}:{command.command_id}" if signed else f"u:{command.command_id}"
            first_seen = self._recent.seen_at(seen_key, now)
            if first_seen is None and self.seen is not None and not command.id_derived:
                try:
                    first_seen = self.seen.seen_at(seen_key, now)
                except Exception as exc:  # noqa: BLE001 - unable to rule out a replay: do not execute
                    raise CommandRejected(
                        "replay_check_failed",
                        f"the seen-commands store cannot be read ({exc}); not executed",
                        command_id=command.command_id,
                        type_=command.type,
                    ) from None
            if first_seen is not None:
                raise CommandRejected(
                    "replayed" if signed else "duplicate",
                    f"command {command.command_id} was received {now - first_seen:.1f}s ago; not executed again",
                    command_id=command.command_id,
                    type_=command.type,
                )
            handler = self.handlers.get(command.type, self._fallback)
            if handler is None:
                known = ", ".join(sorted(self.handlers)) or "none"
                raise CommandRejected(
                    "unknown_type",
                    f"no handler for command type {command.type!r} (handled: {known})",
                    command_id=command.command_id,
                    type_=command.type,
                )
            prepared = self._prepared(command)
            if self.seen is not None and not command.id_derived:
                self._record_seen(command, seen_key, now, expires_at, signed)
        except CommandRejected as rejection:
            self._reject(rejection, reply)
            return
        if not command.id_fresh:
            self._recent.add(seen_key, now)
        self.counts["accepted"] += 1
        accepted = {**_ids(command), **({"priority": command.priority} if command.priority else {})}
        self._report("command_received", accepted)
        if reply:
            self._reply(reply, {**_ids(command), "accepted": True})
        task = asyncio.create_task(self._run(handler, command, prepared), name=f"alien-command-{command.type}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _record_seen(self, command: Command, key: str, now: float, expires_at: float | None, signed: bool) -> None:
        """Persist the id before the command runs; a signed one that cannot be recorded does not run."""
        assert self.seen is not None
        keep_until = now + self.dedupe_window_s
        if expires_at is not None:
            keep_until = max(keep_until, expires_at + self.clock_skew_s)
        try:
            self.seen.add(key, now, keep_until, protected=signed)
        except Exception as exc:
            if signed:  # a replay after a restart could not be ruled out
                raise CommandRejected(
                    "replay_check_failed",
                    f"the seen-commands store cannot be written ({exc}); not executed",
                    command_id=command.command_id,
                    type_=command.type,
                ) from None
            logger.exception("command %s could not be recorded as seen", shown(command.command_id, ID_LIMIT))

    def _authorise(self, command: Command, now: float) -> tuple[str | None, float | None]:
        """Target entity and signature; returns (signer's key or None, effective expiry).

        Raises CommandRejected. A signed command lives at most max(ALIEN_COMMAND_MAX_AGE_S, the
        dedupe window) after issued_at, whatever its ttl_s / expires_at say: a captured signed
        command must not stay valid for years.
        """

        def reject(reason: str, detail: str) -> CommandRejected:
            return CommandRejected(reason, detail, command_id=command.command_id, type_=command.type)

        raw = command.raw
        own = self._entity_id()
        target = raw.get("entity_id")
        if target is not None and not isinstance(target, str):
            raise reject("bad_envelope", f"entity_id must be a string, got {type(target).__name__}")
        policy = self.signature_policy
        needed = policy.requires_signature(command.type)
        # "signature": null is no signature (a C2 serialising an empty optional field), not a bad one
        if raw.get("signature") is None and not needed:
            if target is not None and own is not None and target != own:
                raise reject("wrong_entity", f"the command is for entity {quoted(target)}, not {own!r}")
            return None, command.expires_at
        try:
            signer = verify(raw, own or "", policy.trusted_keys)
        except SignatureError as exc:
            if exc.reason == "unsigned":
                why = (
                    "every command needs one (ALIEN_COMMAND_REQUIRE_SIGNATURE)"
                    if policy.require_all
                    else f"{command.type!r} is a critical type (ALIEN_COMMAND_CRITICAL_TYPES)"
                )
                raise reject("unsigned", f"no signature from a trusted key: {why}") from None
            raise reject(exc.reason, exc.detail) from None
        assert command.issued_at is not None  # verify() insists on issued_at
        longest = command.issued_at + max(policy.max_age_s, self.dedupe_window_s)
        expires_at = command.expires_at
        if expires_at is None:
            expires_at = command.issued_at + policy.max_age_s
            if now > expires_at + self.clock_skew_s:
                raise reject(
                    "expired",
                    f"the signed command expired {now - expires_at:.1f}s ago (no ttl_s: ALIEN_COMMAND_MAX_AGE_S="
                    f"{policy.max_age_s:g}; clock skew allowed: {self.clock_skew_s}s)",
                )
        elif expires_at > longest:
            expires_at = longest
            if now > expires_at + self.clock_skew_s:
                raise reject(
                    "expired",
                    f"the signed command expired {now - expires_at:.1f}s ago: a signed command lives at most "
                    f"{longest - command.issued_at:g}s after issued_at, whatever its ttl_s / expires_at",
                )
        return signer, expires_at

    def _prepared(self, command: Command) -> Any:
        prepare = self._prepare.get(command.type)
        if prepare is None:
            return None
        try:
            return prepare(command)
        except Exception as exc:  # noqa: BLE001 - whatever the params did, it is a rejection
            detail = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            raise CommandRejected("bad_params", detail, command_id=command.command_id, type_=command.type) from None

    async def _run(self, handler: CommandHandler, command: Command, prepared: Any) -> None:
        context = CommandContext(command, self._report, self.progress_rate_hz)
        context.prepared = prepared
        try:
            wants_context = self._wants_context.get(command.type, _positional_count(handler) >= 2)
            args = (command.raw, context) if wants_context else (command.raw,)
            result = handler(*args)
            if inspect.isawaitable(result):
                result = await result
        except asyncio.CancelledError:
            context.finish()
            self._fail(command, "cancelled", "CancelledError")
            raise
        except Exception as exc:  # noqa: BLE001 - a failing handler is reported, never fatal
            context.finish()
            # the error text may quote the command's params: shown escaped and capped
            error = shown(str(exc) or type(exc).__name__, DETAIL_LIMIT)
            error_type = type(exc).__name__
            logger.warning("command %s (%s) failed: %s: %s", command.command_id, command.type, error_type, error)
            self._fail(command, error, error_type)
            return
        context.finish()
        self.counts["completed"] += 1
        self._report("command_completed", {**_ids(command), "result": _as_result(result)})

    def _fail(self, command: Command, error: str, error_type: str) -> None:
        self.counts["failed"] += 1
        self._report("command_failed", {**_ids(command), "error": error, "error_type": error_type})

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


def _ids(command: Command) -> dict[str, Any]:
    return {"command_id": command.command_id, "type": command.type}


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
                await self._start_jetstream_unless_denied()
            except (
                nats.js.errors.APIError,
                nats.errors.TimeoutError,
                nats.errors.NoRespondersError,
                NatsPermissionError,
            ) as exc:
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

    async def _start_jetstream_unless_denied(self) -> None:
        """The JetStream consumer, or PermissionError as soon as the server refuses its API.

        Edge keys on v0.1 servers have no JetStream API rights (contract §2); a refused request
        would otherwise only end at its timeout.
        """
        starting = asyncio.ensure_future(self._start_jetstream())
        denied = asyncio.ensure_future(self.link.denied_soon("publish", self.link.api_prefix))
        try:
            await asyncio.wait({starting, denied}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            denied.cancel()
            if not starting.done():
                starting.cancel()
        if starting.cancelled() or not starting.done():
            await asyncio.gather(starting, return_exceptions=True)
            raise NatsPermissionError("this NATS user may not use the JetStream API")
        starting.result()

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
        self._dispatch(msg, reply=msg.reply or None, message_id=_header_id(msg))

    def _dispatch(self, msg: Msg, *, reply: str | None, message_id: str | None) -> None:
        try:
            self.dispatcher.dispatch(msg.data, reply=reply, message_id=message_id)
        except Exception:
            logger.exception("command on %s could not be handled", msg.subject)

    async def _on_jetstream(self, msg: Msg) -> None:
        # Ack on receipt: a command is executed at most once; a redelivery after a slow handler
        # (ack_wait) would move the robot twice.
        try:
            await msg.ack()
        except Exception as exc:  # noqa: BLE001 - the command is still handled
            logger.warning("could not ack command: %s", exc)
        message_id = _header_id(msg) or f"js-{msg.metadata.stream}-{msg.metadata.sequence.stream}"
        self._dispatch(msg, reply=None, message_id=message_id)

    async def stop(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            try:
                await sub.unsubscribe()
            except Exception as exc:  # noqa: BLE001 - the connection may already be gone
                logger.debug("unsubscribe failed: %s", exc)


def _header_id(msg: Msg) -> str | None:
    return msg.headers.get("Nats-Msg-Id") if msg.headers else None


def _why(exc: BaseException) -> str:
    code = getattr(exc, "err_code", None)
    if code == _WORKQUEUE_CONFLICT:
        return "the server's command-processor owns the commands work queue (err 10100)"
    if isinstance(exc, nats.js.errors.NotFoundError):
        return "no stream holds the commands subject"
    if isinstance(exc, (nats.errors.TimeoutError, nats.errors.NoRespondersError)):
        return "no JetStream API answer (no JetStream, or no permission)"
    return str(exc) or type(exc).__name__
