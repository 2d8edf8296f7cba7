"""The estimated value of an allocation that waits for its provider: what the BVO settles from
when a party outside the chain is paid by a separate arrangement.

The estimate is the most the provider could claim on the allocation over its period up to a
cut-off day (the report's ``--until``, default today), priced at the contract tariff:

* the period runs from the Ingangsdatum to the Einddatum, or to the cut-off when that is
  earlier (an open-ended allocation runs to the cut-off); it is split into calendar months,
  as claims are (TR387/TR388);
* per month, the volume is what TR321 allows for that month
  (:func:`~gateway.core.rules.state.claims.allowed_volume`: per day x days, per week x the
  calendar weeks that touch the month, per month x 1), priced at the tariff valid on the
  month's first day of the period (TR418 prices a line on its Begindatum); a provider's own
  contract row goes before the region's ``*`` row;
* Frequentie 6 (total within the validity) is the whole volume once, at the tariff valid on
  the Ingangsdatum, whatever the cut-off: it is a trajectory or a fixed total;
* Eenheid 83 (euro's) carries eurocent: the volume is the value, no tariff needed;
* an allocation with a Budget (and no Omvang) is worth its Budget;
* minutes are priced on an hourly tariff (and hours on a per-minute tariff) by 60; any other
  unit that differs from the tariff's, a missing tariff or an allocation without Omvang or
  Budget gives no value but a reason.

Whole weeks that touch two months count in both, as two monthly claims may: the estimate is an
upper bound, not a forecast of what will be claimed.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

from gateway.core.dossier import Allocation, allocations_in
from gateway.core.lists import ContractTable
from gateway.core.report import Finding
from gateway.core.rules.state.claims import allowed_volume
from gateway.core.rules.state.shared import HOUR, MINUTE, TOTAL
from gateway.core.schemaset import SchemaSet
from gateway.core.validate import identify
from gateway.core.xmlsafe import parse_safely

EURO = "83"


@dataclass(frozen=True, slots=True)
class Estimate:
    """An allocation's estimated value in eurocent over ``begin..end``, or why there is none."""

    begin: dt.date
    end: dt.date
    cents: int | None
    basis: str


def _months(begin: dt.date, end: dt.date) -> list[tuple[dt.date, dt.date]]:
    periods = []
    day = begin
    while day <= end:
        last = day.replace(day=calendar.monthrange(day.year, day.month)[1])
        periods.append((day, min(last, end)))
        day = last + dt.timedelta(days=1)
    return periods


def _per_unit(assigned: str | None, tariff_unit: str) -> float | None:
    """What one assigned unit is in the tariff's unit, or None when they do not convert."""
    if assigned == tariff_unit:
        return 1.0
    if (assigned, tariff_unit) == (MINUTE, HOUR):
        return 1 / 60
    if (assigned, tariff_unit) == (HOUR, MINUTE):
        return 60.0
    return None


def estimate_value(
    allocation: Allocation, contracts: ContractTable | None, until: dt.date
) -> Estimate:
    """The estimated value of ``allocation`` up to ``until`` (see the module's rules)."""
    begin = allocation.ingangsdatum
    end = until if allocation.einddatum is None else min(allocation.einddatum, until)
    if allocation.frequentie == TOTAL and allocation.einddatum is not None:
        end = allocation.einddatum
    if end < begin:
        return Estimate(begin, end, 0, "the period has not begun")
    if allocation.budget is not None and allocation.volume is None:
        return Estimate(begin, end, allocation.budget, "Budget")
    if allocation.volume is None or allocation.frequentie is None:
        return Estimate(begin, end, None, "no Omvang and no Budget")
    if allocation.eenheid == EURO:
        cents = _volume(allocation, begin, end)
        return Estimate(begin, end, cents, "Omvang in eurocent (Eenheid 83)")
    if contracts is None or allocation.categorie is None or allocation.code is None:
        return Estimate(begin, end, None, "no contract table or no product code")
    total = 0.0
    pieces = _months(begin, end) if allocation.frequentie != TOTAL else [(begin, end)]
    for first, last in pieces:
        tariff = contracts.tariff(
            allocation.gemeente, allocation.aanbieder, allocation.categorie, allocation.code, first
        )
        if tariff is None:
            return Estimate(begin, end, None, f"no contract tariff on {first.isoformat()}")
        factor = _per_unit(allocation.eenheid, tariff.eenheid)
        if factor is None:
            return Estimate(
                begin,
                end,
                None,
                f"tariff per Eenheid {tariff.eenheid}, assigned in {allocation.eenheid}",
            )
        total += _volume(allocation, first, last) * factor * tariff.tarief
    return Estimate(begin, end, round(total), "volume x contract tariff")


def _volume(allocation: Allocation, begin: dt.date, end: dt.date) -> int:
    if allocation.frequentie == TOTAL:
        return allocation.volume or 0
    return allowed_volume(allocation, begin, end) or 0


def allocations_in_payload(raw: bytes, schemas: SchemaSet) -> list[Allocation]:
    """The allocations a stored JW301 states (none when the bytes do not read as one)."""
    parsed = parse_safely(raw)
    if parsed.tree is None:
        return []
    document = identify(parsed.tree, schemas)
    if isinstance(document, Finding) or document.message_type != "JW301":
        return []
    return [allocation for _, allocation in allocations_in(document)]
