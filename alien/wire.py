"""Wire basics shared by every message: subjects, timestamps, message ids and JSON encoding."""

from __future__ import annotations

import base64
import itertools
import json
import math
import os
import re
import secrets
import urllib.parse
from datetime import datetime, timezone
from typing import Any

# A NATS subject token: no separators, wildcards or whitespace.
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def subject_token(value: str, what: str) -> str:
    """`value` if it can stand as one subject token, else ValueError naming `what`."""
    if not _TOKEN.match(value):
        raise ValueError(f"{what} {value!r} cannot be a NATS subject token (use letters, digits, '_' or '-')")
    return value


def telemetry_subject(org_id: str, entity_id: str) -> str:
    # docs/contract.md#subjects: exactly four tokens in the newest server code.
    return f"constellation.telemetry.{org_id}.{entity_id}"


def event_subject(org_id: str, event_type: str) -> str:
    return f"constellation.events.{org_id}.{subject_token(event_type, 'event type')}"


def command_subject(org_id: str, entity_id: str) -> str:
    return f"constellation.commands.{org_id}.{entity_id}"


# A scheme and its "://" at the start of a URL; whatever else precedes the host is a credential.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# A comma that starts the next server of a list ("nats://a:4222, tls://b:4222"); a comma inside
# a password is not followed by a scheme.
_NEXT_SERVER = re.compile(r",(?=\s*[A-Za-z][A-Za-z0-9+.-]*://)")


def split_credentials(url: str) -> tuple[str, str | None, str]:
    """(`scheme://` or "", the user part or None, the rest: host, port, path) of one URL, as text.

    An unencoded password may hold / ? # : % + and "@", so no URL parser can tell where it ends;
    a host never holds "@", so everything up to the last "@" is the user part. An "@" in a path or
    query is taken for one too: a host hidden by mistake rather than a password shown.
    """
    scheme = _SCHEME.match(url)
    prefix = scheme.group(0) if scheme else ""
    user, at, rest = url[len(prefix) :].rpartition("@")
    return prefix, (user if at else None), rest


def url_without_credentials(url: str, default_scheme: str) -> urllib.parse.SplitResult:
    """`url` without its user part, parsed by urllib (`default_scheme` if it has no `scheme://`).

    urllib would end the host at the first "/", "?" or "#" of an unencoded password. ValueError
    where urllib raises one.
    """
    prefix, _, rest = split_credentials(url)
    return urllib.parse.urlsplit((prefix or f"{default_scheme}://") + rest)


def redact_url(url: str) -> str:
    """`url` without credentials (nats://user:pass@host -> nats://***@host), for logs and errors.

    The only redaction of URLs: every log line, error, status output and dump goes through it.
    A comma-separated server list is redacted server by server.
    """
    return ",".join(_redact_one(part.strip()) for part in _NEXT_SERVER.split(url))


def _redact_one(url: str) -> str:
    prefix, user, rest = split_credentials(url)
    return url if user is None else f"{prefix}***@{rest}"


def utc_timestamp(moment: datetime | None = None) -> str:
    """RFC 3339 with a zone (docs/contract.md#timestamps: a naive isoformat() is rejected by v0.1.1).

    Always UTC with microseconds and "Z": 2026-07-21T20:00:00.000000Z.
    """
    moment = moment or datetime.now(timezone.utc)
    if moment.tzinfo is None:
        raise ValueError("naive datetime: a timestamp needs a time zone")
    if moment.tzinfo is not timezone.utc:
        moment = moment.astimezone(timezone.utc)
    # isoformat() is C all the way (strftime parses its format and %f in Python): "+00:00" -> "Z"
    return moment.isoformat(timespec="microseconds")[:-6] + "Z"


# 80 random bits per process, then a counter: unique like a uuid4, without a getrandom() call
# (a system call that also hands the GIL to the ROS thread) for every message.
_ID_PREFIX = secrets.token_hex(10)
_ID_COUNTER = itertools.count()


def _new_id_prefix() -> None:
    """A forked child must not continue its parent's id sequence."""
    global _ID_PREFIX, _ID_COUNTER
    _ID_PREFIX, _ID_COUNTER = secrets.token_hex(10), itertools.count()


os.register_at_fork(after_in_child=_new_id_prefix)


def new_message_id() -> str:
    """The id a message keeps for its whole life (Nats-Msg-Id); lowercase hex, 32 characters."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER) & 0xFFFFFFFFFFFF:012x}"


def dumps(payload: Any) -> bytes:
    """Compact JSON that is always valid: non-finite floats become null (never NaN/Infinity)."""
    try:
        return _ENCODER.encode(payload).encode()
    except ValueError:
        return _ENCODER.encode(_finite(payload)).encode()


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return utc_timestamp(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    raise TypeError(f"a value of type {type(value).__name__} cannot be sent as JSON: {value!r:.80}")


# One encoder for every call: json.dumps() with these options builds a new one each time.
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=_default)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
