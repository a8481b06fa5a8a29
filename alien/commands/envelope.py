"""The command envelope: what a command from the mothership may look like, and its validation.

docs/contract.md#command-formats: the server defines no command schema; a peer sends `command_type`, the seed
document `type`. alien accepts both and this envelope:
`{"type", "command_id"?, "params"?: {}, "issued_at"?, "ttl_s"? | "expires_at"?, "priority"?,
"entity_id"?, "signature"?}` (signed commands: alien/signing.py).
Top-level fields outside the envelope are taken as params (the seed API puts them there).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from alien.untrusted import ID_LIMIT, is_safe, quoted

MAX_COMMAND_BYTES = 32 * 1024  # docs/contract.md#streams: CONSTELLATION_COMMANDS max message size
MAX_JSON_DEPTH = 32
MAX_TTL_S = 366 * 24 * 3600  # also keeps huge integers out of the time arithmetic
TYPE_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# entity_id: the target entity (a command for another one is rejected); signature: alien/signing.py
ENVELOPE_FIELDS = frozenset(
    {
        "type",
        "command_type",
        "command_id",
        "params",
        "issued_at",
        "ttl_s",
        "expires_at",
        "priority",
        "entity_id",
        "signature",
    }
)


class CommandRejected(Exception):
    """A command that will not be executed; `reason` is a stable token, `detail` says why."""

    def __init__(self, reason: str, detail: str, *, command_id: str | None = None, type_: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.command_id = command_id
        self.type = type_


@dataclass(frozen=True)
class Command:
    command_id: str
    type: str
    params: dict[str, Any]
    raw: dict[str, Any]  # the whole JSON object, as seed API handlers receive it (docs/index.md#the-seed-api)
    issued_at: float | None = None  # epoch seconds
    expires_at: float | None = None
    priority: str | None = None
    id_derived: bool = False  # no command_id was sent: derived from the message
    id_fresh: bool = False  # nothing identified it: a new id, never checked for duplicates
    sealed_params: bool = False  # its params came encrypted (alien/e2e/params.py)
    reply: str | None = field(default=None, compare=False)


def parse_command(
    data: bytes, *, message_id: str | None = None, now: float | None = None, clock_skew_s: float = 5.0
) -> Command:
    """Validate `data`; CommandRejected names what is wrong.

    `message_id` (the Nats-Msg-Id header, or the JetStream sequence) becomes the command id when
    the command has none, so a re-delivery keeps its id; with neither, the id is new.
    """
    if len(data) > MAX_COMMAND_BYTES:
        raise CommandRejected("too_large", f"command is {len(data)} bytes; the limit is {MAX_COMMAND_BYTES}")
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:  # ValueError: also 4300+ digit integers
        raise CommandRejected("malformed_json", f"command is not valid JSON: {exc}") from None
    except RecursionError:
        raise CommandRejected("too_deep", f"command JSON nests deeper than {MAX_JSON_DEPTH}") from None
    if not isinstance(value, dict):
        raise CommandRejected("not_an_object", f"command must be a JSON object, got {type(value).__name__}")
    if _depth(value) > MAX_JSON_DEPTH:
        raise CommandRejected("too_deep", f"command JSON nests deeper than {MAX_JSON_DEPTH}")

    raw_id = value.get("command_id")
    if raw_id is not None and not _is_id(raw_id):
        raise CommandRejected(
            "bad_envelope", f"command_id must be 1 to {ID_LIMIT} printable characters, got {quoted(raw_id)}"
        )
    if message_id is not None and not _is_id(message_id):
        raise CommandRejected(
            "bad_envelope",
            f"the Nats-Msg-Id header must be 1 to {ID_LIMIT} printable characters, got {quoted(message_id)}",
        )
    # Without a command_id, a transport id (Nats-Msg-Id, JetStream sequence) still identifies a
    # re-delivery; without one either, the command gets a fresh id and is never a duplicate: two
    # identical `{"type": "stop"}` sent a minute apart are two stops.
    derived = raw_id is None
    fresh_id = raw_id is None and message_id is None
    command_id = raw_id if raw_id is not None else (message_id or uuid.uuid4().hex)

    type_ = value.get("type", value.get("command_type"))
    if type_ is None or type_ == "":
        raise CommandRejected(
            "missing_type", "the command has neither 'type' nor 'command_type'", command_id=command_id
        )
    if not isinstance(type_, str) or not TYPE_PATTERN.fullmatch(type_):  # fullmatch: "$" allows a final "\n"
        raise CommandRejected(
            "bad_type", f"command type {quoted(type_)} must match {TYPE_PATTERN.pattern}", command_id=command_id
        )
    if "type" in value and "command_type" in value and value["command_type"] != type_:
        # a handler reading the other field would act on a type nobody checked
        raise CommandRejected(
            "conflicting_type",
            f"'type' is {quoted(type_)} but 'command_type' is {quoted(value['command_type'])}; send one, or both equal",
            command_id=command_id,
        )

    def reject(reason: str, detail: str) -> CommandRejected:
        return CommandRejected(reason, detail, command_id=command_id, type_=type_)

    if "params" in value:
        params = value["params"]
        if not isinstance(params, dict):
            raise reject("bad_envelope", f"params must be a JSON object, got {type(params).__name__}")
    else:
        params = {k: v for k, v in value.items() if k not in ENVELOPE_FIELDS}

    issued_at = _time_field(value, "issued_at", reject)
    expires_at = _time_field(value, "expires_at", reject)
    ttl = value.get("ttl_s")
    if ttl is not None:
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not 0 < ttl <= MAX_TTL_S:
            raise reject("bad_envelope", f"ttl_s must be a number of seconds in (0, {MAX_TTL_S}], got {quoted(ttl)}")
        if issued_at is None:
            raise reject("bad_envelope", "ttl_s needs issued_at (when the command was issued)")
        expires_at = min(expires_at, issued_at + ttl) if expires_at is not None else issued_at + ttl
    now = time.time() if now is None else now
    if expires_at is not None and now > expires_at + clock_skew_s:
        raise reject(
            "expired", f"the command expired {now - expires_at:.1f}s ago (clock skew allowed: {clock_skew_s}s)"
        )
    if issued_at is not None and issued_at > now + clock_skew_s:
        raise reject("bad_envelope", f"issued_at is {issued_at - now:.1f}s in the future (clock skew?)")
    priority = value.get("priority")
    if priority is not None and not (isinstance(priority, str) and _is_id(priority) and len(priority) <= 32):
        raise reject("bad_envelope", f"priority must be 1 to 32 printable characters, got {quoted(priority)}")
    return Command(command_id, type_, params, value, issued_at, expires_at, priority, derived, fresh_id)


def _time_field(value: dict[str, Any], name: str, reject: Any) -> float | None:
    text = value.get(name)
    if text is None:
        return None
    if not isinstance(text, str):
        raise reject("bad_envelope", f"{name} must be an RFC 3339 time with a zone, got {quoted(text)}")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise reject("bad_envelope", f"{name} {quoted(text)} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise reject("bad_envelope", f"{name} {quoted(text)} has no time zone")
    return moment.timestamp()


def _is_id(value: Any) -> bool:
    """Whether `value` can be a command id, logged and echoed as it is.

    No control characters (log forging) and no lone surrogate (a JSON escape can make one; it
    cannot be stored or sent as UTF-8).
    """
    return isinstance(value, str) and 0 < len(value) <= ID_LIMIT and is_safe(value)


def _depth(value: Any) -> int:
    """Nesting depth, iteratively: a hostile payload must not exhaust the stack here."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_JSON_DEPTH:
            return level
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
    return deepest


class RecentCommandIds:
    """Command ids seen within `window_s` (bounded), so a re-sent command never runs twice."""

    def __init__(self, window_s: float = 600.0, max_ids: int = 10_000) -> None:
        self.window_s = window_s
        self.max_ids = max_ids
        self._seen: OrderedDict[str, float] = OrderedDict()

    def seen_at(self, command_id: str, now: float) -> float | None:
        self._expire(now)
        return self._seen.get(command_id)

    def add(self, command_id: str, now: float) -> None:
        self._seen[command_id] = now
        self._seen.move_to_end(command_id)
        while len(self._seen) > self.max_ids:
            self._seen.popitem(last=False)

    def _expire(self, now: float) -> None:
        while self._seen:
            oldest_id, seen = next(iter(self._seen.items()))
            if now - seen <= self.window_s:
                break
            del self._seen[oldest_id]
