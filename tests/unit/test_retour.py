"""The retour builder: every retour validates against the official XSD and carries its codes."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway.core.document import MessageDocument, element_path, find, findall, local_name, text
from gateway.core.report import Finding, Level, ValidationReport
from gateway.core.retour import (
    RETOUR_CLASSES,
    RETOUR_CLASSES_BY_RELEASE,
    RetourError,
    RetourIdentity,
    XsdVersion,
    build_retour,
    build_retour_for_report,
    retour_type_for,
)
from gateway.core.rules import REGISTRY, RuleContext
from gateway.core.schemaset import SchemaSet
from gateway.core.validate import identify, validate
from gateway.schemas import load_schema_set
from tests.paths import EXAMPLES_DIR, OFFICIAL_XSD_DIR, OFFICIAL_XSD_DIR_23

SCHEMAS = load_schema_set([OFFICIAL_XSD_DIR])
RELEASE = "3.2"
IDENTITY = RetourIdentity("RET-0001", dt.date(2024, 5, 2))
PAIRS = {
    "JW301": "JW302",
    "JW305": "JW306",
    "JW307": "JW308",
    "JW315": "JW316",
    "JW317": "JW318",
    "JW319": "JW320",
    "JW323": "JW325",
}
SIMPLE = [t for t in PAIRS if t != "JW323"]
COPIED_HEADER = (
    "BerichtCode",
    "BerichtVersie",
    "BerichtSubversie",
    "Afzender",
    "Ontvanger",
    "BerichtIdentificatie",
    "XsdVersie",
)
XS = "{http://www.w3.org/2001/XMLSchema}"


# -- helpers ----------------------------------------------------------------------------------


def load(message_type: str) -> MessageDocument:
    """Parse an official example into a MessageDocument (it is XSD-valid as shipped)."""
    return document((EXAMPLES_DIR / f"{message_type}.xml").read_bytes())


def document(raw: bytes) -> MessageDocument:
    tree = etree.ElementTree(etree.fromstring(raw))
    identified = identify(tree, SCHEMAS)
    assert isinstance(identified, MessageDocument)
    identified.schema.xsd.assertValid(tree)
    return identified


def state(code: str, path: str | None, level: Level = Level.STATE) -> Finding:
    return Finding(
        rule="TR" + code[1:], message="fabricated", retourcode=code, path=path, level=level
    )


def in_message(path: str = "/Bericht/Header/BerichtIdentificatie/Identificatie") -> Finding:
    return Finding(rule="CS002", message="fabricated", retourcode="0001", path=path)


def build(original: MessageDocument, findings: Sequence[Finding]) -> etree._Element:
    """Build the retour, check it against the OFFICIAL retour XSD and return its root."""
    raw = build_retour(original, findings, IDENTITY, SCHEMAS)
    assert_encoding(raw)
    root = etree.fromstring(raw)
    retour_type = PAIRS[original.message_type]
    schema = SCHEMAS.get(RELEASE, retour_type)
    assert schema is not None
    assert etree.QName(root).namespace == schema.namespace
    schema.xsd.assertValid(etree.ElementTree(root))
    if retour_type == "JW325":
        assert_declaratie_header(original, root)
    else:
        assert_header_copied(original, root)
    return root


def assert_encoding(raw: bytes) -> None:
    assert raw.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\r\n')
    assert not raw.startswith(b"\xef\xbb\xbf")
    raw.decode("utf-8")
    assert raw.count(b"\n") == raw.count(b"\r\n") > 1
    assert raw.count(b"\r") == raw.count(b"\r\n")


def shape(el: etree._Element) -> list[tuple[str, str | None]]:
    """An element's subtree as (local name, text) pairs, ignoring namespaces and layout."""
    return [
        (local_name(node), (node.text or "").strip() or None)
        for node in el.iter()
        if isinstance(node.tag, str)
    ]


def assert_header_copied(original: MessageDocument, root: etree._Element) -> None:
    """IV028: the first seven header elements are the original's, only BerichtCode differs."""
    header = find(root, "Header")
    assert header is not None
    children = [c for c in header if isinstance(c.tag, str)]
    assert [local_name(c) for c in children[:7]] == list(COPIED_HEADER)
    retour_type = PAIRS[original.message_type]
    expected_code = SCHEMAS.get(RELEASE, retour_type).berichtcode  # type: ignore[union-attr]
    assert text(children[0]) == expected_code != original.header_text("BerichtCode")
    for child in children[1:7]:
        source = find(original.header, local_name(child))
        assert source is not None
        assert shape(child) == shape(source)
    assert text(header, "IdentificatieRetour") == IDENTITY.identificatie
    assert text(header, "DagtekeningRetour") == IDENTITY.dagtekening.isoformat()
    assert text(header, "XsdVersieRetour/BasisschemaXsdVersie") == "1.0.0"
    assert text(header, "XsdVersieRetour/BerichtXsdVersie") == "1.0.0"


def assert_declaratie_header(original: MessageDocument, root: etree._Element) -> None:
    """§2.3: own identity, parties swapped, the 323's identification and XSD versions quoted."""
    header = find(root, "Header")
    assert header is not None
    assert text(header, "BerichtCode") == "491"
    assert text(header, "BerichtVersie") == original.header_text("BerichtVersie")
    assert text(header, "BerichtSubversie") == original.header_text("BerichtSubversie")
    assert text(header, "Afzender") == original.header_text("Ontvanger")
    assert text(header, "Ontvanger") == original.header_text("Afzender")
    assert text(header, "BerichtIdentificatie/Identificatie") == IDENTITY.identificatie
    assert text(header, "BerichtIdentificatie/Dagtekening") == IDENTITY.dagtekening.isoformat()
    quoted = find(header, "DeclaratieIdentificatie")
    source = find(original.header, "BerichtIdentificatie")
    assert quoted is not None and source is not None
    assert shape(quoted)[1:] == shape(source)[1:]
    quoted = find(header, "XsdVersieDeclaratie")
    source = find(original.header, "XsdVersie")
    assert quoted is not None and source is not None
    assert shape(quoted)[1:] == shape(source)[1:]


def coded_classes(root: etree._Element) -> dict[str, tuple[str, ...]]:
    """Every element that carries RetourCodes in the retour, by path, with its codes."""
    return {
        element_path(holder.getparent()): tuple(text(c) or "" for c in holder)
        for holder in root.iter("{*}RetourCodes")
    }


def header_codes(root: etree._Element) -> tuple[str, ...] | None:
    return coded_classes(root).get("/Bericht/Header")


def signed(el: etree._Element | None, amount: str) -> int:
    value = int(text(el, amount) or "")
    return -value if text(el, "DebetCredit") == "C" else value


def class_paths(original: MessageDocument) -> list[str]:
    """Paths of the classes in the original, written as they appear in the retour."""
    names = RETOUR_CLASSES[PAIRS[original.message_type]] - {"Header"}
    return [
        element_path(el)
        for el in original.root.iter()
        if isinstance(el.tag, str) and local_name(el) in names
    ]


# -- the class table and the message pairs ----------------------------------------------------


CLASS_TABLES = [
    (release, folder, retour_type)
    for release, folder in (("3.2", OFFICIAL_XSD_DIR), ("2.3", OFFICIAL_XSD_DIR_23))
    for retour_type in sorted(RETOUR_CLASSES_BY_RELEASE[release])
]


@pytest.mark.parametrize(
    ("release", "folder", "retour_type"), CLASS_TABLES, ids=[f"{r}-{t}" for r, _, t in CLASS_TABLES]
)
def test_class_table_matches_official_xsd(release: str, folder: Path, retour_type: str) -> None:
    """Every element typed with RetourCodes in the official retour XSD is in the class table
    (for 2.3: the reference XSD)."""
    xsd = etree.parse(str(folder / f"{retour_type}.xsd"))
    coded_types = {
        ct.get("name")
        for ct in xsd.iter(XS + "complexType")
        if any(e.get("name") == "RetourCodes" for e in ct.iter(XS + "element"))
    }
    classes = {
        e.get("name")
        for e in xsd.iter(XS + "element")
        if (e.get("type") or "").partition(":")[2] in coded_types
    }
    assert classes == set(RETOUR_CLASSES_BY_RELEASE[release][retour_type])


@pytest.mark.parametrize(("original", "retour"), PAIRS.items())
def test_retour_type_for_originals(original: str, retour: str) -> None:
    """Each original maps to the retour that answers it."""
    assert retour_type_for(original) == retour


@pytest.mark.parametrize("message_type", [*PAIRS.values(), "JW399", "XYZ"])
def test_retour_type_for_retours_and_unknown_types_raises(message_type: str) -> None:
    """Retours are not answered, and unknown types have no retour."""
    with pytest.raises(RetourError):
        retour_type_for(message_type)


# -- accepted messages --------------------------------------------------------------------------


@pytest.mark.parametrize("message_type", SIMPLE)
def test_accepted_message_gets_header_without_codes(message_type: str) -> None:
    """No findings: the retour is only the header, with no RetourCodes and no XsltVersie."""
    root = build(load(message_type), [])
    assert [local_name(c) for c in root] == ["Header"]
    assert coded_classes(root) == {}
    assert find(root, "Header/XsltVersie") is None


def test_accepted_declaration_is_granted_in_full() -> None:
    """No findings on a 323: header 0200, DeclaratieAntwoord 8001, granted = claimed, no clients."""
    original = load("JW323")
    root = build(original, [])
    assert header_codes(root) == ("0200",)
    assert find(root, "Header/XsltVersie") is None
    antwoord = find(root, "DeclaratieAntwoord")
    assert antwoord is not None
    assert coded_classes(root)["/Bericht/DeclaratieAntwoord"] == ("8001",)
    claimed = find(original.root, "Declaratie/TotaalIngediendBedrag")
    assert shape(find(antwoord, "TotaalIngediendBedrag"))[1:] == shape(claimed)[1:]  # type: ignore[arg-type]
    assert shape(find(antwoord, "TotaalToegekendBedrag"))[1:] == shape(claimed)[1:]  # type: ignore[arg-type]
    assert text(antwoord, "DeclaratieNummer") == text(original.root, "Declaratie/DeclaratieNummer")
    assert find(antwoord, "Clienten") is None


# -- in-message (XSLT-level) faults -----------------------------------------------------------


@pytest.mark.parametrize("message_type", list(PAIRS))
def test_in_message_fault_gives_header_only_0001(message_type: str) -> None:
    """Any in-message finding, even next to class-level ones: header only, 0001, XsltVersie."""
    original = load(message_type)
    first_class = class_paths(original)[0]
    findings = [state("9056", first_class), in_message(), in_message(first_class)]
    root = build(original, findings)
    assert [local_name(c) for c in root] == ["Header"]
    assert coded_classes(root) == {"/Bericht/Header": ("0001",)}
    assert text(root, "Header/XsltVersie") == "2.10.5"


def test_xslt_version_is_taken_from_the_identity() -> None:
    """The XsltVersie written is the one the caller ran, not a constant."""
    identity = RetourIdentity("R2", dt.date(2024, 1, 1), XsdVersion("1.0.1", "1.2.0"), "2.11.0")
    raw = build_retour(load("JW305"), [in_message()], identity, SCHEMAS)
    root = etree.fromstring(raw)
    assert text(root, "Header/XsltVersie") == "2.11.0"
    assert text(root, "Header/XsdVersieRetour/BasisschemaXsdVersie") == "1.0.1"
    assert text(root, "Header/XsdVersieRetour/BerichtXsdVersie") == "1.2.0"


# -- class-level faults (cross-message and external rules) -------------------------------------

CLIENT = "/Bericht/Client"
START = CLIENT + "/StartProducten/StartProduct"
STOP = CLIENT + "/StopProducten/StopProduct"
VOT = CLIENT + "/AangevraagdeProducten/AangevraagdProduct"
VERZOEK = CLIENT + "/Verzoek"
TOEGEWEZEN = CLIENT + "/ToegewezenProducten/ToegewezenProduct"
ANTWOORD = "/Bericht/Antwoord"

CLASS_CASES: list[tuple[str, list[Finding], dict[str, tuple[str, ...]]]] = [
    (
        "JW301",
        [state("9332", TOEGEWEZEN + "[2]/ToewijzingNummer")],
        {TOEGEWEZEN + "[2]": ("9332",)},
    ),
    (
        "JW301",
        [
            state("9379", TOEGEWEZEN + "[1]/ReferentieAanbieder"),
            state("9332", TOEGEWEZEN + "[1]/ToewijzingNummer"),
            state("9332", TOEGEWEZEN + "[2]"),
        ],
        {TOEGEWEZEN + "[1]": ("9379", "9332"), TOEGEWEZEN + "[2]": ("9332",)},
    ),
    (
        "JW301",
        [state("S300", CLIENT + "/Relaties/Relatie[2]/Contact/Adres/Postcode", Level.EXTERNAL)],
        {CLIENT + "/Relaties/Relatie[2]/Contact": ("S300",)},
    ),
    ("JW305", [state("9019", START + "[1]/ToewijzingNummer")], {START + "[1]": ("9019",)}),
    (
        "JW305",
        [state("9326", START + "[2]"), state("9074", START + "[2]/Begindatum")],
        {START + "[2]": ("9326", "9074")},
    ),
    ("JW307", [state("9069", STOP + "[2]/Begindatum")], {STOP + "[2]": ("9069",)}),
    (
        "JW307",
        [state("9413", STOP + "[1]/RedenBeeindiging"), state("9414", STOP + "[2]/Einddatum")],
        {STOP + "[1]": ("9413",), STOP + "[2]": ("9414",)},
    ),
    ("JW315", [state("9347", VOT + "[1]/ReferentieAanbieder")], {VOT + "[1]": ("9347",)}),
    (
        "JW315",
        [state("S329", VOT + "[2]/Product/Code", Level.EXTERNAL), state("9374", CLIENT + "/Bsn")],
        {CLIENT: ("9374",), VOT + "[2]": ("S329",)},
    ),
    (
        "JW317",
        [
            state("9349", VERZOEK),
            state("9350", VERZOEK + "/OngewijzigdeProducten/OngewijzigdProduct"),
        ],
        {VERZOEK: ("9349",), VERZOEK + "/OngewijzigdeProducten/OngewijzigdProduct": ("9350",)},
    ),
    (
        "JW317",
        [state("9357", VERZOEK + "/NieuweProducten/NieuwProduct/GewensteIngangsdatum")],
        {VERZOEK + "/NieuweProducten/NieuwProduct": ("9357",)},
    ),
    ("JW319", [state("9355", ANTWOORD + "/ReferentieAanbieder")], {ANTWOORD: ("9355",)}),
    (
        "JW319",
        [state("S300", ANTWOORD + "/Woonplaatsbeginsel/Gemeente", Level.EXTERNAL)],
        {ANTWOORD + "/Woonplaatsbeginsel": ("S300",)},
    ),
]


@pytest.mark.parametrize(
    ("message_type", "findings", "expected"),
    CLASS_CASES,
    ids=[f"{t}-{'+'.join(f.retourcode or '' for f in fs)}" for t, fs, _ in CLASS_CASES],
)
def test_class_level_fault_codes_land_on_their_class(
    message_type: str, findings: list[Finding], expected: dict[str, tuple[str, ...]]
) -> None:
    """The whole client (or answer) comes back; faulty classes carry their codes, others 0200."""
    original = load(message_type)
    root = build(original, findings)
    every_class = {"/Bericht/Header": ("0200",)} | dict.fromkeys(class_paths(original), ("0200",))
    assert set(expected) <= set(every_class)
    assert coded_classes(root) == every_class | expected
    assert find(root, "Header/XsltVersie") is None
    # The body is the original's, element for element, apart from the added codes.
    body = next(c for c in original.root if local_name(c) != "Header")
    returned = root[1]
    for holder in list(returned.iter("{*}RetourCodes")):
        holder.getparent().remove(holder)
    assert shape(returned) == shape(body)


@pytest.mark.parametrize(
    ("message_type", "path"),
    [
        ("JW301", "/Bericht/Header/Afzender"),
        ("JW305", "/Bericht/Header/BerichtIdentificatie/Identificatie"),
        ("JW307", "/Bericht/Header/BerichtIdentificatie/Dagtekening"),
        ("JW315", "/Bericht/Header/Ontvanger"),
        ("JW317", "/Bericht/Header"),
        ("JW319", "/Bericht/Header/Afzender"),
        ("JW323", "/Bericht/Header/BerichtIdentificatie/Dagtekening"),
    ],
)
def test_header_fault_gives_header_only_with_the_code(message_type: str, path: str) -> None:
    """A header fault rejects the message: only the header, with the rule's code."""
    original = load(message_type)
    body_class = class_paths(original)[-1]
    findings = [state("8848", path, Level.EXTERNAL), state("9056", path), state("9019", body_class)]
    root = build(original, findings)
    assert [local_name(c) for c in root] == ["Header"]
    assert coded_classes(root) == {"/Bericht/Header": ("8848", "9056")}


@pytest.mark.parametrize(
    ("path", "expected_class"),
    [
        (None, "/Bericht/Header"),
        ("", "/Bericht/Header"),
        ("/Bericht", "/Bericht/Header"),
        ("/Other/Client", "/Bericht/Header"),
        (START + "[7]/Begindatum", CLIENT),
        (START + "[2]/Nonexistent/Deeper", START + "[2]"),
        ("/Bericht/jw305:Client/{urn:x}StartProducten/StartProduct[2]/text()", START + "[2]"),
        (START + "[x]", CLIENT),
    ],
)
def test_odd_paths_fall_back_to_the_nearest_class(path: str | None, expected_class: str) -> None:
    """Paths that miss the tree never raise: the deepest element reached decides the class."""
    root = build(load("JW305"), [state("9063", path)])
    codes = coded_classes(root)
    assert codes[expected_class] == ("9063",)
    assert sum(c == ("9063",) for c in codes.values()) == 1


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), message_type=st.sampled_from(SIMPLE))
def test_any_combination_of_class_faults_validates(data: st.DataObject, message_type: str) -> None:
    """Random faulty classes with random codes: valid retour, exact codes, 0200 elsewhere."""
    original = load(message_type)
    paths = class_paths(original)
    codes = st.lists(
        st.sampled_from(["9019", "9056", "9332", "9349", "9350", "9374", "S300", "S329", "8848"]),
        min_size=1,
        max_size=3,
        unique=True,
    )
    faults = data.draw(st.dictionaries(st.sampled_from(paths), codes, min_size=1))
    findings = [state(code, path, Level.EXTERNAL) for path, cs in faults.items() for code in cs]
    root = build(original, findings)
    expected = {"/Bericht/Header": ("0200",)} | dict.fromkeys(paths, ("0200",))
    expected |= {p: tuple(cs) for p, cs in faults.items()}
    assert coded_classes(root) == expected


# -- JW325: per-prestatie answers ---------------------------------------------------------------

DECLARATIE = "/Bericht/Declaratie"
CLIENTS = DECLARATIE + "/Clienten/Client"


def prestatie_path(client: int, prestatie: int) -> str:
    return f"{CLIENTS}[{client}]/Prestaties/Prestatie[{prestatie}]"


def referenties(root: etree._Element) -> dict[str, tuple[str, ...]]:
    """The returned prestaties by ReferentieNummer, with their codes."""
    return {
        text(p, "ProductReferentie/ReferentieNummer") or "": tuple(
            text(c) or "" for c in findall(p, "RetourCodes/RetourCode")
        )
        for p in root.iter("{*}Prestatie")
    }


def assert_tr342(root: etree._Element) -> None:
    """TR342: a rejected DeclaratieAntwoord grants 0; otherwise the returned (rejected) lines
    account exactly for the difference: Σ (D − C) = TotaalIngediendBedrag − TotaalToegekendBedrag.
    """
    antwoord = find(root, "DeclaratieAntwoord")
    assert antwoord is not None
    claimed = signed(find(antwoord, "TotaalIngediendBedrag"), "TotaalBedrag")
    granted = signed(find(antwoord, "TotaalToegekendBedrag"), "TotaalBedrag")
    returned = sum(signed(find(p, "IngediendBedrag"), "Bedrag") for p in root.iter("{*}Prestatie"))
    own = {text(c) for c in findall(antwoord, "RetourCodes/RetourCode")}
    if own - {"0200", "8001"}:
        assert granted == 0
        assert returned == 0
    else:
        assert returned == claimed - granted
    if granted == 0:
        # CS325: a zero amount is written as debit.
        assert text(antwoord, "TotaalToegekendBedrag/DebetCredit") == "D"
    run_registered_tr342(root)


def run_registered_tr342(root: etree._Element) -> None:
    """Our 325s also pass the TR342 rule of the declaration rule set."""
    retour = document(etree.tostring(root))
    assert list(REGISTRY["TR342"].run(retour, RuleContext())) == []


def test_declaratie_fault_grants_nothing_and_returns_no_lines() -> None:
    """9333 on the Declaratie: header 0200, DeclaratieAntwoord 9333, granted 0 D, no prestaties."""
    findings = [
        state("9333", DECLARATIE + "/DeclaratieNummer"),
        state("9321", prestatie_path(1, 2)),
        state("8214", DECLARATIE + "/DeclaratiePeriode/Begindatum"),
    ]
    root = build(load("JW323"), findings)
    assert coded_classes(root) == {
        "/Bericht/Header": ("0200",),
        "/Bericht/DeclaratieAntwoord": ("9333", "8214"),
    }
    assert text(root, "DeclaratieAntwoord/TotaalToegekendBedrag/TotaalBedrag") == "0"
    assert find(root, "DeclaratieAntwoord/Clienten") is None
    assert_tr342(root)


def test_rejected_prestatie_comes_back_alone_under_its_client() -> None:
    """9321 on one line: only that line returns, client 0200, granted = claimed − that line."""
    original = load("JW323")
    root = build(original, [state("9321", prestatie_path(1, 2) + "/GeleverdVolume")])
    assert coded_classes(root) == {
        "/Bericht/Header": ("0200",),
        "/Bericht/DeclaratieAntwoord": ("0200",),
        "/Bericht/DeclaratieAntwoord/Clienten/Client": ("0200",),
        "/Bericht/DeclaratieAntwoord/Clienten/Client/Prestaties/Prestatie": ("9321",),
    }
    assert referenties(root) == {"RN002": ("9321",)}
    assert text(root, "DeclaratieAntwoord/Clienten/Client/Bsn") == "999900006"
    # The 323 claims 58000 C; the rejected line is 24000 C, so 34000 C is granted.
    assert text(root, "DeclaratieAntwoord/TotaalToegekendBedrag/TotaalBedrag") == "34000"
    assert text(root, "DeclaratieAntwoord/TotaalToegekendBedrag/DebetCredit") == "C"
    assert_tr342(root)
    returned = find(root, "DeclaratieAntwoord/Clienten/Client/Prestaties/Prestatie")
    assert returned is not None
    returned.remove(find(returned, "RetourCodes"))
    assert shape(returned) == shape(original.root.xpath("//*[local-name()='Prestatie']")[1])


def test_faulty_client_returns_all_its_lines_not_assessed() -> None:
    """8187 on a client: client carries it, its lines 0233 (own codes kept); others left out."""
    findings = [
        state("8187", CLIENTS + "[2]/Bsn"),
        state("0611", prestatie_path(2, 1) + "/ProductTarief", Level.EXTERNAL),
    ]
    root = build(load("JW323"), findings)
    assert coded_classes(root) == {
        "/Bericht/Header": ("0200",),
        "/Bericht/DeclaratieAntwoord": ("0200",),
        "/Bericht/DeclaratieAntwoord/Clienten/Client": ("8187",),
        "/Bericht/DeclaratieAntwoord/Clienten/Client/Prestaties/Prestatie[1]": ("0611",),
        "/Bericht/DeclaratieAntwoord/Clienten/Client/Prestaties/Prestatie[2]": ("0233",),
    }
    assert text(root, "DeclaratieAntwoord/Clienten/Client/Bsn") == "999900018"
    assert_tr342(root)


def test_duplicate_findings_give_one_code_each() -> None:
    """The same rule twice on one class writes its code once; codes keep finding order."""
    path = prestatie_path(1, 1)
    findings = [state("9340", path), state("9339", path + "/ProductCode"), state("9340", path)]
    root = build(load("JW323"), findings)
    assert referenties(root) == {"RN001": ("9340", "9339")}
    assert_tr342(root)


AMOUNT = st.tuples(st.integers(0, 99_999_999), st.sampled_from("DC"))
CODES = st.sampled_from(["9307", "9308", "9321", "9338", "9339", "9340", "0611", "8017"])
CLIENT_CODES = st.sampled_from(["8187", "9366"])


@st.composite
def declarations(draw: st.DrawFn) -> list[tuple[str | None, list[tuple[int, str, str | None]]]]:
    """Clients, each maybe faulty, with lines of (amount, D/C, code or None)."""
    return draw(
        st.lists(
            st.tuples(
                st.one_of(st.none(), CLIENT_CODES),
                st.lists(
                    st.tuples(AMOUNT, st.one_of(st.none(), CODES)).map(
                        lambda t: (t[0][0], t[0][1], t[1])
                    ),
                    min_size=1,
                    max_size=4,
                ),
            ),
            min_size=1,
            max_size=3,
        )
    )


def declaration_from_example(
    plan: list[tuple[str | None, list[tuple[int, str, str | None]]]],
) -> MessageDocument:
    """The JW323 example rebuilt with the plan's clients and amounts (header total kept right)."""
    tree = etree.fromstring((EXAMPLES_DIR / "JW323.xml").read_bytes())
    clienten = tree.xpath("//*[local-name()='Clienten']")[0]
    client_template = copy.deepcopy(clienten[0])
    prestaties = find(client_template, "Prestaties")
    line_template = copy.deepcopy(prestaties[0])
    for child in list(prestaties):
        prestaties.remove(child)
    for child in list(clienten):
        clienten.remove(child)
    total = 0
    for c, (_client_code, lines) in enumerate(plan, start=1):
        client = copy.deepcopy(client_template)
        find(client, "Bsn").text = f"99990{c:04d}"
        for p, (amount, debit_credit, _code) in enumerate(lines, start=1):
            line = copy.deepcopy(line_template)
            find(line, "ProductReferentie/ReferentieNummer").text = f"R{c}-{p}"
            find(line, "IngediendBedrag/Bedrag").text = str(amount)
            find(line, "IngediendBedrag/DebetCredit").text = debit_credit
            find(client, "Prestaties").append(line)
            total += amount if debit_credit == "D" else -amount
        clienten.append(client)
    find(tree, "Declaratie/TotaalIngediendBedrag/TotaalBedrag").text = str(abs(total))
    find(tree, "Declaratie/TotaalIngediendBedrag/DebetCredit").text = "C" if total < 0 else "D"
    return document(etree.tostring(tree))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=declarations())
def test_any_set_of_rejected_prestaties_reconciles(
    plan: list[tuple[str | None, list[tuple[int, str, str | None]]]],
) -> None:
    """Whatever fails, the 325 validates, returns exactly the rejected lines and meets TR342."""
    original = declaration_from_example(plan)
    findings: list[Finding] = []
    expected: dict[str, tuple[str, ...]] = {}
    expected_clients: list[str] = []
    for c, (client_code, lines) in enumerate(plan, start=1):
        if client_code:
            findings.append(state(client_code, f"{CLIENTS}[{c}]/Bsn"))
        for p, (_amount, _dc, code) in enumerate(lines, start=1):
            path = prestatie_path(c, p)
            if code:
                findings.append(state(code, path + "/IngediendBedrag/Bedrag", Level.EXTERNAL))
                expected[f"R{c}-{p}"] = (code,)
            elif client_code:
                expected[f"R{c}-{p}"] = ("0233",)
        if client_code or any(code for *_, code in lines):
            expected_clients.append(f"99990{c:04d}")
    root = build(original, findings)
    assert header_codes(root) == (("0200",))
    antwoord = find(root, "DeclaratieAntwoord")
    assert antwoord is not None
    if not findings:
        assert coded_classes(root)["/Bericht/DeclaratieAntwoord"] == ("8001",)
    else:
        assert coded_classes(root)["/Bericht/DeclaratieAntwoord"] == ("0200",)
    assert referenties(root) == expected
    assert [text(c, "Bsn") for c in root.iter("{*}Client")] == expected_clients
    for client in root.iter("{*}Client"):
        index = int((text(client, "Bsn") or "")[-4:])
        own = [text(c) for c in findall(client, "RetourCodes/RetourCode")]
        assert own == [plan[index - 1][0] or "0200"]
    assert_tr342(root)


@pytest.mark.parametrize("message_type", list(PAIRS))
def test_retours_pass_the_in_message_rules_their_receiver_runs(message_type: str) -> None:
    """A retour of a clean original passes every registered in-message rule for its type."""
    original = load(message_type)
    for findings in ([], [in_message()], [state("9019", class_paths(original)[-1])]):
        raw = build_retour(original, findings, IDENTITY, SCHEMAS)
        report = validate(raw, SCHEMAS)
        assert report.message_type == PAIRS[message_type]
        assert report.ok, report.rule_codes


# -- encoding -----------------------------------------------------------------------------------


def test_non_ascii_text_survives_as_utf8() -> None:
    """Dutch diacritics in copied text come out as UTF-8 and read back unchanged."""
    tree = etree.fromstring((EXAMPLES_DIR / "JW315.xml").read_bytes())
    comment = tree.xpath("//*[local-name()='Commentaar']")[0]
    comment.text = "Cliënt wil één café\nen de tweede regel"
    original = document(etree.tostring(tree))
    raw = build_retour(original, [state("9374", "/Bericht/Client")], IDENTITY, SCHEMAS)
    assert "Cliënt wil één café".encode() in raw
    assert_encoding(raw)
    assert etree.fromstring(raw).xpath("//*[local-name()='Commentaar']")[0].text == comment.text


# -- programmer errors ----------------------------------------------------------------------------


def test_a_retour_gets_no_retour() -> None:
    """Asking a retour for a retour is a programming error."""
    with pytest.raises(RetourError):
        build_retour(load("JW302"), [], IDENTITY, SCHEMAS)


@pytest.mark.parametrize("level", [Level.MALFORMED, Level.XSD, Level.OK])
def test_transport_level_findings_get_no_retour(level: Level) -> None:
    """Malformed and XSD-invalid messages are answered through the transport, not a retour."""
    finding = Finding(rule="XSD", message="fabricated", level=level)
    with pytest.raises(RetourError):
        build_retour(load("JW301"), [finding], IDENTITY, SCHEMAS)


def test_class_finding_without_retourcode_is_refused() -> None:
    """A cross-message finding must name its retourcode."""
    finding = Finding(rule="TR019", message="fabricated", path=START, level=Level.STATE)
    with pytest.raises(RetourError):
        build_retour(load("JW305"), [finding], IDENTITY, SCHEMAS)


def test_missing_retour_schema_is_refused() -> None:
    """A schema set without the retour's schema cannot build it."""
    partial = SchemaSet.of(s for s in SCHEMAS.schemas.values() if s.message_type != "JW306")
    with pytest.raises(RetourError):
        build_retour(load("JW305"), [], IDENTITY, partial)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"identificatie": ""},
        {"identificatie": "   "},
        {"identificatie": "1234567890123"},
        {"xslt_versie": "2.10"},
    ],
)
def test_bad_identity_is_refused(kwargs: dict[str, str]) -> None:
    """IdentificatieRetour is 1-12 characters, versions are n.n.n."""
    values: dict[str, object] = {"identificatie": "R1", "dagtekening": dt.date(2024, 1, 1)}
    with pytest.raises(RetourError):
        RetourIdentity(**(values | kwargs))  # type: ignore[arg-type]


def test_bad_xsd_version_is_refused() -> None:
    """XsdVersieRetour values follow LDT_Versie."""
    with pytest.raises(RetourError):
        XsdVersion("1.0", "1.0.0")


def test_report_entry_point_matches_and_refuses_xsd_reports() -> None:
    """The report helper builds the same retour and refuses XSD-level reports."""
    original = load("JW307")
    findings = (state("9069", STOP + "[1]"),)
    report = ValidationReport(Level.STATE, findings, "JW307", RELEASE, original)
    assert build_retour_for_report(report, IDENTITY, SCHEMAS) == build_retour(
        original, findings, IDENTITY, SCHEMAS
    )
    with pytest.raises(RetourError):
        build_retour_for_report(ValidationReport(Level.XSD, ()), IDENTITY, SCHEMAS)
