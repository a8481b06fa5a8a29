"""What nats-server refused, and the one log line that says which permission is missing.

nats-py lower-cases the server's error text, so a subject's case is restored as far as it can be
known; every event type shares one line (one per feature), and the API-key scope that grants the
permission on v0.1 servers is named. See docs/troubleshooting.md.
"""

from __future__ import annotations

import re

# nats-server: -ERR 'Permissions Violation for Publish to "subject"' (or "Subscription to").
_DENIED = re.compile(r'permissions violation for (publish|subscription) to "([^"]+)"', re.IGNORECASE)


def denial_in(error_text: str) -> tuple[str, str] | None:
    """(publish|subscribe, lower-cased subject) when the error is a permissions violation."""
    denial = _DENIED.search(error_text)
    if denial is None:
        return None
    operation = "publish" if denial.group(1).lower() == "publish" else "subscribe"
    return operation, denial.group(2).lower()


def denial_line(operation: str, shown: str, family: str) -> str:
    """The log line for a refused `operation` on `shown` (a subject as restore_case gives it)."""
    refused = "a publish to" if operation == "publish" else "a subscription to"
    return (
        f'nats-server denied {refused} {_what(shown)} "{shown}": the NATS user needs {operation} permission '
        f'for "{family}"{_scope_hint(operation, shown)}'
    )


def family(subject: str) -> str:
    """The subjects one feature uses: every event type shares one line in the log."""
    tokens = subject.split(".")
    if tokens[:2] == ["constellation", "events"] and len(tokens) > 3:
        return ".".join(tokens[:3]) + ".>"
    return subject


def restore_case(subject: str) -> str:
    """The subject as the server spelled it, as far as it can be known (see NatsLink.denied).

    JetStream and KV API tokens are upper-case words; ids (digits, hyphens) keep their case.
    """
    tokens = subject.split(".")
    if tokens[0] == "$kv":
        return ".".join([t.upper() for t in tokens[:2]] + tokens[2:])
    if tokens[0] == "$js":
        return ".".join(t.upper() if re.fullmatch(r"\$?[a-z_]+", t) else t for t in tokens)
    return subject


def _what(subject: str) -> str:
    if subject.startswith("$KV."):
        return "the KV key"
    if subject.startswith("$JS.API."):
        return "the JetStream API"
    return "subject"


def _scope_hint(operation: str, subject: str) -> str:
    """Which API-key scope grants it: v0.1 servers derive NATS permissions from the key's scopes."""
    scopes = {
        ("publish", "constellation.telemetry."): "nats:telemetry (v0.1.1) or nats:telemetry:write (newer)",
        ("publish", "constellation.events."): "nats:all (v0.1.1) or nats:events:write (newer)",
        ("subscribe", "constellation.commands."): "nats:commands (v0.1.1) or nats:commands:read (newer)",
    }
    for (op, prefix), scope in scopes.items():
        if op == operation and subject.startswith(prefix):
            return f" (on v0.1 servers: an API key with the scope {scope} for this organization)"
    if subject.startswith("$JS.API.DIRECT.GET.OBJ_"):
        return " (a firmware bucket: its operator grants edge keys read access by hand, docs/firmware.md#permissions)"
    if subject.startswith(("$KV.", "$JS.API.STREAM.INFO.KV_", "$JS.API.DIRECT.GET.KV_")):
        return " (newer servers keep entity state themselves; ALIEN_ENTITY_STATE=off stops trying)"
    if subject.startswith("$JS.API."):
        return " (newer servers give edge keys no JetStream API; Alien falls back where it can)"
    return ""
