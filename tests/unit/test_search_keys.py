"""Search key extraction from raw bytes: one pass, each kind with its own length limit."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from gateway.store.base import KeyKind
from gateway.store.search import extract_keys
from tests.pseudonyms import TEST_PSEUDONYMS

BSN = "123456782"


def test_kinds_order_prefixes_and_duplicates() -> None:
    raw = (
        b"<ns:Bericht><ns:DeclaratieNummer>D-1</ns:DeclaratieNummer>"
        b"<ToewijzingNummer> T1 </ToewijzingNummer><ns2:Bsn>" + BSN.encode() + b"</ns2:Bsn>"
        b"<ToewijzingNummer>T2</ToewijzingNummer><Bsn>" + BSN.encode() + b"</Bsn>"
        b"<ToewijzingNummer>T1</ToewijzingNummer></ns:Bericht>"
    )
    assert extract_keys(raw, TEST_PSEUDONYMS) == [
        (KeyKind.CLIENT, TEST_PSEUDONYMS.client_key(BSN)),
        (KeyKind.TOEWIJZING, "T1"),
        (KeyKind.TOEWIJZING, "T2"),
        (KeyKind.DECLARATIE, "D-1"),
    ]


def test_values_over_their_kind_limit_or_not_a_bsn_are_skipped() -> None:
    raw = (
        b"<Bsn>1234567890</Bsn><Bsn>12345678</Bsn><Bsn>12345678x</Bsn>"
        b"<ToewijzingNummer>" + b"7" * 21 + b"</ToewijzingNummer>"
        b"<ToewijzingNummer>" + b"8" * 20 + b"</ToewijzingNummer>"
        b"<DeclaratieNummer>" + b"9" * 41 + b"</DeclaratieNummer>"
        b"<DeclaratieNummer>" + b"6" * 40 + b"</DeclaratieNummer>"
    )
    assert extract_keys(raw, TEST_PSEUDONYMS) == [
        (KeyKind.TOEWIJZING, "8" * 20),
        (KeyKind.DECLARATIE, "6" * 40),
    ]


def _one_pattern_per_kind(raw: bytes) -> list[tuple[KeyKind, str]]:
    """The former implementation (three scans), as the reference."""
    tag = rb"<(?:[\w.-]+:)?%s>\s*([^<\s]{1,%d})\s*</"
    found: dict[tuple[KeyKind, str], None] = {}
    for match in re.finditer(tag % (b"Bsn", 9), raw):
        bsn = match.group(1).decode("ascii", "replace")
        if len(bsn) == 9 and bsn.isdigit():
            found[(KeyKind.CLIENT, TEST_PSEUDONYMS.client_key(bsn))] = None
    for name, limit, kind in (
        (b"ToewijzingNummer", 20, KeyKind.TOEWIJZING),
        (b"DeclaratieNummer", 40, KeyKind.DECLARATIE),
    ):
        for match in re.finditer(tag % (name, limit), raw):
            found[(kind, match.group(1).decode("utf-8", "replace"))] = None
    return list(found)


_element = st.tuples(
    st.sampled_from([b"Bsn", b"ToewijzingNummer", b"DeclaratieNummer", b"Other"]),
    st.sampled_from([b"", b"ns:", b"a.b-c:"]),
    st.text(alphabet="0123456789AZ- é<\t", min_size=0, max_size=45).map(str.encode),
)


@given(st.lists(_element, max_size=12))
def test_one_pass_finds_what_three_scans_found(elements: list[tuple[bytes, bytes, bytes]]) -> None:
    raw = b"".join(b"<%s%s>%s</%s%s>" % (p, n, v, p, n) for n, p, v in elements)
    assert extract_keys(raw, TEST_PSEUDONYMS) == _one_pattern_per_kind(raw)
