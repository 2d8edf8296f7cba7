"""Delivery leases and lanes: claims fit their lease, and ``[delivery]`` refuses settings that
would break that, or a pass wait that outlasts the pass interval."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.config import DeliverySettings, load_config
from gateway.core.errors import ConfigError, IllegalTransition
from gateway.core.lifecycle import advance, return_unattempted
from gateway.core.model import Message, State
from gateway.core.retry import FOLDER_WRITE_SECONDS, LeasePlan

NOW = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)

seconds = st.floats(min_value=0.01, max_value=10_000, allow_nan=False, allow_infinity=False)


@given(lease=seconds, timeout=seconds, batch=st.integers(min_value=1, max_value=10_000))
def test_every_accepted_plan_fits_whole_claims_inside_the_lease(
    lease: float, timeout: float, batch: int
) -> None:
    """Property: a claim of either channel, every attempt at its full length, plus the margin
    for recording the last outcome, ends inside the lease; a plan that cannot do so is refused."""
    try:
        plan = LeasePlan(lease, timeout, batch)
    except ValueError:
        assert lease - min(5.0, lease / 4) < max(timeout, FOLDER_WRITE_SECONDS)
        return
    for per_attempt in (timeout, FOLDER_WRITE_SECONDS):
        size = plan.claim_size(per_attempt)
        assert 1 <= size <= batch
        assert size * per_attempt + plan.record_margin <= lease


@given(lease=seconds, left=st.floats(min_value=-10, max_value=10_000, allow_nan=False))
def test_an_attempt_never_outlives_what_is_left_of_the_lease(lease: float, left: float) -> None:
    """Property: a started attempt's budget plus the recording margin fits what is left."""
    try:
        plan = LeasePlan(lease, FOLDER_WRITE_SECONDS, 50)
    except ValueError:
        return
    budget = plan.attempt_budget(left)
    if budget is None:
        assert left - plan.record_margin < plan.smallest_attempt
    else:
        assert budget >= plan.smallest_attempt
        assert budget + plan.record_margin <= left + 1e-9


def test_claim_size_examples() -> None:
    """The defaults: 120 s lease, 30 s pushes: three pushes per claim, 50 folder writes."""
    plan = LeasePlan(120, 30, 50)
    assert (plan.claim_size(30), plan.claim_size(FOLDER_WRITE_SECONDS)) == (3, 50)
    assert plan.attempt_budget(40) == 35
    assert plan.attempt_budget(5.4) is None
    with pytest.raises(ValueError, match="does not fit the lease"):
        plan.claim_size(116)


# -- a claim handed back untried ------------------------------------------------------------


def _sending(attempts: int) -> Message:
    return Message(
        id="01J0000000000000000000000A",
        state=State.SENDING,
        sender="diemen",
        recipient="provider-a",
        message_type="JW301",
        bericht_id="B1",
        content_hash="0" * 64,
        size=10,
        received_at=NOW,
        updated_at=NOW,
        attempts=attempts,
        next_attempt_at=NOW - dt.timedelta(minutes=1),
        lease_until=NOW + dt.timedelta(minutes=2),
    )


def test_returning_an_unattempted_claim_costs_no_attempt() -> None:
    """A claim given back untried keeps its attempts and due time; a failure counts one."""
    msg = _sending(attempts=2)
    back, event = return_unattempted(msg, "returned unattempted: stopping", "delivery", NOW)
    assert (back.state, back.attempts, back.lease_until) == (State.QUEUED, 2, None)
    assert back.next_attempt_at == msg.next_attempt_at
    assert (event.from_state, event.to_state) == (State.SENDING, State.QUEUED)
    failed, _ = advance(msg, State.QUEUED, "transient failure", "delivery", NOW)
    assert failed.attempts == 3


def test_only_a_claim_can_be_returned_unattempted() -> None:
    queued, _ = return_unattempted(_sending(0), "back", "delivery", NOW)
    with pytest.raises(IllegalTransition):
        return_unattempted(queued, "back", "delivery", NOW)


# -- [delivery] settings ---------------------------------------------------------------------


def _load(tmp_path: Path, delivery: str) -> DeliverySettings:
    path = tmp_path / "config.toml"
    path.write_text(f"[delivery]\n{delivery}\n", encoding="utf-8")
    return load_config(path, {}).delivery


def test_lanes_and_pass_wait_come_from_the_configuration(tmp_path: Path) -> None:
    settings = _load(tmp_path, "max_lanes = 3\npass_wait_seconds = 0.25")
    assert (settings.max_lanes, settings.pass_wait) == (3, 0.25)


def test_pass_wait_defaults_below_a_short_interval(tmp_path: Path) -> None:
    assert _load(tmp_path, "").pass_wait == 1.0
    assert _load(tmp_path, "interval_seconds = 0.2").pass_wait == 0.1


@pytest.mark.parametrize(
    ("delivery", "expected"),
    [
        ("max_lanes = 0", "delivery.max_lanes"),
        ("pass_wait_seconds = -1", "delivery.pass_wait_seconds"),
        ("interval_seconds = 2\npass_wait_seconds = 2", "pass_wait_seconds must be smaller"),
        ("lease_seconds = 20\nhttp_timeout_seconds = 30", "lease_seconds (20) must cover"),
        ("lease_seconds = 34\nhttp_timeout_seconds = 30", "lease_seconds (34) must cover"),
        ("lease_seconds = 0.5", "lease_seconds (0.5) must cover"),
    ],
)
def test_settings_that_break_the_lease_or_the_pass_are_refused(
    tmp_path: Path, delivery: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, delivery)
    assert expected in str(caught.value)
    assert str(tmp_path / "config.toml") in str(caught.value)


def test_the_shortest_accepted_lease_covers_one_push(tmp_path: Path) -> None:
    settings = _load(tmp_path, "lease_seconds = 35\nhttp_timeout_seconds = 30")
    assert settings.lease_seconds == 35
