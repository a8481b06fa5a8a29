"""Rate and deadband policies, driven by an explicit clock (no sleeping)."""

from __future__ import annotations

import itertools

import pytest

from alien.rate_limits import LatestValueThrottle, PositionDeadband, TelemetryLimiter, TokenBucket


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


class FakeClock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_its_burst_then_its_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate_hz=4, burst=5, clock=clock)
    assert [bucket.take() for _ in range(7)] == [True] * 5 + [False] * 2  # a full bucket: the burst
    clock.now += 0.125  # half a token
    assert not bucket.take()
    clock.now += 0.125
    assert bucket.take() and not bucket.take()
    clock.now += 60  # a long quiet time saves up the burst, never more
    assert sum(bucket.take() for _ in range(100)) == 5


def test_token_bucket_never_exceeds_rate_times_time_plus_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate_hz=50, burst=100, clock=clock)
    taken = 0
    for _ in range(10_000):  # 10 kHz offered for one second
        clock.now += 0.0001
        taken += bucket.take()
    assert taken == pytest.approx(100 + 50 * 1.0, abs=1)


def test_token_bucket_with_zero_rate_is_off_and_a_clock_stepping_back_adds_nothing() -> None:
    clock = FakeClock()
    assert all(TokenBucket(rate_hz=0, burst=1, clock=clock).take() for _ in range(1000))
    bucket = TokenBucket(rate_hz=1, burst=1, clock=clock)
    assert bucket.take()
    clock.now -= 5
    assert not bucket.take()
    clock.now += 5.5  # back where it was, plus half a second: still half a token
    assert not bucket.take()
    clock.now += 0.5
    assert bucket.take()


def test_telemetry_limiter_limits_each_key_and_all_keys_together() -> None:
    clock = FakeClock()
    limiter = TelemetryLimiter(rate_hz=10, burst=6, per_key_rate_hz=2, per_key_burst=4, clock=clock)
    assert [limiter.admit("position") for _ in range(5)] == [None] * 4 + ["position"]
    assert limiter.first_refusal("position")
    assert limiter.admit("position") == "position" and not limiter.first_refusal("position")
    # another key has a bucket of its own, but the overall bucket (6) runs out first
    assert [limiter.admit("power") for _ in range(3)] == [None, None, TelemetryLimiter.OVERALL]
    assert limiter.refused == {"position": 2, TelemetryLimiter.OVERALL: 1}
    # a refusal takes no token: after 0.5 s position has one more (2/s), and overall has 5 (10/s)
    clock.now += 0.5
    assert [limiter.admit("position") for _ in range(2)] == [None, "position"]


def test_telemetry_limiter_lets_a_self_bounded_message_past_the_overall_limit_only() -> None:
    clock = FakeClock()
    limiter = TelemetryLimiter(rate_hz=1, burst=1, per_key_rate_hz=1, per_key_burst=1, clock=clock)
    assert limiter.admit("flood") is None
    assert limiter.admit("other") == TelemetryLimiter.OVERALL
    assert limiter.admit("(heartbeat)", bounded_by_itself=True) is None  # not silenced by a flood
    assert limiter.admit("(heartbeat)", bounded_by_itself=True) == "(heartbeat)"  # its own limit still holds


def test_telemetry_limiter_shares_one_bucket_beyond_max_keys() -> None:
    clock = FakeClock()
    limiter = TelemetryLimiter(rate_hz=0, burst=1, per_key_rate_hz=1, per_key_burst=1, max_keys=3, clock=clock)
    assert [limiter.admit(f"k{i}") for i in range(3)] == [None] * 3
    assert limiter.admit("k3") is None  # the first key past the bound opens the shared bucket
    assert limiter.admit("k4") == TelemetryLimiter.OTHER
    assert len(limiter._buckets) == 4  # made-up keys cannot grow memory
