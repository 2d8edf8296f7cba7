"""Our authored iJw schemas (schemas/ijw-3.2, schemas/ijw-2.3) accept exactly what the official
(3.2) and reference (2.3) files of the same release accept.

Three independent angles, per release: the component models that xmlschema builds from both
schema sets are compared (every element path with its occurrences and model group, every
leaf's effective facets, every named basisschema type), and then lxml and xmlschema are asked
for verdicts on the examples and on mutations of them, which must agree across all four
combinations. The machinery is tests/schema_equivalence.py.
"""

from __future__ import annotations

import pytest
from lxml import etree

from tests.schema_equivalence import (
    RELEASE_2_3,
    RELEASE_3_2,
    RELEASES,
    VERDICT_KEYS,
    Mutation,
    Release,
    append_child,
    basisschema_types,
    both,
    duplicate,
    insert_after,
    remove,
    rename,
    rename_root,
    set_text,
    swap_with_next,
)

NS_3_2 = RELEASE_3_2.message_ns
NS_2_3 = RELEASE_2_3.message_ns
BASE_3_2 = RELEASE_3_2.base_ns
MESSAGES = [(release, message) for release in RELEASES for message in release.messages]
MESSAGE_IDS = [f"{release.name}-{message}" for release, message in MESSAGES]
RELEASE_IDS = [release.name for release in RELEASES]

# --- structural equivalence ----------------------------------------------------------------------


@pytest.mark.parametrize(("release", "message"), MESSAGES, ids=MESSAGE_IDS)
def test_element_paths_occurrences_and_groups_match(release: Release, message: str) -> None:
    """Every element path from Bericht down has the same occurrences and model groups, in order."""
    official = release.described("official", message).structure
    assert release.described("ours", message).structure == official
    assert official[0][0] == f"/{{{release.message_ns(message)}}}Bericht"
    # The walk really descends into the basisschema's composite types.
    assert any(f"/{{{release.base_ns}}}" in row[0] for row in official)


@pytest.mark.parametrize(("release", "message"), MESSAGES, ids=MESSAGE_IDS)
def test_leaf_facets_match(release: Release, message: str) -> None:
    """Each leaf element's simple type has the same base primitive and effective facets."""
    official = release.described("official", message).leaves
    ours = release.described("ours", message).leaves
    assert sorted(ours) == sorted(official)
    for path, profile in official.items():
        assert ours[path] == profile, path


def test_known_facets_are_seen_by_the_comparison() -> None:
    """The facet walk reads inherited patterns, enumerations and ranges (so equality means much)."""
    leaves = RELEASE_3_2.described("ours", "JW301").leaves
    ns, base = RELEASE_3_2.message_ns("JW301"), f"{{{RELEASE_3_2.base_ns}}}"
    header = f"/{{{ns}}}Bericht/{{{ns}}}Header"
    code = leaves[f"{header}/{{{ns}}}BerichtCode"]
    assert frozenset({"436"}) in code["patterns"]
    assert code["maxLength"] == 3
    assert leaves[f"{header}/{{{ns}}}Afzender"]["patterns"] >= {frozenset({"[0-9]{4}"})}
    land = next(p for path, p in leaves.items() if path.endswith(f"{base}LandCode"))
    assert len(land["enumeration"]) == 249
    retour = RELEASE_3_2.described("ours", "JW302").leaves
    codes = next(p for path, p in retour.items() if path.endswith("}RetourCode"))
    assert len(codes["enumeration"]) == 59
    assert leaves[f"{header}/{{{ns}}}BerichtIdentificatie/{base}Dagtekening"]["primitive"] == (
        "{http://www.w3.org/2001/XMLSchema}date"
    )


def test_known_2_3_facets_are_seen_by_the_comparison() -> None:
    """The walk reads the facets that set 2.3 apart (so equality there means something)."""
    ns, base = RELEASE_2_3.message_ns("JW303"), f"{{{RELEASE_2_3.base_ns}}}"
    leaves = RELEASE_2_3.described("ours", "JW303").leaves
    header = f"/{{{ns}}}Bericht/{{{ns}}}Header"
    assert frozenset({"432|450"}) in leaves[f"{header}/{{{ns}}}BerichtCode"]["patterns"]
    btw = next(p for path, p in leaves.items() if path.endswith(f"{base}BtwVrijstellingIndicatie"))
    assert btw["enumeration"] == frozenset({"1", "2"})
    eenheid = next(p for path, p in leaves.items() if path.endswith(f"{base}Eenheid"))
    assert "05" not in eenheid["enumeration"] and "21" in eenheid["enumeration"]
    codes = next(
        p
        for path, p in RELEASE_2_3.described("ours", "JW304").leaves.items()
        if "RetourCode" in path
    )
    assert len(codes["enumeration"]) == 39


@pytest.mark.parametrize("release", RELEASES, ids=RELEASE_IDS)
def test_basisschema_named_types_match(release: Release) -> None:
    """Every named CDT_/LDT_ type exists in both basisschemas with the same content and facets."""
    official = basisschema_types(release.official_xmlschema("JW301"), release.base_ns)
    ours = basisschema_types(release.our_xmlschema("JW301"), release.base_ns)
    assert sorted(ours) == sorted(official)
    assert len(official) >= 70
    for name, value in official.items():
        assert ours[name] == value, name


# --- verdicts ------------------------------------------------------------------------------------

#: Examples the official files reject as shipped (JW318.xml of 3.2 has a stray RetourCode).
INVALID_EXAMPLES = {("3.2", "JW318")}


@pytest.mark.parametrize(("release", "message"), MESSAGES, ids=MESSAGE_IDS)
def test_official_examples_get_identical_verdicts(release: Release, message: str) -> None:
    """Both validators give each example the same verdict with both schema sets."""
    data = (release.examples_dir / f"{message}.xml").read_bytes()
    expected = (release.name, message) not in INVALID_EXAMPLES
    assert release.verdicts(message, data) == dict.fromkeys(VERDICT_KEYS, expected)


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
MUTATIONS_3_2: tuple[Mutation, ...] = (
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
      rename(f"{ID}/Identificatie", namespace=NS_3_2("JW301")), False),
    M("301-message-child-in-basis-ns", "JW301", rename(f"{C}/Bsn", namespace=BASE_3_2), False),
    M("325-basis-child-in-message-ns", "JW325",
      rename("DeclaratieAntwoord/TotaalToegekendBedrag/TotaalBedrag",
             namespace=NS_3_2("JW325")), False),
    M("301-root-in-302-ns", "JW301", rename_root(NS_3_2("JW302")), False),
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
      append_child(C, NS_3_2("JW301"), "Extra", "x"), False),
    M("318-stray-retourcode-removed", "JW318", remove("Client/Verzoek/RetourCode"), True),
    M("302-wrong-code-and-missing-dagtekening", "JW302",
      both(set_text(f"{H}/BerichtCode", "436"), remove(f"{H}/DagtekeningRetour")), False),
)
# fmt: on


TP_23 = "Client/Beschikking/ToegewezenProducten/ToegewezenProduct"
PRESTATIE_23 = "Clienten/Client/Prestaties/Prestatie"
INGEDIEND = f"{PRESTATIE_23}/IngediendeBedragPrestatie"
DFI = "Header/DeclaratieFactuurIdentificatie"
TOTAAL = "Header/DeclaratieFactuurBedragen/DeclaratieFactuurTotaalBedrag"

# One row per mutation: test id, example, change, verdict expected under the 2.3 standard.
# fmt: off
MUTATIONS_2_3: tuple[Mutation, ...] = (
    M("303-berichtcode-450", "JW303", set_text(f"{H}/BerichtCode", "450"), True),
    M("303-berichtcode-433", "JW303", set_text(f"{H}/BerichtCode", "433"), False),
    M("304-berichtcode-432", "JW304", set_text(f"{H}/BerichtCode", "432"), False),
    M("301-berichtversie-3", "JW301", set_text(f"{H}/BerichtVersie", "3"), False),
    M("305-berichtsubversie-2", "JW305", set_text(f"{H}/BerichtSubversie", "2"), False),
    M("301-root-in-3_2-ns", "JW301",
      rename_root("http://www.istandaarden.nl/ijw/3_2/jw301/schema"), False),
    M("303-root-in-304-ns", "JW303", rename_root(NS_2_3("JW304")), False),
    M("303-gemeente-3-digits", "JW303", set_text(f"{H}/Gemeente", "384"), False),
    M("303-aanbieder-7-digits", "JW303", set_text(f"{H}/Aanbieder", "4242000"), False),
    M("303-servicebureau-added-98", "JW303",
      insert_after(f"{H}/Gemeente", "Servicebureau", "98000001"), True),
    M("303-servicebureau-not-98", "JW303",
      insert_after(f"{H}/Gemeente", "Servicebureau", "42420001"), False),
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
    M("303-productcode-6-chars", "JW303", set_text(f"{PRESTATIE_23}/ProductCode", "ABCDEF"), False),
    M("303-productcode-blank", "JW303", set_text(f"{PRESTATIE_23}/ProductCode", "   "), False),
    M("303-productcategorie-99", "JW303", set_text(f"{PRESTATIE_23}/ProductCategorie", "99"),
      False),
    M("303-prestatie-duplicated", "JW303", duplicate(PRESTATIE_23), True),
    M("303-prestaties-emptied", "JW303",
      both(remove(PRESTATIE_23), remove(PRESTATIE_23)), False),
    M("303-periode-removed", "JW303", remove(f"{PRESTATIE_23}/ProductPeriode"), False),
    M("303-toewijzing-beschikking-swapped", "JW303",
      swap_with_next(f"{PRESTATIE_23}/BeschikkingNummer"), False),
    M("303-basis-child-in-message-ns", "JW303",
      rename(f"{TOTAAL}/TotaalBedrag", namespace=NS_2_3("JW303")), False),
    M("303-bsn-10-digits", "JW303", set_text("Clienten/Client/Bsn", "1234567820"), False),
    M("303-unknown-element", "JW303",
      append_child("Clienten/Client", NS_2_3("JW303"), "Extra", "x"), False),
    M("304-retourcode-0611", "JW304", set_text(f"{H}/RetourCodes/RetourCode", "0611"), True),
    M("304-retourcode-unknown", "JW304", set_text(f"{H}/RetourCodes/RetourCode", "9999"), False),
    M("304-retourheader-removed", "JW304", remove(f"{H}/RetourHeader"), False),
    M("304-retourbedragen-removed", "JW304", remove(f"{H}/RetourBedragen"), False),
    M("304-toegekend-removed", "JW304", remove(f"{PRESTATIE_23}/ToegekendeBedragPrestatie"),
      False),
    M("304-retourcodes-duplicated", "JW304", duplicate(f"{H}/RetourCodes/RetourCode"), True),
    M("301-empty-bsn", "JW301", set_text(f"{C}/Bsn", ""), False),
    M("301-identificatie-13-chars", "JW301", set_text(f"{ID}/Identificatie", "1" * 13), False),
    M("301-identificatie-12-chars", "JW301", set_text(f"{ID}/Identificatie", "1" * 12), True),
    M("301-gemeente-3-digits", "JW301", set_text(f"{H}/Afzender", "384"), False),
    M("301-geslacht-3", "JW301", set_text(f"{C}/Geslacht", "3"), False),
    M("301-client-duplicated", "JW301", duplicate(C), False),
    M("301-product-duplicated", "JW301", duplicate(TP_23), True),
    M("301-time-with-z", "JW301", set_text(f"{TP_23}/Toewijzingstijd", "12:34:56Z"), False),
    M("301-eenheid-05", "JW301", set_text(f"{TP_23}/Omvang/Eenheid", "05"), False),
    M("301-frequentie-3", "JW301", set_text(f"{TP_23}/Omvang/Frequentie", "3"), True),
    M("301-frequentie-7", "JW301", set_text(f"{TP_23}/Omvang/Frequentie", "7"), False),
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
      insert_after(f"{H}/DagtekeningRetour", "RetourCodes", ""), False),
    M("316-dagtekeningretour-with-z", "JW316", set_text(f"{H}/DagtekeningRetour", "2018-07-10Z"),
      False),
    M("316-ontvanger-agb-code", "JW316", set_text(f"{H}/Ontvanger", "42420001"), False),
    M("315-required-verwijzer-removed", "JW315", remove(f"{AANGEVRAAGD}/Verwijzer"), False),
)
# fmt: on


ALL_MUTATIONS = [(RELEASE_3_2, m) for m in MUTATIONS_3_2] + [
    (RELEASE_2_3, m) for m in MUTATIONS_2_3
]


@pytest.mark.parametrize(
    ("release", "mutation"), ALL_MUTATIONS, ids=[f"{r.name}-{m.name}" for r, m in ALL_MUTATIONS]
)
def test_mutated_examples_get_identical_verdicts(release: Release, mutation: Mutation) -> None:
    """lxml and xmlschema with the official and our schemas agree on a mutated example."""
    root = etree.parse(str(release.examples_dir / f"{mutation.source}.xml")).getroot()
    mutation.change(root)
    data = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    assert release.verdicts(mutation.source, data) == dict.fromkeys(VERDICT_KEYS, mutation.valid)


@pytest.mark.parametrize(
    ("mutations", "least", "messages"),
    [
        (MUTATIONS_3_2, 40, {"JW301", "JW302", "JW305", "JW323", "JW325"}),
        (MUTATIONS_2_3, 60, set(RELEASE_2_3.messages)),
    ],
    ids=RELEASE_IDS,
)
def test_enough_distinct_mutations(
    mutations: tuple[Mutation, ...], least: int, messages: set[str]
) -> None:
    """Each release's mutation set is large, its names are unique (each is its own test id)
    and it mutates the message types named."""
    names = [m.name for m in mutations]
    assert len(names) >= least
    assert len(set(names)) == len(names)
    assert {m.source for m in mutations} >= messages
