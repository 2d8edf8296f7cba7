"""Product code lists: which (categorie, code) pairs a list knows, for TR381/S329 and mapping.

A product code only means something within the list a gemeente uses (domain-codes §0 point 2),
so a list is data loaded at the edge (``gateway/mapping_files.py``), never a constant in code. The
national list (JZ21) and the regional lists are all instances of :class:`ProductCodeList`;
a code generation uses the union of several (:meth:`ProductCodeList.union`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

# JZ020 as in the iJw 3.2 XSD: 31-38 are the 2015 classification, 40-55 the current one.
PRODUCT_CATEGORIES: Mapping[str, str] = MappingProxyType(
    {
        "31": "(2015) Zonder verblijf: uitgevoerd door wijk- of buurtteam",
        "32": "(2015) Zonder verblijf: ambulante jeugdhulp op locatie van de aanbieder",
        "33": "(2015) Zonder verblijf: daghulp op locatie van de aanbieder",
        "34": "(2015) Zonder verblijf: jeugdhulp in het netwerk van de jeugdige",
        "35": "(2015) Met verblijf: pleegzorg",
        "36": "(2015) Met verblijf: gezinsgericht",
        "37": "(2015) Met verblijf: gesloten plaatsing",
        "38": "(2015) Met verblijf: overig residentieel",
        "40": "Persoonlijke verzorging",
        "41": "Dagbehandeling",
        "42": "Vervoerdiensten",
        "43": "Jeugdhulp verblijf (incl. behandeling)",
        "44": "Jeugdhulp verblijf (excl. behandeling)",
        "45": "Jeugdhulp ambulant",
        "46": "Jeugdhulp crisis",
        "47": "Jeugdreclassering",
        "48": "Jeugdbescherming",
        "49": "Activiteiten in het preventief justitieel kader",
        "50": "Maatwerkarrangementen jeugd",
        "51": "Generalistische basis-ggz",
        "52": "Specialistische ggz",
        "53": "Kindergeneeskunde",
        "54": "Jeugd-ggz",
        "55": "Landelijk ingekochte zorg",
    }
)

# WJ756 as in the iJw 3.2 XSD.
UNITS: Mapping[str, str] = MappingProxyType(
    {
        "01": "Minuut",
        "04": "Uur",
        "14": "Etmaal",
        "16": "Dagdeel (4 uur)",
        "82": "Stuks (output)",
        "83": "Euro's",
        "84": "Stuks (inspanning)",
    }
)

MAX_TARIEF = 99_999_999
"""The largest tariff in eurocent (LDT_Bedrag)."""

# WMO757 as in the iJw 3.2 XSD (Omvang/Frequentie).
FREQUENCIES: Mapping[str, str] = MappingProxyType(
    {
        "1": "Per dag",
        "2": "Per week",
        "4": "Per maand",
        "6": "Totaal binnen geldigheidsduur toewijzing",
    }
)


def is_product_code(code: str) -> bool:
    """True when ``code`` fits LDT_ProductCode: 1-5 characters, not all blank."""
    return 1 <= len(code) <= 5 and not code.isspace() and code == code.strip()


@dataclass(frozen=True, slots=True)
class ProductCodeEntry:
    """One code in one list, with where it was defined (for error messages and explain)."""

    list_name: str
    categorie: str
    code: str
    eenheid: str | None = None
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None
    description: str = ""
    origin: str = ""

    def valid_on(self, day: dt.date) -> bool:
        """True when the code is in force on ``day`` (open ends are unbounded)."""
        if self.valid_from is not None and day < self.valid_from:
            return False
        return self.valid_to is None or day <= self.valid_to

    def overlaps(self, start: dt.date | None, end: dt.date | None) -> bool:
        """True when the code's validity shares at least one day with ``start..end``."""
        starts_before_end = end is None or self.valid_from is None or self.valid_from <= end
        ends_after_start = start is None or self.valid_to is None or self.valid_to >= start
        return starts_before_end and ends_after_start


@dataclass(frozen=True, slots=True)
class ProductCodeList:
    """A set of product codes, keyed by code; satisfies ``gateway.core.lists.ProductCodeList``.

    ``belongs`` and ``knows`` answer for a day when given ``on`` (only entries in force that
    day count) and for any day without it. The callers pass the day the product's period
    begins (an allocation's Ingangsdatum, a claim line's ProductPeriode), so a running
    allocation keeps its code after the list moved on while a new one cannot use a retired code.
    """

    name: str
    entries: tuple[ProductCodeEntry, ...] = ()
    _by_code: Mapping[str, tuple[ProductCodeEntry, ...]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        by_code: dict[str, list[ProductCodeEntry]] = {}
        for entry in self.entries:
            by_code.setdefault(entry.code, []).append(entry)
        object.__setattr__(
            self, "_by_code", MappingProxyType({k: tuple(v) for k, v in by_code.items()})
        )

    @classmethod
    def union(cls, name: str, lists: Iterable[ProductCodeList]) -> ProductCodeList:
        """One list holding every entry of ``lists``."""
        return cls(name, tuple(entry for plist in lists for entry in plist.entries))

    def belongs(self, category: str, code: str, on: dt.date | None = None) -> bool:
        """True when ``code`` is in this list under ``category`` (TR381; else S329), and in
        force on ``on`` when given."""
        return any(
            entry.categorie == category and (on is None or entry.valid_on(on))
            for entry in self._by_code.get(code, ())
        )

    def knows(self, code: str, on: dt.date | None = None) -> bool:
        """True when ``code`` is in this list under any category (in force on ``on`` if given)."""
        return any(on is None or entry.valid_on(on) for entry in self._by_code.get(code, ()))

    def validity(self, code: str) -> str:
        """The periods ``code`` is listed for, e.g. ``2015-01-01..2015-12-31`` (for messages)."""
        periods = sorted(
            {
                (e.valid_from or dt.date.min, e.valid_to or dt.date.max)
                for e in self.entries_for(code)
            }
        )
        return ", ".join(
            f"{'…' if start == dt.date.min else start}..{'…' if end == dt.date.max else end}"
            for start, end in periods
        )

    def entries_for(self, code: str) -> tuple[ProductCodeEntry, ...]:
        """Every entry for ``code`` (one per list and validity period)."""
        return self._by_code.get(code, ())

    def categories_of(self, code: str) -> tuple[str, ...]:
        """The categories ``code`` is listed under, sorted."""
        return tuple(sorted({entry.categorie for entry in self.entries_for(code)}))

    def __len__(self) -> int:
        return len(self.entries)
