"""Read one row of ``mappings/conversions/*.csv`` into a core :class:`Conversion`, strictly.

``gateway/mapping_files.py`` reads the files (metadata, header, dates, overlaps) and hands each
row here with a ``problem`` callback that already knows the file and line. A conversion must
name a product mapping row of its generations and agree with the row's units; the columns are
checked one by one and every contradiction between them is reported (format in
``mappings/README.md``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction

from gateway.core.codes import FREQUENCIES, MAX_TARIEF, UNITS
from gateway.core.mapping_tables import ClaimRule, Conversion, MappingRow, Product, SourceKind

CONVERSION_COLUMNS = (
    "scope", "source_categorie", "source_code", "target_categorie", "target_code",
    "valid_from", "valid_to", "source_eenheid", "source_frequentie", "target_eenheid",
    "target_frequentie", "volume", "claim", "tariff", "note",
)  # fmt: skip
CONTRACT_TARIFF = "contract"

Report = Callable[[str], None]


def conversion_of(
    raw: Mapping[str, str],
    *,
    pair: tuple[str, str],
    scope: frozenset[str] | None,
    rows: Sequence[MappingRow],
    validity: tuple[dt.date | None, dt.date | None],
    origin: str,
    problem: Report,
) -> Conversion | None:
    """The conversion of one row, or None after reporting what is wrong with it."""
    found: list[str] = []

    def report(message: str) -> None:
        found.append(message)
        problem(message)

    if scope is None:
        report(f"scope {raw['scope']!r} is neither a gemeentecode nor a region")
    source = Product(raw["source_categorie"], raw["source_code"])
    target = Product(raw["target_categorie"], raw["target_code"])
    for column in ("source_eenheid", "target_eenheid"):
        if raw[column] not in UNITS:
            report(f"{column} {raw[column]!r} is not in WJ756")
    for column in ("source_frequentie", "target_frequentie"):
        if raw[column] and raw[column] not in FREQUENCIES:
            report(f"{column} {raw[column]!r} is not in WMO757")
    factor, fixed = volume_of(raw["volume"], report)
    claim: ClaimRule | None = None
    if raw["claim"]:
        try:
            claim = ClaimRule(raw["claim"])
        except ValueError:
            choices = ", ".join(c.value for c in ClaimRule)
            report(f"claim {raw['claim']!r}: expected {choices} or empty")
    tariff = tariff_of(raw["tariff"], claim, report)
    if claim is ClaimRule.PER_MONTH and fixed is None and raw["volume"]:
        report("claim per-month needs a fixed volume (e.g. 1), not a factor")
    if claim is ClaimRule.PER_MONTH and raw["target_frequentie"] != "4":
        report("claim per-month needs target_frequentie 4 (per maand)")
    if claim is ClaimRule.VOLUME and factor is None and raw["volume"]:
        report("claim volume needs a volume factor (e.g. x60), not a fixed volume")
    if claim is not None and raw["target_eenheid"] == "83":
        report("target_eenheid 83 (euro's) has no tariff (CD087)")
    _check_row(raw, pair, (source, target), rows, validity=validity, report=report)
    if found or scope is None:
        return None
    return Conversion(
        from_generation=pair[0],
        to_generation=pair[1],
        gemeenten=scope,
        source=source,
        target=target,
        source_eenheid=raw["source_eenheid"],
        target_eenheid=raw["target_eenheid"],
        source_frequentie=raw["source_frequentie"] or None,
        target_frequentie=raw["target_frequentie"] or None,
        volume_factor=factor,
        fixed_volume=fixed,
        claim=claim,
        tariff=tariff,
        valid_from=validity[0],
        valid_to=validity[1],
        origin=origin,
    )


def _check_row(
    raw: Mapping[str, str],
    pair: tuple[str, str],
    products: tuple[Product, Product],
    rows: Sequence[MappingRow],
    *,
    validity: tuple[dt.date | None, dt.date | None],
    report: Report,
) -> None:
    """The conversion must convert a product row of its set, in the row's own units. A pair
    may have several rows (a heavy profile is PxQ in 2018 and a trajectory from 2019): the
    conversion answers to the rows valid on some day of its own validity."""
    source, target = products
    same_pair = [
        r for r in rows if (r.source, r.target) == products and r.source_kind is SourceKind.PRODUCT
    ]
    if not same_pair:
        report(f"no mapping row {source} -> {target} from {pair[0]!r} to {pair[1]!r} to convert")
        return
    start, end = validity
    overlapping = [
        r
        for r in same_pair
        if (end is None or r.valid_from <= end)
        and (start is None or r.valid_to is None or start <= r.valid_to)
    ]
    row = next(
        (
            r
            for r in overlapping
            if (r.unit_from, r.unit_to) == (raw["source_eenheid"], raw["target_eenheid"])
        ),
        (overlapping or same_pair)[0],
    )
    if (row.unit_from, row.unit_to) != (raw["source_eenheid"], raw["target_eenheid"]):
        report(
            f"units {raw['source_eenheid']} -> {raw['target_eenheid']} contradict "
            f"{row.origin} ({row.unit_from or '-'} -> {row.unit_to or '-'})"
        )
    elif row.volume_factor is not None:
        report(f"{row.origin} has its own volume_factor: convert in one place only")


def volume_of(value: str, report: Report) -> tuple[Fraction | None, int | None]:
    """``volume``: ``xF`` multiplies (``x60``, ``x1/60``), a whole number ``N`` is fixed."""
    if not value:
        report("volume is required: a fixed volume (1) or a factor (x60)")
        return None, None
    if value.startswith("x"):
        try:
            factor = Fraction(value[1:])
        except (ValueError, ZeroDivisionError):
            factor = Fraction(0)
        if factor <= 0:
            report(f"volume {value!r}: a factor is x and a positive number")
            return None, None
        return factor, None
    if not value.isdigit() or int(value) < 1:
        report(f"volume {value!r}: a whole number of at least 1, or xF")
        return None, None
    return None, int(value)


def tariff_of(value: str, claim: ClaimRule | None, report: Report) -> int | None:
    """``tariff``: where a converted declaration line's price comes from (None: contract)."""
    if not value:
        if claim is not None:
            report("claim needs a tariff source: 'contract' or whole eurocent")
        return None
    if claim is None:
        report("tariff without claim: declaration lines are not converted")
        return None
    if value == CONTRACT_TARIFF:
        return None
    if not value.isdigit() or int(value) > MAX_TARIEF:
        report(f"tariff {value!r}: 'contract' or whole eurocent 0-{MAX_TARIEF}")
        return None
    return int(value)


def conversions_overlap(a: Conversion, b: Conversion) -> bool:
    """True when two conversions of one pair share a gemeente and a day."""
    if (a.from_generation, a.to_generation, a.source, a.target) != (
        b.from_generation,
        b.to_generation,
        b.source,
        b.target,
    ) or not (a.gemeenten & b.gemeenten):
        return False
    return (a.valid_to is None or b.valid_from is None or b.valid_from <= a.valid_to) and (
        b.valid_to is None or a.valid_from is None or a.valid_from <= b.valid_to
    )
