"""Heen/retour correlation at intake, retour deadlines, the overdue notice and the gauge."""

from __future__ import annotations

import datetime as dt

import pytest
from structlog.testing import capture_logs

from gateway.cli.status import party_status
from gateway.service.retour_deadlines import OverdueNotices, retour_deadlines
from tests.integration.conftest import START, Harness, example

# START is Friday 1 May 2026, 11:00 in the Netherlands. Three working days later skips the
# weekend and Bevrijdingsdag (Tuesday 5 May): 4, 6 and 7 May, so the retour is due Thursday 7.
DUE = dt.date(2026, 5, 7)
LAST_DAY = dt.datetime(2026, 5, 7, 20, 0, tzinfo=dt.UTC)
FIRST_LATE_DAY = dt.datetime(2026, 5, 7, 22, 30, tzinfo=dt.UTC)  # 8 May 00:30 Dutch time

PAIRS = {
    # original (type, sender) → retour (type, sender), matched by the examples' headers
    "JW301/JW302": (("JW301", "diemen"), ("JW302", "provider-a")),
    "JW323/JW325": (("JW323", "provider-b"), ("JW325", "diemen")),
}


async def _submit(harness: Harness, name: str, party: str) -> str:
    data = await harness.submit(party, example(name))
    assert data["state"] in ("queued", "held"), data
    return str(data["id"])


@pytest.mark.parametrize("pair", sorted(PAIRS))
@pytest.mark.parametrize("retour_first", [False, True], ids=["original-first", "retour-first"])
async def test_retour_is_linked_to_its_original_whichever_arrives_first(
    harness: Harness, pair: str, retour_first: bool
) -> None:
    """The retour and its original point at each other, in either arrival order (OP080)."""
    (original_type, original_sender), (retour_type, retour_sender) = PAIRS[pair]
    if retour_first:
        retour_id = await _submit(harness, retour_type, retour_sender)
        assert harness.store.linked_message(retour_id) is None  # pending until the original
        original_id = await _submit(harness, original_type, original_sender)
    else:
        original_id = await _submit(harness, original_type, original_sender)
        assert [o.message.id for o in harness.store.open_originals()] == [original_id]
        retour_id = await _submit(harness, retour_type, retour_sender)
    assert harness.store.linked_message(retour_id) == original_id
    assert harness.store.linked_message(original_id) == retour_id
    assert harness.store.open_originals() == []


async def test_a_retour_for_another_identificatie_links_nothing(harness: Harness) -> None:
    """A JW302 naming another BerichtIdentificatie leaves the JW301 waiting."""
    original_id = await _submit(harness, "JW301", "diemen")
    other = example("JW302").replace(b"123456789012", b"999999999999")
    data = await harness.submit("provider-a", other)
    assert harness.store.linked_message(str(data["id"])) is None
    assert [o.message.id for o in harness.store.open_originals()] == [original_id]


async def test_the_retour_the_gateway_makes_closes_the_exchange(harness: Harness) -> None:
    """A JW305 for Amsterdam, answered by the BVO, is linked to the generated JW306."""
    original_id = await _submit(harness, "JW305", "provider-b")
    linked = harness.store.linked_message(original_id)
    assert linked is not None
    retour = harness.store.get(linked)
    assert retour is not None and retour.in_reply_to == original_id
    assert harness.store.open_originals() == []


async def test_deadline_skips_the_weekend_and_bevrijdingsdag(harness: Harness) -> None:
    """Received Friday 1 May: due Thursday 7 May, overdue from the first minute of 8 May."""
    original_id = await _submit(harness, "JW301", "diemen")
    (on_time,) = retour_deadlines(harness.store, LAST_DAY)
    assert (on_time.message.id, on_time.due, on_time.overdue) == (original_id, DUE, False)
    assert on_time.owed_by == "provider-a"
    (late,) = retour_deadlines(harness.store, FIRST_LATE_DAY)
    assert late.overdue
    assert retour_deadlines(harness.store, FIRST_LATE_DAY, party="provider-b") == []
    # Overdue only: the same late original, and nothing while it is not late yet.
    assert retour_deadlines(harness.store, FIRST_LATE_DAY, overdue_only=True) == [late]
    assert retour_deadlines(harness.store, LAST_DAY, overdue_only=True) == []
    received = late.message.received_at
    second = dt.timedelta(seconds=1)
    assert harness.store.open_originals(received_before=received - second) == []
    assert [
        o.message.id for o in harness.store.open_originals(received_before=received + second)
    ] == [original_id]


async def test_overdue_is_logged_once_and_not_again_after_a_restart(harness: Harness) -> None:
    """The notice comes when the deadline passes, once; a new job (a restart) stays silent."""
    await _submit(harness, "JW301", "diemen")
    harness.clock.set(LAST_DAY)
    notices = OverdueNotices(harness.store, harness.clock)
    with capture_logs() as before:
        assert await notices.run() == 0
    harness.clock.set(FIRST_LATE_DAY)
    with capture_logs() as logs:
        assert await notices.run() == 1
        assert await notices.run() == 0
        assert await OverdueNotices(harness.store, harness.clock).run() == 0
    overdue = [e for e in before + logs if e["event"] == "retour_overdue"]
    assert len(overdue) == 1
    assert (overdue[0]["party"], overdue[0]["due"]) == ("provider-a", DUE.isoformat())


async def test_overdue_retours_in_metrics_and_status(harness: Harness) -> None:
    """``/metrics`` and ``gateway status`` count the late retours per owing party."""
    await _submit(harness, "JW301", "diemen")
    await _submit(harness, "JW323", "provider-b")  # JW325 due in 10 working days: not late yet
    harness.clock.set(FIRST_LATE_DAY)
    text = await harness.metrics()
    assert 'gateway_overdue_retours{party="provider-a"} 1' in text
    assert 'gateway_overdue_retours{party="diemen"} 0' in text
    rows = {r["party"]: r for r in party_status(harness.gateway.settings, harness.store, START)}
    assert rows["provider-a"]["overdue_deadlines"] == 0
    rows = {
        r["party"]: r for r in party_status(harness.gateway.settings, harness.store, FIRST_LATE_DAY)
    }
    assert rows["provider-a"]["overdue_deadlines"] == 1
    assert rows["diemen"]["overdue_deadlines"] == 0
