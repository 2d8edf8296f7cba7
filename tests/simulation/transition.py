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


@dataclass(frozen=True)
class Allocation:
    """One client's allocation and the two messages about it."""

    nummer: str
    provider: tuple[str, str]
    product: tuple[str, str]
    start: dt.date
    jw301: bytes
    jw305: bytes

    @property
    def after_cutover(self) -> bool:
        return self.start >= CUTOVER


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
        allocation = _addressed(allocation, "Ontvanger", provider[1], f"S{number:07d}")
        start_msg = follow_up("JW305", GEMEENTE[1], nummer, categorie, code, start)
        start_msg = _addressed(start_msg, "Afzender", provider[1], f"T{number:07d}")
        made.append(Allocation(nummer, provider, (categorie, code), start, allocation, start_msg))
    return made


def _addressed(raw: bytes, party: str, agb: str, identificatie: str) -> bytes:
    from lxml import etree

    root = etree.fromstring(raw)
    set_text(root, f"Header/{party}", agb)
    set_text(root, "Header/BerichtIdentificatie/Identificatie", identificatie)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
