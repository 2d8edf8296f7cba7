"""Message ids: 26 Crockford characters that sort by creation time."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.ids import (
    CROCKFORD,
    ID_LENGTH,
    IdGenerator,
    decode,
    encode,
    first_id_at,
    id_time,
    is_message_id,
    new_id,
)

T0 = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)
times = st.datetimes(
    min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(9000, 1, 1), timezones=st.just(dt.UTC)
)


def test_known_encoding() -> None:
    """The layout matches ULID: time in the first 10 characters, randomness in the last 16."""
    assert encode(0, 0) == "0" * 26
    assert encode(1, 0) == "0000000001" + "0" * 16
    assert encode((1 << 48) - 1, (1 << 80) - 1) == "7" + "Z" * 25


@given(times, times, st.integers(0, 2**32))
def test_ids_sort_like_their_times(a: dt.datetime, b: dt.datetime, seed: int) -> None:
    """Two ids from different milliseconds compare like the times they were made at."""
    rng = random.Random(seed)
    id_a, id_b = new_id(a, rng), new_id(b, rng)
    ms_a, ms_b = int(a.timestamp() * 1000), int(b.timestamp() * 1000)
    if ms_a != ms_b:
        assert (id_a < id_b) == (ms_a < ms_b)
    assert len(id_a) == ID_LENGTH and set(id_a) <= set(CROCKFORD)


@given(st.integers(0, (1 << 48) - 1), st.integers(0, (1 << 80) - 1))
def test_decode_inverts_encode(millis: int, randomness: int) -> None:
    """Every id decodes back to its parts."""
    assert decode(encode(millis, randomness)) == (millis, randomness)


def test_generator_is_strictly_increasing_within_a_millisecond_and_backwards() -> None:
    """Same millisecond, or a clock that steps back, still gives larger ids."""
    gen = IdGenerator(rng=random.Random(3))
    made = [gen.next(T0) for _ in range(1000)]
    made.append(gen.next(T0 - dt.timedelta(seconds=5)))
    made.append(gen.next(T0 + dt.timedelta(milliseconds=1)))
    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_generator_uses_its_injected_clock() -> None:
    """Without an explicit time the generator asks its clock."""
    gen = IdGenerator(clock=lambda: T0, rng=random.Random(0))
    assert id_time(gen.next()) == T0


def test_first_id_at_is_a_cursor_below_every_id_of_that_time() -> None:
    """Listing from first_id_at(t) includes every id made at t or later."""
    made = new_id(T0, random.Random(5))
    assert first_id_at(T0) <= made < first_id_at(T0 + dt.timedelta(milliseconds=1))


@pytest.mark.parametrize("text", ["", "0" * 25, "0" * 27, "I" * 26, "8" + "0" * 25, "01JNM-"])
def test_malformed_ids_are_recognised(text: str) -> None:
    """Cursor and URL input that is not an id is refused, not misread."""
    assert not is_message_id(text)


def test_naive_times_are_refused() -> None:
    """A naive datetime would silently be read as local time."""
    with pytest.raises(ValueError, match="timezone"):
        new_id(dt.datetime(2025, 1, 1), random.Random(0))
