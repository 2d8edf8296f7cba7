"""Settlement outside the chain in the pure core: the estimated value of an allocation and the
B rule BVO001 on the in-memory history."""

from __future__ import annotations

import datetime as dt

from gateway.core.dossier import Allocation, Settlement
from gateway.core.lists import ContractTariff, InMemoryContracts
from gateway.core.settlement import estimate_value
from tests.unit.dossier.scenario import (
    AANBIEDER,
    GEMEENTE,
    Dossier,
    Line,
    declaratie,
    toewijzing,
    vot,
)

APRIL = ("2026-04-01", "2026-04-30")
MAY = ("2026-05-01", "2026-05-31")
HOURLY = InMemoryContracts(
    {(GEMEENTE, "*", "55", "55A11"): ((dt.date(2026, 1, 1), None, ContractTariff(7500, "04")),)}
)


def allocation(**changes: object) -> Allocation:
    """300201 of the JW301 example: 2 uur per week, 2026-04-01 to 2026-07-14."""
    fields: dict[str, object] = {
        "gemeente": GEMEENTE,
        "aanbieder": AANBIEDER,
        "bsn": "999900006",
        "toewijzing_nummer": 300201,
        "toewijzingsdatum": dt.date(2026, 4, 1),
        "toewijzingstijd": dt.time(9, 0),
        "ingangsdatum": dt.date(2026, 4, 1),
        "einddatum": dt.date(2026, 7, 14),
        "categorie": "55",
        "code": "55A11",
        "volume": 2,
        "eenheid": "04",
        "frequentie": "2",
    }
    return Allocation(**{**fields, **changes})  # type: ignore[arg-type]


def test_weekly_hours_are_priced_per_month_up_to_the_cut_off() -> None:
    """April 2026 touches 5 calendar weeks (10 hours), May 5 more; the region's * tariff."""
    april = estimate_value(allocation(), HOURLY, dt.date(2026, 4, 30))
    assert (april.cents, april.end) == (10 * 7500, dt.date(2026, 4, 30))
    two_months = estimate_value(allocation(), HOURLY, dt.date(2026, 5, 31))
    assert two_months.cents == 20 * 7500
    assert two_months.basis == "volume x contract tariff"
    assert estimate_value(allocation(), HOURLY, dt.date(2026, 3, 1)).cents == 0


def test_units_budgets_totals_and_what_has_no_estimate() -> None:
    """Minutes on an hourly tariff by 60; euro's and budgets need no tariff; no tariff and
    an unconvertible unit give a reason instead of a value."""
    minutes = allocation(volume=120, eenheid="01", frequentie="4", einddatum=dt.date(2026, 4, 30))
    assert estimate_value(minutes, HOURLY, dt.date(2026, 12, 31)).cents == 2 * 7500
    trajectory = allocation(volume=500_000, eenheid="83", frequentie="6", categorie="55")
    assert estimate_value(trajectory, None, dt.date(2026, 4, 2)).cents == 500_000
    budget = allocation(volume=None, eenheid=None, frequentie=None, code=None, budget=100_000)
    assert estimate_value(budget, None, dt.date(2026, 5, 1)).cents == 100_000
    unpriced = estimate_value(allocation(code="55A12"), HOURLY, dt.date(2026, 5, 1))
    assert (unpriced.cents, unpriced.basis) == (None, "no contract tariff on 2026-04-01")
    dagdelen = estimate_value(allocation(eenheid="16"), HOURLY, dt.date(2026, 5, 1))
    assert dagdelen.cents is None and "Eenheid 04" in dagdelen.basis


def test_bvo001_refuses_a_debit_on_a_settled_period_only() -> None:
    """A settled April is refused with 9389 on its Prestatie; May, unsettled, is accepted; a
    settlement of another allocation changes nothing."""
    dossier = Dossier().accept_all(vot(), toewijzing())
    history = dossier.history
    assert hasattr(history, "settle")
    history.settle(Settlement(GEMEENTE, 300202, dt.date(2026, 4, 1), dt.date(2026, 4, 30), "X"))
    april = declaratie("D1", APRIL, "2026-05-05", Line("R1", *APRIL))
    assert dossier.codes(april) == set()
    history.settle(Settlement(GEMEENTE, 300201, dt.date(2026, 4, 15), dt.date(2026, 5, 2), "Y"))
    assert {(r, c) for r, c, _ in dossier.codes(april)} == {("BVO001", "9389")}
    assert {
        (r, c) for r, c, _ in dossier.codes(declaratie("D2", MAY, "2026-06-05", Line("R2", *MAY)))
    } == {("BVO001", "9389")}
    june = ("2026-06-01", "2026-06-30")
    assert dossier.codes(declaratie("D3", june, "2026-07-05", Line("R3", *june))) == set()
