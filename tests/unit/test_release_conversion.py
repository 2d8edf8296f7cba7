"""Converting between iJw 2.3 and 3.2 (core/release_conversion.py), and a party's releases.

Every conversion is valid against the target release's reference schema and converts back into
the message it came from; what would lose or invent data is held, with the reason.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from lxml import etree

from gateway.config import load_config
from gateway.core.catalogue import MESSAGE_KINDS, kinds_in
from gateway.core.document import text
from gateway.core.errors import ConfigError
from gateway.core.release_conversion import FIELD_TABLES, NOT_CONVERTED, convert
from gateway.schemas import load_schema_set
from tests.paths import (
    EXAMPLES_DIR,
    EXAMPLES_DIR_23,
    OFFICIAL_XSD_DIR,
    OFFICIAL_XSD_DIR_23,
    OUR_XSD_DIR,
    OUR_XSD_DIR_23,
)

OURS = load_schema_set([OUR_XSD_DIR, OUR_XSD_DIR_23])
REFERENCE = load_schema_set([OFFICIAL_XSD_DIR, OFFICIAL_XSD_DIR_23])
EXAMPLES = {"2.3": EXAMPLES_DIR_23, "3.2": EXAMPLES_DIR}
OTHER = {"2.3": "3.2", "3.2": "2.3"}


def example(release: str, message_type: str) -> bytes:
    return (EXAMPLES[release] / f"{message_type}.xml").read_bytes()


def canonical(raw: bytes) -> bytes:
    """The message without layout, for comparing content."""
    parser = etree.XMLParser(remove_blank_text=True)
    return etree.tostring(etree.fromstring(raw, parser), method="c14n2", strip_text=True)


def without(raw: bytes, name: str) -> bytes:
    """The message with every ``name`` element (and its content) left out."""
    element = rb"\s*<(\w+):" + name.encode() + rb">.*?</\1:" + name.encode() + rb">"
    changed, count = re.subn(element, b"", raw, flags=re.DOTALL)
    assert count > 0, name
    return changed


def reference_valid(release: str, message_type: str, raw: bytes) -> bool:
    schema = REFERENCE.get(release, message_type)
    assert schema is not None
    valid, _ = schema.check(etree.ElementTree(etree.fromstring(raw)))
    return valid


# The official examples, made to hold only fields both releases have.
CONVERTIBLE = {
    ("2.3", "JW305"): without(example("2.3", "JW305"), "BeschikkingNummer"),
    ("2.3", "JW306"): example("2.3", "JW306"),
    ("2.3", "JW307"): without(example("2.3", "JW307"), "BeschikkingNummer"),
    ("2.3", "JW308"): example("2.3", "JW308"),
    ("2.3", "JW316"): example("2.3", "JW316"),
    ("3.2", "JW305"): example("3.2", "JW305"),
    ("3.2", "JW306"): example("3.2", "JW306"),
    ("3.2", "JW307"): example("3.2", "JW307"),
    ("3.2", "JW308"): example("3.2", "JW308"),
    ("3.2", "JW315"): without(example("3.2", "JW315"), "ZorgverlenerCode"),
}


@pytest.mark.parametrize(("source", "message_type"), sorted(CONVERTIBLE))
def test_a_conversion_is_valid_in_the_target_release_and_converts_back(
    source: str, message_type: str
) -> None:
    raw = CONVERTIBLE[source, message_type]
    target = OTHER[source]
    converted = convert(raw, source, target, OURS)
    assert converted.hold is None and converted.xml is not None
    assert reference_valid(target, message_type, converted.xml)
    assert not reference_valid(source, message_type, converted.xml)
    back = convert(converted.xml, target, source, OURS)
    assert back.xml is not None, back.hold
    assert canonical(back.xml) == canonical(raw)


def test_the_header_follows_the_target_release() -> None:
    converted = convert(CONVERTIBLE["2.3", "JW306"], "2.3", "3.2", OURS)
    assert converted.xml is not None
    header = etree.fromstring(converted.xml).find("{*}Header")
    assert (text(header, "BerichtVersie"), text(header, "BerichtSubversie")) == ("3", "2")
    assert text(header, "XsdVersie/BerichtXsdVersie") == "1.0.0"
    assert text(header, "XsdVersieRetour/BasisschemaXsdVersie") == "1.0.0"
    back = convert(converted.xml, "3.2", "2.3", OURS)
    assert back.xml is not None and b"XsdVersie" not in back.xml


def test_client_status_is_the_one_status_of_every_line() -> None:
    converted = convert(example("3.2", "JW305"), "3.2", "2.3", OURS)
    assert converted.xml is not None
    root = etree.fromstring(converted.xml)
    lines = root.findall("{*}Client/{*}StartProducten/{*}StartProduct")
    assert {text(line, "StatusAanlevering") for line in lines} == {
        text(root, "Client/StatusAanlevering")
    }


@pytest.mark.parametrize(
    ("source", "message_type", "raw", "why"),
    [
        ("2.3", "JW305", example("2.3", "JW305"), "3.2 has no field for StartProducten/"),
        ("2.3", "JW307", example("2.3", "JW307"), "BeschikkingNummer"),
        ("3.2", "JW315", example("3.2", "JW315"), "Verwijzer/ZorgverlenerCode"),
        (
            "3.2",
            "JW305",
            without(example("3.2", "JW305"), "Product"),
            "2.3 requires StartProducten/StartProduct/Product",
        ),
        (
            "2.3",
            "JW305",
            without(example("2.3", "JW305"), "BeschikkingNummer").replace(
                b"<jw305:StatusAanlevering>1</jw305:StatusAanlevering>\n\t\t<jw305:Start",
                b"<jw305:StatusAanlevering>2</jw305:StatusAanlevering>\n\t\t<jw305:Start",
            ),
            "Client/StatusAanlevering differs",
        ),
        # A code the target's list lacks (Frequentie 3 is 2.3 only): the target schema says so.
        ("2.3", "JW315", example("2.3", "JW315"), "not valid against the 3.2 schema"),
        # A retourcode 2.3 does not have.
        (
            "3.2",
            "JW316",
            without(example("3.2", "JW316"), "ZorgverlenerCode"),
            "not valid against the 2.3 schema",
        ),
    ],
)
def test_what_would_be_lost_or_invented_is_held_with_the_reason(
    source: str, message_type: str, raw: bytes, why: str
) -> None:
    converted = convert(raw, source, OTHER[source], OURS)
    assert converted.xml is None
    assert converted.hold is not None
    assert converted.hold.startswith(f"release: {message_type} in iJw {source}")
    assert why in converted.hold


@pytest.mark.parametrize("message_type", sorted(NOT_CONVERTED))
def test_types_without_a_field_table_are_held(message_type: str) -> None:
    source = MESSAGE_KINDS[message_type].releases[0]
    converted = convert(example(source, message_type), source, OTHER[source], OURS)
    assert converted.xml is None
    assert NOT_CONVERTED[message_type] in (converted.hold or "")


def test_every_message_type_is_in_the_field_table_or_said_not_to_convert() -> None:
    every = {kind.name for release in ("2.3", "3.2") for kind in kinds_in(release)}
    assert every == set(FIELD_TABLES) | set(NOT_CONVERTED)
    assert not set(FIELD_TABLES) & set(NOT_CONVERTED)
    assert "JW323" in NOT_CONVERTED and "JW303" in NOT_CONVERTED


PARTY = """
[[parties]]
id = "provider"
role = "aanbieder"
identity = "12345678"
"""


def test_a_party_speaks_its_releases_by_date(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        PARTY + 'release = [{ release = "3.2", from = 2026-07-01 }, { release = "2.3" }]\n',
        encoding="utf-8",
    )
    [party] = load_config(path, {}).parties
    assert party.release_on(dt.date(2026, 6, 30)) == "2.3"
    assert party.release_on(dt.date(2026, 7, 1)) == "3.2"
    path.write_text(PARTY, encoding="utf-8")
    [unstated] = load_config(path, {}).parties
    assert unstated.release_on(dt.date(2026, 7, 1)) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"3.3"', "release"),
        ('[{ release = "2.3" }, { release = "3.2" }]', "only one step may leave out 'from'"),
        (
            '[{ release = "2.3", from = 2026-01-01 }, { release = "3.2", from = 2026-01-01 }]',
            "two steps start on the same date",
        ),
    ],
)
def test_a_wrong_release_stops_the_configuration(tmp_path: Path, value: str, expected: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(PARTY + f"release = {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(expected)):
        load_config(path, {})
