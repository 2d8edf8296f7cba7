"""Level-B rules on JW323 claim lines against the allocations and earlier accepted claims.

The JW301 example assigns 300201 (55A11, 2 uur per week, 2026-04-01 to 2026-07-14): 10 hours
in April (5 calendar weeks touch it) and 32 hours in total (16 weeks touch the assignment).
"""

from __future__ import annotations

from tests.unit.dossier.scenario import (
    Dossier,
    Line,
    declaratie,
    delete_allocation,
    toewijzing,
    vot,
)

APRIL = ("2026-04-01", "2026-04-30")
MAY = ("2026-05-01", "2026-05-31")
PRESTATIE = "/Bericht/Declaratie/Clienten/Client/Prestaties/Prestatie"
DECLARATIE = "/Bericht/Declaratie"


def allocated() -> Dossier:
    """VOT answered by the JW301 example."""
    return Dossier().accept_all(vot(), toewijzing())


def april(*lines: Line, nummer: str = "D1", dagtekening: str = "2026-05-05") -> bytes:
    """A declaration for April 2026."""
    return declaratie(nummer, APRIL, dagtekening, *lines)


def claimed_april() -> Dossier:
    """One accepted April line R1 of 8 hours on 300201."""
    dossier = allocated()
    dossier.accept(april(Line("R1", *APRIL)))
    return dossier


def codes_of_line(dossier: Dossier, line: Line, periode: tuple[str, str] = APRIL) -> set[str]:
    """The (rule, retourcode) pairs of a one-line declaration, all on that Prestatie."""
    found = dossier.codes(declaratie("DX", periode, "2026-08-05", line))
    assert {path for _, _, path in found} <= {PRESTATIE}
    return {f"{rule}/{code}" for rule, code, _ in found}


def test_valid_claim_is_clean() -> None:
    """A line inside the assignment, whole month, within the weekly volume."""
    assert allocated().codes(april(Line("R1", *APRIL))) == set()


def test_credit_then_re_debit_in_one_message() -> None:
    """OP366: the credit of R1 is processed before the new debit R3 for the same period."""
    dossier = claimed_april()
    message = april(Line("R2", *APRIL, vorig="R1"), Line("R3", *APRIL, volume=9), nummer="D2")
    assert dossier.codes(message) == set()
    dossier.accept(message)
    assert dossier.history.claim_line("42420001", "0384", "R3") is not None


def test_minutes_on_an_hourly_assignment() -> None:
    """IV081: minutes may be claimed on hours; 480 minutes is within 10 hours."""
    line = Line("R1", *APRIL, volume=480, eenheid="01", tarief=21)
    assert codes_of_line(allocated(), line) == set()


def test_tr333_declaratienummer_reused() -> None:
    """9333 on the Declaratie class."""
    message = declaratie("D1", MAY, "2026-06-05", Line("R9", *MAY))
    assert claimed_april().codes(message) == {("TR333", "9333", DECLARATIE)}


def test_tr314_referentienummer_reused() -> None:
    """8021: R1 was used by an accepted line."""
    assert codes_of_line(claimed_april(), Line("R1", *MAY), MAY) == {"TR314/8021"}


def test_tr323_credit_without_debit() -> None:
    """8017: the credit names no accepted debit line."""
    assert codes_of_line(claimed_april(), Line("R2", *APRIL, vorig="R0")) == {"TR323/8017"}


def test_tr390_second_credit() -> None:
    """9390: R1 was already credited."""
    dossier = claimed_april()
    dossier.accept(april(Line("R2", *APRIL, vorig="R1"), nummer="D2"))
    assert codes_of_line(dossier, Line("R3", *APRIL, vorig="R1")) == {"TR390/9390"}


def test_tr389_second_debit_without_credit() -> None:
    """9389: April of 300201 is already claimed by R1."""
    assert codes_of_line(claimed_april(), Line("R2", *APRIL, volume=1)) == {"TR389/9389"}


def test_tr338_unknown_allocation() -> None:
    """9338: no assignment 555 for this client."""
    assert codes_of_line(allocated(), Line("R1", *APRIL, toewijzing="555")) == {"TR338/9338"}


def test_tr384_claim_on_deleted_allocation() -> None:
    """9384: 300201 was deleted (reden 13)."""
    dossier = allocated()
    dossier.accept(delete_allocation(toewijzing(), 1, tijd="13:00:00"))
    assert codes_of_line(dossier, Line("R1", *APRIL)) == {"TR384/9384"}


def test_tr339_category_differs() -> None:
    """9339 when the category is not the assignment's."""
    assert codes_of_line(allocated(), Line("R1", *APRIL, categorie="45")) == {"TR339/9339"}


def test_tr340_code_differs() -> None:
    """9340 when the code is not the assignment's."""
    assert codes_of_line(allocated(), Line("R1", *APRIL, code="55A99")) == {"TR340/9340"}


def test_tr341_unit_differs() -> None:
    """9341: dagdelen claimed on an hourly assignment."""
    assert codes_of_line(allocated(), Line("R1", *APRIL, eenheid="16")) == {"TR341/9341"}


def test_tr307_before_ingangsdatum() -> None:
    """9307: March lies before the assignment."""
    march = ("2026-03-01", "2026-03-31")
    assert codes_of_line(allocated(), Line("R1", *march), march) == {"TR307/9307"}


def test_tr308_after_einddatum() -> None:
    """9308: the assignment ends 14 July; the line runs to 31 July."""
    july = ("2026-07-01", "2026-07-31")
    assert codes_of_line(allocated(), Line("R1", *july, volume=4), july) == {"TR308/9308"}


def test_tr387_period_does_not_start_on_first() -> None:
    """9387: the period begins on the 2nd while the assignment began on the 1st."""
    assert codes_of_line(allocated(), Line("R1", "2026-04-02", "2026-04-30")) == {"TR387/9387"}


def test_tr388_period_does_not_end_on_last_day() -> None:
    """9388: the period ends on the 29th while the assignment runs on."""
    assert codes_of_line(allocated(), Line("R1", "2026-04-01", "2026-04-29")) == {"TR388/9388"}


def test_partial_last_month_ends_on_einddatum() -> None:
    """July claimed 1–14 (the assignment's end) is a correct partial period: 3 weeks, 6 hours."""
    july = ("2026-07-01", "2026-07-31")
    assert (
        codes_of_line(allocated(), Line("R1", "2026-07-01", "2026-07-14", volume=6), july) == set()
    )


def test_tr321_more_than_the_weeks_allow() -> None:
    """9321: 11 hours in April, where 5 touching weeks × 2 hours allow 10."""
    assert codes_of_line(allocated(), Line("R1", *APRIL, volume=11)) == {"TR321/9321"}
    assert codes_of_line(allocated(), Line("R1", *APRIL, volume=10)) == set()


def test_tr322_total_over_the_assignment() -> None:
    """9322: 10 + 10 + 10 accepted; July's 6 allowed per period but only 2 remain of 32."""
    dossier = allocated()
    june = ("2026-06-01", "2026-06-30")
    july = ("2026-07-01", "2026-07-31")
    dossier.accept(april(Line("R1", *APRIL, volume=10)))
    dossier.accept(declaratie("D2", MAY, "2026-06-05", Line("R2", *MAY, volume=10)))
    dossier.accept(declaratie("D3", june, "2026-07-05", Line("R3", *june, volume=10)))
    line = Line("R4", "2026-07-01", "2026-07-14", volume=3)
    assert codes_of_line(dossier, line, july) == {"TR322/9322"}
    ok = Line("R4", "2026-07-01", "2026-07-14", volume=2)
    assert codes_of_line(dossier, ok, july) == set()


def test_tr369_budget_exceeded() -> None:
    """9369: a budget assignment of 500 euro; 300 accepted, 250 more is too much."""
    budget = toewijzing()
    third = "Client/ToegewezenProducten/ToegewezenProduct[2]"
    budget.duplicate(third)
    product = "Client/ToegewezenProducten/ToegewezenProduct[3]"
    budget.set(f"{product}/ToewijzingNummer", "300203").remove(f"{product}/ReferentieAanbieder")
    budget.set(f"{product}/Product/Categorie", "45").remove(f"{product}/Product/Code")
    budget.remove(f"{product}/Omvang").insert_before(f"{product}/Commentaar", "Budget", "50000")
    dossier = Dossier().accept_all(vot(), budget)
    line = Line(
        "R1", *APRIL, toewijzing="300203", categorie="45", code="45A03", volume=20, tarief=1500
    )
    dossier.accept(april(line))
    more = Line(
        "R2", *MAY, toewijzing="300203", categorie="45", code="45A03", volume=10, tarief=2500
    )
    assert codes_of_line(dossier, more, MAY) == {"TR369/9369"}
    enough = Line(
        "R2", *MAY, toewijzing="300203", categorie="45", code="45A03", volume=10, tarief=2000
    )
    assert codes_of_line(dossier, enough, MAY) == set()


def test_rejected_lines_are_not_recorded() -> None:
    """JW323: only accepted lines count; a rejected line's ReferentieNummer can be reused."""
    dossier = allocated()
    message = april(Line("R1", *APRIL), Line("R2", *APRIL, toewijzing="555"))
    assert dossier.codes(message) == {("TR338", "9338", f"{PRESTATIE}[2]")}
    dossier.accept(message, rejected_lines=("R2",))
    assert dossier.history.claim_line("42420001", "0384", "R2") is None
    assert codes_of_line(dossier, Line("R2", *MAY), MAY) == set()


def test_fully_rejected_declaration_leaves_its_number_free() -> None:
    """OP286: a declaration with no accepted line does not use up its DeclaratieNummer."""
    dossier = allocated()
    dossier.accept(april(Line("R1", *APRIL, toewijzing="555")), rejected_lines=("R1",))
    assert dossier.codes(april(Line("R1", *APRIL))) == set()
