"""Time-sortable message ids (ULID layout): 48-bit millisecond timestamp + 80 random bits.

Encoded as 26 characters of Crockford base32, so the text order of two ids is the order of
their timestamps; listings and the mailbox cursor rely on that. An :class:`IdGenerator` also
keeps ids strictly increasing within one millisecond and when the clock steps back.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
"""Crockford's base32 alphabet: digits and capitals without I, L, O and U."""

ID_LENGTH = 26
_TIME_BITS = 48
_RANDOM_BITS = 80
_MAX_TIME = (1 << _TIME_BITS) - 1
_MAX_RANDOM = (1 << _RANDOM_BITS) - 1
_DECODE = {ch: value for value, ch in enumerate(CROCKFORD)}


def _millis(at: dt.datetime) -> int:
    if at.tzinfo is None:
        raise ValueError("message ids need a timezone-aware time")
    millis = int(at.timestamp() * 1000)
    if not 0 <= millis <= _MAX_TIME:
        raise ValueError("time is outside the range a message id can hold")
    return millis


def encode(millis: int, randomness: int) -> str:
    """The 26-character id for a millisecond timestamp and 80 random bits."""
    if not 0 <= millis <= _MAX_TIME or not 0 <= randomness <= _MAX_RANDOM:
        raise ValueError("id parts out of range")
    value = (millis << _RANDOM_BITS) | randomness
    chars = []
    for _ in range(ID_LENGTH):
        chars.append(CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def decode(message_id: str) -> tuple[int, int]:
    """(millisecond timestamp, random part) of an id; ``ValueError`` when it is not an id."""
    if len(message_id) != ID_LENGTH:
        raise ValueError("not a message id")
    value = 0
    for ch in message_id.upper():
        digit = _DECODE.get(ch)
        if digit is None:
            raise ValueError("not a message id")
        value = (value << 5) | digit
    if value >> (_TIME_BITS + _RANDOM_BITS):
        raise ValueError("not a message id")
    return value >> _RANDOM_BITS, value & _MAX_RANDOM


def is_message_id(text: str) -> bool:
    """True when ``text`` is a well-formed id (cheap check for ids from URLs and cursors)."""
    try:
        decode(text)
    except ValueError:
        return False
    return True


def id_time(message_id: str) -> dt.datetime:
    """The creation time (UTC, millisecond precision) encoded in an id."""
    millis, _ = decode(message_id)
    return dt.datetime.fromtimestamp(millis / 1000, tz=dt.UTC)


def first_id_at(at: dt.datetime) -> str:
    """The smallest id of the millisecond ``at``: a cursor that starts at a point in time."""
    return encode(_millis(at), 0)


def new_id(at: dt.datetime, rng: random.Random) -> str:
    """A fresh id for time ``at`` (not monotonic within a millisecond; see IdGenerator)."""
    return encode(_millis(at), rng.getrandbits(_RANDOM_BITS))


class IdGenerator:
    """Strictly increasing ids: within one millisecond, or when the clock steps back, the
    previous id's random part is incremented, as in the ULID monotonic variant.

    Not thread-safe: a caller that shares one generator between threads serialises the calls.
    """

    def __init__(
        self,
        clock: Callable[[], dt.datetime] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """``clock`` gives the time when :meth:`next` is called without one (default UTC now);
        ``rng`` gives the random bits (default ``random.SystemRandom``)."""
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._rng = rng or random.SystemRandom()
        self._last_millis = -1
        self._last_random = 0

    def next(self, at: dt.datetime | None = None) -> str:
        """A new id for ``at`` (default: the clock), greater than every id made before."""
        millis = _millis(at if at is not None else self._clock())
        if millis <= self._last_millis:
            millis, randomness = self._last_millis, self._last_random + 1
            if randomness > _MAX_RANDOM:
                millis, randomness = millis + 1, self._rng.getrandbits(_RANDOM_BITS)
        else:
            randomness = self._rng.getrandbits(_RANDOM_BITS)
        self._last_millis, self._last_random = millis, randomness
        return encode(millis, randomness)
