"""Small mapping folders and messages for the translation tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from lxml import etree

from gateway.core.document import find, findall
from tests.paths import EXAMPLES_DIR

GENERATIONS = """\
[generations.old]
lists = ["OLD"]
[generations.new]
lists = ["NEW"]
[regions]
DEMO = ["0384", "0363", "0193"]
"""

OLD_CODES = """\
# kind: product-codes
# list: OLD
categorie,code,eenheid,valid_from,valid_to,omschrijving
55,55A11,04,,,example code 1
55,55A12,16,,,example code 2
45,45A03,04,,,example code 3
45,45A04,04,,,example code 4
31,31ABC,16,,,example code 5
32,32XYZ,16,,,example code 6
45,45A48,04,,,one-to-many source
45,45A49,04,,,unit change with factor
45,45A50,04,,,unit change without factor
"""

NEW_CODES = """\
# kind: product-codes
# list: NEW
categorie,code,eenheid,valid_from,valid_to,omschrijving
55,55N11,04,,,new 1
55,55N12,16,,,new 2
45,45N03,04,,,new 3
45,45N04,04,,,new 4
45,45N31,16,,,new 5
45,45N32,16,,,new 6
45,45P01,04,,,profile a
45,45P02,04,,,profile b
45,45Q01,01,,,minutes
45,45Q02,82,,,pieces
"""

HEADER = (
    "scope,source_kind,source_categorie,source_code,dbc_opened_from,dbc_opened_to,"
    "target_categorie,target_code,valid_from,valid_to,unit_from,unit_to,volume_factor,"
    "needs_decision,note\n"
)

ROWS = """\
DEMO,product,55,55A11,,,55,55N11,2020-01-01,,,,,no,one to one
DEMO,product,55,55A12,,,55,55N12,2020-01-01,,,,,no,one to one
DEMO,product,45,45A03,,,45,45N03,2020-01-01,,,,,no,one to one
DEMO,product,45,45A04,,,45,45N04,2020-01-01,,,,,no,one to one
DEMO,product,31,31ABC,,,45,45N31,2020-01-01,,,,,no,category changes too
DEMO,product,32,32XYZ,,,45,45N32,2020-01-01,,,,,no,category changes too
DEMO,product,45,45A48,,,45,45P01,2020-01-01,,,,,yes,one-to-many a
DEMO,product,45,45A48,,,45,45P02,2020-01-01,,,,,yes,one-to-many b
DEMO,product,45,45A49,,,45,45Q01,2020-01-01,,04,01,60,no,hours to minutes
DEMO,product,45,45A50,,,45,45Q02,2020-01-01,,04,82,,no,hours to pieces: no factor
DEMO,declaratiecode,54,999903,2019-01-01,2019-12-31,45,45N03,2020-01-01,,,,,no,DBC run-off
"""

CUTOVER = dt.date(2020, 1, 1)


def write_folder(
    root: Path, rows: str = ROWS, *, generations: str = GENERATIONS, old_codes: str = OLD_CODES
) -> Path:
    """A complete mapping folder under ``root`` with an old -> new set (cut-over 2020-01-01)."""
    (root / "codes").mkdir(parents=True, exist_ok=True)
    (root / "tables").mkdir(exist_ok=True)
    (root / "generations.toml").write_text(generations, encoding="utf-8")
    (root / "codes" / "old.csv").write_text(old_codes, encoding="utf-8")
    (root / "codes" / "new.csv").write_text(NEW_CODES, encoding="utf-8")
    (root / "tables" / "old_to_new.csv").write_text(
        "# kind: mapping\n# from: old\n# to: new\n# cutover: 2020-01-01\n" + HEADER + rows,
        encoding="utf-8",
    )
    return root


def example(name: str) -> etree._ElementTree:
    """A fresh parse of an official example message."""
    return etree.parse(str(EXAMPLES_DIR / f"{name}.xml"))


def to_bytes(tree: etree._ElementTree) -> bytes:
    return etree.tostring(tree, xml_declaration=True, encoding="UTF-8")


def keep_first(elements: list[etree._Element]) -> etree._Element:
    """Remove all but the first of ``elements`` from the tree; returns the first."""
    for extra in elements[1:]:
        extra.getparent().remove(extra)  # type: ignore[union-attr]
    return elements[0]


def set_text(el: etree._Element, path: str, value: str) -> None:
    target = find(el, path)
    assert target is not None, path
    target.text = value


def products(xml: bytes) -> list[tuple[str, str]]:
    """(categorie, code) of every product in a message, in document order."""
    root = etree.fromstring(xml)
    found: list[tuple[str, str]] = []
    for el in root.iter():
        name = etree.QName(el).localname
        if name == "Product":
            cat, code = find(el, "Categorie"), find(el, "Code")
            if cat is not None and code is not None:
                found.append((cat.text or "", code.text or ""))
        elif name == "Prestatie":
            cat, code = find(el, "ProductCategorie"), find(el, "ProductCode")
            if cat is not None and code is not None:
                found.append((cat.text or "", code.text or ""))
    return found


def jw301(
    gemeente: str,
    nummer: str,
    categorie: str,
    code: str,
    ingang: dt.date,
    *,
    eenheid: str = "04",
    volume: str = "2",
    reden: str | None = None,
) -> bytes:
    """The official JW301 example reduced to one allocation with these values."""
    tree = example("JW301")
    root = tree.getroot()
    set_text(root, "Header/Afzender", gemeente)
    first = keep_first(findall(root, "Client/ToegewezenProducten/ToegewezenProduct"))
    set_text(first, "ToewijzingNummer", nummer)
    set_text(first, "Product/Categorie", categorie)
    set_text(first, "Product/Code", code)
    for path in ("Toewijzingsdatum", "Ingangsdatum"):
        set_text(first, path, ingang.isoformat())
    set_text(first, "Einddatum", (ingang + dt.timedelta(days=90)).isoformat())
    set_text(first, "Omvang/Eenheid", eenheid)
    set_text(first, "Omvang/Volume", volume)
    if reden is not None:
        namespace = etree.QName(first).namespace
        reden_el = etree.Element(f"{{{namespace}}}RedenWijziging")
        reden_el.text = reden
        find(first, "Einddatum").addnext(reden_el)  # type: ignore[union-attr]
    return to_bytes(tree)


def follow_up(  # noqa: PLR0917 - mirrors the message's own fields, in order
    name: str, gemeente: str, nummer: str, categorie: str, code: str, ingang: dt.date
) -> bytes:
    """A JW305/JW307/JW302-style message about one allocation, from the official example."""
    tree = example(name)
    root = tree.getroot()
    for party in ("Afzender", "Ontvanger"):
        value = find(root, f"Header/{party}")
        if value is not None and value.text and len(value.text) == 4:
            value.text = gemeente
    holder = {"JW305": "StartProduct", "JW307": "StopProduct"}[name]
    first = keep_first(list(root.iter("{*}" + holder)))
    set_text(first, "ToewijzingNummer", nummer)
    set_text(first, "Product/Categorie", categorie)
    set_text(first, "Product/Code", code)
    set_text(first, "ToewijzingIngangsdatum", ingang.isoformat())
    set_text(first, "Begindatum", ingang.isoformat())
    dagtekening = find(root, "Header/BerichtIdentificatie/Dagtekening")
    if dagtekening is not None and (dagtekening.text or "") < ingang.isoformat():
        dagtekening.text = ingang.isoformat()  # a start is reported once it began (TR134)
    return to_bytes(tree)


def jw323(gemeente: str, nummer: str, categorie: str, code: str, *, eenheid: str = "04") -> bytes:
    """The official JW323 example with every line about one allocation."""
    tree = example("JW323")
    root = tree.getroot()
    set_text(root, "Header/Ontvanger", gemeente)
    for line in root.iter("{*}Prestatie"):
        set_text(line, "ToewijzingNummer", nummer)
        set_text(line, "ProductCategorie", categorie)
        set_text(line, "ProductCode", code)
        set_text(line, "Eenheid", eenheid)
    return to_bytes(tree)


def one_line(raw: bytes, nummer: str, categorie: str, code: str) -> bytes:
    """A JW323/JW325 example cut to its first client's first line: a debit about one
    allocation in March 2026 (inside the allocation), with totals to match."""
    tree = etree.fromstring(raw).getroottree()
    root = tree.getroot()
    client = keep_first([el for el in root.iter("{*}Client") if find(el, "Prestaties") is not None])
    line = keep_first(list(client.iter("{*}Prestatie")))
    set_text(line, "ToewijzingNummer", nummer)
    set_text(line, "ProductCategorie", categorie)
    set_text(line, "ProductCode", code)
    for previous in list(root.iter("{*}VorigReferentieNummer")):
        previous.getparent().remove(previous)  # type: ignore[union-attr]
    for sign in root.iter("{*}DebetCredit"):
        sign.text = "D"
    amounts = {etree.QName(b).localname: b.text for b in line.iter("{*}Bedrag")}
    for total in root.iter("{*}TotaalIngediendBedrag"):
        set_text(total, "TotaalBedrag", amounts.get("Bedrag") or "0")
    for total in root.iter("{*}TotaalToegekendBedrag"):  # JW325: the one line is refused
        set_text(total, "TotaalBedrag", "0")
    for period in root.iter("{*}DeclaratiePeriode", "{*}ProductPeriode"):
        set_text(period, "Begindatum", "2026-03-01")
        set_text(period, "Einddatum", "2026-03-31")
    for day in root.iter("{*}Dagtekening", "{*}DeclaratieDagtekening"):
        day.text = "2026-04-05"
    return to_bytes(tree)
