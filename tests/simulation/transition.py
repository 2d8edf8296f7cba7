"""A seeded region for the 2018 transition simulation: clients with allocations before and
after the cut-over, built from the official iJw 3.2 examples' structure.

Gemeente Deventer (0150) allocates; Jeugdhulp Oost (42420001) still speaks the legacy codes,
Zorgpartners (65656055) the 2018 profile codes (the parties of the shipped ``config.toml``).
An allocation that starts before 2018-01-01 carries a legacy code and keeps it; one that starts
on or after it carries a profile code. Each allocated client's provider reports the start
(JW305), which the BVO answers on the gemeente's behalf. Codes come from the shipped SYNTHETIC
tables: a light trajectory (``IJ09P``, one automatic row back to legacy ``45R14``), a light
trajectory with four legacy candidates (``IJ01P``: waits for the toegang's decision) and legacy
hours (``45A48``).

Every message is dated the day it is sent (its Dagtekening decides which generation each party
speaks). A provider reports a start in the codes it received: the legacy provider gets
``IJ09P`` as ``45R14`` (the table's one automatic row, read back); an ``IJ01P`` allocation for it
waits for the toegang's decision, so it never reaches the provider and no start follows.

Kompas (87654321, profile codes from 2018 like Zorgpartners) is not ready until 2018-04-01: it
sends nothing before then, so it reports its earlier starts and declares its earlier months on
the day it joins. Each provider declares every started allocation monthly (JW323, one line per
allocation and month, sent early the next month) at SYNTHETIC tariffs.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from tests.unit.dossier.scenario import BSN, Line, declaratie
from tests.unit.translation.builders import follow_up, jw301, set_text

CUTOVER = dt.date(2018, 1, 1)
GEMEENTE = ("gemeente-deventer", "0150")
LEGACY_PROVIDER = ("jeugdhulp-oost", "42420001")
PROFILE_PROVIDER = ("zorgpartners", "65656055")
NOT_READY_PROVIDER = ("kompas", "87654321")
NOT_READY_UNTIL = dt.date(2018, 4, 1)
PROVIDERS = (LEGACY_PROVIDER, PROFILE_PROVIDER, NOT_READY_PROVIDER)
LEGACY_CODES = (("45", "45A48", "04", "4"), ("45", "45R14", "82", "1"))
PROFILE_CODES = (("45", "IJ09P", "82", "1"), ("45", "IJ01P", "82", "1"))
# What the legacy provider receives for a profile code (None: held for a decision).
RECEIVED_AS_LEGACY = {"IJ09P": "45R14", "IJ01P": None}
# SYNTHETIC tariffs in eurocent per unit as the provider declares (no contract list is loaded).
TARIFFS = {"45A48": 6500, "45R14": 54500, "IJ09P": 54500, "IJ01P": 24500}
ALLOCATION_DAYS = 90  # the builder's Einddatum: Ingangsdatum + 90 days


@dataclass(frozen=True)
class Allocation:
    """One client's allocation and the two messages about it."""

    nummer: str
    provider: tuple[str, str]
    product: tuple[str, str]
    received: str | None
    """The code the provider receives and uses (None: held for the toegang's decision)."""
    start: dt.date
    jw301: bytes
    jw305: bytes | None
    """The provider's start; None when the allocation waits for a decision."""
    reported: dt.date | None
    """The day the provider sends the JW305."""
    eenheid: str
    volume: int
    """The allocated volume per week (Frequentie 2)."""

    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(days=ALLOCATION_DAYS)

    @property
    def after_cutover(self) -> bool:
        return self.start >= CUTOVER

    @property
    def crosses_cutover(self) -> bool:
        """Allocated before 2018-01-01, its start reported on or after it."""
        return not self.after_cutover and self.reported is not None and self.reported >= CUTOVER

    @property
    def translated(self) -> bool:
        """The provider speaks other codes than the gemeente on the allocation's start."""
        return self.after_cutover and self.provider == LEGACY_PROVIDER


def region(clients: int, seed: int) -> list[Allocation]:
    """``clients`` allocations between 2017-03-01 and 2018-06-30, seeded."""
    rng = random.Random(seed)
    first, days = dt.date(2017, 3, 1), (dt.date(2018, 6, 30) - dt.date(2017, 3, 1)).days
    made = []
    for number in range(clients):
        start = first + dt.timedelta(days=rng.randrange(days))
        provider = rng.choice(PROVIDERS)
        categorie, code, eenheid, volume = rng.choice(
            PROFILE_CODES if start >= CUTOVER else LEGACY_CODES
        )
        nummer = f"{800000 + number}"
        allocation = jw301(
            GEMEENTE[1], nummer, categorie, code, start, eenheid=eenheid, volume=volume
        )
        allocation = _addressed(allocation, "Ontvanger", provider[1], f"S{number:07d}", start)
        received: str | None = code
        if start >= CUTOVER and provider == LEGACY_PROVIDER:
            received = RECEIVED_AS_LEGACY[code]
        start_msg, reported = None, None
        if received is not None:
            reported = _sendable(provider, start + dt.timedelta(days=rng.randrange(3)))
            start_msg = _addressed(
                follow_up("JW305", GEMEENTE[1], nummer, categorie, received, start),
                "Afzender", provider[1], f"T{number:07d}", reported,
            )  # fmt: skip
        made.append(
            Allocation(
                nummer, provider, (categorie, code), received, start, allocation, start_msg,
                reported, eenheid, int(volume),
            )
        )  # fmt: skip
    return made


@dataclass(frozen=True)
class ClaimLine:
    """One declared line: an allocation's delivery in one month, in the provider's code."""

    nummer: str
    begin: dt.date
    end: dt.date
    amount: int
    """Eurocent, debit."""


@dataclass(frozen=True)
class Declaration:
    """One provider's JW323 for one month."""

    provider: tuple[str, str]
    month: dt.date
    sent: dt.date
    raw: bytes
    lines: tuple[ClaimLine, ...]


def declarations(allocations: list[Allocation], seed: int) -> list[Declaration]:
    """Every provider's monthly JW323 over its started allocations, sent between the 1st and the
    10th of the next month (a provider not yet ready sends on the day it joins)."""
    rng = random.Random(seed)
    by_month: dict[tuple[tuple[str, str], dt.date], list[tuple[Allocation, ClaimLine]]] = {}
    for item in allocations:
        if item.jw305 is None or item.received is None:
            continue
        month = item.start.replace(day=1)
        while month <= item.end:
            following = _next_month(month)
            begin, end = max(month, item.start), min(following - dt.timedelta(days=1), item.end)
            line = ClaimLine(item.nummer, begin, end, item.volume * TARIFFS[item.received])
            by_month.setdefault((item.provider, month), []).append((item, line))
            month = following
    made = []
    for number, ((provider, month), items) in enumerate(sorted(by_month.items())):
        sent = _sendable(provider, _next_month(month) + dt.timedelta(days=rng.randrange(10)))
        declared = [
            Line(
                f"{line.nummer}-{month:%Y%m}", line.begin.isoformat(), line.end.isoformat(),
                volume=item.volume, tarief=TARIFFS[item.received or ""],
                toewijzing=item.nummer, categorie=item.product[0], code=item.received or "",
                eenheid=item.eenheid, bsn=BSN,
            )
            for item, line in items
        ]  # fmt: skip
        period = (month.isoformat(), (_next_month(month) - dt.timedelta(days=1)).isoformat())
        raw = declaratie(f"D{month:%Y%m}{provider[1][-3:]}", period, sent.isoformat(), *declared)
        raw = _addressed(raw, "Afzender", provider[1], f"C{number:07d}", sent)
        raw = _addressed(raw, "Ontvanger", GEMEENTE[1], f"C{number:07d}", sent)
        made.append(Declaration(provider, month, sent, raw, tuple(line for _, line in items)))
    return made


def _next_month(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _sendable(provider: tuple[str, str], day: dt.date) -> dt.date:
    """The day a provider can send what it would send on ``day``: not before it is ready."""
    return max(day, NOT_READY_UNTIL) if provider == NOT_READY_PROVIDER else day


def _addressed(raw: bytes, party: str, agb: str, identificatie: str, sent: dt.date) -> bytes:
    """The message from or to ``agb``, identified and dated the day it is sent."""
    from lxml import etree

    root = etree.fromstring(raw)
    set_text(root, f"Header/{party}", agb)
    set_text(root, "Header/BerichtIdentificatie/Identificatie", identificatie)
    set_text(root, "Header/BerichtIdentificatie/Dagtekening", sent.isoformat())
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
