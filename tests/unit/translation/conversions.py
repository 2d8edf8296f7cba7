"""A declared conversion on top of the small demo folder (builders.py), its contract tariffs,
and the JW315 the provider starts with: legacy hours per week (old 45A50, Eenheid 04,
Frequentie 2) become one trajectory per month (new 45Q02, Eenheid 82, Frequentie 4) at the
region's trajectory price. Test data, invented."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from lxml import etree

from gateway.core.document import find, findall
from gateway.core.ledger import InMemoryLedger
from gateway.core.lists import ContractTable
from gateway.core.mapping_tables import MappingTable
from gateway.core.translation import Translation, translate
from tests.paths import EXAMPLES_DIR_23, REPO
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


def translate_recorded(
    raw: bytes, to: str, ledger: InMemoryLedger, folder: tuple[MappingTable, ContractTable]
) -> Translation:
    """Translate into generation ``to``; when nothing is held, record what the daemon records
    once the message goes on (new pairs and converted lines)."""
    table, contracts = folder
    result = translate(raw, table, to_generation=to, ledger=ledger, contracts=contracts)
    if not result.needs_decision:
        ledger.record_all(result.new_entries)
        ledger.record_claim_lines(result.new_claim_lines)
    return result


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


# -- iJw 2.3: the same March of care declared in a JW303 ----------------------------------------

DEMO_2_3 = REPO / "docs" / "examples"
"""The demo's 2.3 request and allocation (docs/examples/README.md, 10 and 11)."""
INVOICE = "HOR202603"
"""The provider's DeclarantFactuurNummer (what identifies a 2.3 JW303 and its JW304)."""
FIGURES_2_3 = "IngediendeBedragPrestatie"


def _remove(parent: etree._Element, path: str) -> None:
    found = find(parent, path)
    if found is not None:
        found.getparent().remove(found)  # type: ignore[union-attr]


def claim_2_3(btw_percentage: int | None = None) -> bytes:
    """The official 2.3 JW303 example cut to one line: the provider's 17 hours of March at
    75.00, VAT-exempt (``btw_percentage`` None) or with that VAT (hundredths of a percent, the
    BtwBedrag rounded half up), no Verrekenpercentage, and totals that add up (BVO002)."""
    tree = etree.parse(str(EXAMPLES_DIR_23 / "JW303.xml"))
    root = tree.getroot()
    set_text(root, "Header/Gemeente", DIEMEN)
    set_text(root, "Header/Aanbieder", PROVIDER)
    identification = find(root, "Header/DeclaratieFactuurIdentificatie")
    assert identification is not None
    set_text(identification, "DeclaratiePeriode/Begindatum", BEGIN.isoformat())
    set_text(identification, "DeclaratiePeriode/Einddatum", "2026-03-31")
    set_text(identification, "DeclarantFactuurNummer", INVOICE)
    set_text(identification, "FactuurDagtekening", "2026-04-06")
    keep_first(findall(root, "Clienten/Client"))
    line = keep_first(list(root.iter("{*}Prestatie")))
    set_text(line, "ToewijzingNummer", NUMMER)
    set_text(line, "ProductCategorie", "45")
    set_text(line, "ProductCode", "45A50")
    set_text(line, "ProductPeriode/Begindatum", BEGIN.isoformat())
    set_text(line, "ProductPeriode/Einddatum", "2026-03-31")
    figures = find(line, FIGURES_2_3)
    assert figures is not None
    _remove(figures, "Verrekenpercentage")
    berekend = HOURS * HOURLY
    btw = 0 if btw_percentage is None else (berekend * btw_percentage + 5_000) // 10_000
    for path, value in (
        ("GeleverdVolume", str(HOURS)),
        ("Eenheid", "04"),
        ("ProductTarief", str(HOURLY)),
        ("BerekendBedrag/Bedrag", str(berekend)),
        ("BtwVrijstellingIndicatie", "1" if btw_percentage is None else "2"),
        ("DeclaratieFactuurBedrag/Bedrag", str(berekend + btw)),
    ):
        set_text(figures, path, value)
    bedragen = find(root, "Header/DeclaratieFactuurBedragen")
    assert bedragen is not None
    set_text(bedragen, "DeclaratieFactuurTotaalBedrag/TotaalBedrag", str(berekend + btw))
    if btw_percentage is None:
        for path in ("BtwPercentage", "BtwBedrag"):
            _remove(figures, path)
        _remove(bedragen, "BtwTotaalBedrag")
    else:
        set_text(figures, "BtwPercentage", str(btw_percentage))
        set_text(figures, "BtwBedrag/Bedrag", str(btw))
        set_text(bedragen, "BtwTotaalBedrag/TotaalBedrag", str(btw))
    return to_bytes(tree)


def figures_2_3(xml: bytes) -> dict[str, str]:
    """The first line's code and figures, and the header's amounts (2.3 JW303 or JW304)."""
    root = etree.fromstring(xml)
    line = next(root.iter("{*}Prestatie"))
    found = {"ProductCode": find(line, "ProductCode").text or ""}  # type: ignore[union-attr]
    for element in (*line.iter(), *next(root.iter("{*}Header")).iter()):
        name = etree.QName(element).localname
        if len(element) == 0 and name in {"Bedrag", "TotaalBedrag"}:
            parent = element.getparent()
            found[etree.QName(parent).localname] = element.text or ""  # type: ignore[arg-type]
        elif name in {"GeleverdVolume", "Eenheid", "ProductTarief", "BtwPercentage"}:
            found[name] = element.text or ""
    return found


def _demo_2_3(name: str, afzender: str, ontvanger: str, dagtekening: str) -> etree._ElementTree:
    tree = etree.parse(str(DEMO_2_3 / name))
    root = tree.getroot()
    for path, value in (
        ("Header/Afzender", afzender),
        ("Header/Ontvanger", ontvanger),
        ("Header/BerichtIdentificatie/Dagtekening", dagtekening),
    ):
        set_text(root, path, value)
    return tree


def _omvang(element: etree._Element, values: tuple[str, str, str]) -> None:
    for name, value in zip(("Volume", "Eenheid", "Frequentie"), values, strict=True):
        set_text(element, f"Omvang/{name}", value)


def request_2_3() -> bytes:
    """The provider's 2.3 JW315 (the demo's, in these parties): 4 hours a week of 45A50."""
    tree = _demo_2_3("10-JW315-2.3.xml", PROVIDER, DIEMEN, "2026-02-12")
    asked = next(tree.getroot().iter("{*}AangevraagdProduct"))
    set_text(asked, "ReferentieAanbieder", REFERENTIE)
    set_text(asked, "Product/Code", "45A50")
    set_text(asked, "ToewijzingIngangsdatum", BEGIN.isoformat())
    set_text(asked, "ToewijzingEinddatum", "2026-08-31")
    _omvang(asked, ("4", "04", "2"))
    return to_bytes(tree)


def allocation_2_3() -> bytes:
    """Diemen's 2.3 JW301 honouring that request: one trajectory a month of 45Q02."""
    tree = _demo_2_3("11-JW301-2.3.xml", DIEMEN, PROVIDER, "2026-02-20")
    beschikking = next(tree.getroot().iter("{*}Beschikking"))
    for path, value in (
        ("Afgiftedatum", "2026-02-20"),
        ("Ingangsdatum", BEGIN.isoformat()),
        ("Einddatum", "2026-08-31"),
    ):
        set_text(beschikking, path, value)
    product = next(beschikking.iter("{*}ToegewezenProduct"))
    for path, value in (
        ("ToewijzingNummer", NUMMER),
        ("ReferentieAanbieder", REFERENTIE),
        ("Product/Code", "45Q02"),
        ("Toewijzingsdatum", "2026-02-20"),
        ("Ingangsdatum", BEGIN.isoformat()),
        ("Einddatum", "2026-08-31"),
    ):
        set_text(product, path, value)
    _omvang(product, ("1", "82", "4"))
    return to_bytes(tree)
