"""Fuzzing the command intake (hypothesis), shared by test_command_fuzz_*.py: handlers, strategies, log checks.

Structure-aware inputs (JSON objects built from the envelope's fields with valid-ish and hostile
values) and raw bytes (random, truncated JSON, not UTF-8, deeply nested, oversized) go through
the REAL intake: an AlienClient registered with the emulator, receiving on its command subject
from a real nats-server. For each batch: as many outcomes as inputs (`command_received` then one
`command_completed`/`command_failed`, or one `command_rejected`), matched by command_id where the
input has one; the intake keeps working (a final valid command is executed after every batch);
every wait is bounded. A dispatcher-level fuzz (no NATS) adds volume. The intake limit and the
rejection digest are off here (one outcome per input is the property); test_command_flood.py
covers them. Whatever the input, no log line the intake writes and no rejection it reports
holds a control character (a forged line, a terminal escape), and none is longer than its cap.

Profiles (test/conftest.py): `ci` by default; `--hypothesis-profile long` (or HYPOTHESIS_PROFILE=long)
for >= 10,000 examples. The number of inputs and the rejections by reason are printed at the end
(run with -s to see them).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import strategies as st

from alien.commands import CommandDispatcher
from alien.commands.envelope import MAX_COMMAND_BYTES, CommandRejected, parse_command
from alien.untrusted import is_safe

WAIT_S = 20.0  # every wait is bounded
REGISTERED = ("ping", "fail", "slowish", "checked")
OUTCOMES = ("command_received", "command_rejected")
TERMINAL = ("command_completed", "command_failed")

# What the whole run fuzzed, printed by test_command_fuzz_without_nats.py's last test (pytest -s shows it).
TOTALS: Counter[str] = Counter()
REASONS: Counter[str] = Counter()


# --- the handlers: one completes, one fails, one awaits, one validates its params first ---


def _ping(command: dict[str, Any]) -> str:
    return "pong"


def _fail(command: dict[str, Any]) -> None:
    raise RuntimeError("this handler always fails")


async def _slowish(command: dict[str, Any], context: Any) -> dict[str, Any]:
    context.progress({"step": 1})
    await asyncio.sleep(0)  # yields once: an async handler, not a wait for state
    return {"params": len(context.params)}


def _checked(command: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True}


def _check_params(command: Any) -> Any:
    if "bad" in command.params:
        raise ValueError("params must not contain 'bad'")
    return None


def _register(target: Any) -> None:
    register = target.register if isinstance(target, CommandDispatcher) else target.register_command_handler
    register("ping", _ping)
    register("fail", _fail)
    register("slowish", _slowish)
    register("checked", _checked, prepare=_check_params)


# --- strategies ---

_ids = itertools.count()


def _unique(text: str) -> str:
    """A command id no other input of the run has (so a match by id is exact)."""
    return f"fz{next(_ids)}-{text}"[:128]


def _iso(offset_s: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=offset_s)).isoformat().replace("+00:00", "Z")


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
hostile = st.one_of(
    json_values,
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "", " ", "\x00", "null", "\u202e\ud7ff", "💥" * 40]),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.just(2**63),
    st.text(min_size=129, max_size=400),
)
# A forged log line, terminal escapes (window title, clear screen), a right-to-left override.
FORGERIES = (
    "li-1\n2026-12-02 00:00:00,000 WARNING alien.commands: FORGED operator approved",
    "esc-1\u001b]0;PWNED\u0007\u001b[2J",
    "bidi-\u202egnp.exe",
    "cr-1\rOVERWRITTEN",
)
# Each field: a valid-ish value most of the time, a hostile one otherwise.
VALID = {
    "type": st.one_of(
        st.sampled_from(REGISTERED),
        st.sampled_from(REGISTERED),
        st.sampled_from(REGISTERED),
        st.sampled_from(["warp", "self_destruct", "a.b-c_d", "x" * 64]),
        st.from_regex(r"[A-Za-z0-9_.-]{1,64}", fullmatch=True),
    ),
    "command_id": st.text(min_size=0, max_size=40).map(_unique),  # unique: matched by id exactly
    "params": st.one_of(st.dictionaries(st.text(max_size=8), json_values, max_size=5), st.just({"bad": 1})),
    "issued_at": st.one_of(
        st.integers(min_value=-120, max_value=2).map(_iso), st.integers(min_value=-(10**6), max_value=10).map(_iso)
    ),
    "ttl_s": st.one_of(st.floats(min_value=0.001, max_value=1e6), st.integers(min_value=1, max_value=366 * 24 * 3600)),
    "expires_at": st.integers(min_value=-60, max_value=10**5).map(_iso),
    "priority": st.sampled_from(["high", "low", "critical", "", FORGERIES[1], "p" * 30_000]),
}
VALID["command_type"] = VALID["type"]
ODD = {
    "type": st.sampled_from(["x" * 65, "rm -rf", "PING\n", "пинг", "", "ping ", FORGERIES[0], "x" * 30_000]),
    "command_id": st.one_of(
        st.text(min_size=129, max_size=300),
        st.sampled_from(["c-\ud800", "\udfff", "a\udbff\udc00"]),
        st.sampled_from(FORGERIES),
        st.text(alphabet=st.characters(categories=["Cc", "Cf", "Zl", "Zp"]), min_size=1, max_size=8),
    ),
    "issued_at": st.sampled_from(
        [
            "x" * 30_000,
            FORGERIES[0],
            "yesterday",
            "2026-11-27T12:00:00",
            "2020-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "0",
            "NaN",
            "2026-13-45T99:99:99Z",
        ]
    ),
    "expires_at": st.sampled_from(["2020-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00", "inf", "2026-11-27"]),
    "ttl_s": st.sampled_from([0, -1, 366 * 24 * 3600 + 1, 10**400, 1e308, -0.0, True]),
}
FIELD_ORDER = ("type", "command_id", "params", "issued_at", "ttl_s", "expires_at", "priority", "command_type")


@st.composite
def field_value(draw: st.DrawFn, name: str) -> Any:
    roll = draw(st.integers(0, 99))
    if roll < 80:
        return draw(VALID[name])
    if roll < 90 and name in ODD:
        return draw(ODD[name])
    return draw(hostile)


@st.composite
def envelopes(draw: st.DrawFn) -> dict[str, Any]:
    """A JSON object made of the envelope's fields (each present or not) and extra keys."""
    value: dict[str, Any] = {}
    for name in FIELD_ORDER:
        chance = {"type": 90, "command_id": 85, "command_type": 10}.get(name, 30)
        if draw(st.integers(0, 99)) < chance:
            value[name] = draw(field_value(name))
    if draw(st.integers(0, 99)) < 8:  # fields of signed commands (a signature nobody made, a target)
        value["signature"] = draw(
            st.one_of(st.text(max_size=120), hostile, st.dictionaries(st.text(max_size=6), json_values))
        )
    if draw(st.integers(0, 99)) < 8:
        value["entity_id"] = draw(st.one_of(st.text(max_size=40), hostile))
    if "ttl_s" in value and "issued_at" not in value and draw(st.integers(0, 99)) < 80:
        value["issued_at"] = draw(VALID["issued_at"])  # mostly as a sender would: ttl_s with issued_at
    for key, extra in draw(st.dictionaries(st.text(max_size=10), json_values, max_size=3)).items():
        value.setdefault(key, extra)
    if draw(st.integers(0, 30)) == 0:  # deep nesting
        depth = draw(st.integers(20, 60))
        deep: Any = {}
        for _ in range(depth):
            deep = {"n": deep}
        value["params" if draw(st.booleans()) else "nest"] = deep
    if draw(st.integers(0, 40)) == 0:  # around the size limit
        value["pad"] = "p" * draw(st.integers(MAX_COMMAND_BYTES - 200, MAX_COMMAND_BYTES + 200))
    return value


def _encode(value: Any, ascii_only: bool = False) -> bytes:
    """JSON as a peer would send it; NaN/inf floats as Python writes them (the parser reads them).

    ASCII-only JSON escapes everything else as \\uXXXX, lone surrogates included (valid JSON,
    though not valid Unicode); otherwise a lone surrogate makes the bytes invalid UTF-8.
    """
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


@st.composite
def structured(draw: st.DrawFn) -> bytes:
    value = draw(envelopes())
    if draw(st.integers(0, 10)) == 0:  # literal NaN / Infinity in a field
        value[draw(st.sampled_from(["ttl_s", "priority", "x"]))] = draw(
            st.sampled_from([math.nan, math.inf, -math.inf])
        )
    return _encode(value, ascii_only=draw(st.booleans()))


@st.composite
def raw_bytes(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 7))
    if kind == 0:
        return draw(st.binary(max_size=200))
    if kind == 1:  # truncated JSON
        whole = draw(structured())
        return whole[: draw(st.integers(0, max(0, len(whole) - 1)))]
    if kind == 2:  # not UTF-8: valid JSON in another encoding, or invalid bytes spliced in
        whole = draw(structured())
        if draw(st.booleans()):
            return whole.decode("utf-8", "surrogatepass").encode(draw(st.sampled_from(["utf-16", "utf-32"])), "replace")
        at = draw(st.integers(0, len(whole)))
        return whole[:at] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80\x80"])) + whole[at:]
    if kind == 3:  # deep or huge
        depth = draw(st.integers(30, 20_000))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        return b'{"type": "ping", "p": ' + opener * depth + b"1" + closer * depth + b"}"
    if kind == 4:  # numbers JSON may or may not allow
        number = draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e999", b"9" * 5000, b"-0", b"1" * 4300]))
        field = draw(st.sampled_from([b"ttl_s", b"command_id", b"type", b"params", b"priority"]))
        return b'{"type": "ping", "issued_at": "' + _iso(0).encode() + b'", "' + field + b'": ' + number + b"}"
    if kind == 5:  # not an object
        return draw(st.sampled_from([b"[]", b'"ping"', b"null", b"1", b"true", b"", b" ", b"\x00", b"{}"]))
    if kind == 6:  # duplicate keys, BOM, trailing garbage
        return draw(
            st.sampled_from(
                [
                    b'{"type": "ping", "type": "warp"}',
                    b'\xef\xbb\xbf{"type": "ping"}',
                    b'{"type": "ping"} trailing',
                    b'{"type": "ping",}',
                    b"{'type': 'ping'}",
                ]
            )
        )
    return draw(structured())


@dataclass
class Input:
    payload: bytes
    header_id: str | None = None  # Nats-Msg-Id
    request: bool = False  # sent with a reply subject

    def explicit_id(self) -> str | None:
        """The command id the parser takes from this input, when it takes one from the input itself."""
        marker = "<fresh>"  # nothing identifies the input: the client gives it a new id
        try:
            command_id: str | None = parse_command(self.payload, message_id=self.header_id or marker).command_id
        except CommandRejected as rejection:
            command_id = rejection.command_id
        return None if command_id == marker else command_id


def inputs(payloads: st.SearchStrategy[bytes]) -> st.SearchStrategy[Input]:
    return st.builds(
        Input,
        payloads,
        st.one_of(st.none(), st.none(), st.uuids().map(lambda u: f"hdr-{u}")),
        st.booleans(),
    )


@st.composite
def batches(draw: st.DrawFn, payloads: st.SearchStrategy[bytes]) -> list[Input]:
    batch = draw(st.lists(inputs(payloads), min_size=1, max_size=12))
    for index in draw(st.lists(st.integers(0, len(batch) - 1), max_size=2)):  # re-sent as is
        batch.append(batch[index])
    return batch


# --- nothing logged as an error (a handler exception, "could not be handled", a lost task) ---


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".")[0] in ("alien", "asyncio", "nats"):
            self.records.append(record)

    def check(self) -> None:
        found, self.records = self.records, []
        assert not found, "errors logged: " + "; ".join(f"{r.name}: {r.getMessage()}" for r in found)


ERRORS = _Errors()
LINE_CAP = 1_000  # the longest line the intake may write: capped fields plus its own words


class _Lines(logging.Handler):
    """The intake's log lines, checked after every batch: printable, and capped."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "alien.commands":
            self.messages.append(record.getMessage())

    def check(self) -> None:
        found, self.messages = self.messages, []
        for message in found:
            assert is_safe(message), f"a log line with a control character: {message[:200]!r}"
            assert len(message) <= LINE_CAP, f"a log line of {len(message)} characters: {message[:200]!r}"


LINES = _Lines()


@pytest.fixture(scope="module", autouse=True)
def no_errors_logged() -> Iterator[_Errors]:
    logging.getLogger().addHandler(ERRORS)
    logging.getLogger().addHandler(LINES)
    try:
        yield ERRORS
    finally:
        logging.getLogger().removeHandler(ERRORS)
        logging.getLogger().removeHandler(LINES)
