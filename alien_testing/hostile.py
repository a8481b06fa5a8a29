"""Hostile commands, as anyone on an unauthenticated network can publish them (tests and bench/).

In turn: not JSON, an unsigned critical command, an unknown type, a command id that forges a log
line; one in `oversized_every` carries a 30 KB field instead. Each has a distinct id where it has one.
"""

from __future__ import annotations

import json

OVERSIZED_FIELD = "9" * 30_000


def hostile_command(number: int, oversized_every: int = 100) -> bytes:
    """The `number`-th command of a flood, as the bytes put on the command subject."""
    if number % oversized_every == oversized_every - 1:
        return json.dumps({"type": "ping", "command_id": f"big-{number}", "issued_at": OVERSIZED_FIELD}).encode()
    kind = number % 4
    if kind == 0:
        return b"{not json"
    if kind == 1:
        return json.dumps({"type": "return_to_base", "command_id": f"unsigned-{number}"}).encode()
    if kind == 2:
        return json.dumps({"type": "no_such_type", "command_id": f"unknown-{number}"}).encode()
    forged = f"f-{number}\n2026-12-02 00:00:00,000 WARNING FORGED"
    return json.dumps({"type": "ping", "command_id": forged}).encode()
