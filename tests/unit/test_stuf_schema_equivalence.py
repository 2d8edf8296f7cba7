"""Our StUF-GGk schema (schemas/stuf-ggk0210) accepts exactly what the official ggk0210 does,
for every component it covers.

Ours covers the five messages the chain exchanges (Di01, Du01, Fo01, Bv03, Fo03); the official
set includes all of StUF 0301, whose other messages the gateway never reads. Three angles, as
for iJw (tests/unit/test_schema_equivalence.py): each of our global elements has the same
element paths, occurrences, model groups and leaf facets as the official one; each of our named
types has the same content as the official type of that name; and lxml and xmlschema, each with
both schema sets, agree on the official examples, on the messages the gateway builds and on
mutations of them, with the verdict the specification implies.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
from typing import Any

import pytest
import xmlschema
from lxml import etree
from xmlschema.validators import XsdSimpleType

from gateway.core import envelope as env
from gateway.schemas import load_envelope_schema
from tests.paths import GGK_DIR, OUR_GGK_XSD
from tests.schema_equivalence import (
    Mutation,
    SchemaDescription,
    append_child,
    both,
    describe_complex,
    describe_element,
    duplicate,
    facet_profile,
    remove,
    rename_root,
    set_text,
    swap_with_next,
)

OFFICIAL_XSD = GGK_DIR / "ggk0210" / "ggkberichten" / "ggk0210_msg_ggkberichten.xsd"
G, S = env.GGK_NS, env.STUF_NS
OUR_ELEMENTS = frozenset(env.ROOTS.values())


@functools.cache
def xmlschemas(side: str) -> xmlschema.XMLSchema10:
    return xmlschema.XMLSchema10(str(OFFICIAL_XSD if side == "official" else OUR_GGK_XSD))


@functools.cache
def lxml_schema(side: str) -> etree.XMLSchema:
    return load_envelope_schema(OFFICIAL_XSD if side == "official" else OUR_GGK_XSD)


def element_description(side: str, name: str) -> SchemaDescription:
    description = SchemaDescription([], {})
    describe_element(xmlschemas(side).maps.elements[name], "", description, 0)
    return description


def type_description(side: str, name: str) -> Any:
    xsd_type = xmlschemas(side).maps.types[name]
    if isinstance(xsd_type, XsdSimpleType):
        return facet_profile(xsd_type)
    description = SchemaDescription([], {})
    describe_complex(xsd_type, name, description)
    return description.structure, description.leaves


def our_named_types() -> list[str]:
    return sorted(
        name for name in xmlschemas("ours").maps.types if name.startswith((f"{{{G}}}", f"{{{S}}}"))
    )


# --- components ----------------------------------------------------------------------------------


def test_ours_declares_the_five_chain_messages_and_the_official_set_has_them() -> None:
    ours = {n for n in xmlschemas("ours").maps.elements if n.startswith(("{" + G, "{" + S))}
    assert ours == OUR_ELEMENTS
    assert set(xmlschemas("official").maps.elements) >= OUR_ELEMENTS


@pytest.mark.parametrize("name", sorted(OUR_ELEMENTS))
def test_element_structure_and_leaf_facets_match(name: str) -> None:
    official, ours = element_description("official", name), element_description("ours", name)
    assert ours.structure == official.structure
    assert sorted(ours.leaves) == sorted(official.leaves)
    for path, profile in official.leaves.items():
        assert ours.leaves[path] == profile, path


@pytest.mark.parametrize("name", our_named_types())
def test_named_types_match_the_official_type_of_that_name(name: str) -> None:
    assert type_description("ours", name) == type_description("official", name)


def test_the_comparison_sees_patterns_enumerations_and_lengths() -> None:
    """Equality means much: the walk reads the UUID v4 pattern, the Berichtcode list, lengths."""
    di01 = element_description("ours", env.ROOTS[env.Berichtcode.DI01]).leaves
    stuurgegevens = f"/{env.ROOTS[env.Berichtcode.DI01]}/{{{G}}}stuurgegevens"
    reference = di01[f"{stuurgegevens}/{{{S}}}referentienummer"]
    assert frozenset({env.UUID_V4.pattern}) in reference["patterns"]
    assert reference["maxLength"] == 40
    assert di01[f"{stuurgegevens}/{{{S}}}zender/{{{S}}}applicatie"]["minLength"] == 3
    fo03 = element_description("ours", env.ROOTS[env.Berichtcode.FO03]).leaves
    code = next(p for path, p in fo03.items() if path.endswith(f"{{{S}}}berichtcode"))
    assert len(code["enumeration"]) == 54
    assert len(our_named_types()) >= 20


# --- verdicts ------------------------------------------------------------------------------------

SIDES = ("lxml/official", "lxml/ours", "xmlschema/official", "xmlschema/ours")


def verdicts(data: bytes) -> dict[str, bool]:
    tree = etree.parse(io.BytesIO(data))
    return {
        "lxml/official": lxml_schema("official").validate(tree),
        "lxml/ours": lxml_schema("ours").validate(tree),
        "xmlschema/official": xmlschemas("official").is_valid(io.BytesIO(data)),
        "xmlschema/ours": xmlschemas("ours").is_valid(io.BytesIO(data)),
    }


def soap_example(name: str) -> bytes:
    body = env.soap_body((GGK_DIR / "soap-examples" / name).read_bytes(), 10**7)
    return etree.tostring(etree.ElementTree(env._detached_copy(body)))


def built(code: env.Berichtcode) -> bytes:
    """A Bv03 or Fo03 as the gateway builds it, answering the official Di01 example."""
    di01 = etree.parse(str(GGK_DIR / "voorbeeldberichten" / EXAMPLES["di01-xml"])).getroot()
    message = env.read_message(di01)
    at = env.tijdstip(dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC))
    zender = env.Systeem("0599", "ijw-gateway")
    sg = env.answer_stuurgegevens(
        code, message.stuurgegevens, zender, "0b9e6a55-2d1c-4f7e-9a41-52c5c2d7a001", at
    )
    if code is env.Berichtcode.BV03:
        element = env.build_acknowledgement(env.Acknowledgement(sg))
    else:
        element = env.build_fault(
            env.Fault(sg, "StUF055", "client", "payload fails its schema", "JW301")
        )
    return etree.tostring(element)


EXAMPLES = {
    "di01-xml": "envelopHeenbericht-ggk_Di01_v21-xml.xml",
    "di01-tekst": "envelopHeenbericht-ggk_Di01_v21-tekst.xml",
    "du01": "envelopRetourbericht-ggk_Du01-v21.xml",
    "fo01": "Fo01.xml",
}


def document(source: str) -> bytes:
    if source in EXAMPLES:
        return (GGK_DIR / "voorbeeldberichten" / EXAMPLES[source]).read_bytes()
    if source.startswith("soap-"):
        return soap_example(f"soap-envelope-{source.removeprefix('soap-')}.xml")
    return built(env.Berichtcode(source))


SOURCES = (*EXAMPLES, "soap-di01", "soap-du01", "soap-fo01", "Bv03", "Fo03")


@pytest.mark.parametrize("source", SOURCES)
def test_examples_and_built_messages_are_valid_for_all(source: str) -> None:
    assert verdicts(document(source)) == dict.fromkeys(SIDES, True)


SG = "stuurgegevens"
P = "parameters"
BODY = "body"
V1_UUID = "9c0f7b90-5c69-11e5-a837-0800200c9a66"
M = Mutation

# fmt: off
MUTATIONS: tuple[Mutation, ...] = (
    M("di01-berichtcode-du01", "di01-xml", set_text(f"{SG}/berichtcode", "Du01"), False),
    M("di01-reference-uuid-v1", "di01-xml", set_text(f"{SG}/referentienummer", V1_UUID), False),
    M("di01-reference-uppercase", "di01-xml",
      set_text(f"{SG}/referentienummer", "9C0F7B90-5C69-41E5-A837-0800200C9A66"), False),
    M("di01-reference-other-v4", "di01-xml",
      set_text(f"{SG}/referentienummer", "0b9e6a55-2d1c-4f7e-9a41-52c5c2d7a001"), True),
    M("di01-zender-organisatie-removed", "di01-xml", remove(f"{SG}/zender/organisatie"), False),
    M("di01-applicatie-2-chars", "di01-xml", set_text(f"{SG}/zender/applicatie", "ab"), False),
    M("di01-applicatie-50-chars", "di01-xml", set_text(f"{SG}/zender/applicatie", "a" * 50),
      True),
    M("di01-applicatie-51-chars", "di01-xml", set_text(f"{SG}/zender/applicatie", "a" * 51),
      False),
    M("di01-administratie-added", "di01-xml",
      append_child(f"{SG}/zender", S, "administratie", "test"), True),
    M("di01-organisatie-201-chars", "di01-xml",
      set_text(f"{SG}/ontvanger/organisatie", "9" * 201), False),
    M("di01-tijdstip-4-digits", "di01-xml", set_text(f"{SG}/tijdstipBericht", "2016"), False),
    M("di01-tijdstip-17-digits", "di01-xml",
      set_text(f"{SG}/tijdstipBericht", "20160421132514123"), True),
    M("di01-tijdstip-18-digits", "di01-xml",
      set_text(f"{SG}/tijdstipBericht", "201604211325141234"), False),
    M("di01-tijdstip-with-dash", "di01-xml",
      set_text(f"{SG}/tijdstipBericht", "2016-04-21"), False),
    M("di01-functie-30-chars", "di01-xml", set_text(f"{SG}/functie", "F" * 30), True),
    M("di01-functie-31-chars", "di01-xml", set_text(f"{SG}/functie", "F" * 31), False),
    M("di01-functie-removed", "di01-xml", remove(f"{SG}/functie"), False),
    M("di01-crossrefnummer-added", "di01-xml",
      append_child(SG, S, "crossRefnummer", V1_UUID), False),
    M("di01-applicatieversie-3-digits", "di01-xml", set_text(f"{P}/applicatieVersie", "004"),
      False),
    M("di01-functieversie-letter", "di01-xml", set_text(f"{P}/functieVersie", "00a2"), False),
    M("di01-xmlbestand-empty", "di01-xml", set_text(f"{P}/bericht/xmlBestand", ""), True),
    M("di01-two-payloads", "di01-xml", duplicate(f"{P}/bericht/xmlBestand"), False),
    M("di01-stuurgegevens-after-parameters", "di01-xml", swap_with_next(SG), False),
    M("di01-root-in-stuf-namespace", "di01-xml", rename_root(S), False),
    M("tekst-bestandsnaam-3-chars", "di01-tekst",
      lambda root: set_attribute(root, "a.c"), False),
    M("tekst-bestandsnaam-with-space", "di01-tekst",
      lambda root: set_attribute(root, "Q1 2026.csv"), False),
    M("tekst-bestandsnaam-255-chars", "di01-tekst",
      lambda root: set_attribute(root, "a" * 251 + ".csv"), True),
    M("tekst-bestandsnaam-256-chars", "di01-tekst",
      lambda root: set_attribute(root, "a" * 252 + ".csv"), False),
    M("tekst-bestandsnaam-removed", "di01-tekst", lambda root: set_attribute(root, None), False),
    M("du01-crossrefnummer-removed", "du01", remove(f"{SG}/crossRefnummer"), False),
    M("du01-crossrefnummer-uuid-v1", "du01", set_text(f"{SG}/crossRefnummer", V1_UUID), False),
    M("du01-crossref-functie-swapped", "du01", swap_with_next(f"{SG}/crossRefnummer"), False),
    M("du01-berichtcode-di01", "du01", set_text(f"{SG}/berichtcode", "Di01"), False),
    M("du01-gebruiker-added", "du01", append_child(f"{SG}/ontvanger", S, "gebruiker", "u1"),
      True),
    M("fo01-berichtcode-fo03", "fo01", set_text(f"{SG}/berichtcode", "Fo03"), False),
    M("fo01-plek-elders", "fo01", set_text(f"{BODY}/plek", "elders"), False),
    M("fo01-code-8-chars", "fo01", set_text(f"{BODY}/code", "IB210000"), False),
    M("fo01-omschrijving-201-chars", "fo01", set_text(f"{BODY}/omschrijving", "x" * 201), False),
    M("fo01-details-removed", "fo01", remove(f"{BODY}/details"), True),
    M("fo01-details-xml-any-child", "fo01",
      append_child(f"{BODY}/detailsXML", "urn:x", "anything", "1"), True),
    M("fo01-zender-organisatie-removed", "fo01", remove(f"{SG}/zender/organisatie"), True),
    M("fo01-crossref-plain-string", "fo01", set_text(f"{SG}/crossRefnummer", "JW315-1"), True),
    M("fo01-crossref-41-chars", "fo01", set_text(f"{SG}/crossRefnummer", "r" * 41), False),
    M("fo01-functie-added", "fo01", append_child(SG, S, "functie", "JW315"), False),
    M("bv03-berichtcode-bv01", "Bv03", set_text(f"{SG}/berichtcode", "Bv01"), False),
    M("bv03-crossref-removed", "Bv03", remove(f"{SG}/crossRefnummer"), False),
    M("bv03-body-added", "Bv03", lambda root: add_root_child(root, "body"), False),
    M("fo03-code-removed", "Fo03", remove(f"{BODY}/code"), False),
    M("fo03-plek-server", "Fo03", set_text(f"{BODY}/plek", "server"), True),
    M("fo03-berichtcode-unknown", "Fo03", set_text(f"{SG}/berichtcode", "Xx01"), False),
    M("fo03-root-renamed-fo02", "Fo03", lambda root: setattr(root, "tag", f"{{{S}}}Fo02Bericht"),
      False),
    M("fo03-root-fo01-and-code-fo01", "Fo03",
      both(lambda root: setattr(root, "tag", f"{{{S}}}Fo01Bericht"),
           set_text(f"{SG}/berichtcode", "Fo01")), True),
)
# fmt: on


def add_root_child(root: etree._Element, name: str) -> None:
    etree.SubElement(root, f"{{{S}}}{name}").text = "x"


def set_attribute(root: etree._Element, value: str | None) -> None:
    carrier = root.find(f"{{{G}}}parameters/{{{G}}}bericht/{{{G}}}tekstBestand")
    assert carrier is not None
    if value is None:
        del carrier.attrib["bestandsnaam"]
    else:
        carrier.set("bestandsnaam", value)


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_mutated_messages_get_identical_verdicts(mutation: Mutation) -> None:
    root = etree.fromstring(document(mutation.source))
    mutation.change(root)
    data = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    assert verdicts(data) == dict.fromkeys(SIDES, mutation.valid)


def test_enough_distinct_mutations_over_every_source_kind() -> None:
    names = [m.name for m in MUTATIONS]
    assert len(names) >= 40
    assert len(set(names)) == len(names)
    assert {m.source for m in MUTATIONS} == {"di01-xml", "di01-tekst", "du01", "fo01", "Bv03",
                                             "Fo03"}  # fmt: skip


def test_bad_base64_gets_one_verdict_per_engine_and_is_refused_when_read() -> None:
    """libxml2 does not check base64Binary lexically, xmlschema does: the two schema sets agree
    within each engine, and reading the payload refuses it whatever the engine said."""
    root = etree.fromstring(document("di01-xml"))
    set_text(f"{P}/bericht/xmlBestand", "@@@@")(root)
    data = etree.tostring(root)
    assert verdicts(data) == {
        "lxml/official": True,
        "lxml/ours": True,
        "xmlschema/official": False,
        "xmlschema/ours": False,
    }
    with pytest.raises(env.EnvelopeError) as refused:
        env.read_message(root)
    assert refused.value.code is env.ChainCode.ENVELOPE_INVALID
