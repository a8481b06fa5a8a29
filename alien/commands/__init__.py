"""Commands from the mothership, in one direction: intake -> envelope -> policy -> dispatcher -> handler.

- `intake`: subscribes to the entity's command subject (core or JetStream) and hands raw bytes on;
- `envelope`: parses and bounds what a sender put on the wire (`Command`, or `CommandRejected`);
- `policy`: decides whether a parsed command may run (target entity, signature, expiry, replay);
- `dispatcher`: the intake limit, the allowlist and params, lifecycle events, one task per handler;
- `context`: what a handler sees while it runs (progress, prepared params).

Nothing a sender can put on the wire crashes the client; see docs/commands.md.
"""

from alien.commands.context import CommandContext, CommandHandler, Prepare
from alien.commands.dispatcher import REJECTION_EVENTS, CommandDispatcher
from alien.commands.intake import CommandIntake, IntakeMode

__all__ = [
    "REJECTION_EVENTS",
    "CommandContext",
    "CommandDispatcher",
    "CommandHandler",
    "CommandIntake",
    "IntakeMode",
    "Prepare",
]
