"""Fuzzing CommandDispatcher.dispatch directly (no NATS), and the summary of what the whole fuzz run sent."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import command_fuzz_support
import pytest
from command_fuzz_support import ERRORS, OUTCOMES, REASONS, TERMINAL, TOTALS, WAIT_S, _register, raw_bytes, structured
from hypothesis import given
from hypothesis import strategies as st

from alien.commands import CommandDispatcher
from alien.rate_limits import RejectionDigest, TokenBucket

pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")  # the inputs near 32 KiB

# the module-scoped autouse fixture of command_fuzz_support, used here by name
no_errors_logged = command_fuzz_support.no_errors_logged


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
