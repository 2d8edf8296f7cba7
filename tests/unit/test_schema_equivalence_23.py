"""Our authored iJw 2.3 schemas (schemas/ijw-2.3) accept exactly what the 2.3 reference accepts.

The same three angles as for 3.2 (tests/unit/test_schema_equivalence.py, whose describing and
mutating helpers this module reuses): component models compared path by path and facet by
facet, every named basisschema type compared, and lxml and xmlschema verdicts with both schema
sets on the reference examples and on mutations of them.
"""

from __future__ import annotations

import functools
import io

import pytest
import xmlschema
from lxml import etree

from gateway.core.schemaset import SchemaSet
from gateway.schemas import load_schema_set
from tests.paths import EXAMPLES_DIR_23, OFFICIAL_XSD_DIR_23, OUR_XSD_DIR_23
from tests.unit.test_schema_equivalence import (
    Mutation,
    SchemaDescription,
    append_child,
    basisschema_types,
    both,
    describe,
    duplicate,
    node,
    remove,
    rename,
    rename_root,
    set_text,
    swap_with_next,
)

BASE_NS = "http://www.istandaarden.nl/ijw/2_3/basisschema/schema"
MESSAGES = (
    "JW301", "JW302", "JW303", "JW304", "JW305", "JW306", "JW307", "JW308", "JW315", "JW316",
)  # fmt: skip


def message_ns(message: str) -> str:
    return f"http://www.istandaarden.nl/ijw/2_3/{message.lower()}/schema"


@functools.cache
def official_xmlschema(message: str) -> xmlschema.XMLSchema10:
    return xmlschema.XMLSchema10(str(OFFICIAL_XSD_DIR_23 / f"{message}.xsd"))


@functools.cache
def our_xmlschema(message: str) -> xmlschema.XMLSchema10:
    return xmlschema.XMLSchema10(str(OUR_XSD_DIR_23 / f"{message.lower()}.xsd"))


@functools.cache
def lxml_schemas(side: str) -> SchemaSet:
    return load_schema_set([OFFICIAL_XSD_DIR_23 if side == "official" else OUR_XSD_DIR_23])


@functools.cache
def described(side: str, message: str) -> SchemaDescription:
    return describe(official_xmlschema(message) if side == "official" else our_xmlschema(message))


@pytest.mark.parametrize("message", MESSAGES)
def test_element_paths_occurrences_and_groups_match(message: str) -> None:
    """Every element path from Bericht down has the same occurrences and model groups, in order."""
    official = described("official", message).structure
    assert described("ours", message).structure == official
    assert official[0][0] == f"/{{{message_ns(message)}}}Bericht"
    # The walk descends into the basisschema's composite types.
    assert any(f"/{{{BASE_NS}}}" in row[0] for row in official)


@pytest.mark.parametrize("message", MESSAGES)
def test_leaf_facets_match(message: str) -> None:
    """Each leaf element's simple type has the same base primitive and effective facets."""
    official = described("official", message).leaves
    ours = described("ours", message).leaves
    assert sorted(ours) == sorted(official)
    for path, profile in official.items():
        assert ours[path] == profile, path


def test_known_2_3_facets_are_seen_by_the_comparison() -> None:
    """The walk reads the facets that set 2.3 apart (so equality there means something)."""
    ns, base = message_ns("JW303"), f"{{{BASE_NS}}}"
    leaves = described("ours", "JW303").leaves
    header = f"/{{{ns}}}Bericht/{{{ns}}}Header"
    assert frozenset({"432|450"}) in leaves[f"{header}/{{{ns}}}BerichtCode"]["patterns"]
    btw = next(p for path, p in leaves.items() if path.endswith(f"{base}BtwVrijstellingIndicatie"))
    assert btw["enumeration"] == frozenset({"1", "2"})
    eenheid = next(p for path, p in leaves.items() if path.endswith(f"{base}Eenheid"))
    assert "05" not in eenheid["enumeration"] and "21" in eenheid["enumeration"]
    codes = next(p for path, p in described("ours", "JW304").leaves.items() if "RetourCode" in path)
    assert len(codes["enumeration"]) == 39


def test_basisschema_named_types_match() -> None:
    """Every named CDT_/LDT_ type exists in both basisschemas with the same content and facets."""
    official = basisschema_types(official_xmlschema("JW301"), BASE_NS)
    ours = basisschema_types(our_xmlschema("JW301"), BASE_NS)
    assert sorted(ours) == sorted(official)
    assert len(official) >= 80
    for name, value in official.items():
        assert ours[name] == value, name


def verdicts(message: str, data: bytes) -> dict[str, bool]:
    tree = etree.parse(io.BytesIO(data))
    results: dict[str, bool] = {}
    for side in ("official", "ours"):
        schema = lxml_schemas(side).get("2.3", message)
        assert schema is not None, f"{message} missing from the {side} 2.3 schemas"
        results[f"lxml/{side}"] = schema.xsd.validate(tree)
    results["xmlschema/official"] = official_xmlschema(message).is_valid(io.BytesIO(data))
    results["xmlschema/ours"] = our_xmlschema(message).is_valid(io.BytesIO(data))
    return results


ALL_FOUR = ("lxml/official", "lxml/ours", "xmlschema/official", "xmlschema/ours")


@pytest.mark.parametrize("message", MESSAGES)
def test_reference_examples_get_identical_verdicts(message: str) -> None:
    """Both validators accept each reference example with both schema sets."""
    data = (EXAMPLES_DIR_23 / f"{message}.xml").read_bytes()
    assert verdicts(message, data) == dict.fromkeys(ALL_FOUR, True)


H = "Header"
C = "Client"
ID = "Header/BerichtIdentificatie"
TP = "Client/Beschikking/ToegewezenProducten/ToegewezenProduct"
PRESTATIE = "Clienten/Client/Prestaties/Prestatie"
INGEDIEND = f"{PRESTATIE}/IngediendeBedragPrestatie"
DFI = "Header/DeclaratieFactuurIdentificatie"
TOTAAL = "Header/DeclaratieFactuurBedragen/DeclaratieFactuurTotaalBedrag"
START = "Client/StartProducten/StartProduct"
STOP = "Client/StopProducten/StopProduct"
AANGEVRAAGD = "Client/AangevraagdeProducten/AangevraagdProduct"
M = Mutation

# One row per mutation: test id, example, change, verdict expected under the 2.3 standard.
# fmt: off
MUTATIONS: tuple[Mutation, ...] = (
    M("303-berichtcode-450", "JW303", set_text(f"{H}/BerichtCode", "450"), True),
    M("303-berichtcode-433", "JW303", set_text(f"{H}/BerichtCode", "433"), False),
    M("304-berichtcode-432", "JW304", set_text(f"{H}/BerichtCode", "432"), False),
    M("301-berichtversie-3", "JW301", set_text(f"{H}/BerichtVersie", "3"), False),
    M("305-berichtsubversie-2", "JW305", set_text(f"{H}/BerichtSubversie", "2"), False),
    M("301-root-in-3_2-ns", "JW301",
      rename_root("http://www.istandaarden.nl/ijw/3_2/jw301/schema"), False),
    M("303-root-in-304-ns", "JW303", rename_root(message_ns("JW304")), False),
    M("303-gemeente-3-digits", "JW303", set_text(f"{H}/Gemeente", "384"), False),
    M("303-aanbieder-7-digits", "JW303", set_text(f"{H}/Aanbieder", "4242000"), False),
    M("303-servicebureau-added-98", "JW303",
      lambda root: _insert_after(root, f"{H}/Gemeente", "Servicebureau", "98000001"), True),
    M("303-servicebureau-not-98", "JW303",
      lambda root: _insert_after(root, f"{H}/Gemeente", "Servicebureau", "42420001"), False),
    M("303-betalingaanid-03", "JW303", set_text(f"{H}/BetalingAanID", "03"), False),
    M("303-valuta-usd", "JW303", set_text(f"{DFI}/ValutaCode", "USD"), False),
    M("303-btwid-bad", "JW303", set_text(f"{DFI}/BtwIDNummer", "NL12345678B01"), False),
    M("303-btwid-removed", "JW303", remove(f"{DFI}/BtwIDNummer"), True),
    M("303-factuurnummer-removed", "JW303", remove(f"{DFI}/DeclarantFactuurNummer"), False),
    M("303-dagtekening-with-z", "JW303", set_text(f"{DFI}/FactuurDagtekening", "2018-07-10Z"),
      False),
    M("303-periode-impossible-date", "JW303",
      set_text(f"{DFI}/DeclaratiePeriode/Einddatum", "2018-06-31"), False),
    M("303-totaal-negative", "JW303", set_text(f"{TOTAAL}/TotaalBedrag", "-1"), False),
    M("303-totaal-12-digits", "JW303", set_text(f"{TOTAAL}/TotaalBedrag", "9" * 12), True),
    M("303-totaal-13-digits", "JW303", set_text(f"{TOTAAL}/TotaalBedrag", "1" + "0" * 12), False),
    M("303-btwtotaal-removed", "JW303",
      remove("Header/DeclaratieFactuurBedragen/BtwTotaalBedrag"), True),
    M("303-totaal-debetcredit-x", "JW303", set_text(f"{TOTAAL}/DebetCredit", "X"), False),
    M("303-bedrag-9-digits", "JW303",
      set_text(f"{INGEDIEND}/BerekendBedrag/Bedrag", "100000000"), False),
    M("303-btw-indicatie-3", "JW303", set_text(f"{INGEDIEND}/BtwVrijstellingIndicatie", "3"),
      False),
    M("303-btw-percentage-removed", "JW303", remove(f"{INGEDIEND}/BtwPercentage"), True),
    M("303-btw-percentage-too-large", "JW303", set_text(f"{INGEDIEND}/BtwPercentage", "100000"),
      False),
    M("303-verrekenpercentage-removed", "JW303", remove(f"{INGEDIEND}/Verrekenpercentage"),
      True),
    M("303-eenheid-05", "JW303", set_text(f"{INGEDIEND}/Eenheid", "05"), False),
    M("303-eenheid-83", "JW303", set_text(f"{INGEDIEND}/Eenheid", "83"), True),
    M("303-volume-decimal", "JW303", set_text(f"{INGEDIEND}/GeleverdVolume", "4.5"), False),
    M("303-productcode-6-chars", "JW303", set_text(f"{PRESTATIE}/ProductCode", "ABCDEF"), False),
    M("303-productcode-blank", "JW303", set_text(f"{PRESTATIE}/ProductCode", "   "), False),
    M("303-productcategorie-99", "JW303", set_text(f"{PRESTATIE}/ProductCategorie", "99"),
      False),
    M("303-prestatie-duplicated", "JW303", duplicate(PRESTATIE), True),
    M("303-prestaties-emptied", "JW303",
      both(remove(PRESTATIE), remove(PRESTATIE)), False),
    M("303-periode-removed", "JW303", remove(f"{PRESTATIE}/ProductPeriode"), False),
    M("303-toewijzing-beschikking-swapped", "JW303",
      swap_with_next(f"{PRESTATIE}/BeschikkingNummer"), False),
    M("303-basis-child-in-message-ns", "JW303",
      rename(f"{TOTAAL}/TotaalBedrag", namespace=message_ns("JW303")), False),
    M("303-bsn-10-digits", "JW303", set_text("Clienten/Client/Bsn", "1234567820"), False),
    M("303-unknown-element", "JW303",
      append_child("Clienten/Client", message_ns("JW303"), "Extra", "x"), False),
    M("304-retourcode-0611", "JW304", set_text(f"{H}/RetourCodes/RetourCode", "0611"), True),
    M("304-retourcode-unknown", "JW304", set_text(f"{H}/RetourCodes/RetourCode", "9999"), False),
    M("304-retourheader-removed", "JW304", remove(f"{H}/RetourHeader"), False),
    M("304-retourbedragen-removed", "JW304", remove(f"{H}/RetourBedragen"), False),
    M("304-toegekend-removed", "JW304", remove(f"{PRESTATIE}/ToegekendeBedragPrestatie"),
      False),
    M("304-retourcodes-duplicated", "JW304", duplicate(f"{H}/RetourCodes/RetourCode"), True),
    M("301-empty-bsn", "JW301", set_text(f"{C}/Bsn", ""), False),
    M("301-identificatie-13-chars", "JW301", set_text(f"{ID}/Identificatie", "1" * 13), False),
    M("301-identificatie-12-chars", "JW301", set_text(f"{ID}/Identificatie", "1" * 12), True),
    M("301-gemeente-3-digits", "JW301", set_text(f"{H}/Afzender", "384"), False),
    M("301-geslacht-3", "JW301", set_text(f"{C}/Geslacht", "3"), False),
    M("301-client-duplicated", "JW301", duplicate(C), False),
    M("301-product-duplicated", "JW301", duplicate(TP), True),
    M("301-time-with-z", "JW301", set_text(f"{TP}/Toewijzingstijd", "12:34:56Z"), False),
    M("301-eenheid-05", "JW301", set_text(f"{TP}/Omvang/Eenheid", "05"), False),
    M("301-frequentie-3", "JW301", set_text(f"{TP}/Omvang/Frequentie", "3"), True),
    M("301-frequentie-7", "JW301", set_text(f"{TP}/Omvang/Frequentie", "7"), False),
    M("302-unknown-retourcode", "JW302", set_text(f"{H}/RetourCodes/RetourCode", "9999"), False),
    M("302-header-retourcodes-removed", "JW302", remove(f"{H}/RetourCodes"), True),
    M("305-statusaanlevering-4", "JW305", set_text(f"{START}/StatusAanlevering", "4"), False),
    M("305-afzender-ontvanger-swapped", "JW305", swap_with_next(f"{H}/Afzender"), False),
    M("307-reden-beeindiging-unknown", "JW307", set_text(f"{STOP}/RedenBeeindiging", "99"),
      False),
    M("307-einddatum-with-offset", "JW307", set_text(f"{STOP}/Einddatum", "2018-07-19+01:00"),
      False),
    M("315-product-duplicated", "JW315", duplicate(AANGEVRAAGD), True),
    M("306-dagtekeningretour-removed", "JW306", remove(f"{H}/DagtekeningRetour"), False),
    M("306-identificatieretour-13-chars", "JW306", set_text(f"{H}/IdentificatieRetour", "1" * 13),
      False),
    M("308-berichtcode-of-306", "JW308", set_text(f"{H}/BerichtCode", "419"), False),
    M("308-retourcode-added", "JW308",
      lambda root: _insert_after(root, f"{H}/DagtekeningRetour", "RetourCodes", ""), False),
    M("316-dagtekeningretour-with-z", "JW316", set_text(f"{H}/DagtekeningRetour", "2018-07-10Z"),
      False),
    M("316-ontvanger-agb-code", "JW316", set_text(f"{H}/Ontvanger", "42420001"), False),
    M("315-required-verwijzer-removed", "JW315", remove(f"{AANGEVRAAGD}/Verwijzer"), False),
)
# fmt: on


def _insert_after(root: etree._Element, path: str, name: str, text: str) -> None:
    anchor = node(root, path)
    added = etree.Element(etree.QName(etree.QName(anchor).namespace, name).text)
    added.text = text
    anchor.addnext(added)


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_mutated_examples_get_identical_verdicts(mutation: Mutation) -> None:
    """lxml and xmlschema with the reference and our 2.3 schemas agree on a mutated example."""
    root = etree.parse(str(EXAMPLES_DIR_23 / f"{mutation.message}.xml")).getroot()
    mutation.change(root)
    data = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    assert verdicts(mutation.message, data) == dict.fromkeys(ALL_FOUR, mutation.valid)


def test_enough_distinct_mutations() -> None:
    """The mutation set is large, names are unique, and every 2.3 message type is mutated."""
    names = [m.name for m in MUTATIONS]
    assert len(names) >= 60
    assert len(set(names)) == len(names)
    assert {m.message for m in MUTATIONS} >= set(MESSAGES)
