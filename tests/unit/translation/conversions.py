"""A declared conversion on top of the small demo folder (builders.py), its contract tariffs,
and the JW315 the provider starts with: legacy hours per week (old 45A50, Eenheid 04,
Frequentie 2) become one trajectory per month (new 45Q02, Eenheid 82, Frequentie 4) at the
region's trajectory price. Test data, invented."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from lxml import etree

from gateway.core.document import find, findall
from tests.unit.translation.builders import (
    example,
    jw301,
    keep_first,
    one_line,
    set_text,
    to_bytes,
)

CONVERSION_HEADER = (
    "scope,source_categorie,source_code,target_categorie,target_code,valid_from,valid_to,"
    "source_eenheid,source_frequentie,target_eenheid,target_frequentie,volume,claim,tariff,note\n"
)
CONVERSION = "DEMO,45,45A50,45,45Q02,2020-01-01,,04,2,82,4,1,per-month,contract,trajectory\n"
DIEMEN, PROVIDER = "0384", "65656055"
BEGIN = dt.date(2026, 3, 1)
NUMMER, REFERENTIE = "70001", "REF-C1"
HOURS, HOURLY = 17, 7500  # what the provider delivered in March, at its own hourly price
TRAJECTORY_TARIFF = 245_000
"""Eurocent per trajectory per month: the region's price for every provider."""
CONTRACTS = f"""\
# kind: contracts
# codes: OLD, NEW
gemeente,aanbieder,categorie,code,eenheid,tarief,valid_from,valid_to,note
DEMO,*,45,45Q02,82,{TRAJECTORY_TARIFF},2020-01-01,,trajectory per month
DEMO,65656055,45,45A50,04,7500,2020-01-01,,the provider's hourly price in its own terms
"""


def write_conversions(mappings: Path, rows: str = CONVERSION) -> Path:
    """Add ``conversions/`` (old -> new) and ``contracts/`` to a folder from write_folder;
    returns the contract file."""
    (mappings / "conversions").mkdir(exist_ok=True)
    (mappings / "conversions" / "old_to_new.csv").write_text(
        "# kind: conversions\n# from: old\n# to: new\n" + CONVERSION_HEADER + rows,
        encoding="utf-8",
    )
    (mappings / "contracts").mkdir(exist_ok=True)
    contracts = mappings / "contracts" / "test_contracts.csv"
    contracts.write_text(CONTRACTS, encoding="utf-8")
    return contracts


def jw315(  # noqa: PLR0917 - mirrors the message's own fields, in order
    aanbieder: str,
    gemeente: str,
    referentie: str,
    categorie: str,
    code: str,
    ingang: dt.date,
    omvang: tuple[str, str, str],
) -> bytes:
    """The official JW315 example reduced to one requested product with these values."""
    tree = example("JW315")
    root = tree.getroot()
    set_text(root, "Header/Afzender", aanbieder)
    set_text(root, "Header/Ontvanger", gemeente)
    first = keep_first(findall(root, "Client/AangevraagdeProducten/AangevraagdProduct"))
    set_text(first, "ReferentieAanbieder", referentie)
    set_text(first, "Product/Categorie", categorie)
    set_text(first, "Product/Code", code)
    set_text(first, "ToewijzingIngangsdatum", ingang.isoformat())
    set_text(first, "ToewijzingEinddatum", (ingang + dt.timedelta(days=180)).isoformat())
    for path, value in zip(("Volume", "Eenheid", "Frequentie"), omvang, strict=True):
        set_text(first, f"Omvang/{path}", value)
    return to_bytes(tree)


def omvang(xml: bytes, holder: str) -> tuple[str, str, str]:
    element = next(etree.fromstring(xml).iter("{*}" + holder))
    return tuple(  # type: ignore[return-value]
        find(element, f"Omvang/{name}").text or ""  # type: ignore[union-attr]
        for name in ("Volume", "Eenheid", "Frequentie")
    )


def line_figures(xml: bytes) -> dict[str, str]:
    line = next(etree.fromstring(xml).iter("{*}Prestatie"))
    paths = ("ProductCode", "GeleverdVolume", "Eenheid", "ProductTarief", "IngediendBedrag/Bedrag")
    return {path: find(line, path).text or "" for path in paths}  # type: ignore[union-attr]


def totals(xml: bytes) -> dict[str, tuple[str, str]]:
    root = etree.fromstring(xml)
    found: dict[str, tuple[str, str]] = {}
    for name in ("TotaalIngediendBedrag", "TotaalToegekendBedrag"):
        total = next(root.iter("{*}" + name), None)
        if total is not None:
            found[name] = (
                find(total, "TotaalBedrag").text or "",  # type: ignore[union-attr]
                find(total, "DebetCredit").text or "",  # type: ignore[union-attr]
            )
    return found


def allocation() -> bytes:
    raw = jw301(DIEMEN, NUMMER, "45", "45Q02", BEGIN, eenheid="82", volume="1")
    tree = etree.fromstring(raw).getroottree()
    root = tree.getroot()
    set_text(root, "Header/Ontvanger", PROVIDER)
    product = next(root.iter("{*}ToegewezenProduct"))
    set_text(product, "ReferentieAanbieder", REFERENTIE)  # honours the provider's request
    set_text(product, "Omvang/Frequentie", "4")
    return to_bytes(tree)


def claim() -> bytes:
    raw = one_line(to_bytes(example("JW323")), NUMMER, "45", "45A50")
    tree = etree.fromstring(raw).getroottree()
    line = next(tree.getroot().iter("{*}Prestatie"))
    for path, value in (
        ("GeleverdVolume", str(HOURS)),
        ("Eenheid", "04"),
        ("ProductTarief", str(HOURLY)),
        ("IngediendBedrag/Bedrag", str(HOURS * HOURLY)),
    ):
        set_text(line, path, value)
    set_text(tree.getroot(), "Declaratie/TotaalIngediendBedrag/TotaalBedrag", str(HOURS * HOURLY))
    return to_bytes(tree)


def answer(delivered_claim: bytes) -> bytes:
    """Diemen's JW325 refusing the one line as it received it (in its own terms)."""
    raw = one_line(to_bytes(example("JW325")), NUMMER, "45", "45Q02")
    tree = etree.fromstring(raw).getroottree()
    root = tree.getroot()
    line = next(root.iter("{*}Prestatie"))
    received = line_figures(delivered_claim)
    for path in ("GeleverdVolume", "Eenheid", "ProductTarief", "IngediendBedrag/Bedrag"):
        set_text(line, path, received[path])
    set_text(root, "DeclaratieAntwoord/TotaalIngediendBedrag/TotaalBedrag", str(TRAJECTORY_TARIFF))
    return to_bytes(tree)
