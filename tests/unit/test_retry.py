"""RetryPolicy: capped exponential backoff with jitter, and giving up at the limits."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from gateway.core.retry import GiveUp, Jitter, RetryAt, RetryPolicy

T0 = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)
S = dt.timedelta(seconds=1)

policies = st.builds(
    RetryPolicy,
    base_delay=st.integers(1, 600).map(lambda n: n * S),
    max_delay=st.integers(600, 86_400).map(lambda n: n * S),
    max_attempts=st.integers(1, 50),
    max_age=st.integers(60, 7 * 86_400).map(lambda n: n * S),
    jitter=st.sampled_from(Jitter),
)
attempt_counts = st.integers(1, 200)
seeds = st.integers(0, 2**32)


def test_ceiling_doubles_from_base_until_the_cap() -> None:
    """30 s, 60 s, 120 s, ... and then max_delay."""
    policy = RetryPolicy(base_delay=30 * S, max_delay=300 * S)
    assert [policy.ceiling(n) for n in range(1, 7)] == [
        30 * S,
        60 * S,
        120 * S,
        240 * S,
        300 * S,
        300 * S,
    ]


def test_no_jitter_waits_exactly_the_ceiling() -> None:
    """Without jitter the retry time is deterministic."""
    policy = RetryPolicy(base_delay=10 * S, max_delay=1000 * S, jitter=Jitter.NONE)
    assert policy.decide(3, T0, T0, random.Random(1)) == RetryAt(T0 + 40 * S)


def test_seeded_rng_gives_reproducible_retry_times() -> None:
    """The same seed gives the same schedule; the policy holds no hidden randomness."""
    policy = RetryPolicy()
    first = [policy.decide(n, T0, T0, random.Random(42)) for n in range(1, 6)]
    again = [policy.decide(n, T0, T0, random.Random(42)) for n in range(1, 6)]
    assert first == again


def test_full_jitter_spreads_over_the_whole_range() -> None:
    """Full jitter uses [0, ceiling]; equal jitter stays in the upper half."""
    rng = random.Random(7)
    full = RetryPolicy(base_delay=100 * S, max_delay=100 * S, jitter=Jitter.FULL)
    equal = RetryPolicy(base_delay=100 * S, max_delay=100 * S, jitter=Jitter.EQUAL)
    full_delays = [full.delay(1, rng) for _ in range(500)]
    equal_delays = [equal.delay(1, rng) for _ in range(500)]
    assert min(full_delays) < 10 * S and max(full_delays) > 90 * S
    assert min(equal_delays) >= 50 * S and max(equal_delays) > 90 * S


def test_huge_attempt_counts_do_not_overflow() -> None:
    """Far past the cap the ceiling stays at max_delay instead of overflowing."""
    policy = RetryPolicy(
        base_delay=dt.timedelta(days=1), max_delay=dt.timedelta(days=2), max_attempts=10**6
    )
    assert policy.ceiling(10_000) == dt.timedelta(days=2)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_delay": dt.timedelta(0)},
        {"base_delay": 10 * S, "max_delay": 5 * S},
        {"max_attempts": 0},
        {"max_age": dt.timedelta(0)},
    ],
)
def test_nonsense_policies_are_refused(kwargs: dict[str, object]) -> None:
    """A policy that could never retry sensibly is a configuration error."""
    with pytest.raises(ValueError, match="retry"):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_give_up_reason_names_the_limit_and_last_error() -> None:
    """The dead reason tells an operator why delivery stopped."""
    policy = RetryPolicy(max_attempts=3, max_age=dt.timedelta(hours=1))
    by_count = policy.decide(3, T0, T0, random.Random(0), error="HTTP 503")
    by_age = policy.decide(1, T0, T0 + dt.timedelta(hours=2), random.Random(0))
    assert isinstance(by_count, GiveUp) and "3 attempts" in by_count.reason
    assert "HTTP 503" in by_count.reason
    assert isinstance(by_age, GiveUp) and "1:00:00" in by_age.reason


@given(policies, attempt_counts, seeds)
def test_delay_is_never_negative_and_never_above_the_cap(
    policy: RetryPolicy, attempts: int, seed: int
) -> None:
    """Every jittered delay lies in [0, ceiling] and the ceiling never exceeds max_delay."""
    delay = policy.delay(attempts, random.Random(seed))
    assert dt.timedelta(0) <= delay <= policy.ceiling(attempts) <= policy.max_delay


@given(policies, attempt_counts)
def test_ceiling_never_decreases_with_more_attempts(policy: RetryPolicy, attempts: int) -> None:
    """The backoff bound is monotone: another failure never shortens the maximum wait."""
    assert policy.ceiling(attempts) <= policy.ceiling(attempts + 1)
    assert policy.ceiling(attempts) >= min(policy.base_delay, policy.max_delay)


@given(policies, seeds)
def test_gives_up_exactly_at_max_attempts(policy: RetryPolicy, seed: int) -> None:
    """One attempt below the limit retries; at the limit it gives up."""
    rng = random.Random(seed)
    if policy.max_attempts > 1:
        assert isinstance(policy.decide(policy.max_attempts - 1, T0, T0, rng), RetryAt)
    assert isinstance(policy.decide(policy.max_attempts, T0, T0, rng), GiveUp)


@given(policies, seeds)
def test_gives_up_exactly_at_max_age(policy: RetryPolicy, seed: int) -> None:
    """Just before max_age it retries (within the cap); at max_age it gives up."""
    assume(policy.max_attempts > 1)
    rng = random.Random(seed)
    just_before = T0 + policy.max_age - dt.timedelta(microseconds=1)
    decision = policy.decide(1, T0, just_before, rng)
    assert isinstance(decision, RetryAt)
    assert just_before <= decision.when <= just_before + policy.max_delay
    assert isinstance(policy.decide(1, T0, T0 + policy.max_age, rng), GiveUp)
