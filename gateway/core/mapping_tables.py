"""Mapping tables between product-code generations, and the lookups translation needs.

A row says: for this gemeente (or region), an allocation in the *from* generation with this
source (product or DBC key) that starts inside ``valid_from..valid_to`` corresponds to this
target in the *to* generation. A code only means something per gemeente and date
(domain-codes §0 point 2), so every lookup takes (gemeente, categorie, code, date).

Rows marked ``needs_decision`` are suggestions for one-to-many cases; translation never applies
them on its own. A row that changes the Eenheid is applied only with a declared
:class:`Conversion` (``conversions/*.csv``) or a ``volume_factor``. The loader
(``gateway/mapping_files.py``) has already rejected overlaps, unknown categories and targets
missing from the target generation's code list.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from types import MappingProxyType

from gateway.core.codes import ProductCodeList

DBC_MAX_DAYS = 365
"""A jeugd-GGZ DBC closes after at most 365 days (NZa Regeling gespecialiseerde GGZ §3.1.2)."""


def dbc_running_at(opened_on: dt.date, transition: dt.date) -> bool:
    """True when a DBC opened on ``opened_on`` can still be open on ``transition``: opened
    before it, and at most :data:`DBC_MAX_DAYS` days before it."""
    return transition - dt.timedelta(days=DBC_MAX_DAYS) <= opened_on < transition


class SourceKind(StrEnum):
    """What the source of a row is keyed on."""

    PRODUCT = "product"
    DECLARATIECODE = "declaratiecode"
    PRESTATIECODE = "prestatiecode"


@dataclass(frozen=True, slots=True, order=True)
class Product:
    """A product as iJw carries it: category plus (optional) code."""

    categorie: str
    code: str

    def __str__(self) -> str:
        return f"{self.categorie}/{self.code}"


@dataclass(frozen=True, slots=True)
class MappingRow:
    """One row of a mapping table, with its file and line for errors and ``explain``."""

    mapping_set: str
    from_generation: str
    to_generation: str
    cutover: dt.date
    gemeenten: frozenset[str]
    scope: str
    source_kind: SourceKind
    source: Product
    target: Product
    valid_from: dt.date
    valid_to: dt.date | None = None
    dbc_opened_from: dt.date | None = None
    dbc_opened_to: dt.date | None = None
    unit_from: str | None = None
    unit_to: str | None = None
    volume_factor: Fraction | None = None
    needs_decision: bool = False
    note: str = ""
    file: str = ""
    line: int = 0

    @property
    def origin(self) -> str:
        """``file:line`` of the row."""
        return f"{self.file}:{self.line}"

    @property
    def changes_unit(self) -> bool:
        """True when the row moves the allocation to another Eenheid."""
        return (
            self.unit_from is not None
            and self.unit_to is not None
            and (self.unit_from != self.unit_to)
        )

    def valid_on(self, day: dt.date) -> bool:
        """True when an allocation starting on ``day`` falls under this row."""
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)

    def dbc_band_contains(self, opened_on: dt.date) -> bool:
        """True when a DBC opened on ``opened_on`` falls in the row's opening-date band."""
        if self.dbc_opened_from is not None and opened_on < self.dbc_opened_from:
            return False
        return self.dbc_opened_to is None or opened_on <= self.dbc_opened_to


class ClaimRule(StrEnum):
    """How a declaration line (JW323 Prestatie) is converted under a :class:`Conversion`."""

    PER_MONTH = "per-month"
    """One line of the conversion's fixed volume per calendar month with delivered volume."""
    VOLUME = "volume"
    """GeleverdVolume x the conversion's factor (exact whole results only)."""


@dataclass(frozen=True, slots=True)
class Conversion:
    """How Omvang and declaration lines change when a pair changes the Eenheid.

    Read from the *source* (the mapping set's from generation) to the *target*: an Omvang of
    ``source_eenheid`` per ``source_frequentie`` becomes ``fixed_volume`` (or volume x
    ``volume_factor``) of ``target_eenheid`` per ``target_frequentie``. The way back divides by
    the factor; a fixed volume cannot be divided back, so it restores the source-side Omvang
    the ledger recorded with the pair. Declaration lines follow ``claim`` and are priced at
    ``tariff`` eurocent, or the contract tariff of the receiver's product when ``tariff`` is None.
    """

    from_generation: str
    to_generation: str
    gemeenten: frozenset[str]
    source: Product
    target: Product
    source_eenheid: str
    target_eenheid: str
    source_frequentie: str | None = None
    target_frequentie: str | None = None
    volume_factor: Fraction | None = None
    fixed_volume: int | None = None
    claim: ClaimRule | None = None
    tariff: int | None = None
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None
    origin: str = ""

    def valid_on(self, day: dt.date) -> bool:
        """True when an allocation starting on ``day`` falls under this conversion."""
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_to is None or day <= self.valid_to
        )

    def towards_target(self, generation: str) -> bool:
        """True when a message translated into ``generation`` travels source -> target."""
        return generation == self.to_generation

    def units(self, generation: str) -> tuple[tuple[str, str | None], tuple[str, str | None]]:
        """((Eenheid, Frequentie) before, after) for a message translated into ``generation``."""
        source = (self.source_eenheid, self.source_frequentie)
        target = (self.target_eenheid, self.target_frequentie)
        return (source, target) if self.towards_target(generation) else (target, source)

    def as_dict(self) -> dict[str, str | None]:
        """The conversion as plain strings (what the ledger stores with a pair)."""
        return {
            "from": self.from_generation,
            "to": self.to_generation,
            "source": str(self.source),
            "target": str(self.target),
            "source_eenheid": self.source_eenheid,
            "target_eenheid": self.target_eenheid,
            "source_frequentie": self.source_frequentie,
            "target_frequentie": self.target_frequentie,
            "volume_factor": None if self.volume_factor is None else str(self.volume_factor),
            "fixed_volume": None if self.fixed_volume is None else str(self.fixed_volume),
            "claim": None if self.claim is None else self.claim.value,
            "tariff": None if self.tariff is None else str(self.tariff),
            "origin": self.origin,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, str | None]) -> Conversion:
        """The inverse of :meth:`as_dict` (scope and validity are not stored: a recorded pair
        keeps its conversion whatever the table says later)."""

        def product(value: str | None) -> Product:
            categorie, _, code = (value or "").partition("/")
            return Product(categorie, code)

        def optional(name: str) -> str | None:
            return data.get(name) or None

        factor, fixed, claim, tariff = (
            optional(k) for k in ("volume_factor", "fixed_volume", "claim", "tariff")
        )
        return cls(
            from_generation=data["from"] or "",
            to_generation=data["to"] or "",
            gemeenten=frozenset(),
            source=product(data["source"]),
            target=product(data["target"]),
            source_eenheid=data["source_eenheid"] or "",
            target_eenheid=data["target_eenheid"] or "",
            source_frequentie=optional("source_frequentie"),
            target_frequentie=optional("target_frequentie"),
            volume_factor=None if factor is None else Fraction(factor),
            fixed_volume=None if fixed is None else int(fixed),
            claim=None if claim is None else ClaimRule(claim),
            tariff=None if tariff is None else int(tariff),
            origin=data.get("origin") or "",
        )


@dataclass(frozen=True, slots=True)
class Generation:
    """A code vocabulary a party's software speaks, and the code list that defines it."""

    name: str
    description: str
    codes: ProductCodeList


@dataclass(frozen=True, slots=True)
class MappingSet:
    """The rows of one file: a translation from one generation to another from a cut-over."""

    name: str
    from_generation: str
    to_generation: str
    cutover: dt.date
    title: str = ""
    synthetic: bool = False
    rows: tuple[MappingRow, ...] = ()


@dataclass(frozen=True, slots=True)
class Candidate:
    """A row that could translate a product, and in which direction it was read."""

    row: MappingRow
    reverse: bool

    @property
    def result(self) -> Product:
        """The product the message would carry after translation."""
        return self.row.source if self.reverse else self.row.target

    @property
    def unit_before(self) -> str | None:
        """The Eenheid the message carries before translation, when the row changes it."""
        return self.row.unit_to if self.reverse else self.row.unit_from

    @property
    def unit_after(self) -> str | None:
        """The Eenheid after translation, when the row changes it."""
        return self.row.unit_from if self.reverse else self.row.unit_to

    @property
    def volume_factor(self) -> Fraction | None:
        """Multiply Omvang/Volume by this when the unit changes (inverted when reversed)."""
        factor = self.row.volume_factor
        if factor is None:
            return None
        return 1 / factor if self.reverse else factor

    @property
    def from_generation(self) -> str:
        """The generation the message speaks before translation."""
        return self.row.to_generation if self.reverse else self.row.from_generation


@dataclass(frozen=True)
class MappingTable:
    """Every generation, region and mapping set; built once at startup by the edge."""

    generations: Mapping[str, Generation]
    regions: Mapping[str, frozenset[str]] = field(default_factory=dict)
    sets: tuple[MappingSet, ...] = ()
    conversions: tuple[Conversion, ...] = ()

    @property
    def rows(self) -> tuple[MappingRow, ...]:
        """All rows of all sets, in file order."""
        return tuple(row for mapping_set in self.sets for row in mapping_set.rows)

    def generation(self, name: str) -> Generation | None:
        """The named generation, or None."""
        return self.generations.get(name)

    def speaks(self, generation: str, product: Product) -> bool:
        """True when ``product`` is in the code list of ``generation``."""
        found = self.generations.get(generation)
        return found is not None and found.codes.belongs(product.categorie, product.code)

    def rows_for_product(
        self, gemeente: str, product: Product, *, generation: str | None = None
    ) -> tuple[Candidate, ...]:
        """Every product row that mentions ``product`` for ``gemeente``, at any date.

        With ``generation``: only rows that translate *into* it (forward rows whose target
        generation it is, and reverse readings of rows whose source generation it is).
        """
        found: list[Candidate] = []
        for row in self.rows:
            if row.source_kind is not SourceKind.PRODUCT or gemeente not in row.gemeenten:
                continue
            if row.source == product and generation in (None, row.to_generation):
                found.append(Candidate(row, reverse=False))
            elif row.target == product and generation in (None, row.from_generation):
                found.append(Candidate(row, reverse=True))
        return tuple(found)

    def candidates(
        self, gemeente: str, product: Product, day: dt.date, to_generation: str
    ) -> tuple[Candidate, ...]:
        """Rows that translate ``product`` into ``to_generation`` for an allocation on ``day``:
        the row is valid on ``day`` and so is the code it leads to, in ``to_generation``'s list
        (a 2015-only code is no candidate for an allocation of 2026)."""
        target = self.generations.get(to_generation)
        return tuple(
            c
            for c in self.rows_for_product(gemeente, product, generation=to_generation)
            if c.row.valid_on(day)
            and c.result != product
            and (
                target is None
                or not c.result.code
                or target.codes.belongs(c.result.categorie, c.result.code, day)
            )
        )

    def conversion(self, gemeente: str, row: MappingRow, day: dt.date) -> Conversion | None:
        """The declared conversion of ``row``'s pair for ``gemeente`` on ``day``, or None."""
        return next(
            (
                c
                for c in self.conversions
                if gemeente in c.gemeenten
                and (c.from_generation, c.to_generation) == (row.from_generation, row.to_generation)
                and (c.source, c.target) == (row.source, row.target)
                and c.valid_on(day)
            ),
            None,
        )

    def runoff(
        self, gemeente: str, kind: SourceKind, dbc_code: str, opened_on: dt.date, day: dt.date
    ) -> tuple[MappingRow, ...]:
        """Rows for a DBC (declaratiecode or prestatiecode) opened on ``opened_on``, still open
        at the cut-over: the run-off code it continues under on ``day``."""
        return tuple(
            row
            for row in self.dbc_rows(gemeente)
            if row.source_kind is kind
            and row.source.code == dbc_code
            and row.dbc_band_contains(opened_on)
            and dbc_running_at(opened_on, row.cutover)
            and row.valid_on(day)
        )

    def dbc_rows(
        self, gemeente: str, categorie: str | None = None, *, to_generation: str | None = None
    ) -> tuple[MappingRow, ...]:
        """The DBC rows (any DBC key) for ``gemeente``, optionally of one source category and
        into one generation: a message in that category may be about a running DBC."""
        return tuple(
            row
            for row in self.rows
            if row.source_kind is not SourceKind.PRODUCT
            and gemeente in row.gemeenten
            and categorie in (None, row.source.categorie)
            and to_generation in (None, row.to_generation)
        )

    def explain(
        self, code: str, gemeente: str, day: dt.date, categorie: str | None = None
    ) -> tuple[tuple[MappingRow, bool, str], ...]:
        """Every row mentioning ``code`` for ``gemeente``: (row, applies on ``day``, why)."""
        out: list[tuple[MappingRow, bool, str]] = []
        for row in self.rows:
            as_source = row.source.code == code
            as_target = row.target.code == code and row.source_kind is SourceKind.PRODUCT
            if not (as_source or as_target) or gemeente not in row.gemeenten:
                continue
            side = row.source if as_source else row.target
            if categorie is not None and side.categorie != categorie:
                continue
            applies, why = _why(row, day, as_source)
            leads_to, generation = (
                (row.target, row.to_generation) if as_source else (row.source, row.from_generation)
            )
            codes = self.generations.get(generation)
            if (
                applies
                and codes is not None
                and row.source_kind is SourceKind.PRODUCT
                and not codes.codes.belongs(leads_to.categorie, leads_to.code, day)
            ):
                applies = False
                why = (
                    f"{leads_to} is not a valid {generation} code on {day} "
                    f"(listed for {codes.codes.validity(leads_to.code)})"
                )
            if (
                applies
                and not row.needs_decision
                and row.changes_unit
                and row.volume_factor is None
                and self.conversion(gemeente, row, day) is None
            ):
                applies = False
                why = f"{why}; but it changes the Eenheid without a declared conversion: held"
            out.append((row, applies, why))
        return tuple(out)

    def summary(self) -> dict[str, int]:
        """Counts for ``gateway mappings check``."""
        rows = self.rows
        return {
            "generations": len(self.generations),
            "regions": len(self.regions),
            "sets": len(self.sets),
            "rows": len(rows),
            "needs_decision": sum(1 for r in rows if r.needs_decision),
            "dbc_rows": sum(1 for r in rows if r.source_kind is not SourceKind.PRODUCT),
            "unit_changes": sum(1 for r in rows if r.changes_unit),
            "conversions": len(self.conversions),
        }


def _why(row: MappingRow, day: dt.date, as_source: bool) -> tuple[bool, str]:
    direction = (
        f"{row.from_generation} -> {row.to_generation}"
        if as_source
        else f"read in reverse, {row.to_generation} -> {row.from_generation}"
    )
    if row.source_kind is not SourceKind.PRODUCT:
        return (
            row.valid_on(day),
            f"DBC {row.source_kind.value} opened {row.dbc_opened_from or '…'}.."
            f"{row.dbc_opened_to or '…'} and still open at the cut-over {row.cutover} "
            f"(opened at most {DBC_MAX_DAYS} days before it) continues as {row.target} "
            f"({direction})",
        )
    if day < row.cutover:
        return False, (
            f"allocations that began before the cut-over {row.cutover} keep their code "
            "(unless re-sent with RedenWijziging 10)"
        )
    if not row.valid_on(day):
        return False, f"row valid {row.valid_from}..{row.valid_to or '…'}, not on {day}"
    if row.needs_decision:
        return True, f"{direction}; one-to-many: a suggestion only, an operator must decide"
    return True, f"{direction}; applied automatically"


def expand_scope(scope: str, regions: Mapping[str, frozenset[str]]) -> frozenset[str] | None:
    """The gemeentecodes a scope stands for: itself (4 digits) or a region's members."""
    if len(scope) == 4 and scope.isdigit():
        return frozenset({scope})
    return regions.get(scope)


def freeze_regions(regions: Mapping[str, Iterable[str]]) -> Mapping[str, frozenset[str]]:
    """An immutable copy of a region table."""
    return MappingProxyType({name: frozenset(members) for name, members in regions.items()})
