"""Read ``mappings/`` once at startup and build the core's :class:`MappingTable`, strictly.

Layout (format in ``mappings/README.md``): ``generations.toml`` (generations and regions),
``codes/*.csv`` (product code lists), ``tables/*.csv`` (mapping sets) and, optionally,
``conversions/*.csv`` (how volume, unit, frequency and tariff change on a unit-changing row).
Other files in the folder belong to other features and are not read here.

Every problem is collected with its file and line and reported together, so an operator fixes
a table in one pass: broken rows, unknown categories (JZ020), unknown units (WJ756), sources
or targets missing from their generation's code list, rows before the cut-over, and two rows
for the same key with overlapping validity (allowed only when every one of them is marked
``needs_decision``: that is how a one-to-many mapping is written). A conversion must name a
mapping row of its generations and agree with the row's units.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from gateway.conversion_files import (
    CONVERSION_COLUMNS,
    conversion_of,
    conversions_overlap,
)
from gateway.core.codes import (
    PRODUCT_CATEGORIES,
    UNITS,
    ProductCodeEntry,
    ProductCodeList,
)
from gateway.core.errors import ConfigError
from gateway.core.mapping_tables import (
    DBC_MAX_DAYS,
    Conversion,
    Generation,
    MappingRow,
    MappingSet,
    MappingTable,
    Product,
    SourceKind,
    expand_scope,
    freeze_regions,
)
from gateway.shipped import SHIPPED_MAPPINGS

GENERATIONS_FILE = "generations.toml"
CODE_COLUMNS = ("categorie", "code", "eenheid", "valid_from", "valid_to", "omschrijving")
MAPPING_COLUMNS = (
    "scope", "source_kind", "source_categorie", "source_code", "dbc_opened_from",
    "dbc_opened_to", "target_categorie", "target_code", "valid_from", "valid_to",
    "unit_from", "unit_to", "volume_factor", "needs_decision", "note",
)  # fmt: skip
_DBC_LENGTH = {SourceKind.DECLARATIECODE: 6, SourceKind.PRESTATIECODE: 12}


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in the mapping folder, with where it is."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"


class MappingError(ConfigError):
    """The mapping tables are invalid."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        shown = "\n  ".join(str(p) for p in problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{len(problems)} problem(s) in the mapping tables:\n  {shown}{more}")


def load_mappings(folder: Path = SHIPPED_MAPPINGS) -> MappingTable:
    """The mapping table of a folder; raises :class:`MappingError` listing every problem."""
    table, problems = check_mappings(folder)
    if problems or table is None:
        raise MappingError(problems or [Problem(str(folder), None, "nothing loaded")])
    return table


def check_mappings(folder: Path) -> tuple[MappingTable | None, list[Problem]]:
    """Load a folder and return (table, problems); the table is None when loading stopped."""
    loader = _Loader(folder)
    table = loader.load()
    return (None if loader.problems else table), loader.problems


@dataclass
class _CsvFile:
    path: str
    meta: dict[str, list[str]]
    rows: list[tuple[int, dict[str, str]]]


@dataclass
class _Loader:
    folder: Path
    problems: list[Problem] = field(default_factory=list)

    def problem(self, file: Path | str, line: int | None, message: str) -> None:
        self.problems.append(Problem(str(file), line, message))

    def load(self) -> MappingTable | None:
        if not self.folder.is_dir():
            self.problem(self.folder, None, "not a folder")
            return None
        generations_toml = self._read_generations()
        if generations_toml is None:
            return None
        lists = self._read_code_lists()
        regions = freeze_regions(generations_toml[1])
        generations: dict[str, Generation] = {}
        gen_file = self.folder / GENERATIONS_FILE
        for name, (description, list_names) in generations_toml[0].items():
            missing = [n for n in list_names if n not in lists]
            for list_name in missing:
                self.problem(
                    gen_file,
                    None,
                    f"generation {name!r} names unknown code list "
                    f"{list_name!r} (no '# list: {list_name}' file in codes/)",
                )
            codes = ProductCodeList.union(name, (lists[n] for n in list_names if n in lists))
            generations[name] = Generation(name, description, codes)
        sets = tuple(self._read_sets(generations, regions))
        self._check_overlaps(sets)
        conversions = tuple(self._read_conversions(generations, regions, sets))
        return MappingTable(
            generations=generations, regions=regions, sets=sets, conversions=conversions
        )

    # -- generations.toml --------------------------------------------------------------------

    def _read_generations(
        self,
    ) -> tuple[dict[str, tuple[str, list[str]]], dict[str, list[str]]] | None:
        path = self.folder / GENERATIONS_FILE
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            self.problem(path, None, "missing: it names the generations and their code lists")
            return None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            self.problem(path, None, f"unreadable: {exc}")
            return None
        generations: dict[str, tuple[str, list[str]]] = {}
        raw_generations = data.get("generations")
        if not isinstance(raw_generations, dict) or not raw_generations:
            self.problem(path, None, "needs a [generations.NAME] table with 'lists'")
            return None
        for name, spec in raw_generations.items():
            lists = spec.get("lists") if isinstance(spec, dict) else None
            if not isinstance(lists, list) or not all(isinstance(x, str) for x in lists):
                self.problem(path, None, f"generation {name!r}: 'lists' must be a list of names")
                continue
            description = spec.get("description", "")
            generations[name] = (description if isinstance(description, str) else "", lists)
        regions: dict[str, list[str]] = {}
        raw_regions = data.get("regions", {})
        if not isinstance(raw_regions, dict):
            self.problem(path, None, "[regions] must map region names to lists of gemeentecodes")
            raw_regions = {}
        for name, members in raw_regions.items():
            if not isinstance(members, list) or not all(
                isinstance(m, str) and len(m) == 4 and m.isdigit() for m in members
            ):
                self.problem(path, None, f"region {name!r}: members must be 4-digit CBS codes")
                continue
            regions[name] = members
        return generations, regions

    # -- CSV files -----------------------------------------------------------------------------

    def _read_csv(self, path: Path, columns: tuple[str, ...]) -> _CsvFile | None:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            self.problem(path, None, f"unreadable: {exc}")
            return None
        meta, found, records = split_commented_csv(lines)
        if found is None:
            self.problem(path, None, "no header row")
            return None
        header_line, header = found
        missing = [c for c in columns if c not in header]
        if missing:
            self.problem(path, header_line, f"header lacks column(s) {', '.join(missing)}")
            return None
        rows: list[tuple[int, dict[str, str]]] = []
        for number, cells in records:
            if len(cells) != len(header):
                self.problem(
                    path,
                    number,
                    f"{len(cells)} fields, the header has {len(header)} "
                    "(a quote or comma too many or too few?)",
                )
                continue
            rows.append((number, {h: c.strip() for h, c in zip(header, cells, strict=True)}))
        return _CsvFile(str(path), meta, rows)

    def _csv_files(self, sub: str) -> Iterator[Path]:
        folder = self.folder / sub
        if not folder.is_dir():
            self.problem(folder, None, "missing folder")
            return
        yield from sorted(folder.glob("*.csv"))

    def _date(self, file: str, line: int, column: str, value: str) -> dt.date | None:
        if not value:
            return None
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            self.problem(file, line, f"{column} {value!r} is not a date (YYYY-MM-DD)")
            return None

    def _one_meta(self, csv_file: _CsvFile, key: str) -> str | None:
        values = csv_file.meta.get(key)
        if not values:
            self.problem(csv_file.path, None, f"missing '# {key}: ...' line before the header")
            return None
        return values[0]

    # -- code lists ----------------------------------------------------------------------------

    def _read_code_lists(self) -> dict[str, ProductCodeList]:
        entries: dict[str, list[ProductCodeEntry]] = {}
        for path in self._csv_files("codes"):
            csv_file = self._read_csv(path, CODE_COLUMNS)
            if csv_file is None:
                continue
            kind = self._one_meta(csv_file, "kind")
            list_name = self._one_meta(csv_file, "list")
            if kind is None or list_name is None:
                continue
            if kind != "product-codes":
                self.problem(path, None, f"kind {kind!r} in codes/: expected 'product-codes'")
                continue
            bucket = entries.setdefault(list_name, [])
            for line, row in csv_file.rows:
                entry = self._code_entry(csv_file.path, line, list_name, row)
                if entry is None:
                    continue
                clash = next(
                    (
                        e
                        for e in bucket
                        if e.code == entry.code
                        and e.categorie == entry.categorie
                        and e.overlaps(entry.valid_from, entry.valid_to)
                    ),
                    None,
                )
                if clash is not None:
                    self.problem(
                        path,
                        line,
                        f"{entry.categorie}/{entry.code} is already in list "
                        f"{list_name!r} for an overlapping period ({clash.origin})",
                    )
                    continue
                bucket.append(entry)
        return {name: ProductCodeList(name, tuple(rows)) for name, rows in entries.items()}

    def _code_entry(
        self, file: str, line: int, list_name: str, row: Mapping[str, str]
    ) -> ProductCodeEntry | None:
        ok = self._categorie(file, line, "categorie", row["categorie"])
        ok = self._code(file, line, "code", row["code"]) and ok
        eenheid = row["eenheid"] or None
        if eenheid is not None and eenheid not in UNITS:
            self.problem(file, line, f"eenheid {eenheid!r} is not in WJ756")
            ok = False
        valid_from = self._date(file, line, "valid_from", row["valid_from"])
        valid_to = self._date(file, line, "valid_to", row["valid_to"])
        if not self._period(file, line, valid_from, valid_to, row) or not ok:
            return None
        return ProductCodeEntry(
            list_name,
            row["categorie"],
            row["code"],
            eenheid,
            valid_from,
            valid_to,
            row["omschrijving"],
            f"{file}:{line}",
        )

    def _categorie(self, file: str, line: int, column: str, value: str) -> bool:
        if value not in PRODUCT_CATEGORIES:
            self.problem(file, line, f"{column} {value!r} is not a productcategorie (JZ020)")
            return False
        return True

    def _code(self, file: str, line: int, column: str, value: str) -> bool:
        if not (1 <= len(value) <= 5):
            self.problem(file, line, f"{column} {value!r} is not a product code (1-5 characters)")
            return False
        return True

    def _period(
        self,
        file: str,
        line: int,
        start: dt.date | None,
        end: dt.date | None,
        row: Mapping[str, str],
    ) -> bool:
        if (row["valid_from"] and start is None) or (row["valid_to"] and end is None):
            return False
        if start is not None and end is not None and end < start:
            self.problem(file, line, f"valid_to {end} is before valid_from {start}")
            return False
        return True

    def _dbc_source(
        self,
        file: str,
        line: int,
        kind: SourceKind,
        code: str,
        band: tuple[dt.date | None, dt.date | None],
    ) -> None:
        length = _DBC_LENGTH[kind]
        if len(code) != length or not code.isalnum():
            self.problem(
                file,
                line,
                f"{kind.value} {code!r} must be {length} "
                "characters (a DBC key, not a product code)",
            )
        if None in band:
            self.problem(
                file,
                line,
                "a DBC row needs dbc_opened_from and dbc_opened_to (the opening-date band)",
            )

    def _dbc_band(
        self, file: str, line: int, opened_from: dt.date, opened_to: dt.date, cutover: dt.date
    ) -> None:
        # A DBC closes after at most 365 days, so only one opened in the 365 days before the
        # cut-over can still be running at it; a wider band would promise run-off to DBCs
        # that had already closed.
        earliest = cutover - dt.timedelta(days=DBC_MAX_DAYS)
        if opened_to < opened_from:
            self.problem(file, line, f"dbc_opened_to {opened_to} is before dbc_opened_from")
        if opened_from < earliest:
            self.problem(
                file,
                line,
                f"dbc_opened_from {opened_from} is more than {DBC_MAX_DAYS} days before the "
                f"cut-over {cutover}: such a DBC closed before it (earliest {earliest})",
            )
        if opened_to >= cutover:
            self.problem(
                file,
                line,
                f"dbc_opened_to {opened_to} is not before the cut-over {cutover}: "
                "no DBC opens after the transition",
            )

    # -- mapping sets --------------------------------------------------------------------------

    def _read_sets(
        self, generations: Mapping[str, Generation], regions: Mapping[str, frozenset[str]]
    ) -> Iterator[MappingSet]:
        for path in self._csv_files("tables"):
            csv_file = self._read_csv(path, MAPPING_COLUMNS)
            if csv_file is None:
                continue
            header = [self._one_meta(csv_file, k) for k in ("kind", "from", "to", "cutover")]
            kind, source_gen, target_gen, cutover_text = header
            if None in header:
                continue
            if kind != "mapping":
                self.problem(path, None, f"kind {kind!r} in tables/: expected 'mapping'")
                continue
            for gen in (source_gen, target_gen):
                if gen not in generations:
                    self.problem(path, None, f"generation {gen!r} is not in {GENERATIONS_FILE}")
            cutover = self._date(csv_file.path, 0, "cutover", cutover_text or "")
            if cutover is None or source_gen not in generations or target_gen not in generations:
                continue
            assert source_gen is not None and target_gen is not None  # for mypy, checked above
            if source_gen == target_gen:
                self.problem(path, None, "from and to are the same generation")
                continue
            mapping_set = MappingSet(
                name=path.stem,
                from_generation=source_gen,
                to_generation=target_gen,
                cutover=cutover,
                title=(csv_file.meta.get("title") or [""])[0],
                synthetic=bool(csv_file.meta.get("synthetic")),
            )
            rows = tuple(
                row
                for line, raw in csv_file.rows
                if (
                    row := self._mapping_row(
                        csv_file.path, line, raw, mapping_set, sources=(generations, regions)
                    )
                )
                is not None
            )
            yield MappingSet(
                mapping_set.name,
                source_gen,
                target_gen,
                cutover,
                mapping_set.title,
                mapping_set.synthetic,
                rows,
            )

    def _mapping_row(
        self,
        file: str,
        line: int,
        raw: Mapping[str, str],
        mapping_set: MappingSet,
        *,
        sources: tuple[Mapping[str, Generation], Mapping[str, frozenset[str]]],
    ) -> MappingRow | None:
        generations, regions = sources
        problems_before = len(self.problems)
        gemeenten = expand_scope(raw["scope"], regions)
        if gemeenten is None:
            self.problem(
                file,
                line,
                f"scope {raw['scope']!r} is neither a 4-digit gemeentecode "
                "nor a region in generations.toml",
            )
        try:
            kind = SourceKind(raw["source_kind"])
        except ValueError:
            self.problem(
                file,
                line,
                f"source_kind {raw['source_kind']!r}: expected one of "
                f"{', '.join(k.value for k in SourceKind)}",
            )
            return None
        source = Product(raw["source_categorie"], raw["source_code"])
        target = Product(raw["target_categorie"], raw["target_code"])
        self._categorie(file, line, "source_categorie", source.categorie)
        self._categorie(file, line, "target_categorie", target.categorie)
        self._code(file, line, "target_code", target.code)
        valid_from = self._date(file, line, "valid_from", raw["valid_from"])
        valid_to = self._date(file, line, "valid_to", raw["valid_to"])
        if valid_from is None and not raw["valid_from"]:
            self.problem(file, line, "valid_from is required")
        self._period(file, line, valid_from, valid_to, raw)
        if valid_from is not None and valid_from < mapping_set.cutover:
            self.problem(
                file,
                line,
                f"valid_from {valid_from} is before the cut-over "
                f"{mapping_set.cutover}: no retroactive rewriting",
            )
        opened_from = self._date(file, line, "dbc_opened_from", raw["dbc_opened_from"])
        opened_to = self._date(file, line, "dbc_opened_to", raw["dbc_opened_to"])
        if kind is SourceKind.PRODUCT:
            if self._code(file, line, "source_code", source.code) and not generations[
                mapping_set.from_generation
            ].codes.belongs(source.categorie, source.code):
                self.problem(
                    file,
                    line,
                    f"source {source} is not in the code list of "
                    f"generation {mapping_set.from_generation!r}",
                )
            if raw["dbc_opened_from"] or raw["dbc_opened_to"]:
                self.problem(file, line, "dbc_opened_from/to only apply to DBC sources")
        else:
            self._dbc_source(file, line, kind, source.code, (opened_from, opened_to))
            if opened_from is not None and opened_to is not None:
                self._dbc_band(file, line, opened_from, opened_to, mapping_set.cutover)
        self._target_listed(
            file, line, target, (valid_from, valid_to), generations[mapping_set.to_generation]
        )
        unit_from, unit_to, factor = self._units(file, line, raw)
        needs_decision = raw["needs_decision"].lower()
        if needs_decision not in ("yes", "no"):
            self.problem(file, line, f"needs_decision {raw['needs_decision']!r}: yes or no")
        if len(self.problems) > problems_before or gemeenten is None or valid_from is None:
            return None
        return MappingRow(
            mapping_set=mapping_set.name,
            from_generation=mapping_set.from_generation,
            to_generation=mapping_set.to_generation,
            cutover=mapping_set.cutover,
            gemeenten=gemeenten,
            scope=raw["scope"],
            source_kind=kind,
            source=source,
            target=target,
            valid_from=valid_from,
            valid_to=valid_to,
            dbc_opened_from=opened_from,
            dbc_opened_to=opened_to,
            unit_from=unit_from,
            unit_to=unit_to,
            volume_factor=factor,
            needs_decision=needs_decision == "yes",
            note=raw["note"],
            file=file,
            line=line,
        )

    def _target_listed(
        self,
        file: str,
        line: int,
        target: Product,
        period: tuple[dt.date | None, dt.date | None],
        generation: Generation,
    ) -> None:
        start, end = period
        entries = [
            e for e in generation.codes.entries_for(target.code) if e.categorie == target.categorie
        ]
        if not entries:
            self.problem(
                file,
                line,
                f"target {target} is not in the code list of generation {generation.name!r}",
            )
        elif not any(e.overlaps(start, end) for e in entries):
            self.problem(
                file,
                line,
                f"target {target} is not valid in generation "
                f"{generation.name!r} during the row's validity",
            )

    def _units(
        self, file: str, line: int, raw: Mapping[str, str]
    ) -> tuple[str | None, str | None, Fraction | None]:
        unit_from, unit_to = raw["unit_from"] or None, raw["unit_to"] or None
        for column, unit in (("unit_from", unit_from), ("unit_to", unit_to)):
            if unit is not None and unit not in UNITS:
                self.problem(file, line, f"{column} {unit!r} is not in WJ756")
        if (unit_from is None) != (unit_to is None):
            self.problem(file, line, "give both unit_from and unit_to, or neither")
        factor: Fraction | None = None
        if raw["volume_factor"]:
            try:
                factor = Fraction(raw["volume_factor"])
            except (ValueError, ZeroDivisionError):
                self.problem(
                    file,
                    line,
                    f"volume_factor {raw['volume_factor']!r} is not a "
                    "number or fraction such as 1/60",
                )
            else:
                if factor <= 0:
                    self.problem(file, line, "volume_factor must be positive")
                if unit_from is None:
                    self.problem(file, line, "volume_factor needs unit_from and unit_to")
        return unit_from, unit_to, factor

    def _check_overlaps(self, sets: tuple[MappingSet, ...]) -> None:
        seen: dict[tuple[str, str, str, SourceKind, Product], list[MappingRow]] = {}
        for row in (r for s in sets for r in s.rows):
            for gemeente in sorted(row.gemeenten):
                key = (
                    gemeente,
                    row.from_generation,
                    row.to_generation,
                    row.source_kind,
                    row.source,
                )
                earlier = seen.setdefault(key, [])
                clash = next(
                    (
                        e
                        for e in earlier
                        if _overlap(e, row) and not (e.needs_decision and row.needs_decision)
                    ),
                    None,
                )
                if clash is not None:
                    self.problem(
                        row.file,
                        row.line,
                        f"overlaps {clash.origin} for gemeente "
                        f"{gemeente}, source {row.source}: same key, overlapping "
                        "validity (mark both needs_decision = yes for one-to-many)",
                    )
                    break
                earlier.append(row)

    # -- conversions ---------------------------------------------------------------------------

    def _read_conversions(
        self,
        generations: Mapping[str, Generation],
        regions: Mapping[str, frozenset[str]],
        sets: tuple[MappingSet, ...],
    ) -> Iterator[Conversion]:
        if not (self.folder / "conversions").is_dir():
            return  # optional: without it no unit-changing row is applied
        read: list[Conversion] = []
        for path in self._csv_files("conversions"):
            csv_file = self._read_csv(path, CONVERSION_COLUMNS)
            if csv_file is None:
                continue
            header = [self._one_meta(csv_file, k) for k in ("kind", "from", "to")]
            kind, source_gen, target_gen = header
            if kind is None or source_gen is None or target_gen is None:
                continue
            if kind != "conversions":
                self.problem(path, None, f"kind {kind!r} in conversions/: expected 'conversions'")
                continue
            if source_gen not in generations or target_gen not in generations:
                self.problem(path, None, f"generations {source_gen!r} -> {target_gen!r} unknown")
                continue
            rows = [r for s in sets for r in s.rows if (s.from_generation, s.to_generation)
                    == (source_gen, target_gen)]  # fmt: skip
            for line, raw in csv_file.rows:
                before = len(self.problems)
                validity = (
                    self._date(csv_file.path, line, "valid_from", raw["valid_from"]),
                    self._date(csv_file.path, line, "valid_to", raw["valid_to"]),
                )
                self._period(csv_file.path, line, *validity, raw)
                found = conversion_of(
                    raw,
                    pair=(source_gen, target_gen),
                    scope=expand_scope(raw["scope"], regions),
                    rows=rows,
                    validity=validity,
                    origin=f"{csv_file.path}:{line}",
                    problem=functools.partial(self.problem, csv_file.path, line),
                )
                if found is None or len(self.problems) > before:
                    continue
                clash = next((c for c in read if conversions_overlap(c, found)), None)
                if clash is not None:
                    self.problem(
                        csv_file.path,
                        line,
                        f"overlaps {clash.origin}: two conversions for {found.source} -> "
                        f"{found.target} with overlapping validity",
                    )
                    continue
                read.append(found)
        yield from read


def _overlap(a: MappingRow, b: MappingRow) -> bool:
    def periods(
        start1: dt.date | None, end1: dt.date | None, start2: dt.date | None, end2: dt.date | None
    ) -> bool:
        return (end1 is None or start2 is None or start2 <= end1) and (
            end2 is None or start1 is None or start1 <= end2
        )

    if not periods(a.valid_from, a.valid_to, b.valid_from, b.valid_to):
        return False
    if a.source_kind is SourceKind.PRODUCT:
        return True
    return periods(a.dbc_opened_from, a.dbc_opened_to, b.dbc_opened_from, b.dbc_opened_to)


def load_code_list(folder: Path, name: str) -> ProductCodeList:
    """One product code list of a mapping folder by its ``# list:`` name (e.g. ``JZ21``);
    raises :class:`MappingError` when it is missing or invalid."""
    loader = _Loader(folder)
    lists = loader._read_code_lists()
    if loader.problems or name not in lists:
        where = str(folder / "codes")
        raise MappingError(loader.problems or [Problem(where, None, f"no code list {name!r}")])
    return lists[name]


def split_commented_csv(
    lines: list[str],
) -> tuple[dict[str, list[str]], tuple[int, list[str]] | None, list[tuple[int, list[str]]]]:
    """Split the lines of a mappings/ CSV file into (``# key: value`` metadata before the
    header, (line number, header columns), data records with their line numbers).

    Blank lines and other ``#`` comment lines are skipped; line numbers count from 1 so
    errors can name them.
    """
    meta: dict[str, list[str]] = {}
    header: tuple[int, list[str]] | None = None
    records: list[tuple[int, list[str]]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if line.lstrip().startswith("#"):
            key, sep, value = line.lstrip()[1:].partition(":")
            if sep and header is None:
                meta.setdefault(key.strip().lower(), []).append(value.strip())
            continue
        cells = next(csv.reader([line]))
        if header is None:
            header = (number, [c.strip() for c in cells])
        else:
            records.append((number, cells))
    return meta, header, records
