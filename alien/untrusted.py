"""Text that came from outside (a command's fields, a handler's error) made safe to show.

Anyone who can publish on the commands subject chooses these strings; v0.0.1 servers have no
NATS auth at all. Written raw, a newline forges a log line and an escape sequence rewrites an
operator's terminal; written whole, a 30 KB field becomes a 30 KB log line. So every such string
is escaped (control, format and separator characters, as `repr` escapes them) and length-capped
before it reaches a log line, an event or a terminal.
"""

from __future__ import annotations

import unicodedata
from typing import Any

ID_LIMIT = 128  # a command_id's own limit: an accepted id is shown whole
VALUE_LIMIT = 64  # a field echoed in a rejection's detail
DETAIL_LIMIT = 400  # a whole detail or error text


def shown(value: Any, limit: int = VALUE_LIMIT) -> str:
    r"""`value` as printable text of at most about `limit` characters; what was cut is counted.

    Strings are shown as they are when printable, other values by `repr`. A character that is
    not printable becomes its escape (`\n`, `\x1b`, `\u202e`); a backslash is doubled only then,
    so a plain id reads the same in the log as on the wire.
    """
    text = value if isinstance(value, str) else _short_repr(value, limit)
    head = text[:limit]
    if not is_safe(head):
        head = "".join(repr(c)[1:-1] if c == "\\" or _unsafe(c) else c for c in head)
        head = head[:limit]
    cut = len(text) - limit
    return f"{head}...(+{cut} chars)" if cut > 0 else head


def is_safe(text: str) -> bool:
    """No character that could act on a log or a terminal: control, format, separator, lone surrogate.

    Private-use and unassigned characters are harmless there and pass.
    """
    return text.isprintable() or not any(_unsafe(c) for c in text)


def _unsafe(character: str) -> bool:
    return unicodedata.category(character) in _UNSAFE_CATEGORIES


_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def quoted(value: Any, limit: int = VALUE_LIMIT) -> str:
    """`shown(value)` in quotes, for a value inside a sentence."""
    return f"'{shown(value, limit)}'" if isinstance(value, str) else shown(value, limit)


def _short_repr(value: Any, limit: int) -> str:
    # repr of a huge container is built whole first: cap the containers we know instead
    if isinstance(value, (dict, list, tuple)) and len(value) > limit:
        return f"<{type(value).__name__} of {len(value)} items>"
    try:
        return repr(value)
    except Exception:  # noqa: BLE001 - an object whose repr fails is still shown
        return f"<{type(value).__name__}>"
