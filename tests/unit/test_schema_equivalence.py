"""Our authored iJw 3.2 schemas (schemas/ijw-3.2) accept exactly what the official release accepts.

Three independent angles: the component models that xmlschema builds from both schema sets are
compared (every element path with its occurrences and model group, every leaf's effective
facets, every named basisschema type), and then lxml and xmlschema are asked for verdicts on the
official examples and on mutations of them, which must agree across all four combinations.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from lxml import etree
from xmlschema.validators import XsdSimpleType

from gateway.core.schemaset import SchemaSet
from gateway.schemas import load_schema_set
from tests.paths import EXAMPLES_DIR, OFFICIAL_XSD_DIR, OUR_XSD_DIR
from tests.schema_compare import (
    Mutation,
    SchemaDescription,
    append_child,
    both,
    describe_complex,
    describe_element,
    duplicate,
    facet_profile,
    local,
    remove,
    rename,
    rename_root,
    set_text,
    swap_with_next,
)

BASE_NS = "http://www.istandaarden.nl/ijw/3_2/basisschema/schema"
MESSAGES = (
    "JW301", "JW302", "JW305", "JW306", "JW307", "JW308", "JW315",
    "JW316", "JW317", "JW318", "JW319", "JW320", "JW323", "JW325",
)  # fmt: skip


def message_ns(message: str) -> str:
    return f"http://www.istandaarden.nl/ijw/3_2/{message.lower()}/schema"


# --- loading -----------------------------------------------------------------------------------


@functools.cache
def official_xmlschema(message: str) -> xmlschema.XMLSchema10:
    folder = OFFICIAL_XSD_DIR
    # The official imports name basisschema.xsd while the file is Basisschema.xsd.
    return xmlschema.XMLSchema10(
        str(folder / f"{message}.xsd"), locations=[(BASE_NS, str(folder / "Basisschema.xsd"))]
    )


@functools.cache
def our_xmlschema(message: str) -> xmlschema.XMLSchema10:
    return xmlschema.XMLSchema10(str(OUR_XSD_DIR / f"{message.lower()}.xsd"))


@functools.cache
def lxml_schemas(folder: Path) -> SchemaSet:
    return load_schema_set([folder])


def describe(schema: xmlschema.XMLSchema10) -> SchemaDescription:
    description = SchemaDescription([], {})
    for element in schema.elements.values():
        describe_element(element, "", description, 0)
    return description


@functools.cache
def described(side: str, message: str) -> SchemaDescription:
    schema = official_xmlschema(message) if side == "official" else our_xmlschema(message)
    return describe(schema)


def basisschema_types(schema: xmlschema.XMLSchema10) -> dict[str, Any]:
    """Every named type of the basisschema namespace, described the same way as messages."""
    described_types: dict[str, Any] = {}
    for name, xsd_type in schema.maps.types.items():
        if not name.startswith(f"{{{BASE_NS}}}"):
            continue
        if isinstance(xsd_type, XsdSimpleType):
            described_types[name] = facet_profile(xsd_type)
        else:
            description = SchemaDescription([], {})
            describe_complex(xsd_type, local(name), description)
            described_types[name] = (description.structure, description.leaves)
    return described_types


# --- structural equivalence ----------------------------------------------------------------------


@pytest.mark.parametrize("message", MESSAGES)
def test_element_paths_occurrences_and_groups_match(message: str) -> None:
    """Every element path from Bericht down has the same occurrences and model groups, in order."""
    official = described("official", message).structure
    ours = described("ours", message).structure
    assert ours == official
    root = f"/{{{message_ns(message)}}}Bericht"
    assert official[0][0] == root
    # The walk really descends into the basisschema's composite types.
    assert any(row[0].endswith(f"/{{{BASE_NS}}}Dagtekening") for row in official)


@pytest.mark.parametrize("message", MESSAGES)
def test_leaf_facets_match(message: str) -> None:
    """Each leaf element's simple type has the same base primitive and effective facets."""
    official = described("official", message).leaves
    ours = described("ours", message).leaves
    assert sorted(ours) == sorted(official)
    for path, profile in official.items():
        assert ours[path] == profile, path


def test_known_facets_are_seen_by_the_comparison() -> None:
    """The facet walk reads inherited patterns, enumerations and ranges (so equality means much)."""
    leaves = described("ours", "JW301").leaves
    ns, base = message_ns("JW301"), f"{{{BASE_NS}}}"
    header = f"/{{{ns}}}Bericht/{{{ns}}}Header"
    code = leaves[f"{header}/{{{ns}}}BerichtCode"]
    assert frozenset({"436"}) in code["patterns"]
    assert code["maxLength"] == 3
    assert leaves[f"{header}/{{{ns}}}Afzender"]["patterns"] >= {frozenset({"[0-9]{4}"})}
    land = next(p for path, p in leaves.items() if path.endswith(f"{base}LandCode"))
    assert len(land["enumeration"]) == 249
    retour = described("ours", "JW302").leaves
    codes = next(p for path, p in retour.items() if path.endswith("}RetourCode"))
    assert len(codes["enumeration"]) == 59
    assert leaves[f"{header}/{{{ns}}}BerichtIdentificatie/{base}Dagtekening"]["primitive"] == (
        "{http://www.w3.org/2001/XMLSchema}date"
    )


def test_basisschema_named_types_match() -> None:
    """Every named CDT_/LDT_ type exists in both basisschemas with the same content and facets."""
    official = basisschema_types(official_xmlschema("JW301"))
    ours = basisschema_types(our_xmlschema("JW301"))
    assert sorted(ours) == sorted(official)
    assert len(official) >= 70
    for name, value in official.items():
        assert ours[name] == value, name


# --- verdicts ------------------------------------------------------------------------------------


def verdicts(message: str, data: bytes) -> dict[str, bool]:
    tree = etree.parse(io.BytesIO(data))
    results: dict[str, bool] = {}
    for side, folder in (("official", OFFICIAL_XSD_DIR), ("ours", OUR_XSD_DIR)):
        schema = lxml_schemas(folder).get("3.2", message)
        assert schema is not None, f"{message} missing from {folder}"
        results[f"lxml/{side}"] = schema.xsd.validate(tree)
    results["xmlschema/official"] = official_xmlschema(message).is_valid(io.BytesIO(data))
    results["xmlschema/ours"] = our_xmlschema(message).is_valid(io.BytesIO(data))
    return results


@pytest.mark.parametrize("message", MESSAGES)
def test_official_examples_get_identical_verdicts(message: str) -> None:
    """Both validators accept each official example with both schema sets (JW318 is rejected)."""
    data = (EXAMPLES_DIR / f"{message}.xml").read_bytes()
    expected = message != "JW318"  # the shipped JW318 has a stray RetourCode under Verzoek
    assert verdicts(message, data) == dict.fromkeys(
        ("lxml/official", "lxml/ours", "xmlschema/official", "xmlschema/ours"), expected
    )


H = "Header"
C = "Client"
TP = "Client/ToegewezenProducten/ToegewezenProduct"
ADRES = "Client/Relaties/Relatie/Contact/Adres"
ID = "Header/BerichtIdentificatie"
PRESTATIE = "Declaratie/Clienten/Client/Prestaties/Prestatie"
PRESTATIE_325 = "DeclaratieAntwoord/Clienten/Client/Prestaties/Prestatie"
AANGEVRAAGD = "Client/AangevraagdeProducten/AangevraagdProduct"
NIEUW = "Client/Verzoek/NieuweProducten/NieuwProduct"
STOP = "Client/StopProducten/StopProduct"
START = "Client/StartProducten/StartProduct"
NAAM = "Client/Naam/Geslachtsnaam/Achternaam"
M = Mutation

# One row per mutation: test id, example, change, verdict expected under the standard.
# fmt: off
MUTATIONS: tuple[Mutation, ...] = (
    M("301-berichtcode-of-302", "JW301", set_text(f"{H}/BerichtCode", "437"), False),
    M("305-berichtcode-999", "JW305", set_text(f"{H}/BerichtCode", "999"), False),
    M("323-berichtcode-4-digits", "JW323", set_text(f"{H}/BerichtCode", "4900"), False),
    M("301-berichtversie-4", "JW301", set_text(f"{H}/BerichtVersie", "4"), False),
    M("319-berichtsubversie-1", "JW319", set_text(f"{H}/BerichtSubversie", "1"), False),
    M("301-empty-bsn", "JW301", set_text(f"{C}/Bsn", ""), False),
    M("301-empty-commentaar", "JW301", set_text(f"{C}/Commentaar", ""), False),
    M("301-blank-commentaar", "JW301", set_text(f"{C}/Commentaar", "   "), False),
    M("305-empty-identificatie", "JW305", set_text(f"{ID}/Identificatie", ""), False),
    M("301-dagtekening-with-z", "JW301", set_text(f"{ID}/Dagtekening", "2023-01-01Z"), False),
    M("307-einddatum-with-offset", "JW307", set_text(f"{STOP}/Einddatum", "2023-07-19+01:00"),
      False),
    M("301-impossible-date", "JW301", set_text(f"{TP}/Ingangsdatum", "2026-02-30"), False),
    M("301-time-with-z", "JW301", set_text(f"{TP}/Toewijzingstijd", "12:34:56Z"), False),
    M("301-time-25h", "JW301", set_text(f"{TP}/Toewijzingstijd", "25:00:00"), False),
    M("301-eenheid-05", "JW301", set_text(f"{TP}/Omvang/Eenheid", "05"), False),
    M("315-eenheid-14-known", "JW315", set_text(f"{AANGEVRAAGD}/Omvang/Eenheid", "14"), True),
    M("317-frequentie-9", "JW317", set_text(f"{NIEUW}/Omvang/Frequentie", "9"), False),
    M("301-bsn-10-digits", "JW301", set_text(f"{C}/Bsn", "9999000061"), False),
    M("323-bsn-8-digits", "JW323", set_text("Declaratie/Clienten/Client/Bsn", "99990000"), False),
    M("301-bsn-with-space", "JW301", set_text(f"{C}/Bsn", " 99990000"), False),
    M("301-gemeente-3-digits", "JW301", set_text(f"{H}/Afzender", "384"), False),
    M("319-woonplaats-gemeente-5-digits", "JW319",
      set_text("Antwoord/Woonplaatsbeginsel/Gemeente", "01916"), False),
    M("305-agb-7-digits", "JW305", set_text(f"{H}/Afzender", "4242000"), False),
    M("301-basis-child-in-message-ns", "JW301",
      rename(f"{ID}/Identificatie", namespace=message_ns("JW301")), False),
    M("301-message-child-in-basis-ns", "JW301", rename(f"{C}/Bsn", namespace=BASE_NS), False),
    M("325-basis-child-in-message-ns", "JW325",
      rename("DeclaratieAntwoord/TotaalToegekendBedrag/TotaalBedrag",
             namespace=message_ns("JW325")), False),
    M("301-root-in-302-ns", "JW301", rename_root(message_ns("JW302")), False),
    M("301-required-geslacht-removed", "JW301", remove(f"{C}/Geslacht"), False),
    M("301-optional-commentaar-removed", "JW301", remove(f"{C}/Commentaar"), True),
    M("301-optional-relaties-removed", "JW301", remove(f"{C}/Relaties"), True),
    M("325-header-retourcodes-removed", "JW325", remove(f"{H}/RetourCodes"), False),
    M("302-header-retourcodes-removed", "JW302", remove(f"{H}/RetourCodes"), True),
    M("306-xsdversie-removed", "JW306", remove(f"{H}/XsdVersie"), False),
    M("320-antwoord-retourcodes-removed", "JW320", remove("Antwoord/RetourCodes"), False),
    M("301-afzender-duplicated", "JW301", duplicate(f"{H}/Afzender"), False),
    M("301-client-duplicated", "JW301", duplicate(C), False),
    M("301-product-duplicated", "JW301", duplicate(TP), True),
    M("302-retourcode-duplicated", "JW302", duplicate(f"{H}/RetourCodes/RetourCode"), True),
    M("301-bsn-geboortedatum-swapped", "JW301", swap_with_next(f"{C}/Bsn"), False),
    M("305-afzender-ontvanger-swapped", "JW305", swap_with_next(f"{H}/Afzender"), False),
    M("323-totaalbedrag-debetcredit-swapped", "JW323",
      swap_with_next("Declaratie/TotaalIngediendBedrag/TotaalBedrag"), False),
    M("301-identificatie-13-chars", "JW301", set_text(f"{ID}/Identificatie", "1" * 13), False),
    M("301-identificatie-12-chars", "JW301", set_text(f"{ID}/Identificatie", "1" * 12), True),
    M("301-achternaam-201-chars", "JW301", set_text(NAAM, "W" * 201), False),
    M("301-achternaam-200-chars", "JW301", set_text(NAAM, "W" * 200), True),
    M("301-huisnummer-too-large", "JW301", set_text(f"{ADRES}/Huis/Huisnummer", "100000"), False),
    M("301-volume-negative", "JW301", set_text(f"{TP}/Omvang/Volume", "-1"), False),
    M("323-bedrag-too-large", "JW323", set_text(f"{PRESTATIE}/IngediendBedrag/Bedrag",
                                                "100000000"), False),
    M("323-bedrag-decimal", "JW323", set_text(f"{PRESTATIE}/IngediendBedrag/Bedrag", "5000.5"),
      False),
    M("323-debetcredit-x", "JW323", set_text(f"{PRESTATIE}/IngediendBedrag/DebetCredit", "X"),
      False),
    M("323-declaratienummer-with-dash", "JW323", set_text("Declaratie/DeclaratieNummer", "DN-1"),
      False),
    M("302-unknown-retourcode", "JW302", set_text(f"{H}/RetourCodes/RetourCode", "9999"), False),
    M("302-other-known-retourcode", "JW302", set_text(f"{H}/RetourCodes/RetourCode", "0001"),
      True),
    M("325-retourcode-5-chars", "JW325",
      set_text(f"{PRESTATIE_325}/RetourCodes/RetourCode", "06110"), False),
    M("301-landcode-xx", "JW301", set_text(f"{ADRES}/LandCode", "XX"), False),
    M("301-landcode-be", "JW301", set_text(f"{ADRES}/LandCode", "BE"), True),
    M("301-landcode-lowercase", "JW301", set_text(f"{ADRES}/LandCode", "nl"), False),
    M("301-geslacht-3", "JW301", set_text(f"{C}/Geslacht", "3"), False),
    M("301-categorie-unknown", "JW301", set_text(f"{TP}/Product/Categorie", "99"), False),
    M("301-xsdversie-two-parts", "JW301", set_text(f"{H}/XsdVersie/BerichtXsdVersie", "1.0"),
      False),
    M("301-xsdversie-leading-zero", "JW301",
      set_text(f"{H}/XsdVersie/BasisschemaXsdVersie", "01.0.0"), False),
    M("319-verzoekantwoord-3", "JW319", set_text("Antwoord/VerzoekAntwoord", "3"), False),
    M("307-reden-beeindiging-unknown", "JW307", set_text(f"{STOP}/RedenBeeindiging", "99"),
      False),
    M("305-statusaanlevering-4", "JW305", set_text(f"{START}/StatusAanlevering", "4"), False),
    M("301-unknown-element-in-client", "JW301",
      append_child(C, message_ns("JW301"), "Extra", "x"), False),
    M("318-stray-retourcode-removed", "JW318", remove("Client/Verzoek/RetourCode"), True),
    M("302-wrong-code-and-missing-dagtekening", "JW302",
      both(set_text(f"{H}/BerichtCode", "436"), remove(f"{H}/DagtekeningRetour")), False),
)
# fmt: on


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_mutated_examples_get_identical_verdicts(mutation: Mutation) -> None:
    """lxml and xmlschema with the official and our schemas agree on a mutated example."""
    root = etree.parse(str(EXAMPLES_DIR / f"{mutation.source}.xml")).getroot()
    mutation.change(root)
    data = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    assert verdicts(mutation.source, data) == dict.fromkeys(
        ("lxml/official", "lxml/ours", "xmlschema/official", "xmlschema/ours"), mutation.valid
    )


def test_enough_distinct_mutations() -> None:
    """The mutation set is large and its names are unique (each is its own test id)."""
    names = [m.name for m in MUTATIONS]
    assert len(names) >= 40
    assert len(set(names)) == len(names)
    assert {m.source for m in MUTATIONS} >= {"JW301", "JW302", "JW305", "JW323", "JW325"}
