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
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from tests.unit.translation.builders import follow_up, jw301, set_text

CUTOVER = dt.date(2018, 1, 1)
GEMEENTE = ("gemeente-deventer", "0150")
LEGACY_PROVIDER = ("jeugdhulp-oost", "42420001")
PROFILE_PROVIDER = ("zorgpartners", "65656055")
LEGACY_CODES = (("45", "45A48", "04", "4"), ("45", "45R14", "82", "1"))
PROFILE_CODES = (("45", "IJ09P", "82", "1"), ("45", "IJ01P", "82", "1"))
# What the legacy provider receives for a profile code (None: held for a decision).
RECEIVED_AS_LEGACY = {"IJ09P": "45R14", "IJ01P": None}


@dataclass(frozen=True)
class Allocation:
    """One client's allocation and the two messages about it."""

    nummer: str
    provider: tuple[str, str]
    product: tuple[str, str]
    start: dt.date
    jw301: bytes
    jw305: bytes | None
    """The provider's start; None when the allocation waits for a decision."""

    @property
    def after_cutover(self) -> bool:
        return self.start >= CUTOVER

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
        provider = rng.choice((LEGACY_PROVIDER, PROFILE_PROVIDER))
        categorie, code, eenheid, volume = rng.choice(
            PROFILE_CODES if start >= CUTOVER else LEGACY_CODES
        )
        nummer = f"{800000 + number}"
        allocation = jw301(
            GEMEENTE[1], nummer, categorie, code, start, eenheid=eenheid, volume=volume
        )
        allocation = _addressed(allocation, "Ontvanger", provider[1], f"S{number:07d}", start)
        received = code
        if start >= CUTOVER and provider == LEGACY_PROVIDER:
            received = RECEIVED_AS_LEGACY[code]
        start_msg = None
        if received is not None:
            reported = start + dt.timedelta(days=rng.randrange(3))
            start_msg = _addressed(
                follow_up("JW305", GEMEENTE[1], nummer, categorie, received, start),
                "Afzender", provider[1], f"T{number:07d}", reported,
            )  # fmt: skip
        made.append(Allocation(nummer, provider, (categorie, code), start, allocation, start_msg))
    return made


def _addressed(raw: bytes, party: str, agb: str, identificatie: str, sent: dt.date) -> bytes:
    """The message from or to ``agb``, identified and dated the day it is sent."""
    from lxml import etree

    root = etree.fromstring(raw)
    set_text(root, f"Header/{party}", agb)
    set_text(root, "Header/BerichtIdentificatie/Identificatie", identificatie)
    set_text(root, "Header/BerichtIdentificatie/Dagtekening", sent.isoformat())
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
