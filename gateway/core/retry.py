"""When to try a failed delivery again: capped exponential backoff with jitter, and when to stop.

Only transient failures come here (connection errors, timeouts, 5xx); permanent ones go straight
to ``dead``. The policy is pure: the caller passes the clock reading and a ``random.Random``, so
tests use a seeded generator and production a ``random.SystemRandom``.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from enum import StrEnum


class Jitter(StrEnum):
    """How much of the backoff ceiling is randomised.

    ``full`` spreads a retry anywhere in [0, ceiling] (best at breaking up a thundering herd);
    ``equal`` keeps at least half the ceiling, in [ceiling/2, ceiling]; ``none`` waits exactly
    the ceiling.
    """

    FULL = "full"
    EQUAL = "equal"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class RetryAt:
    """Try again at ``when``."""

    when: dt.datetime


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Stop trying; ``reason`` says why (it becomes the ``dead`` reason)."""

    reason: str


Decision = RetryAt | GiveUp


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Capped exponential backoff: the n-th failure waits up to ``base_delay * 2**(n-1)``.

    The ceiling never exceeds ``max_delay``. After ``max_attempts`` failed attempts, or once the
    message has waited ``max_age`` since ``since``, the policy gives up.
    """

    base_delay: dt.timedelta = dt.timedelta(seconds=30)
    max_delay: dt.timedelta = dt.timedelta(hours=1)
    max_attempts: int = 12
    max_age: dt.timedelta = dt.timedelta(days=3)
    jitter: Jitter = Jitter.FULL

    def __post_init__(self) -> None:
        if self.base_delay <= dt.timedelta(0):
            raise ValueError("retry base_delay must be positive")
        if self.max_delay < self.base_delay:
            raise ValueError("retry max_delay must be at least base_delay")
        if self.max_attempts < 1:
            raise ValueError("retry max_attempts must be at least 1")
        if self.max_age <= dt.timedelta(0):
            raise ValueError("retry max_age must be positive")

    def ceiling(self, attempts: int) -> dt.timedelta:
        """The longest wait after ``attempts`` failed attempts (never above ``max_delay``)."""
        if attempts < 1:
            raise ValueError("attempts counts failed attempts and starts at 1")
        # Past 2**80 even a microsecond base exceeds any timedelta, so stop doubling there
        # instead of building an overflowing timedelta.
        factor = 1 << min(attempts - 1, 80)
        if self.base_delay.total_seconds() * factor >= self.max_delay.total_seconds():
            return self.max_delay
        return self.base_delay * factor

    def delay(self, attempts: int, rng: random.Random) -> dt.timedelta:
        """A jittered wait after ``attempts`` failed attempts, within [0, ceiling]."""
        top = self.ceiling(attempts)
        match self.jitter:
            case Jitter.FULL:
                return top * rng.random()
            case Jitter.EQUAL:
                return top / 2 + (top / 2) * rng.random()
            case Jitter.NONE:
                return top

    def decide(
        self,
        attempts: int,
        since: dt.datetime,
        now: dt.datetime,
        rng: random.Random,
        error: str | None = None,
    ) -> Decision:
        """After ``attempts`` failed attempts (this one included), retry or give up.

        ``since`` is when the message first became deliverable (its first queueing or its
        receipt); ``error`` is the last failure, repeated in the give-up reason for operators.
        Gives up when ``attempts >= max_attempts`` or ``now - since >= max_age``; otherwise
        retries at ``now`` plus a jittered delay.
        """
        last = f"; last error: {error}" if error else ""
        if attempts >= self.max_attempts:
            plural = "s" if attempts != 1 else ""
            return GiveUp(f"gave up after {attempts} attempt{plural}{last}")
        if now - since >= self.max_age:
            return GiveUp(f"gave up after waiting longer than {self.max_age}{last}")
        return RetryAt(now + self.delay(attempts, rng))


RECORD_MARGIN_SECONDS = 5.0
"""Lease time kept back after an attempt to record its outcome (at most a quarter lease)."""
FOLDER_WRITE_SECONDS = 0.5
"""What one folder delivery (write, fsync, rename, record) may take, for sizing claims."""
SMALLEST_ATTEMPT_SECONDS = 0.5
"""An attempt with less lease than this left is not started (at most half a lease)."""


@dataclass(frozen=True, slots=True)
class LeasePlan:
    """How a delivery worker spends one lease: claims that fit it, attempts that end inside it.

    A worker claims at most :meth:`claim_size` messages under one lease and gives each attempt
    at most :meth:`attempt_budget` seconds, so every attempt it starts ends, and its outcome is
    recorded, before the lease runs out; only then may another worker take the message over.
    The plan refuses a lease too short for one full attempt of either channel (an HTTP push
    with its whole timeout, or a folder write) plus the margin for recording the outcome.
    """

    lease_seconds: float
    http_timeout_seconds: float
    batch_size: int

    def __post_init__(self) -> None:
        if self.lease_seconds <= 0 or self.http_timeout_seconds <= 0:
            raise ValueError("the delivery lease and the HTTP timeout must be positive")
        if self.batch_size < 1:
            raise ValueError("the delivery batch size must be at least 1")
        longest = max(self.http_timeout_seconds, FOLDER_WRITE_SECONDS)
        if self.lease_seconds - self.record_margin < longest:
            raise ValueError(
                f"lease_seconds ({self.lease_seconds:g}) must cover one attempt "
                f"({longest:g} s: the HTTP timeout or a folder write) plus "
                f"{self.record_margin:g} s to record its outcome"
            )

    @property
    def record_margin(self) -> float:
        """Seconds of lease kept back after an attempt to record its outcome."""
        return min(RECORD_MARGIN_SECONDS, self.lease_seconds / 4)

    @property
    def smallest_attempt(self) -> float:
        """An attempt with a smaller budget than this is not started."""
        return min(SMALLEST_ATTEMPT_SECONDS, (self.lease_seconds - self.record_margin) / 2)

    def claim_size(self, per_attempt_seconds: float) -> int:
        """How many messages one claim may take when each attempt may last this long.

        ``claim_size * per_attempt_seconds + record_margin`` never exceeds the lease; an
        attempt longer than the lease allows raises ``ValueError``.
        """
        if per_attempt_seconds <= 0:
            raise ValueError("an attempt takes a positive time")
        fits = int((self.lease_seconds - self.record_margin) // per_attempt_seconds)
        if fits < 1:
            raise ValueError(f"a {per_attempt_seconds:g} s attempt does not fit the lease")
        return min(self.batch_size, fits)

    def attempt_budget(self, lease_left_seconds: float) -> float | None:
        """The seconds an attempt may take with this much lease left; ``None``: do not start.

        What is left minus the recording margin, so the outcome is recorded inside the lease.
        """
        budget = lease_left_seconds - self.record_margin
        return budget if budget >= self.smallest_attempt else None
