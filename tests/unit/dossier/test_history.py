"""Folding accepted messages into InMemoryHistory: what is recorded, and in what order."""

from __future__ import annotations

from gateway.core.dossier import DeliveryKind, InMemoryHistory, current_versions, most_recent
from tests.unit.dossier.scenario import (
    AANBIEDER,
    BSN,
    GEMEENTE,
    REF_1,
    Dossier,
    antwoord,
    delete_allocation,
    start,
    stop,
    toewijzing,
    version,
    vot,
)


def _recorded(*messages) -> InMemoryHistory:
    return Dossier().accept_all(*messages).history


def test_most_recent_version_is_by_toewijzing_moment() -> None:
    """IV013: the latest Toewijzingsdatum + Toewijzingstijd wins, whatever the arrival order."""
    later = version(toewijzing(), 1, tijd="18:00:00", Einddatum="2026-06-30")
    forward = _recorded(vot(), toewijzing(), later)
    backward = _recorded(vot(), later, toewijzing())
    for history in (forward, backward):
        current = most_recent(history.allocation_versions(GEMEENTE, 300201))
        assert current is not None
        assert current.einddatum is not None
        assert current.einddatum.isoformat() == "2026-06-30"


def test_client_allocations_and_current_versions() -> None:
    """Both numbers are found for the client; the deleted one is current but deleted."""
    history = _recorded(vot(), toewijzing(), delete_allocation(toewijzing(), 2, tijd="13:00:00"))
    current = current_versions(history.client_allocations(GEMEENTE, AANBIEDER, BSN))
    assert sorted(current) == [300201, 300202]
    assert current[300202].deleted
    assert not current[300201].deleted
    assert history.client_allocations(GEMEENTE, AANBIEDER, "999900018") == []


def test_starts_and_stops_recorded_and_deleted() -> None:
    """A status-3 delivery removes the earlier one with the same key."""
    dossier = Dossier().accept_all(vot(), toewijzing(), start(), stop())
    kinds = sorted(d.kind for d in dossier.history.deliveries(AANBIEDER, GEMEENTE, BSN))
    assert kinds == [DeliveryKind.START] * 2 + [DeliveryKind.STOP] * 2
    deletion = stop("2026-07-21")
    for i in (1, 2):
        deletion.set(f"Client/StopProducten/StopProduct[{i}]/StatusAanlevering", "3")
    dossier.accept(deletion)
    kinds = sorted(d.kind for d in dossier.history.deliveries(AANBIEDER, GEMEENTE, BSN))
    assert kinds == [DeliveryKind.START] * 2


def test_requests_answers_and_identifications() -> None:
    """Requests by reference, their answers, and the Identificatie per (sender, type)."""
    message = vot()
    history = _recorded(message, antwoord(REF_1, "2"))
    identificatie = message.text("Header/BerichtIdentificatie/Identificatie") or ""
    assert [r.referentie for r in history.requests_with_reference(AANBIEDER, REF_1)] == [REF_1]
    assert len(history.client_requests(AANBIEDER, GEMEENTE, BSN)) == 2
    assert [a.verzoek_antwoord for a in history.answers(AANBIEDER, REF_1)] == ["2"]
    assert history.message_seen(AANBIEDER, "JW315", identificatie)
    assert not history.message_seen(AANBIEDER, "JW317", identificatie)
    assert not history.message_seen(GEMEENTE, "JW315", identificatie)
