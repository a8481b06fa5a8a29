"""Small state classes that decide what leaves the device: rate limits, a position deadband, digests.

They are pure (the caller passes the clock, or injects it: `TokenBucket`), so they are tested
without sleeping, and they are ROS-free so a weather sensor without ROS uses the same ones.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Decision(Generic[T]):
    """What to do with an offered value: send it now, and/or flush at `flush_at`."""

    send_now: T | None = None
    flush_at: float | None = None


class LatestValueThrottle(Generic[T]):
    """At most one value per period, and the last value of every period always goes out.

    The first value after a quiet period is sent at once (no added latency); values arriving
    within the period replace each other, and the latest is sent when the period ends, so state
    never goes stale the way a "first value only" throttle leaves it. `rate_hz <= 0` disables it.
    """

    def __init__(self, rate_hz: float) -> None:
        self.period = 1.0 / rate_hz if rate_hz > 0 else 0.0
        self._last_sent: float | None = None
        self._pending: T | None = None
        self._flush_scheduled = False
        self.coalesced = 0  # values replaced by a newer one within a period

    def offer(self, value: T, now: float) -> Decision[T]:
        if self.period == 0.0:
            return Decision(send_now=value)
        if not self._flush_scheduled and (self._last_sent is None or now - self._last_sent >= self.period):
            self._last_sent = now
            return Decision(send_now=value)
        if self._pending is not None:
            self.coalesced += 1
        self._pending = value
        if self._flush_scheduled:
            return Decision()
        self._flush_scheduled = True
        assert self._last_sent is not None
        return Decision(flush_at=self._last_sent + self.period)

    def flush(self, now: float) -> T | None:
        """Called at the scheduled time: the value to send, if one is waiting."""
        self._flush_scheduled = False
        value, self._pending = self._pending, None
        if value is not None:
            self._last_sent = now
        return value


class PositionDeadband:
    """Skips positions that moved less than `metres` since the last one sent.

    A position still goes out every `keepalive_s` even when the device stands still, so the
    operator can tell a parked robot from a lost one. `metres <= 0` disables the deadband.
    """

    EARTH_RADIUS_M = 6_371_000.0

    def __init__(self, metres: float, keepalive_s: float = 10.0) -> None:
        self.metres = metres
        self.keepalive_s = keepalive_s
        self._last: tuple[float, float, float, float] | None = None  # lat, lon, alt, time
        self.suppressed = 0

    def accept(self, latitude: float, longitude: float, altitude: float | None, now: float) -> bool:
        alt = altitude if altitude is not None and math.isfinite(altitude) else 0.0
        if self.metres > 0 and self._last is not None:
            last_lat, last_lon, last_alt, last_time = self._last
            moved = self.distance_m(last_lat, last_lon, last_alt, latitude, longitude, alt)
            if moved < self.metres and now - last_time < self.keepalive_s:
                self.suppressed += 1
                return False
        self._last = (latitude, longitude, alt, now)
        return True

    @classmethod
    def distance_m(cls, lat1: float, lon1: float, alt1: float, lat2: float, lon2: float, alt2: float) -> float:
        """Haversine ground distance combined with the altitude change."""
        phi1, phi2 = math.radians(lat1), math.radians(lat2)
        dphi, dlmb = phi2 - phi1, math.radians(lon2 - lon1)
        a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
        ground = 2 * cls.EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))
        return math.hypot(ground, alt2 - alt1)


class TokenBucket:
    """`rate_hz` tokens per second, at most `burst` saved up; `take()` spends one if there is one.

    A full bucket lets `burst` messages through at once, then `rate_hz` per second on average.
    `rate_hz <= 0` disables it (every take succeeds). `clock` is monotonic seconds (injectable).
    """

    def __init__(self, rate_hz: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate_hz = rate_hz
        self.burst = max(1, burst)
        self.clock = clock
        self._tokens = float(self.burst)
        self._at = clock()

    @property
    def enabled(self) -> bool:
        return self.rate_hz > 0

    def tokens(self) -> float:
        """Tokens available now (refilled up to `burst`)."""
        now = self.clock()
        if now > self._at:
            self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate_hz)
        self._at = max(self._at, now)  # a clock stepping back never refills twice
        return self._tokens

    def take(self) -> bool:
        if not self.enabled:
            return True
        if self.tokens() >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class TelemetryLimiter:
    """Flood protection: one `TokenBucket` per telemetry key and one for all telemetry together.

    `admit(key)` admits a message only when both its key's bucket and the overall bucket have a
    token (taken from neither otherwise). A `bounded_by_itself` message (the heartbeat, whose
    own timer bounds it) is still limited per key, and spends an overall token when there is one,
    but is never refused for the overall limit: a flood elsewhere must not silence the liveness
    signal. At most `max_keys` keys get a bucket of their own; further keys share one, so keys
    made up on the fly cannot grow memory. `refused` counts refusals per limit (a key, `OTHER`
    or `OVERALL`); `first_refusal(limit)` is True once per limit, for a WARNING then DEBUG.
    """

    OVERALL = "*"
    OTHER = "(other keys)"

    def __init__(
        self,
        rate_hz: float,
        burst: int,
        per_key_rate_hz: float,
        per_key_burst: int,
        *,
        max_keys: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.overall = TokenBucket(rate_hz, burst, clock)
        self.per_key_rate_hz, self.per_key_burst = per_key_rate_hz, per_key_burst
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self.refused: dict[str, int] = {}

    def admit(self, key: str, *, bounded_by_itself: bool = False) -> str | None:
        """None when the message may go; else the limit that refused it (its key, or `OVERALL`)."""
        bucket, bucket_key = self._bucket(key)
        if bucket is not None and bucket.tokens() < 1.0:
            return self._refuse(bucket_key)
        if self.overall.enabled and self.overall.tokens() < 1.0 and not bounded_by_itself:
            return self._refuse(self.OVERALL)
        if bucket is not None:
            bucket.take()
        self.overall.take()
        return None

    def first_refusal(self, limit: str) -> bool:
        """True on the first refusal by `limit` only: say it once at WARNING, then at DEBUG."""
        return self.refused.get(limit) == 1

    def _bucket(self, key: str) -> tuple[TokenBucket | None, str]:
        if self.per_key_rate_hz <= 0:
            return None, key
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                key = self.OTHER
                bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = TokenBucket(self.per_key_rate_hz, self.per_key_burst, self.clock)
        return bucket, key

    def _refuse(self, limit: str) -> str:
        self.refused[limit] = self.refused.get(limit, 0) + 1
        return limit


class RejectionDigest:
    """Rejected commands one by one up to `per_window` per window, then as counts per reason.

    A flood of garbage must neither fill the log nor the outbox: `offer(reason)` is True while
    the current window (`window_s`, from its first rejection) has reported fewer than
    `per_window`; later ones are only counted. `close_window()` ends the window and returns
    what it held (total, counts by reason) when anything went unreported, else None.
    """

    def __init__(self, per_window: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_window = per_window
        self.window_s = window_s
        self.clock = clock
        self.started: float | None = None
        self.reported = 0
        self.counts: Counter[str] = Counter()

    def offer(self, reason: str) -> bool:
        self.count(reason)
        if self.reported < self.per_window:
            self.reported += 1
            return True
        return False

    def count(self, reason: str) -> None:
        """Count one that is never reported on its own (a command dropped over the intake limit)."""
        now = self.clock()
        if self.started is not None and now - self.started >= self.window_s and not self.suppressed:
            self.close_window()  # a quiet window ends by itself; one with a summary waits for close_window()
        if self.started is None:
            self.started = now
        self.counts[reason] += 1

    @property
    def suppressed(self) -> int:
        return sum(self.counts.values()) - self.reported

    def close_window(self) -> tuple[int, Counter[str]] | None:
        held = (sum(self.counts.values()), self.counts) if self.suppressed else None
        self.started, self.reported, self.counts = None, 0, Counter()
        return held
