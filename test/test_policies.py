"""Rate and deadband policies, driven by an explicit clock (no sleeping)."""

from __future__ import annotations

import itertools

import pytest

from alien.policies import LatestValueThrottle, PositionDeadband


def test_throttle_sends_first_at_once_and_the_latest_at_period_end() -> None:
    throttle: LatestValueThrottle[str] = LatestValueThrottle(rate_hz=2)  # period 0.5 s
    assert throttle.offer("a", now=10.0).send_now == "a"
    decision = throttle.offer("b", now=10.1)
    assert decision.send_now is None and decision.flush_at == pytest.approx(10.5)
    assert throttle.offer("c", now=10.2).flush_at is None  # already scheduled
    assert throttle.offer("d", now=10.4).send_now is None
    assert throttle.flush(now=10.5) == "d"  # the last value of the period, never the first
    assert throttle.coalesced == 2
    # quiet afterwards: nothing pending, the next value waits for the period after the flush
    assert throttle.flush(now=11.0) is None
    assert throttle.offer("e", now=11.2).send_now == "e"


def test_throttle_never_sends_faster_than_its_rate() -> None:
    throttle: LatestValueThrottle[int] = LatestValueThrottle(rate_hz=10)
    sent: list[tuple[float, int]] = []
    flush_at: float | None = None
    for step in range(1000):  # 1 kHz input for one second
        now = step / 1000
        if flush_at is not None and now >= flush_at:
            value = throttle.flush(now)
            flush_at = None
            if value is not None:
                sent.append((now, value))
        decision = throttle.offer(step, now)
        if decision.send_now is not None:
            sent.append((now, decision.send_now))
        if decision.flush_at is not None:
            flush_at = decision.flush_at
    times = [t for t, _ in sent]
    assert 9 <= len(sent) <= 11
    assert all(b - a >= 0.1 - 1e-9 for a, b in itertools.pairwise(times))


def test_zero_rate_disables_throttle() -> None:
    throttle: LatestValueThrottle[int] = LatestValueThrottle(rate_hz=0)
    assert [throttle.offer(i, now=0.0).send_now for i in range(3)] == [0, 1, 2]


def test_deadband_suppresses_small_moves_but_keeps_alive() -> None:
    band = PositionDeadband(metres=5.0, keepalive_s=10.0)
    assert band.accept(47.0, 8.0, 100.0, now=0.0)
    assert not band.accept(47.00001, 8.0, 100.0, now=1.0)  # ~1.1 m
    assert band.accept(47.0001, 8.0, 100.0, now=2.0)  # ~11 m
    assert not band.accept(47.0001, 8.0, 103.0, now=3.0)  # 3 m climb
    assert band.accept(47.0001, 8.0, 106.0, now=4.0)  # 6 m climb
    assert band.accept(47.0001, 8.0, 106.0, now=14.5)  # keepalive
    assert band.suppressed == 2


def test_distance_is_plausible() -> None:
    # one degree of latitude is about 111 km
    assert PositionDeadband.distance_m(0, 0, 0, 1, 0, 0) == pytest.approx(111_195, rel=1e-3)


def test_zero_deadband_accepts_everything() -> None:
    band = PositionDeadband(metres=0)
    assert all(band.accept(47.0, 8.0, None, now=float(i)) for i in range(5))
