"""Retours of iJw 2.3: JW302/306/308/316 and the JW304 answer to a JW303, each valid against the
2.3 reference schema, with codes on their classes and (JW304) per-line amounts that add up."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from lxml import etree

from gateway.core.document import MessageDocument, findall, local_name, text
from gateway.core.report import Finding, Level
from gateway.core.retour import RetourIdentity, build_retour
from gateway.core.route import addressing
from gateway.core.validate import identify
from gateway.schemas import load_schema_set
from tests.paths import EXAMPLES_DIR_23, OFFICIAL_XSD_DIR_23, OUR_XSD_DIR_23

OURS = load_schema_set([OUR_XSD_DIR_23])
REFERENCE = load_schema_set([OFFICIAL_XSD_DIR_23])
IDENTITY = RetourIdentity("RET-23-0001", dt.date(2018, 8, 1))
PAIRS = {"JW301": "JW302", "JW305": "JW306", "JW307": "JW308", "JW315": "JW316"}
PRESTATIE = "/Bericht/Clienten/Client[{client}]/Prestaties/Prestatie[{line}]/ProductPeriode"


def load(message_type: str, raw: bytes | None = None) -> MessageDocument:
    data = raw if raw is not None else (EXAMPLES_DIR_23 / f"{message_type}.xml").read_bytes()
    identified = identify(etree.ElementTree(etree.fromstring(data)), OURS)
    assert isinstance(identified, MessageDocument)
    assert identified.release == "2.3"
    return identified


def valid_retour(original: MessageDocument, findings: list[Finding]) -> etree._Element:
    """Build the retour and insist the 2.3 reference schema of its type accepts it."""
    raw = build_retour(original, findings, IDENTITY, OURS)
    tree = etree.ElementTree(etree.fromstring(raw))
    retour_type = {**PAIRS, "JW303": "JW304"}[original.message_type]
    schema = REFERENCE.get("2.3", retour_type)
    assert schema is not None
    schema.xsd.assertValid(tree)
    assert etree.QName(tree.getroot()).namespace == schema.namespace
    return tree.getroot()


def state(code: str, path: str) -> Finding:
    return Finding(rule="TR" + code[1:], message="x", retourcode=code, path=path, level=Level.STATE)


def codes(el: etree._Element | None) -> list[str]:
    return [c.text or "" for c in findall(el, "RetourCodes/RetourCode")] if el is not None else []


def signed(el: etree._Element | None, amount: str = "Bedrag") -> int:
    value = int(text(el, amount) or "")
    return -value if text(el, "DebetCredit") == "C" else value


@pytest.mark.parametrize("original", sorted(PAIRS))
def test_accepted_2_3_message_gets_a_header_only_retour_without_xsd_versions(original: str) -> None:
    root = valid_retour(load(original), [])
    header = root[0]
    assert [local_name(c) for c in header][-2:] == ["IdentificatieRetour", "DagtekeningRetour"]
    assert text(header, "BerichtIdentificatie/Identificatie") == text(
        load(original).header, "BerichtIdentificatie/Identificatie"
    )
    assert len(root) == 1


@pytest.mark.parametrize("original", [*sorted(PAIRS), "JW303"])
def test_in_message_fault_gets_0001_with_the_xslt_version(original: str) -> None:
    fault = Finding(rule="CS002", message="x", retourcode="0001", path="/Bericht/Header")
    root = valid_retour(load(original), [fault])
    assert codes(root[0]) == ["0001"]
    assert text(root[0], "XsltVersie") == IDENTITY.xslt_versie
    assert len(root) == 1


def test_a_2_3_allocation_fault_lands_on_its_beschikking_product() -> None:
    product = "/Bericht/Client/Beschikking/ToegewezenProducten/ToegewezenProduct[2]/Product"
    root = valid_retour(load("JW301"), [state("9300", product)])
    assert codes(root[0]) == ["0200"]
    coded = {local_name(h.getparent()): [c.text for c in h] for h in root.iter("{*}RetourCodes")}
    assert coded["Beschikking"] == ["0200"] and coded["Client"] == ["0200"]
    products = findall(root, "Client/Beschikking/ToegewezenProducten/ToegewezenProduct")
    assert [codes(p) for p in products] == [["0200"], ["9300"]]


def test_a_2_3_start_fault_lands_on_its_start_product() -> None:
    path = "/Bericht/Client/StartProducten/StartProduct[1]/Begindatum"
    root = valid_retour(load("JW305"), [state("9326", path)])
    starts = findall(root, "Client/StartProducten/StartProduct")
    assert [codes(s) for s in starts] == [["9326"], ["0200"]]


def test_accepted_jw303_gets_every_line_granted_and_totals_that_add_up() -> None:
    original = load("JW303")
    root = valid_retour(original, [])
    header = root[0]
    assert text(header, "BerichtCode") == "433"
    assert codes(header) == ["0200"]
    lines = findall(root, "Clienten/Client/Prestaties/Prestatie")
    claimed = [
        signed(p.find("{*}IngediendeBedragPrestatie/{*}DeclaratieFactuurBedrag")) for p in lines
    ]
    granted = [signed(p.find("{*}ToegekendeBedragPrestatie/{*}ToegekendBedrag")) for p in lines]
    assert len(lines) == 4 and granted == claimed
    assert [codes(p) for p in lines] == [["8001"]] * 4
    totals = header.find("{*}RetourBedragen")
    ingediend = signed(totals.find("{*}IngediendTotaalBedrag"), "TotaalBedrag")
    toegekend = signed(totals.find("{*}ToegekendTotaalBedrag"), "TotaalBedrag")
    assert ingediend == toegekend == sum(claimed) == 3_590_000
    assert text(header, "RetourHeader/GemeenteReferentieNummer") == IDENTITY.identificatie


LINES = [(client, line) for client in (1, 2) for line in (1, 2)]


@pytest.mark.parametrize(
    "rejected",
    [combo for size in range(len(LINES) + 1) for combo in itertools.combinations(LINES, size)],
    ids=str,
)
def test_jw304_grants_what_is_not_rejected_and_its_totals_reconcile(
    rejected: tuple[tuple[int, int], ...],
) -> None:
    findings = [state("9307", PRESTATIE.format(client=c, line=n)) for c, n in rejected]
    root = valid_retour(load("JW303"), findings)
    lines = findall(root, "Clienten/Client/Prestaties/Prestatie")
    assert len(lines) == 4
    claimed, granted = 0, 0
    for (client, line), prestatie in zip(LINES, lines, strict=True):
        amount = signed(prestatie.find("{*}IngediendeBedragPrestatie/{*}DeclaratieFactuurBedrag"))
        given = signed(prestatie.find("{*}ToegekendeBedragPrestatie/{*}ToegekendBedrag"))
        is_rejected = (client, line) in rejected
        assert given == (0 if is_rejected else amount)
        assert codes(prestatie) == (["9307"] if is_rejected else ["8001"])
        claimed += amount if is_rejected else 0
        granted += given
    totals = root[0].find("{*}RetourBedragen")
    ingediend = signed(totals.find("{*}IngediendTotaalBedrag"), "TotaalBedrag")
    toegekend = signed(totals.find("{*}ToegekendTotaalBedrag"), "TotaalBedrag")
    assert toegekend == granted == ingediend - claimed


def test_a_faulty_jw303_client_rejects_its_lines_unassessed() -> None:
    findings = [state("9019", "/Bericht/Clienten/Client[2]/Bsn")]
    root = valid_retour(load("JW303"), findings)
    clients = findall(root, "Clienten/Client")
    assert [codes(c) for c in clients] == [["0200"], ["9019"]]
    second = findall(clients[1], "Prestaties/Prestatie")
    assert [codes(p) for p in second] == [["0233"], ["0233"]]


def test_a_jw303_header_fault_grants_nothing_and_returns_no_lines() -> None:
    root = valid_retour(load("JW303"), [state("9056", "/Bericht/Header/Aanbieder")])
    assert codes(root[0]) == ["9056"] and len(root) == 1
    totals = root[0].find("{*}RetourBedragen")
    assert signed(totals.find("{*}ToegekendTotaalBedrag"), "TotaalBedrag") == 0
    assert text(totals, "ToegekendTotaalBedrag/DebetCredit") == "D"


def test_a_factuur_450_is_answered_with_451_and_credit_lines_stay_credit() -> None:
    raw = (EXAMPLES_DIR_23 / "JW303.xml").read_bytes().replace(b">432<", b">450<")
    tree = etree.fromstring(raw)
    line = tree.find(".//{*}Prestatie/{*}IngediendeBedragPrestatie/{*}DeclaratieFactuurBedrag")
    assert line is not None
    line.find("{*}DebetCredit").text = "C"  # type: ignore[union-attr]
    total = tree.find(".//{*}DeclaratieFactuurTotaalBedrag/{*}TotaalBedrag")
    assert total is not None
    total.text = str(3_590_000 - 2 * 990_000)
    root = valid_retour(load("JW303", etree.tostring(tree)), [])
    assert text(root[0], "BerichtCode") == "451"
    first = findall(root, "Clienten/Client/Prestaties/Prestatie")[0]
    assert signed(first.find("{*}ToegekendeBedragPrestatie/{*}ToegekendBedrag")) == -990_000
    totals = root[0].find("{*}RetourBedragen")
    assert signed(totals.find("{*}ToegekendTotaalBedrag"), "TotaalBedrag") == 1_610_000


def test_jw303_and_jw304_name_their_parties_by_the_senders_role() -> None:
    """A 2.3 JW303/JW304 header names Gemeente and Aanbieder: the JW303 travels from the
    aanbieder to the gemeente, its JW304 back from the gemeente to the aanbieder."""
    declaration = load("JW303")
    assert (declaration.afzender, declaration.ontvanger) == ("42420001", "0384")
    answer = load("JW304", build_retour(declaration, [], IDENTITY, OURS))
    assert (answer.afzender, answer.ontvanger) == ("0384", "42420001")
    route = addressing(answer.message_type, answer.afzender, answer.ontvanger)
    assert (route.transmitter, route.destination) == ("0384", "42420001")
    start = load("JW305")
    assert (start.afzender, start.ontvanger) == ("65656055", "0363")
