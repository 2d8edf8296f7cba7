"""External lists the level-E rules consult: CBS municipalities, product codes, contracts.

The core only defines what the rules ask of each list (small protocols) plus the CBS gemeente
list itself, which is simple enough to parse here. The edges load the files named in the
configuration (``mappings/gemeenten_cbs.csv``, the JZ21 product code list, the contract table)
and hand an :class:`ExternalLists` to the rule context.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

GEMEENTE_COLUMNS = ("code", "naam", "geldig_van", "geldig_tot")
EVERY_PROVIDER = "*"
"""The ``aanbieder`` of a contract row that applies to every provider (a regional tariff)."""


class ListFormatError(ValueError):
    """A list file does not have the documented shape."""


@dataclass(frozen=True, slots=True)
class Gemeente:
    """One row of the CBS municipality list: valid from ``geldig_van`` through ``geldig_tot``
    (both inclusive; an empty bound is open)."""

    code: str
    naam: str
    geldig_van: dt.date | None = None
    geldig_tot: dt.date | None = None

    def valid_on(self, day: dt.date) -> bool:
        """True when the municipality existed on ``day``."""
        if self.geldig_van is not None and day < self.geldig_van:
            return False
        return self.geldig_tot is None or day <= self.geldig_tot


@dataclass(frozen=True)
class GemeenteList:
    """The CBS gemeentecodes with their validity, possibly several rows per code."""

    rows: tuple[Gemeente, ...]

    def knows(self, code: str) -> bool:
        """True when the code appears in the list at all."""
        return any(row.code == code for row in self.rows)

    def valid_on(self, code: str, day: dt.date) -> bool:
        """True when ``code`` was a municipality on ``day`` (TR378)."""
        return any(row.code == code and row.valid_on(day) for row in self.rows)


def parse_gemeenten(lines: Iterable[str]) -> GemeenteList:
    """Read the CSV ``code,naam,geldig_van,geldig_tot`` (extra columns ignored).

    Raises :class:`ListFormatError` on a missing column, a code that is not four digits or a
    date that is not ISO ``YYYY-MM-DD``.
    """
    reader = csv.DictReader(lines)
    missing = [c for c in GEMEENTE_COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise ListFormatError(f"gemeente list lacks columns {missing}")
    rows = []
    for number, record in enumerate(reader, start=2):
        code = (record["code"] or "").strip()
        if len(code) != 4 or not code.isdigit():
            raise ListFormatError(f"line {number}: gemeentecode {code!r} is not four digits")
        rows.append(
            Gemeente(
                code=code,
                naam=(record["naam"] or "").strip(),
                geldig_van=_optional_date(record["geldig_van"], number),
                geldig_tot=_optional_date(record["geldig_tot"], number),
            )
        )
    return GemeenteList(tuple(rows))


def _optional_date(value: str | None, line: int) -> dt.date | None:
    if value is None or not value.strip():
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError as exc:
        raise ListFormatError(f"line {line}: {value!r} is not a YYYY-MM-DD date") from exc


class ProductCodeList(Protocol):
    """The product code list in use (JZ21 or a bilateral list, IV075)."""

    def belongs(self, category: str, code: str, on: dt.date | None = None) -> bool:
        """True when ``code`` is a product code of ``category`` (in force on ``on`` if given)."""
        ...

    def knows(self, code: str, on: dt.date | None = None) -> bool:
        """True when ``code`` is on the list at all (in force on ``on`` if given)."""
        ...

    def validity(self, code: str) -> str:
        """The periods ``code`` is listed for, for messages (``2015-01-01..2015-12-31``)."""
        ...


@dataclass(frozen=True, slots=True)
class ContractTariff:
    """A contracted tariff in eurocent per unit of ``eenheid`` (LDT_Eenheid)."""

    tarief: int
    eenheid: str


class ContractTable(Protocol):
    """The contract tariffs agreed between a gemeente and an aanbieder."""

    def tariff(
        self, gemeente: str, aanbieder: str, categorie: str, code: str, on: dt.date
    ) -> ContractTariff | None:
        """The tariff for the product on ``on``, or None when no contract is known."""
        ...


@dataclass(frozen=True)
class InMemoryProductCodes:
    """A :class:`ProductCodeList` from a mapping ``category → codes``."""

    codes_by_category: Mapping[str, frozenset[str]]

    def belongs(self, category: str, code: str, on: dt.date | None = None) -> bool:
        """True when ``code`` is listed under ``category`` (this list has no dates)."""
        return code in self.codes_by_category.get(category, frozenset())

    def knows(self, code: str, on: dt.date | None = None) -> bool:
        """True when ``code`` is listed under any category (this list has no dates)."""
        return any(code in codes for codes in self.codes_by_category.values())

    def validity(self, code: str) -> str:
        """Always ``…..…``: this list has no dates."""
        return "…..…"


@dataclass(frozen=True)
class InMemoryContracts:
    """A :class:`ContractTable` from ``(gemeente, aanbieder, categorie, code)`` → tariff rows
    with validity ``(geldig_van, geldig_tot, tariff)``, bounds inclusive and optional. An
    ``aanbieder`` of :data:`EVERY_PROVIDER` is the region's tariff for every provider."""

    rows: Mapping[
        tuple[str, str, str, str], tuple[tuple[dt.date | None, dt.date | None, ContractTariff], ...]
    ]

    def tariff(
        self, gemeente: str, aanbieder: str, categorie: str, code: str, on: dt.date
    ) -> ContractTariff | None:
        """The tariff valid on ``on``: the provider's own row, else the row for every
        provider (:data:`EVERY_PROVIDER`), else None."""
        for party in (aanbieder, EVERY_PROVIDER):
            for start, end, tariff in self.rows.get((gemeente, party, categorie, code), ()):
                if (start is None or start <= on) and (end is None or on <= end):
                    return tariff
        return None


class MissingTariff(StrEnum):
    """What TR418 does with a claim line no contract row prices (``[lists] missing_tariff``)."""

    REJECT = "reject"
    """The line is rejected with TR418's retourcode 0611."""
    WARN = "warn"
    """The line passes; ``gateway contracts coverage`` lists its code."""


@dataclass(frozen=True)
class ExternalLists:
    """Everything level-E rules consult; a rule whose list is None is silently not run."""

    gemeenten: GemeenteList | None = None
    product_codes: ProductCodeList | None = None
    contracts: ContractTable | None = field(default=None)
    missing_tariff: MissingTariff = MissingTariff.WARN
