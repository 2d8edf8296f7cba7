"""privacy.py: what is personal, and how findings lose the personal values they would quote."""

from __future__ import annotations

from lxml import etree

from gateway.core.privacy import (
    is_personal,
    personal_values,
    scrub_message,
    scrub_text,
    withhold_quoted_value,
)


def test_personal_by_local_name_in_any_spelling() -> None:
    """A local name, a Clark name, a prefixed name or a path with indexes: the last step decides."""
    for personal in (
        "Bsn",
        "{http://www.istandaarden.nl/ijw/3_2/basisschema/schema}Postcode",
        "ijw:Voornamen",
        "/Bericht/Client/Relaties/Relatie[2]/Contact/Telefoon/Telefoon01/Telefoonnummer",
        "/Bericht/Client/Geboortedatum/Datum",
    ):
        assert is_personal(personal), personal
    for not_personal in ("Geslacht", "/Bericht/Client", "LandCode", "Begindatum", "", None):
        assert not is_personal(not_personal), not_personal


def test_schema_messages_lose_the_quoted_value_also_with_quotes_in_it() -> None:
    """Facet and type messages keep the facet and its parameters, never the value."""
    pattern = withhold_quoted_value(
        "Element 'Achternaam': [facet 'pattern'] The value 'O'Brien ' is not accepted by the "
        "pattern '.*[^\\s].*'."
    )
    assert "Brien" not in pattern and "(withheld)" in pattern and ".*[^\\s].*" in pattern
    atomic = withhold_quoted_value(
        "Element 'Datum': '2011-02-30' is not a valid value of the atomic type 'LDT_Datum'."
    )
    assert atomic == (
        "Element 'Datum': the value (withheld) is not a valid value of the atomic type 'LDT_Datum'."
    )


def test_safety_net_withholds_whole_words_only_and_skips_short_values() -> None:
    """A personal value goes wherever it is a word; short values and parts of words stay."""
    values = {"Vreeswijkhuis", "12", "B", "123"}
    text = "Geslacht 'Vreeswijkhuis' is not in {'0', '1', '2'}; ToegewezenProduct[12] at 123"
    assert scrub_text(text, values) == (
        "Geslacht '(withheld)' is not in {'0', '1', '2'}; ToegewezenProduct[12] at 123"
    )
    assert scrub_text("Vreeswijkhuisweg 4", values) == "Vreeswijkhuisweg 4"


def test_values_are_read_from_personal_elements_in_any_namespace() -> None:
    """Namespaced or not, with blanks collapsed; code elements give no values."""
    root = etree.fromstring(
        b"<Bericht xmlns:i='urn:x'><Client><i:Achternaam> van  Dijk </i:Achternaam>"
        b"<Geslacht>1</Geslacht><Postcode>1234AB</Postcode></Client></Bericht>"
    )
    assert personal_values(root) == {"van  Dijk", "van Dijk", "1234AB"}
    message = scrub_message(
        "The name 'van Dijk' at 1234AB", "/Bericht/Client/Geslacht", {"van Dijk", "1234AB"}
    )
    assert message == "The name '(withheld)' at (withheld)"
