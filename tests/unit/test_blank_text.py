"""Validation on a tree without blank text reports exactly what it reported with it.

``validate`` parses with libxml2's keepBlanks=0 where the bytes allow it
(``xmlsafe._blank_text_droppable``) and falls back to the blank-keeping parse when a message
fails. The reference below is the same ``validate`` with that guard forced off, which is the
code before the change: every report field must be the same. Bytes written from a tree
(retours, ``show --xml``) must not change either.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway.cli.show import masked_xml
from gateway.core import xmlsafe
from gateway.core.document import MessageDocument
from gateway.core.privacy import is_personal
from gateway.core.report import Level, ValidationReport
from gateway.core.retour import RetourIdentity, build_retour_for_report
from gateway.core.rules import RuleContext
from gateway.core.validate import identify, validate, xsd_findings
from gateway.core.xmlsafe import parse_safely
from gateway.schemas import load_schema_set
from tests.paths import EXAMPLES_DIR, OFFICIAL_XSD_DIR

SCHEMAS = load_schema_set([OFFICIAL_XSD_DIR])
CONTEXT = RuleContext(today=dt.date(2026, 11, 23))
JW301 = (EXAMPLES_DIR / "JW301.xml").read_bytes()
_BSN = b"<jw301:Bsn>999900006</jw301:Bsn>"
ORIGINALS = ["JW301", "JW305", "JW307", "JW315", "JW317", "JW319", "JW323"]


def _in_bsn(content: bytes) -> bytes:
    assert JW301.count(_BSN) == 1
    return JW301.replace(_BSN, b"<jw301:Bsn>" + content + b"</jw301:Bsn>")


def _long_reference_after_crlf() -> bytes:
    """JW323 with a ReferentieNummer (xs:string, maxLength 20, whitespace kept) of a blank, a
    line break and 19 characters: 21 characters, one too many. libxml2's keepBlanks=0 drops
    the blank before the CR and would read 20."""
    raw = (EXAMPLES_DIR / "JW323.xml").read_bytes()
    old = b"<ijw:ReferentieNummer>RN001<"
    assert raw.count(old) == 1
    return raw.replace(old, b"<ijw:ReferentieNummer> \r\n" + b"R" * 19 + b"<")


def _without_declaration(raw: bytes) -> bytes:
    return raw.split(b"?>", 1)[1].lstrip()


# (name, bytes, whether the blank-dropping parser may take them)
CASES = [
    ("as shipped (CRLF)", JW301, True),
    ("LF line ends", JW301.replace(b"\r\n", b"\n"), True),
    (
        "one line",
        etree.tostring(etree.fromstring(JW301, etree.XMLParser(remove_blank_text=True))),
        True,
    ),
    ("blank+comment in Bsn", _in_bsn(b" <!--x-->999900006"), False),
    ("blank+CDATA in Bsn", _in_bsn(b" <![CDATA[999900006]]>"), False),
    ("blank+PI in Bsn", _in_bsn(b" <?x y?>999900006"), False),
    ("comment+blank in Bsn", _in_bsn(b"<!--x--> 999900006"), False),
    ("blank+element in Bsn", _in_bsn(b" <jw301:X/>999900006"), True),
    ("element+blank in Bsn", _in_bsn(b"999900006<jw301:X/> "), True),
    ("blank only in Bsn", _in_bsn(b"  "), True),
    ("blank+charref in Bsn", _in_bsn(b" &#32;999900006"), True),
    ("blank+CRLF in Bsn", _in_bsn(b"  \r\n999900006"), False),
    ("CRLF+blank+CRLF in Bsn", _in_bsn(b"\r\n  \r\n999900006"), False),
    ("tab+CR in Bsn", _in_bsn(b"\t\r999900006"), False),
    ("CRLF only in Bsn", _in_bsn(b"\r\n"), True),
    ("Bsn fails the eleven-proof", _in_bsn(b"123456789"), True),
    ("CRLF+Bsn failing the eleven-proof", _in_bsn(b"\r\n123456789"), True),
    ("blank+CRLF+Bsn failing the eleven-proof", _in_bsn(b" \r\n123456789"), False),
    ("blank line between elements", JW301.replace(b"\r\n", b"\r\n\r\n", 5), False),
    ("blanks at line ends", JW301.replace(b">\r\n", b">  \r\n"), False),
    ("blank+CRLF before a long ReferentieNummer", _long_reference_after_crlf(), False),
    ("question mark in text", JW301.replace(b"999900006<", b"99990000?<", 1), False),
    (
        "UCS-4 without declaration, comment in Bsn",
        _without_declaration(_in_bsn(b" <!--x-->999900006")).decode().encode("utf-32-le"),
        False,
    ),
    ("truncated", JW301[: len(JW301) // 2], True),
]


def _reference(raw: bytes, monkeypatch: pytest.MonkeyPatch) -> ValidationReport:
    """What validation said before the change: the blank-keeping parse for every message."""
    with monkeypatch.context() as patched:
        patched.setattr(xmlsafe, "_blank_text_droppable", lambda raw, markup: False)
        report = validate(raw, SCHEMAS, CONTEXT)
    assert not parse_safely(raw, drop_blank_text=False).blank_text_dropped
    return report


def _fields(report: ValidationReport) -> tuple[object, ...]:
    return (report.level, report.message_type, report.release, report.findings)


@pytest.mark.parametrize(("raw", "droppable"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_report_is_the_same_with_and_without_blank_text(
    raw: bytes, droppable: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Level, type, release and every field of every finding (rule, message, retourcode,
    path, line, column, level) match the blank-keeping validation."""
    assert parse_safely(raw, drop_blank_text=True).blank_text_dropped is droppable
    assert _fields(validate(raw, SCHEMAS, CONTEXT)) == _fields(_reference(raw, monkeypatch))


def test_the_cases_reach_every_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The edge cases are not all refused at one layer, so the comparison means something."""
    levels = {_reference(raw, monkeypatch).level for _, raw, _ in CASES}
    assert {Level.OK, Level.XSD, Level.MALFORMED} <= levels
    assert levels & {Level.RULES, Level.STATE, Level.EXTERNAL}


def test_a_failing_blank_dropped_tree_is_judged_on_the_blank_keeping_tree() -> None:
    """``<Bsn> <X/>...</Bsn>`` is XSD-invalid either way, but libxml2 words it differently
    on the two trees; the report carries the blank-keeping tree's findings."""
    raw = _in_bsn(b" <jw301:X/>999900006")
    dropped = parse_safely(raw, drop_blank_text=True)
    kept = parse_safely(raw)
    assert dropped.blank_text_dropped and dropped.tree is not None and kept.tree is not None
    on_dropped, on_kept = identify(dropped.tree, SCHEMAS), identify(kept.tree, SCHEMAS)
    assert isinstance(on_dropped, MessageDocument) and isinstance(on_kept, MessageDocument)
    dropped_findings, kept_findings = xsd_findings(on_dropped), xsd_findings(on_kept)
    assert dropped_findings and kept_findings and dropped_findings != kept_findings
    report = validate(raw, SCHEMAS, CONTEXT)
    assert report.findings == kept_findings
    assert report.document is not None
    assert next(el.text for el in report.document.root.iter("{*}Bsn")) == " "


def test_a_valid_message_is_checked_on_the_tree_without_blank_text() -> None:
    """The point of it all: an ordinary message's document has no whitespace-only tails."""
    report = validate(JW301, SCHEMAS, CONTEXT)
    assert report.document is not None
    tails = [el.tail for el in report.document.root.iter() if el.tail]
    assert tails == []
    with_blanks = parse_safely(JW301).tree
    assert with_blanks is not None
    assert any(el.tail for el in with_blanks.getroot().iter())


def test_without_the_cr_condition_a_verdict_would_change(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CR condition of the guard is needed: a guard without it (comments, CDATA, PIs and
    NUL only) would let a too-long ReferentieNummer through."""
    raw = _long_reference_after_crlf()
    before = _reference(raw, monkeypatch)
    assert before.level is Level.XSD and "maxLength" in before.findings[0].message
    assert validate(raw, SCHEMAS, CONTEXT).level is Level.XSD
    with monkeypatch.context() as patched:
        patched.setattr(xmlsafe, "_blank_text_droppable", lambda raw, markup: not markup)
        assert validate(raw, SCHEMAS, CONTEXT).level is Level.OK


# -- the guard, against libxml2 itself ------------------------------------------------------

_KEEP = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
_DROP = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, remove_blank_text=True
)
_TOKENS = [
    b" ", b"\t", b"\n", b"\r", b"\r\n", b"x", b"\xc3\xa9", b"&#32;", b"&amp;", b"<c/>",
    b"<c> \r\n</c>", b"<c>\r\n <d/>\r\n</c>", b"<!--c-->", b"<![CDATA[ ]]>", b"<?p q?>",
]  # fmt: skip


def _whitespace_only(value: str | None) -> bool:
    return value is None or not value.strip(" \t\r\n")


def _same_meaning(kept: etree._Element, dropped: etree._Element) -> bool:
    """Every element without element children has the same text; elsewhere only
    whitespace-only text may go (the XSD and the rules see no difference)."""
    pairs = list(zip(kept.iter(), dropped.iter(), strict=True))
    for before, after in pairs:
        if before.tag != after.tag or _whitespace_only(before.tail) != _whitespace_only(after.tail):
            return False
        has_elements = any(isinstance(child.tag, str) for child in before)
        if not has_elements and before.text != after.text:
            return False
        if has_elements and (before.text or "").strip() != (after.text or "").strip():
            return False
    return True


def _documents(content: bytes) -> list[bytes]:
    return [
        b"<a><b>" + content + b"</b></a>",  # a leaf's text
        b"<a><b>q</b>" + content + b"<e/></a>",  # a tail between elements
        b"<a>" + content + b"<b/></a>",  # the start of an element with children
    ]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_TOKENS), min_size=1, max_size=8))
def test_the_guard_admits_only_bytes_whose_meaning_survives(tokens: list[bytes]) -> None:
    for raw in _documents(b"".join(tokens)):
        if xmlsafe._blank_text_droppable(raw, b"<!" in raw):
            kept, dropped = etree.fromstring(raw, _KEEP), etree.fromstring(raw, _DROP)
            assert _same_meaning(kept, dropped), raw


@pytest.mark.parametrize(
    "content",
    [b" <!--x-->1", b" <![CDATA[1]]>", b" <?p q?>1", b"  \r\n1", b"\r\n  \r\n1", b"\t\r1"],
)
def test_the_guard_refuses_each_way_libxml2_cuts_a_leaf(content: bytes) -> None:
    """Each of these loses leading text of a leaf under keepBlanks=0 (so the guard is
    needed) and is refused by it."""
    raw = b"<a><b>" + content + b"</b></a>"
    assert not _same_meaning(etree.fromstring(raw, _KEEP), etree.fromstring(raw, _DROP))
    assert not xmlsafe._blank_text_droppable(raw, b"<!" in raw)


# -- bytes written from a tree ----------------------------------------------------------------


@pytest.mark.parametrize("name", ORIGINALS)
def test_retours_are_byte_identical(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Retours copy leaf text and re-indent: the tree without blanks gives the same bytes."""
    raw = (EXAMPLES_DIR / f"{name}.xml").read_bytes()
    assert parse_safely(raw, drop_blank_text=True).blank_text_dropped
    identity = RetourIdentity("RET-0001", dt.date(2026, 11, 23))
    ours = validate(raw, SCHEMAS, CONTEXT)
    assert ours.level is not Level.XSD
    before = build_retour_for_report(_reference(raw, monkeypatch), identity, SCHEMAS)
    assert build_retour_for_report(ours, identity, SCHEMAS) == before


@pytest.mark.parametrize("name", ["JW301", "JW315", "JW323", "JW320"])
def test_show_xml_keeps_the_layout(name: str) -> None:
    """``gateway show --xml`` prints the message as sent (line breaks, indentation), with
    only the personal elements masked."""
    raw = (EXAMPLES_DIR / f"{name}.xml").read_bytes()
    shown = masked_xml(raw)
    original, printed = etree.fromstring(raw), etree.fromstring(shown.encode())
    assert [el.tail for el in printed.iter()] == [el.tail for el in original.iter()]
    for before, after in zip(original.iter(), printed.iter(), strict=True):
        if is_personal(str(before.tag)) and (before.text or "").strip():
            assert after.text != before.text
        else:
            assert after.text == before.text
