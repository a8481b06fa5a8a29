"""Fuzzing the command intake (hypothesis): every input ends in exactly one ack or one reject.

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
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import nats
import pytest
from hypothesis import given
from hypothesis import strategies as st

from alien import AlienClient, AlienConfig
from alien.commands import CommandDispatcher
from alien.commands.envelope import MAX_COMMAND_BYTES, CommandRejected, parse_command
from alien.rate_limits import RejectionDigest, TokenBucket
from alien.untrusted import is_safe
from alien_testing.emulator import MothershipEmulator
from alien_testing.nats_server import NatsServer

T = TypeVar("T")
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")  # the inputs near 32 KiB

WAIT_S = 20.0  # every wait is bounded
REGISTERED = ("ping", "fail", "slowish", "checked")
OUTCOMES = ("command_received", "command_rejected")
TERMINAL = ("command_completed", "command_failed")

# What the whole run fuzzed, printed by the module's last test (pytest -s shows it).
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


# --- the client, for the whole module ---


class Harness:
    """An AlienClient on a loop of its own thread, a C2 connection, and the reports recorded."""

    def __init__(self, config: AlienConfig) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzz-loop", daemon=True)
        self.thread.start()
        self.client = AlienClient(config)
        _register(self.client)
        self.reports: list[tuple[str, dict[str, Any]]] = []
        self.replies: list[dict[str, Any]] = []
        self.changed = asyncio.Event()  # bound to self.loop when first awaited (Python >= 3.10)
        dispatcher = self.client._dispatcher
        original = dispatcher._report

        def recording(event_type: str, data: dict[str, Any]) -> None:
            self.reports.append((event_type, data))
            self.changed.set()
            original(event_type, data)

        dispatcher._report = recording
        self.nc: Any = None
        self.subject = ""
        self.inbox = f"_INBOX.fuzz.{uuid.uuid4().hex}"

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = WAIT_S + 10) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def start(self, nats_url: str) -> None:
        await asyncio.wait_for(self.client.initialize(), WAIT_S)
        config = self.client.config
        self.subject = f"constellation.commands.{config.org_id}.{config.entity_id}"
        self.nc = await nats.connect(nats_url)

        async def on_reply(msg: Any) -> None:
            answer = json.loads(msg.data)
            if "accepted" in answer:  # not the commands stream's PubAck (see test_commands._request)
                self.replies.append(answer)
                self.changed.set()

        await self.nc.subscribe(f"{self.inbox}.*", cb=on_reply)
        await self.nc.flush()

    async def stop(self) -> None:
        if self.nc is not None:
            await self.nc.close()
        await self.client.close(timeout=5)

    async def wait_for(self, predicate: Any, what: str) -> None:
        deadline = self.loop.time() + WAIT_S
        while not predicate():
            self.changed.clear()
            remaining = deadline - self.loop.time()
            if remaining <= 0:
                raise AssertionError(f"timed out after {WAIT_S}s waiting for {what}")
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def send(self, batch: list[Input]) -> tuple[list[tuple[str, dict[str, Any]]], list[dict[str, Any]], str]:
        """Publish the batch and a final valid command; the reports and replies they caused."""
        self.reports.clear()
        self.replies.clear()
        for number, item in enumerate(batch):
            headers = {"Nats-Msg-Id": item.header_id} if item.header_id else None
            reply = f"{self.inbox}.{number}" if item.request else ""
            await self.nc.publish(self.subject, item.payload, reply=reply, headers=headers)
        sentinel = f"sentinel-{uuid.uuid4().hex}"
        await self.nc.publish(self.subject, json.dumps({"type": "ping", "command_id": sentinel}).encode())
        await self.nc.flush()

        def done(event_type: str, command_id: str) -> bool:
            return any(e == event_type and d.get("command_id") == command_id for e, d in self.reports)

        # The intake handles one message after the other: once the final command is received,
        # every input before it has its outcome. Then every accepted one must end.
        await self.wait_for(lambda: done("command_completed", sentinel), "the final valid command to be executed")
        await self.wait_for(
            lambda: all(any(done(end, command_id) for end in TERMINAL) for command_id in self._accepted()),
            "every accepted command to complete or fail",
        )
        requests = sum(item.request for item in batch)
        if sum(e in OUTCOMES for e, _ in self.reports) == len(batch) + 1:  # else the check fails anyway
            await self.wait_for(lambda: len(self.replies) >= requests, f"{requests} replies")
        return [(e, d) for e, d in self.reports if d.get("command_id") != sentinel], list(self.replies), sentinel

    def _accepted(self) -> list[str]:
        return [d["command_id"] for e, d in self.reports if e == "command_received"]


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    workdir = tmp_path_factory.mktemp("fuzz")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)  # no stray .env
        for name in list(os.environ):
            if name.startswith("ALIEN_") or name in ("NATS_URL", "MOTHERSHIP_URL", "API_BEARER_TOKEN"):
                patch.delenv(name)
        server = NatsServer()
        server.start()
        emulator = MothershipEmulator(server.url, dialect="v0.0.1")
        emulator.start()
        config = AlienConfig(
            mothership_url=emulator.url,
            nats_url=server.url,
            config_file=str(workdir / "identity.json"),
            data_dir=workdir / "data",
            command_intake="core",
            outbox_durability="memory",
            command_progress_rate_hz=0,
            publish_timeout_s=5.0,
            stats_log_interval_s=0,
            command_rate_limit_hz=0,  # every input gets its own outcome here
            command_rejections_logged=10**9,
        )
        harness = Harness(config)
        try:
            harness.run(harness.start(server.url))
            yield harness
        finally:
            try:
                harness.run(harness.stop())
            finally:
                harness.loop.call_soon_threadsafe(harness.loop.stop)
                harness.thread.join(10)
                emulator.stop()
                server.stop()


# --- the properties ---


def check_outcomes(
    batch: list[Input], reports: list[tuple[str, dict[str, Any]]], replies: list[dict[str, Any]]
) -> None:
    outcomes = [(e, d) for e, d in reports if e in OUTCOMES]
    assert len(outcomes) == len(batch), f"{len(batch)} inputs, {len(outcomes)} outcomes: {outcomes}"

    # Matched by id: an input whose id the parser reads gets exactly one outcome under it
    # (or, re-sent, as many outcomes as sends, at most one of them accepted).
    sent_ids = Counter(i for i in (item.explicit_id() for item in batch) if i is not None)
    by_id = Counter(d.get("command_id") for _, d in outcomes)
    for command_id, sends in sent_ids.items():
        assert by_id[command_id] == sends, f"{command_id!r}: {sends} sent, {by_id[command_id]} outcomes"
        received = [e for e, d in outcomes if d.get("command_id") == command_id and e == "command_received"]
        assert len(received) <= 1, f"{command_id!r} executed {len(received)} times"
    for command_id, count in by_id.items():  # ids nobody sent are fresh, one per input
        if command_id is not None and command_id not in sent_ids:
            assert count == 1, f"fresh id {command_id!r} has {count} outcomes"

    # received, then exactly one of completed / failed; nothing ends that was not received
    received_ids = [d["command_id"] for e, d in outcomes if e == "command_received"]
    assert len(received_ids) == len(set(received_ids))
    ends = Counter(d["command_id"] for e, d in reports if e in TERMINAL)
    assert set(ends) == set(received_ids) and all(n == 1 for n in ends.values()), (received_ids, ends)
    for command_id in received_ids:
        # (a re-sent copy's `command_rejected` duplicate may come before or after the end)
        order = [e for e, d in reports if d.get("command_id") == command_id and e != "command_rejected"]
        assert order[0] == "command_received" and order[-1] in TERMINAL, order

    for event_type, data in outcomes:
        # what the C2 (and `alien tail`) shows is printable and capped, whoever wrote it
        for name, cap in (("command_id", 128 + 20), ("type", 64 + 20), ("detail", 400 + 20)):
            value = data.get(name)
            printable = isinstance(value, str) and is_safe(value) and len(value) <= cap
            assert value is None or printable, (name, value)
        if event_type == "command_rejected":
            assert isinstance(data["reason"], str) and data["reason"], data
            assert isinstance(data["detail"], str)
            REASONS[data["reason"]] += 1
        else:
            TOTALS["accepted"] += 1
    for item in batch:  # a command whose two type fields disagree never runs
        try:
            value = json.loads(item.payload)
        except (ValueError, RecursionError):
            continue
        if isinstance(value, dict) and "type" in value and value.get("command_type", value["type"]) != value["type"]:
            conflicting = item.explicit_id()
            assert conflicting is None or all(
                not (e == "command_received" and d.get("command_id") == conflicting) for e, d in outcomes
            ), value
            TOTALS["conflicting type fields"] += 1
    LINES.check()
    for event_type, _ in reports:
        if event_type in TERMINAL:
            TOTALS[event_type] += 1
    TOTALS["inputs"] += len(batch)
    ERRORS.check()

    # one reply per request, saying what the outcome said
    assert len(replies) == sum(item.request for item in batch), replies
    outcome_by_id = {d.get("command_id"): e for e, d in outcomes}
    for answer in replies:
        if answer.get("command_id") in outcome_by_id and by_id[answer.get("command_id")] == 1:
            assert answer["accepted"] == (outcome_by_id[answer["command_id"]] == "command_received"), answer


@given(batch=batches(structured()))
def test_structured_commands_through_the_real_intake(harness: Harness, batch: list[Input]) -> None:
    reports, replies, _ = harness.run(harness.send(batch))
    check_outcomes(batch, reports, replies)
    TOTALS["examples"] += 1


@given(batch=batches(raw_bytes()))
def test_raw_bytes_through_the_real_intake(harness: Harness, batch: list[Input]) -> None:
    reports, replies, _ = harness.run(harness.send(batch))
    check_outcomes(batch, reports, replies)
    TOTALS["examples"] += 1


def test_the_intake_still_works_and_nothing_leaked(harness: Harness) -> None:
    """After everything above: a valid command still runs, and no handler task is left behind."""
    last = json.dumps({"type": "slowish", "command_id": _unique("last")}).encode()
    reports, _, _ = harness.run(harness.send([Input(last)]))
    assert [e for e, _ in reports if e in OUTCOMES] == ["command_received"]
    assert harness.client.link.is_connected
    assert harness.client._dispatcher.running == 0
    ERRORS.check()


def test_a_command_id_with_a_lone_surrogate_gets_one_outcome(harness: Harness) -> None:
    """Found by this fuzz: `"command_id": "c-\\ud800"` (valid JSON, not valid Unicode) crashed the
    persisted seen-ids lookup (UnicodeEncodeError out of dispatch): no outcome at all."""
    lone = Input(_encode({"type": "ping", "command_id": "c-\ud800"}, ascii_only=True), request=True)
    pair = Input(_encode({"type": "ping", "command_id": _unique("\udbff\udc00")}, ascii_only=True))
    reports, replies, _ = harness.run(harness.send([lone, pair]))
    check_outcomes([lone, pair], reports, replies)
    outcomes = [(e, d.get("reason")) for e, d in reports if e in OUTCOMES]
    assert outcomes == [("command_rejected", "bad_envelope"), ("command_received", None)]


@pytest.fixture(scope="module")
def dispatcher_loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@given(
    payloads=st.lists(
        st.tuples(st.one_of(structured(), raw_bytes()), st.booleans(), st.one_of(st.none(), st.text(max_size=20))),
        min_size=1,
        max_size=20,
    )
)
def test_dispatcher_directly(dispatcher_loop: asyncio.AbstractEventLoop, payloads: list[Any]) -> None:
    """CommandDispatcher.dispatch with raw bytes (no NATS): never raises, one outcome per input."""
    reports: list[tuple[str, dict[str, Any]]] = []
    replies: list[tuple[str, dict[str, Any]]] = []

    async def run() -> None:
        dispatcher = CommandDispatcher(
            lambda e, d: reports.append((e, d)),
            lambda s, d: replies.append((s, d)),
            progress_rate_hz=0,
            intake_limit=TokenBucket(0, 1),
            digest=RejectionDigest(10**9, 10.0),
        )
        _register(dispatcher)
        for number, (payload, request, message_id) in enumerate(payloads):
            dispatcher.dispatch(payload, reply=f"r.{number}" if request else None, message_id=message_id or None)
            assert len([e for e, _ in reports if e in OUTCOMES]) == number + 1  # synchronous, exactly one
        await asyncio.wait_for(dispatcher.join(), WAIT_S)
        assert dispatcher.running == 0

    dispatcher_loop.run_until_complete(run())
    received = [d["command_id"] for e, d in reports if e == "command_received"]
    ends = Counter(d["command_id"] for e, d in reports if e in TERMINAL)
    assert sorted(ends) == sorted(received) and all(n == 1 for n in ends.values())
    assert len(replies) == sum(request for _, request, _ in payloads)
    for event_type, data in reports:
        if event_type == "command_rejected":
            REASONS[f"dispatcher:{data['reason']}"] += 1
    ERRORS.check()
    TOTALS["dispatcher inputs"] += len(payloads)
    TOTALS["dispatcher examples"] += 1


def test_summary() -> None:
    """Print what was fuzzed (pytest -s): inputs and the rejections by reason."""
    nats_reasons = {k: v for k, v in sorted(REASONS.items()) if not k.startswith("dispatcher:")}
    direct = {k.removeprefix("dispatcher:"): v for k, v in sorted(REASONS.items()) if k.startswith("dispatcher:")}
    print(
        f"\ncommand fuzz: {TOTALS['examples']} examples, {TOTALS['inputs']} inputs through NATS "
        f"({TOTALS['accepted']} accepted: {TOTALS['command_completed']} completed, {TOTALS['command_failed']} failed; "
        f"{sum(nats_reasons.values())} rejected), "
        f"{TOTALS['dispatcher examples']} examples, {TOTALS['dispatcher inputs']} inputs to the dispatcher"
    )
    print(f"rejections through NATS by reason: {nats_reasons}")
    print(f"rejections in the dispatcher by reason: {direct}")
    print(f"at {time.strftime('%Y-%m-%d %H:%M:%S')}")
