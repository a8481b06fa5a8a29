"""Whether a parsed command may run: its target entity, its signature and expiry, and replays.

Each check returns a `CommandRejected` (a value, not raised) or what the next step needs. A
signed command lives at most max(ALIEN_COMMAND_MAX_AGE_S, the dedupe window) after issued_at,
whatever its ttl_s / expires_at say: a captured signed command must not stay valid for years.
Signed ids live in their signer's space, so an unsigned command claiming the id of a coming
signed one (a predictable C2 id) cannot get the genuine one refused. See docs/commands.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from alien.commands.envelope import Command, CommandRejected, RecentCommandIds
from alien.commands.seen import SeenCommandStore
from alien.logs import get_logger
from alien.signing import ALWAYS_SIGNED_TYPES, SignatureError, SignaturePolicy, verify
from alien.untrusted import ID_LIMIT, quoted, shown

logger = get_logger("alien.commands")


@dataclass(frozen=True)
class Admission:
    """A command that passed `CommandPolicy.authorise`."""

    signer: str | None  # the trusted key that signed it, or None
    expires_at: float | None  # effective expiry (epoch seconds)
    seen_key: str  # its id in the replay records: the signer's space, or the unsigned one

    @property
    def signed(self) -> bool:
        return self.signer is not None


class CommandPolicy:
    """Target entity, signature, expiry and replay records for one entity's commands."""

    def __init__(
        self,
        signature_policy: SignaturePolicy,
        entity_id: Callable[[], str | None],
        *,
        dedupe_window_s: float,
        clock_skew_s: float,
    ) -> None:
        self.signature_policy = signature_policy
        self._entity_id = entity_id
        self.dedupe_window_s = dedupe_window_s
        self.clock_skew_s = clock_skew_s
        self.seen: SeenCommandStore | None = None  # replay protection across restarts
        self._recent = RecentCommandIds(dedupe_window_s)

    def authorise(self, command: Command, now: float) -> Admission | CommandRejected:
        """The target entity and the signature; a present signature is always checked."""

        def reject(reason: str, detail: str) -> CommandRejected:
            return CommandRejected(reason, detail, command_id=command.command_id, type_=command.type)

        raw = command.raw
        own = self._entity_id()
        target = raw.get("entity_id")
        if target is not None and not isinstance(target, str):
            return reject("bad_envelope", f"entity_id must be a string, got {type(target).__name__}")
        policy = self.signature_policy
        # "signature": null is no signature (a C2 serialising an empty optional field), not a bad one
        if raw.get("signature") is None and not policy.requires_signature(command.type):
            if target is not None and own is not None and target != own:
                return reject("wrong_entity", f"the command is for entity {quoted(target)}, not {own!r}")
            return Admission(None, command.expires_at, f"u:{command.command_id}")
        try:
            signer = verify(raw, own or "", policy.trusted_keys)
        except SignatureError as exc:
            if exc.reason != "unsigned":
                return reject(exc.reason, exc.detail)
            if policy.require_all:
                why = "every command needs one (ALIEN_COMMAND_REQUIRE_SIGNATURE)"
            elif command.type.casefold() in ALWAYS_SIGNED_TYPES:
                why = f"{command.type!r} always needs one"
            else:
                why = f"{command.type!r} is a critical type (ALIEN_COMMAND_CRITICAL_TYPES)"
            return reject("unsigned", f"no signature from a trusted key: {why}")
        assert command.issued_at is not None  # verify() insists on issued_at
        longest = command.issued_at + max(policy.max_age_s, self.dedupe_window_s)
        expires_at = command.expires_at
        if expires_at is None:
            expires_at = command.issued_at + policy.max_age_s
            if now > expires_at + self.clock_skew_s:
                return reject(
                    "expired",
                    f"the signed command expired {now - expires_at:.1f}s ago (no ttl_s: ALIEN_COMMAND_MAX_AGE_S="
                    f"{policy.max_age_s:g}; clock skew allowed: {self.clock_skew_s}s)",
                )
        elif expires_at > longest:
            expires_at = longest
            if now > expires_at + self.clock_skew_s:
                return reject(
                    "expired",
                    f"the signed command expired {now - expires_at:.1f}s ago: a signed command lives at most "
                    f"{longest - command.issued_at:g}s after issued_at, whatever its ttl_s / expires_at",
                )
        return Admission(signer, expires_at, f"s:{signer}:{command.command_id}")

    def replayed(self, command: Command, admission: Admission, now: float) -> CommandRejected | None:
        """A command id already accepted: in memory within the dedupe window, else in the store."""
        key = admission.seen_key
        first_seen = self._recent.seen_at(key, now)
        if first_seen is None and self.seen is not None and not command.id_derived:
            try:
                first_seen = self.seen.seen_at(key, now)
            except Exception as exc:  # noqa: BLE001 - unable to rule out a replay: do not execute
                return CommandRejected(
                    "replay_check_failed",
                    f"the seen-commands store cannot be read ({exc}); not executed",
                    command_id=command.command_id,
                    type_=command.type,
                )
        if first_seen is None:
            return None
        return CommandRejected(
            "replayed" if admission.signed else "duplicate",
            f"command {command.command_id} was received {now - first_seen:.1f}s ago; not executed again",
            command_id=command.command_id,
            type_=command.type,
        )

    def remember(self, command: Command, admission: Admission, now: float) -> CommandRejected | None:
        """Record the id before the command runs; a signed one that cannot be recorded does not run."""
        if self.seen is not None and not command.id_derived:
            keep_until = now + self.dedupe_window_s
            if admission.expires_at is not None:
                keep_until = max(keep_until, admission.expires_at + self.clock_skew_s)
            try:
                self.seen.add(admission.seen_key, now, keep_until, protected=admission.signed)
            except Exception as exc:
                if admission.signed:  # a replay after a restart could not be ruled out
                    return CommandRejected(
                        "replay_check_failed",
                        f"the seen-commands store cannot be written ({exc}); not executed",
                        command_id=command.command_id,
                        type_=command.type,
                    )
                logger.exception("command %s could not be recorded as seen", shown(command.command_id, ID_LIMIT))
        if not command.id_fresh:
            self._recent.add(admission.seen_key, now)
        return None
