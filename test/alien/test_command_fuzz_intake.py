"""Fuzzing the real command intake over NATS: every input ends in exactly one ack or one reject."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import uuid
from collections import Counter
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import command_fuzz_support
import nats
import pytest
from command_fuzz_support import (
    ERRORS,
    LINES,
    OUTCOMES,
    REASONS,
    TERMINAL,
    TOTALS,
    WAIT_S,
    Input,
    _encode,
    _register,
    _unique,
    batches,
    raw_bytes,
    structured,
)
from hypothesis import given

from alien import AlienClient, AlienConfig
from alien.untrusted import is_safe
from alien_testing.emulator import MothershipEmulator
from alien_testing.nats_server import NatsServer

T = TypeVar("T")
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")  # the inputs near 32 KiB

# the module-scoped autouse fixture of command_fuzz_support, used here by name
no_errors_logged = command_fuzz_support.no_errors_logged


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
