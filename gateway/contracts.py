"""Read a contract tariff table (``mappings/contracts/*.csv``) strictly into a ``ContractTable``.

The table answers TR346/TR418 (amount = volume x tariff, tariff = contract tariff). Format in
``mappings/README.md``: metadata lines ``# kind: contracts`` and ``# codes: LIST, ...`` (the
product code lists, by their ``# list:`` name in ``codes/``, that every code must be on), then

    gemeente,aanbieder,categorie,code,eenheid,tarief,valid_from,valid_to,note

An ``aanbieder`` of ``*`` makes the row the region's tariff for every provider (a fixed
trajectory price per profile x intensity); a provider's own row valid on the same day overrides
it (:meth:`gateway.core.lists.InMemoryContracts.tariff`).

Every problem is collected with its file and line and reported together: a broken row, an
unknown gemeente or region, an AGB code that is neither 8 digits nor ``*``, a category outside
JZ020, a code not on the named lists under that category, a row whose validity shares no day
with the code's own, a unit outside WJ756 (or 83, which has no tariff), a tariff that is not
whole eurocent, bad dates, and two rows for the same gemeente, aanbieder (or ``*``) and product
whose validity overlaps.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.core.codes import MAX_TARIEF, PRODUCT_CATEGORIES, UNITS, ProductCodeList
from gateway.core.errors import ConfigError
from gateway.core.lists import EVERY_PROVIDER, ContractTable, ContractTariff, InMemoryContracts
from gateway.core.mapping_tables import expand_scope
from gateway.mapping_files import (
    GENERATIONS_FILE,
    MappingError,
    Problem,
    load_code_list,
    split_commented_csv,
)

if TYPE_CHECKING:
    from gateway.store.base import ClaimedProduct

CONTRACT_COLUMNS = (
    "gemeente", "aanbieder", "categorie", "code", "eenheid", "tarief", "valid_from", "valid_to",
    "note",
)  # fmt: skip
CONTRACTS_KIND = "contracts"
EURO_UNIT = "83"

_Key = tuple[str, str, str, str]
_Validity = tuple[dt.date | None, dt.date | None, ContractTariff]


class ContractError(ConfigError):
    """The contract tariff table is invalid."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        shown = "\n  ".join(str(p) for p in problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{len(problems)} problem(s) in the contract table:\n  {shown}{more}")


def load_contract_table(path: Path, mappings: Path | None = None) -> ContractTable:
    """The contract table in ``path``; raises :class:`ContractError` listing every problem.

    ``mappings`` is the folder with ``codes/`` and ``generations.toml`` (default: the folder
    above the file's own, i.e. ``mappings/`` for ``mappings/contracts/x.csv``).
    """
    table, problems = check_contract_table(path, mappings)
    if problems or table is None:
        raise ContractError(problems or [Problem(str(path), None, "nothing loaded")])
    return table


def check_contract_table(
    path: Path, mappings: Path | None = None
) -> tuple[InMemoryContracts | None, list[Problem]]:
    """Load a contract table and return (table, problems); the table is None on any problem."""
    loader = _ContractLoader(path, mappings if mappings is not None else path.parent.parent)
    table = loader.load()
    return (None if loader.problems else table), loader.problems


def contract_files(mappings: Path) -> list[Path]:
    """The contract tables shipped in a mapping folder (``contracts/*.csv``)."""
    return sorted((mappings / "contracts").glob("*.csv"))


@dataclass
class _Row:
    line: int
    gemeenten: frozenset[str]
    key_rest: tuple[str, str, str]  # aanbieder, categorie, code
    valid_from: dt.date | None
    valid_to: dt.date | None
    tariff: ContractTariff


@dataclass
class _ContractLoader:
    path: Path
    mappings: Path
    problems: list[Problem] = field(default_factory=list)

    def problem(self, line: int | None, message: str) -> None:
        self.problems.append(Problem(str(self.path), line, message))

    def load(self) -> InMemoryContracts | None:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            self.problem(None, f"unreadable: {exc}")
            return None
        meta, header, records = split_commented_csv(lines)
        if header is None:
            self.problem(None, "no header row")
            return None
        header_line, columns = header
        missing = [c for c in CONTRACT_COLUMNS if c not in columns]
        if missing:
            self.problem(header_line, f"header lacks column(s) {', '.join(missing)}")
            return None
        if meta.get("kind") != [CONTRACTS_KIND]:
            self.problem(None, f"missing '# kind: {CONTRACTS_KIND}' line before the header")
        codes = self._code_lists(meta.get("codes", []))
        regions = self._regions()
        if codes is None or regions is None:
            return None
        rows = []
        for number, cells in records:
            if len(cells) != len(columns):
                self.problem(
                    number,
                    f"{len(cells)} fields, the header has {len(columns)} "
                    "(a quote or comma too many or too few?)",
                )
                continue
            record = {name: cell.strip() for name, cell in zip(columns, cells, strict=True)}
            row = self._row(number, record, codes, regions)
            if row is not None:
                rows.append(row)
        return self._table(rows)

    def _code_lists(self, named: list[str]) -> ProductCodeList | None:
        names = [n.strip() for value in named for n in value.split(",") if n.strip()]
        if not names:
            self.problem(None, "missing '# codes: LIST, ...' line naming the product code lists")
            return None
        lists = []
        for name in names:
            try:
                lists.append(load_code_list(self.mappings, name))
            except MappingError as exc:
                for problem in exc.problems:
                    self.problem(None, f"code list {name!r}: {problem}")
        if len(lists) != len(names):
            return None
        return ProductCodeList.union("+".join(names), lists)

    def _regions(self) -> dict[str, frozenset[str]] | None:
        path = self.mappings / GENERATIONS_FILE
        try:
            with path.open("rb") as handle:
                raw = tomllib.load(handle).get("regions", {})
        except (OSError, tomllib.TOMLDecodeError) as exc:
            self.problem(None, f"cannot read the regions in {path}: {exc}")
            return None
        return {str(name): frozenset(str(m) for m in members) for name, members in raw.items()}

    def _row(
        self,
        line: int,
        record: dict[str, str],
        codes: ProductCodeList,
        regions: dict[str, frozenset[str]],
    ) -> _Row | None:
        ok = True
        gemeenten = expand_scope(record["gemeente"], regions)
        if gemeenten is None:
            self.problem(
                line, f"gemeente {record['gemeente']!r} is neither 4 digits nor a known region"
            )
            ok = False
        aanbieder = record["aanbieder"]
        if aanbieder != EVERY_PROVIDER and (len(aanbieder) != 8 or not aanbieder.isdigit()):
            self.problem(
                line,
                f"aanbieder {aanbieder!r} is neither an 8-digit AGB code nor "
                f"{EVERY_PROVIDER!r} (every provider)",
            )
            ok = False
        categorie, code = record["categorie"], record["code"]
        if categorie not in PRODUCT_CATEGORIES:
            self.problem(line, f"categorie {categorie!r} is not a productcategorie (JZ020)")
            ok = False
        elif not codes.belongs(categorie, code):
            where = "under that categorie" if codes.knows(code) else "at all"
            self.problem(line, f"code {code!r} is not on the code list(s) {codes.name} {where}")
            ok = False
        eenheid = record["eenheid"]
        if eenheid not in UNITS or eenheid == EURO_UNIT:
            self.problem(line, f"eenheid {eenheid!r} is not a WJ756 unit with a tariff")
            ok = False
        tarief = record["tarief"]
        if not tarief.isdigit() or int(tarief) > MAX_TARIEF:
            self.problem(line, f"tarief {tarief!r} is not whole eurocent (0-{MAX_TARIEF})")
            ok = False
        from_ok, valid_from = self._date(line, "valid_from", record["valid_from"])
        to_ok, valid_to = self._date(line, "valid_to", record["valid_to"])
        if valid_from is not None and valid_to is not None and valid_to < valid_from:
            self.problem(line, f"valid_to {valid_to} lies before valid_from {valid_from}")
            ok = False
        if (
            ok
            and from_ok
            and to_ok
            and not any(
                entry.categorie == categorie and entry.overlaps(valid_from, valid_to)
                for entry in codes.entries_for(code)
            )
        ):
            self.problem(
                line,
                f"code {code!r} is listed for {codes.validity(code)}: no day of the row's "
                f"validity {valid_from or '…'}..{valid_to or '…'}",
            )
            ok = False
        if not (ok and from_ok and to_ok) or gemeenten is None:
            return None
        return _Row(
            line,
            gemeenten,
            (aanbieder, categorie, code),
            valid_from,
            valid_to,
            ContractTariff(int(tarief), eenheid),
        )

    def _date(self, line: int, column: str, value: str) -> tuple[bool, dt.date | None]:
        """(readable, the date or None when empty); an unreadable date is reported."""
        if not value:
            return True, None
        try:
            return True, dt.date.fromisoformat(value)
        except ValueError:
            self.problem(line, f"{column} {value!r} is not a date (YYYY-MM-DD)")
            return False, None

    def _table(self, rows: list[_Row]) -> InMemoryContracts:
        by_key: dict[_Key, list[tuple[_Row, _Validity]]] = defaultdict(list)
        for row in rows:
            validity: _Validity = (row.valid_from, row.valid_to, row.tariff)
            for gemeente in sorted(row.gemeenten):
                key = (gemeente, *row.key_rest)
                clash = next((r for r, v in by_key[key] if _overlap(v, validity)), None)
                if clash is not None:
                    aanbieder = row.key_rest[0]
                    party = (
                        "every provider (*)"
                        if aanbieder == EVERY_PROVIDER
                        else f"aanbieder {aanbieder}"
                    )
                    self.problem(
                        row.line,
                        f"{'/'.join(row.key_rest[1:])} for gemeente {gemeente} and {party} "
                        f"overlaps line {clash.line}",
                    )
                    break
                by_key[key].append((row, validity))
        return InMemoryContracts(
            {key: tuple(v for _, v in entries) for key, entries in by_key.items()}
        )


def _overlap(a: _Validity, b: _Validity) -> bool:
    a_from, a_to, _ = a
    b_from, b_to, _ = b
    starts_before_b_ends = a_from is None or b_to is None or a_from <= b_to
    ends_after_b_starts = a_to is None or b_from is None or a_to >= b_from
    return starts_before_b_ends and ends_after_b_starts


@dataclass(frozen=True, slots=True)
class TariffGap:
    """Claim lines of one aanbieder in one month for a product no contract row prices."""

    aanbieder: str
    month: str  # YYYY-MM of the ProductPeriode's Begindatum
    gemeente: str
    categorie: str
    code: str
    eenheid: str
    lines: int


def tariff_gaps(claimed: Iterable[ClaimedProduct], table: ContractTable) -> list[TariffGap]:
    """The claimed products without an applicable tariff, per aanbieder, month and gemeente.

    Asked as TR418 asks: the tariff valid on the line's ProductPeriode Begindatum, the
    aanbieder's own row before the region's ``*`` row; euro lines (Eenheid 83) have none.
    """
    counts: dict[tuple[str, str, str, str, str, str], int] = defaultdict(int)
    for product in claimed:
        if product.eenheid == EURO_UNIT:
            continue
        tariff = table.tariff(
            product.gemeente, product.aanbieder, product.categorie, product.code, product.begin
        )
        if tariff is None:
            month = product.begin.strftime("%Y-%m")
            key = (
                product.aanbieder, month, product.gemeente, product.categorie, product.code,
                product.eenheid,
            )  # fmt: skip
            counts[key] += product.lines
    return [TariffGap(*key, lines) for key, lines in sorted(counts.items())]
