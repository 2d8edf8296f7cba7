"""Provider-side checks on a JW325 (TR337, TR366, TR367, TR371, TR376) against the claim answered.

Every JW325 here is built by the gateway's own retour builder from a JW323 and the findings of
its validation, so a clean answer is exactly what a correct gemeente sends; each negative test
then changes one value of that answer.
"""

from __future__ import annotations

import datetime as dt
import itertools

from lxml import etree

from gateway.core.document import MessageDocument
from gateway.core.report import Level, ValidationReport
from gateway.core.retour import RETOUR_CLASSES, RetourIdentity, build_retour
from gateway.core.rules.provider import PROVIDER_RULES, warnings_only
from gateway.core.rules.registry import REGISTRY
from gateway.core.validate import validate
from tests.unit.dossier.scenario import (
    AANBIEDER,
    GEMEENTE,
    Dossier,
    Line,
    declaratie,
    toewijzing,
    vot,
)
from tests.unit.rules.mutate import Mutable, official_schema_set

APRIL = ("2026-04-01", "2026-04-30")
HEADER = "/Bericht/Header"
ANTWOORD = "/Bericht/DeclaratieAntwoord"
CLIENT = f"{ANTWOORD}/Clienten/Client"
PRESTATIE = f"{CLIENT}/Prestaties/Prestatie"
_answer_ids = itertools.count(1)


def allocated() -> Dossier:
    """VOT answered by the JW301 example (300201: 55A11, hours; 300202: 55A12, dagdelen)."""
    return Dossier().accept_all(vot(), toewijzing())


def answer_to(report: ValidationReport) -> Mutable:
    """The JW325 the gemeente sends for a validated JW323."""
    assert isinstance(report.document, MessageDocument)
    identity = RetourIdentity(f"A{next(_answer_ids)}", dt.date(2026, 5, 12))
    raw = build_retour(report.document, report.findings, identity, official_schema_set())
    return Mutable(etree.ElementTree(etree.fromstring(raw)))


def partly_rejected() -> tuple[Dossier, Mutable]:
    """April claim D1: R1 (300201) accepted, R2 (unknown assignment 555, 9338) rejected."""
    dossier = allocated()
    claim = declaratie(
        "D1", APRIL, "2026-05-05", Line("R1", *APRIL), Line("R2", *APRIL, toewijzing="555")
    )
    report = dossier.check(claim)
    assert {f.rule for f in report.findings} == {"TR338"}
    dossier.accept(claim, rejected_lines=("R2",))
    return dossier, answer_to(report)


def _class_path(path: str | None) -> str:
    classes = RETOUR_CLASSES["JW325"]
    steps = (path or HEADER).strip("/").split("/")
    for end in range(len(steps), 0, -1):
        if steps[end - 1].partition("[")[0] in classes:
            return "/" + "/".join(steps[:end])
    return HEADER


def codes(dossier: Dossier, answer: Mutable) -> set[tuple[str, str, str]]:
    """(rule, retourcode, class path) of every finding on a JW325."""
    report = validate(answer.to_bytes(), official_schema_set(), dossier.context())
    assert report.level in (Level.OK, Level.STATE), [(f.rule, f.message) for f in report.findings]
    return {(f.rule, f.retourcode or "", _class_path(f.path)) for f in report.findings}


def test_provider_rules_are_registered_as_level_b_on_jw325() -> None:
    """All five rules exist, need the history and cover only JW325."""
    for code in PROVIDER_RULES:
        rule = REGISTRY[code]
        assert rule.message_types == frozenset({"JW325"})
        assert rule.needs == frozenset({"history"})
    assert {REGISTRY[c].retourcode for c in ("TR366", "TR367")} == {"9366", "9367"}
    assert {REGISTRY[c].retourcode for c in ("TR337", "TR371", "TR376")} == {""}


def test_clean_answer_to_a_fully_accepted_claim() -> None:
    """8001 answer to a clean claim: no findings."""
    dossier = allocated()
    claim = declaratie("D1", APRIL, "2026-05-05", Line("R1", *APRIL))
    report = dossier.check(claim)
    assert report.ok
    dossier.accept(claim)
    answer = answer_to(report)
    assert answer.text("DeclaratieAntwoord/RetourCodes/RetourCode") == "8001"
    assert codes(dossier, answer) == set()


def test_clean_answer_to_a_partly_accepted_claim() -> None:
    """The rejected line R2 comes back unchanged with 9338: no findings."""
    dossier, answer = partly_rejected()
    assert (
        answer.text(
            "DeclaratieAntwoord/Clienten/Client/Prestaties/Prestatie/RetourCodes/RetourCode"
        )
        == "9338"
    )
    assert codes(dossier, answer) == set()


def test_clean_answer_to_a_wholly_rejected_claim() -> None:
    """A claim rejected on the Declaratie class (9333) is still remembered as submitted."""
    dossier = allocated()
    dossier.accept(declaratie("D1", APRIL, "2026-05-05", Line("R1", *APRIL)))
    again = declaratie(
        "D1", ("2026-05-01", "2026-05-31"), "2026-06-03", Line("R5", "2026-05-01", "2026-05-31")
    )
    report = dossier.check(again)
    assert {f.rule for f in report.findings} == {"TR333"}
    assert isinstance(report.document, MessageDocument)
    dossier.history.remember_submission(report.document)
    answer = answer_to(report)
    assert answer.text("DeclaratieAntwoord/RetourCodes/RetourCode") == "9333"
    assert codes(dossier, answer) == set()


def test_tr337_unknown_declaratie_identificatie() -> None:
    """TR337 (no code) on the header when the id names no submitted JW323."""
    dossier, answer = partly_rejected()
    answer.set("Header/DeclaratieIdentificatie/Identificatie", "UNKNOWN1")
    assert codes(dossier, answer) == {("TR337", "", HEADER)}


def test_tr337_other_dagtekening() -> None:
    """TR337 when the id matches but the date is not the claim's."""
    dossier, answer = partly_rejected()
    answer.set("Header/DeclaratieIdentificatie/Dagtekening", "2026-05-06")
    assert codes(dossier, answer) == {("TR337", "", HEADER)}


def test_tr337_claim_sent_to_another_gemeente() -> None:
    """The claim is looked up for the answering gemeente only."""
    dossier, answer = partly_rejected()
    answer.set("Header/Afzender", "0150")
    assert codes(dossier, answer) == {("TR337", "", HEADER)}


def test_tr371_xsd_version_differs() -> None:
    """TR371 (no code) on the header."""
    dossier, answer = partly_rejected()
    answer.set("Header/XsdVersieDeclaratie/BerichtXsdVersie", "1.0.1")
    assert codes(dossier, answer) == {("TR371", "", HEADER)}


def test_tr376_declaratienummer_differs() -> None:
    """TR376 (no code) on the DeclaratieAntwoord."""
    dossier, answer = partly_rejected()
    answer.set("DeclaratieAntwoord/DeclaratieNummer", "D9")
    assert codes(dossier, answer) == {("TR376", "", ANTWOORD)}


def test_tr366_returned_line_was_not_claimed() -> None:
    """9366 on the Prestatie whose ReferentieNummer the claim does not have."""
    dossier, answer = partly_rejected()
    answer.set(
        "DeclaratieAntwoord/Clienten/Client/Prestaties/Prestatie/ProductReferentie/"
        "ReferentieNummer",
        "R77",
    )
    assert codes(dossier, answer) == {("TR366", "9366", PRESTATIE)}


def test_tr367_volume_differs() -> None:
    """9367 on the Prestatie when GeleverdVolume is not the claimed one."""
    dossier, answer = partly_rejected()
    answer.set("DeclaratieAntwoord/Clienten/Client/Prestaties/Prestatie/GeleverdVolume", "9")
    assert codes(dossier, answer) == {("TR367", "9367", PRESTATIE)}


def test_tr367_tariff_differs() -> None:
    """9367 when ProductTarief is not the claimed one."""
    dossier, answer = partly_rejected()
    answer.set("DeclaratieAntwoord/Clienten/Client/Prestaties/Prestatie/ProductTarief", "1300")
    assert codes(dossier, answer) == {("TR367", "9367", PRESTATIE)}


def test_tr367_returned_under_another_client() -> None:
    """9367 on the Client when the line comes back under another (valid) BSN."""
    dossier, answer = partly_rejected()
    answer.set("DeclaratieAntwoord/Clienten/Client/Bsn", "999900018")
    assert codes(dossier, answer) == {("TR367", "9367", CLIENT)}


def test_tr367_message_never_shows_the_bsn() -> None:
    """The finding names the element, not the values."""
    dossier, answer = partly_rejected()
    answer.set("DeclaratieAntwoord/Clienten/Client/Bsn", "999900018")
    report = validate(answer.to_bytes(), official_schema_set(), dossier.context())
    assert all("99990001" not in f.message for f in report.findings)


def test_without_history_the_checks_do_not_run() -> None:
    """`gateway validate` (no history) stays in-message only."""
    _, answer = partly_rejected()
    answer.set("Header/DeclaratieIdentificatie/Identificatie", "UNKNOWN1")
    assert validate(answer.to_bytes(), official_schema_set()).ok


def test_warnings_only() -> None:
    """Only provider findings on a JW325 count as warnings; any other finding does not."""
    dossier, answer = partly_rejected()
    answer.set("DeclaratieAntwoord/DeclaratieNummer", "D9")
    report = validate(answer.to_bytes(), official_schema_set(), dossier.context())
    assert warnings_only(report)
    assert not warnings_only(validate(answer.to_bytes(), official_schema_set()))
    answer.set("Header/BerichtIdentificatie/Dagtekening", "2030-01-01")
    future = Dossier(history=dossier.history, today=dt.date(2026, 5, 12))
    report = validate(answer.to_bytes(), official_schema_set(), future.context())
    assert {"TR135", "TR376"} <= set(report.rule_codes)
    assert not warnings_only(report)


def test_submitted_declaration_keeps_every_line() -> None:
    """The history returns the claim as submitted: R2 was rejected but is there."""
    dossier, answer = partly_rejected()
    identificatie = answer.text("Header/DeclaratieIdentificatie/Identificatie") or ""
    claim = dossier.history.submitted_declaration(AANBIEDER, GEMEENTE, identificatie)
    assert claim is not None
    assert (claim.aanbieder, claim.gemeente, claim.declaratie_nummer) == (AANBIEDER, GEMEENTE, "D1")
    assert [s.line.referentie_nummer for s in claim.lines] == ["R1", "R2"]
    assert [s.tarief for s in claim.lines] == [1250, 1250]
    assert claim.totaal == 2 * 8 * 1250
    assert dossier.history.claim_line(AANBIEDER, GEMEENTE, "R2") is None
