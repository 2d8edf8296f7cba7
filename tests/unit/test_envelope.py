"""gateway.core.envelope: StUF-GGk envelopes read, checked against the payload, and built."""

from __future__ import annotations

import datetime as dt
import functools

import pytest
from lxml import etree

from gateway.core import envelope as env
from gateway.schemas import load_envelope_schema
from gateway.shipped import SHIPPED_ENVELOPE_SCHEMA
from tests.paths import EXAMPLES_DIR, GGK_DIR

REF = "0b9e6a55-2d1c-4f7e-9a41-52c5c2d7a001"
AT = env.tijdstip(dt.datetime(2026, 3, 2, 9, 30, 15, 250_000, tzinfo=dt.UTC))


@functools.cache
def schema() -> etree.XMLSchema:
    return load_envelope_schema(SHIPPED_ENVELOPE_SCHEMA)


def di01(payload: bytes, functie: str = "JW301", **changes: object) -> env.Envelope:
    stuurgegevens = env.Stuurgegevens(
        berichtcode=env.Berichtcode.DI01,
        zender=env.Systeem("0599", "Jeugd Applicatie"),
        ontvanger=env.Systeem("12345678", env.GGK_APPLICATION),
        referentienummer=REF,
        tijdstip_bericht=AT,
        functie=functie,
    )
    fields = {"stuurgegevens": stuurgegevens, "payload": payload} | changes
    return env.Envelope(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("message", ["JW301", "JW305", "JW315", "JW323"])
def test_each_ijw_example_wrapped_in_a_di01_validates_and_unwraps_byte_for_byte(
    message: str,
) -> None:
    payload = (EXAMPLES_DIR / f"{message}.xml").read_bytes()
    element = env.build_envelope(di01(payload, functie=message))
    assert env.schema_problems(element, schema()) == []
    back = env.read_message(etree.fromstring(etree.tostring(element)))
    assert isinstance(back, env.Envelope)
    assert back.payload == payload
    assert back.bestandsnaam is None
    assert back.stuurgegevens.functie == message


def test_a_du01_names_the_di01_it_answers_and_validates() -> None:
    payload = (EXAMPLES_DIR / "JW302.xml").read_bytes()
    original = di01(b"x").stuurgegevens
    stuurgegevens = env.Stuurgegevens(
        env.Berichtcode.DU01,
        zender=original.ontvanger,
        ontvanger=original.zender,
        referentienummer=env.new_referentienummer(),
        tijdstip_bericht=AT,
        cross_refnummer=original.referentienummer,
        functie="JW302",
    )
    element = env.build_envelope(env.Envelope(stuurgegevens, payload))
    assert env.schema_problems(element, schema()) == []
    back = env.read_message(element)
    assert back.stuurgegevens.cross_refnummer == REF
    with pytest.raises(ValueError, match="crossRefnummer"):
        env.build_envelope(env.Envelope(stuurgegevens.__class__(
            env.Berichtcode.DU01, original.zender, original.ontvanger, REF, AT, None, "JW302"
        ), payload))  # fmt: skip


def test_a_text_payload_keeps_its_file_name() -> None:
    element = env.build_envelope(di01(b"a;b\n", functie="Dummy", bestandsnaam="lijst_1.csv"))
    assert env.schema_problems(element, schema()) == []
    back = env.read_message(element)
    assert isinstance(back, env.Envelope)
    assert (back.payload, back.bestandsnaam) == (b"a;b\n", "lijst_1.csv")


def test_new_references_are_uuid_v4_and_a_seeded_source_repeats() -> None:
    assert env.UUID_V4.fullmatch(env.new_referentienummer())
    fixed = env.new_referentienummer(lambda n: bytes(range(n)))
    assert env.UUID_V4.fullmatch(fixed)
    assert fixed == env.new_referentienummer(lambda n: bytes(range(n)))


def test_tijdstip_is_dutch_local_time_to_the_millisecond() -> None:
    assert AT == "20260302103015250"  # 09:30 UTC is 10:30 in winter (CET)
    summer = env.tijdstip(dt.datetime(2026, 7, 1, 9, 0, tzinfo=dt.UTC))
    assert summer == "20260701110000000"


def test_bv03_and_fo03_answer_the_sender_naming_its_reference() -> None:
    asked = di01(b"x").stuurgegevens
    us = env.Systeem("0599", "ijw-gateway")
    bv03 = env.answer_stuurgegevens(env.Berichtcode.BV03, asked, us, env.new_referentienummer(), AT)
    assert (bv03.ontvanger, bv03.cross_refnummer) == (asked.zender, REF)
    element = env.build_acknowledgement(env.Acknowledgement(bv03))
    assert env.schema_problems(element, schema()) == []
    fo03 = env.answer_stuurgegevens(env.Berichtcode.FO03, asked, us, env.new_referentienummer(), AT)
    fault = env.Fault(fo03, env.ChainCode.PAYLOAD_INVALID, "client", "x" * 500, "d" * 2000)
    element = env.build_fault(fault)
    assert env.schema_problems(element, schema()) == []  # texts cut to the schema's lengths
    back = env.read_message(element)
    assert isinstance(back, env.Fault)
    assert (back.code, back.plek) == ("StUF055", "client")


def test_soap_wrapping_round_trips_and_a_fault_carries_the_fo03() -> None:
    element = env.build_envelope(di01(b"<x/>"))
    body = env.soap_body(env.soap_message(element), 10_000)
    assert env.berichtcode_of(body) is env.Berichtcode.DI01
    fo03 = env.build_fault(env.Fault(
        env.answer_stuurgegevens(env.Berichtcode.FO03, di01(b"").stuurgegevens,
                                 env.Systeem("0599", "gw1"), REF, AT),
        env.ChainCode.TRY_AGAIN, env.ChainCode.TRY_AGAIN.plek, "busy",
    ))  # fmt: skip
    fault = etree.fromstring(env.soap_fault(fo03, "busy"))
    assert fault.findtext(f".//{{{env.SOAP_NS}}}Fault/faultcode") == "soapenv:Server"
    assert fault.find(f".//detail/{{{env.STUF_NS}}}Fo03Bericht") is not None


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"not xml", env.ChainCode.ENVELOPE_INVALID),
        (b"<a/>", env.ChainCode.ENVELOPE_INVALID),
        (b'<!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>', env.ChainCode.ENVELOPE_INVALID),
        (b"<x>" + b"a" * 20_000 + b"</x>", env.ChainCode.TOO_LARGE),
    ],
    ids=["not-xml", "not-soap", "dtd", "too-large"],
)
def test_unreadable_requests_name_their_chain_code(raw: bytes, code: env.ChainCode) -> None:
    with pytest.raises(env.EnvelopeError) as refused:
        env.soap_body(raw, 10_000)
    assert refused.value.code is code


def test_a_payload_larger_than_libxml2s_text_cap_is_read() -> None:
    """The base64 of a 25 MB message is one text node of 33 MB (libxml2 stops at 10 MB)."""
    payload = b"<x>" + b"a" * (9 * 1024 * 1024) + b"</x>"
    raw = env.soap_message(env.build_envelope(di01(payload)))
    body = env.soap_body(raw, len(raw))
    read = env.read_message(body)
    assert isinstance(read, env.Envelope)
    assert read.payload == payload


def child(element: etree._Element, path: str) -> etree._Element:
    """A child of the stuurgegevens."""
    found = element.find(f"*/{{{env.STUF_NS}}}{path}")
    assert found is not None
    return found


def test_a_reference_that_is_no_uuid_v4_is_ib009_other_schema_faults_rin001() -> None:
    element = env.build_envelope(di01(b"x"))
    element.find(
        f"*/{{{env.STUF_NS}}}referentienummer"
    ).text = "9c0f7b90-5c69-11e5-a837-0800200c9a66"
    with pytest.raises(env.EnvelopeError) as refused:
        env.check_schema(element, schema())
    assert refused.value.code is env.ChainCode.REFERENCE_NOT_UUID4
    element = env.build_envelope(di01(b"x"))
    child(element, f"zender/{{{env.STUF_NS}}}applicatie").text = "ab"
    with pytest.raises(env.EnvelopeError) as refused:
        env.check_schema(element, schema())
    assert refused.value.code is env.ChainCode.ENVELOPE_INVALID


def test_schema_complaints_never_quote_a_bsn() -> None:
    element = env.build_envelope(di01(b"x"))
    child(element, "functie").text = "123456782" * 4
    problems = env.schema_problems(element, schema())
    assert problems
    assert "123456782" not in " ".join(problems)


def sg(berichtcode: env.Berichtcode = env.Berichtcode.DI01, functie: str = "JW301",
       zender: str = "0599", ontvanger: str = "12345678") -> env.Stuurgegevens:  # fmt: skip
    return env.Stuurgegevens(
        berichtcode, env.Systeem(zender, "app"), env.Systeem(ontvanger, "GGk"), REF, AT,
        functie=functie,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("stuurgegevens", "message_type", "code"),
    [
        (sg(), "JW301", None),
        (sg(env.Berichtcode.DU01, "JW302"), "JW302", None),
        (sg(functie="JW305"), "JW301", env.ChainCode.FUNCTIE_NOT_ALLOWED),
        (sg(env.Berichtcode.DU01), "JW301", env.ChainCode.BERICHTCODE_NOT_ALLOWED),
        (sg(functie="JW302"), "JW302", env.ChainCode.BERICHTCODE_NOT_ALLOWED),
        (sg(zender="0600"), "JW301", env.ChainCode.NOT_AUTHORISED),
        (sg(ontvanger="87654321"), "JW301", env.ChainCode.NOT_AUTHORISED),
        (sg(functie="anything"), None, None),
    ],
    ids=[
        "ok",
        "retour-ok",
        "functie",
        "du01-for-original",
        "di01-for-retour",
        "zender",
        "ontvanger",
        "unreadable-header",
    ],
)
def test_stuurgegevens_must_agree_with_the_payload_header(
    stuurgegevens: env.Stuurgegevens, message_type: str | None, code: env.ChainCode | None
) -> None:
    transmitter, destination = ("0599", "12345678")
    if code is None:
        env.check_against_header(stuurgegevens, message_type, transmitter, destination)
        return
    with pytest.raises(env.EnvelopeError) as refused:
        env.check_against_header(stuurgegevens, message_type, transmitter, destination)
    assert refused.value.code is code


def test_the_official_fo01_example_reads() -> None:
    root = etree.parse(str(GGK_DIR / "voorbeeldberichten" / "Fo01.xml")).getroot()
    env.check_schema(root, schema())
    fault = env.read_message(root)
    assert isinstance(fault, env.Fault)
    assert (fault.code, fault.stuurgegevens.cross_refnummer) == (
        "IB210",
        "9c0f7b90-5c69-11e5-a837-0800200c9a66",
    )
