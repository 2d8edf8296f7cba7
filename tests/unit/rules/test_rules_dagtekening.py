"""Dates that may not lie after the message's Dagtekening: TR134 and TR137.

Every negative case changes one official example so that it stays XSD-valid and yields exactly
the rules under test (retourcode 0001); every positive case puts the date on the Dagtekening
itself, the latest day allowed.
"""

from __future__ import annotations

import datetime as dt

import pytest

from gateway.core.rules import REGISTRY, RuleLevel
from gateway.core.rules.dagtekening import NOT_AFTER_DAGTEKENING, PERIOD_ENDED_BY_DAGTEKENING
from tests.unit.rules.mutate import assert_only, load_example

DAGTEKENING = "Header/BerichtIdentificatie/Dagtekening"

#: (message, path of the date) per element kind. Of the retours only the JW316 example carries
#: a client; the official JW302, JW306 and JW308 examples are header-only.
TR134_DATES = [
    ("JW301", "Client/Geboortedatum/Datum"),
    ("JW316", "Client/Geboortedatum/Datum"),
    ("JW301", "Client/ToegewezenProducten/ToegewezenProduct[1]/Toewijzingsdatum"),
    ("JW305", "Client/StartProducten/StartProduct[1]/Begindatum"),
    ("JW307", "Client/StopProducten/StopProduct[1]/Einddatum"),
]

DECLARATION_LINE = "Declaratie/Clienten/Client[1]/Prestaties/Prestatie[1]"
ANSWER_LINE = "DeclaratieAntwoord/Clienten/Client[1]/Prestaties/Prestatie[1]"


def _day_after(date_text: str) -> str:
    return (dt.date.fromisoformat(date_text) + dt.timedelta(days=1)).isoformat()


def test_both_rules_are_in_message_rules_answered_with_0001() -> None:
    for code in ("TR134", "TR137"):
        rule = REGISTRY[code]
        assert rule.level is RuleLevel.IN_MESSAGE
        assert rule.retourcode == "0001"
    assert REGISTRY["TR134"].message_types == frozenset(NOT_AFTER_DAGTEKENING)
    assert REGISTRY["TR137"].message_types == frozenset({"JW323", "JW325"})
    assert set(PERIOD_ENDED_BY_DAGTEKENING) == {"JW323", "JW325"}


# --- TR134 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("message_type", "path"), TR134_DATES)
def test_tr134_a_date_after_the_dagtekening_fails(message_type: str, path: str) -> None:
    example = load_example(message_type)
    dagtekening = example.text(DAGTEKENING)
    assert dagtekening is not None
    report = assert_only(example.set(path, _day_after(dagtekening)).to_bytes(), "TR134")
    (finding,) = report.findings
    assert finding.path is not None and finding.path.endswith(path.rsplit("/", 1)[-1])
    assert dagtekening in finding.message
    assert _day_after(dagtekening) not in finding.message, "the date itself is never quoted"


@pytest.mark.parametrize(("message_type", "path"), TR134_DATES)
def test_tr134_a_date_on_the_dagtekening_passes(message_type: str, path: str) -> None:
    example = load_example(message_type)
    dagtekening = example.text(DAGTEKENING)
    assert dagtekening is not None
    assert_only(example.set(path, dagtekening).to_bytes())


def test_tr134_a_third_party_start_after_its_dagtekening_is_rejected() -> None:
    """The case that showed the gap: a JW305 whose StartProduct begins after its Dagtekening."""
    example = load_example("JW305").set(DAGTEKENING, "2023-04-14")
    report = assert_only(example.to_bytes(), "TR134")
    (finding,) = report.findings
    assert finding.path == "/Bericht/Client/StartProducten/StartProduct[2]/Begindatum"


def test_tr134_leaves_future_ingangsdata_alone() -> None:
    """An allocation or a requested product may start after the message was made."""
    example = load_example("JW301")
    assert_only(
        example.set("Client/ToegewezenProducten/ToegewezenProduct[1]/Ingangsdatum", "2026-04-02")
        .set("Client/ToegewezenProducten/ToegewezenProduct[1]/Einddatum", "2026-12-31")
        .to_bytes()
    )


@pytest.mark.parametrize(
    ("message_type", "line"), [("JW323", DECLARATION_LINE), ("JW325", ANSWER_LINE)]
)
def test_tr134_a_period_beginning_after_the_dagtekening_fails(message_type: str, line: str) -> None:
    # The period then also ends after the Dagtekening: TR137 comes with it.
    example = load_example(message_type).set(DAGTEKENING, "2023-03-31")
    report = assert_only(example.to_bytes(), "TR134", "TR137")
    begins = {f.path for f in report.findings if f.rule == "TR134"}
    assert f"/Bericht/{line}/ProductPeriode/Begindatum" in begins
    if message_type == "JW323":
        assert "/Bericht/Declaratie/DeclaratiePeriode/Begindatum" in begins


@pytest.mark.parametrize("message_type", ["JW323", "JW325"])
def test_tr134_a_period_beginning_on_the_dagtekening_passes_it(message_type: str) -> None:
    example = load_example(message_type).set(DAGTEKENING, "2023-04-01")
    report = assert_only(example.to_bytes(), "TR137")
    assert all(f.path is not None and f.path.endswith("/Einddatum") for f in report.findings)


# --- TR137 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message_type", "line"), [("JW323", DECLARATION_LINE), ("JW325", ANSWER_LINE)]
)
def test_tr137_a_period_not_yet_ended_fails(message_type: str, line: str) -> None:
    """A claim for April made on 29 April covers a day that has not come yet."""
    example = load_example(message_type).set(DAGTEKENING, "2023-04-29")
    report = assert_only(example.to_bytes(), "TR137")
    ends = {f.path for f in report.findings}
    assert f"/Bericht/{line}/ProductPeriode/Einddatum" in ends
    if message_type == "JW323":
        assert "/Bericht/Declaratie/DeclaratiePeriode/Einddatum" in ends
    assert all("2023-04-29" in f.message for f in report.findings)


@pytest.mark.parametrize("message_type", ["JW323", "JW325"])
def test_tr137_a_period_ending_on_the_dagtekening_passes(message_type: str) -> None:
    assert_only(load_example(message_type).set(DAGTEKENING, "2023-04-30").to_bytes())


def test_tr137_checks_each_line_of_a_declaration() -> None:
    example = load_example("JW323")
    example.set(f"{DECLARATION_LINE}/ProductPeriode/Einddatum", "2023-05-07")
    report = assert_only(example.to_bytes(), "TR137", "CS337", "TR319")
    (finding,) = [f for f in report.findings if f.rule == "TR137"]
    assert finding.path == f"/Bericht/{DECLARATION_LINE}/ProductPeriode/Einddatum"
