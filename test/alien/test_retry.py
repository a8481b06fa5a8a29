"""The one retry policy (alien.retry): what is transient, and the delays between attempts."""

from __future__ import annotations

import pytest

from alien.errors import AuthenticationError, MothershipUnavailableError, NotFoundError, ServerError
from alien.retry import POST_RETRY_STATUSES, RETRY_STATUSES, Backoff, RetryPolicy, is_transient


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (MothershipUnavailableError("cannot reach it"), True),
        (ServerError("bad gateway", status=502), True),
        (ServerError("unavailable", status=503), True),
        (ServerError("gateway timeout", status=504), True),
        (ServerError("CREATE_FAILED", status=500), False),  # a refusal: waiting changes nothing
        (NotFoundError("gone", status=404), False),
        (AuthenticationError("bad key", status=401), False),
        (ValueError("not a server answer"), False),
    ],
)
def test_only_an_unreachable_server_or_a_gateway_status_is_transient(error: Exception, transient: bool) -> None:
    assert is_transient(error) is transient


def test_a_post_is_retried_only_where_the_server_did_nothing() -> None:
    assert POST_RETRY_STATUSES == {429, 502, 503, 504}
    assert 500 in RETRY_STATUSES and 500 not in POST_RETRY_STATUSES and 404 not in RETRY_STATUSES


def test_backoff_doubles_up_to_its_cap_jittered_and_starts_over_after_reset() -> None:
    steps = [0.5, 1.0, 2.0, 3.0, 3.0]
    runs = []
    for _ in range(200):
        backoff = Backoff(0.5, 3.0)
        delays = [backoff.next_delay() for _ in steps]
        assert all(step / 2 <= delay <= step for delay, step in zip(delays, steps, strict=True)), delays
        runs.append(delays)
        backoff.reset()
        assert 0.25 <= backoff.next_delay() <= 0.5
    # jittered: devices that failed together do not retry together
    firsts = sorted(run[0] for run in runs)
    assert len(set(firsts)) == len(firsts)
    assert firsts[-1] - firsts[0] > 0.2  # spread over most of its [0.25, 0.5] window


def test_request_delays_are_jittered_below_the_doubling_bound_and_honour_retry_after() -> None:
    policy = RetryPolicy(attempts=5, base_s=0.5, max_s=4.0)
    for attempt, bound in ((1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (9, 4.0)):
        delays = [policy.delay(attempt) for _ in range(200)]
        assert all(0 <= d <= bound for d in delays) and max(delays) > bound / 2
    assert policy.delay(1, retry_after=2.5) == 2.5
    assert policy.delay(1, retry_after=60) == 4.0  # a server's Retry-After is capped
