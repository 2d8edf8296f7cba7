"""In-message rules of JW323 (Declaratie) and JW325 (Declaratie-antwoord).

Negative tests mutate the official examples (one field where the rule allows it); positive
tests pin the boundaries. Property tests check the signed D/C arithmetic of TR358 and TR342
against totals computed independently here.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core.document import find
from gateway.core.rules.declaration import signed_amount, tr342_difference, with_debet_credit
from tests.unit.rules.mutate import Mutable, assert_only, example_bytes, load_example, report_for

DECLARATIE = "Declaratie"
TOTAL = f"{DECLARATIE}/TotaalIngediendBedrag"
CLIENT_1 = f"{DECLARATIE}/Clienten/Client[1]"
LINE_1 = f"{CLIENT_1}/Prestaties/Prestatie[1]"
LINE_2 = f"{CLIENT_1}/Prestaties/Prestatie[2]"
CLIENT_2_LINE_1 = f"{DECLARATIE}/Clienten/Client[2]/Prestaties/Prestatie[1]"
CLIENT_2_LINE_2 = f"{DECLARATIE}/Clienten/Client[2]/Prestaties/Prestatie[2]"
ANSWER = "DeclaratieAntwoord"

MAX_BEDRAG = 99_999_999


def signed(amount: int, indicator: str) -> int:
    """The test's own signing of a D/C amount, independent of the code under test."""
    return amount if indicator == "D" else -amount


def as_total(value: int) -> tuple[str, str]:
    """The test's own (TotaalBedrag, DebetCredit) for a signed value; zero is debit."""
    return str(abs(value)), "D" if value >= 0 else "C"


def set_total(example: Mutable, path: str, value: int) -> Mutable:
    amount, indicator = as_total(value)
    return example.set(f"{path}/TotaalBedrag", amount).set(f"{path}/DebetCredit", indicator)


def debit_declaration() -> Mutable:
    """The official JW323 turned into a plain debit claim (all lines D, total recomputed)."""
    example = load_example("JW323")
    total = 0
    for line in example.elements(f"{DECLARATIE}/Clienten/Client/Prestaties/Prestatie"):
        previous = find(line, "ProductReferentie/VorigReferentieNummer")
        assert previous is not None
        previous.getparent().remove(previous)  # type: ignore[union-attr]
        indicator = find(line, "IngediendBedrag/DebetCredit")
        amount = find(line, "IngediendBedrag/Bedrag")
        assert indicator is not None and amount is not None and amount.text is not None
        indicator.text = "D"
        total += int(amount.text)
    return set_total(example, TOTAL, total)


def test_official_declaration_examples_pass() -> None:
    """The shipped JW323 and JW325 examples raise no rule (TR342 holds on the JW325)."""
    assert_only(example_bytes("JW323"))
    assert_only(example_bytes("JW325"))


def test_debit_variant_of_the_example_passes() -> None:
    """The all-debit base used by several tests is itself clean."""
    assert_only(debit_declaration().to_bytes())


# --- periods -------------------------------------------------------------------------------


def test_cs340_period_of_two_months() -> None:
    """CS340: a DeclaratiePeriode of two whole months (March-April) is rejected."""
    xml = load_example("JW323").set(f"{DECLARATIE}/DeclaratiePeriode/Begindatum", "2023-03-01")
    assert_only(xml.to_bytes(), "CS340")


def test_cs340_period_not_starting_on_the_first() -> None:
    """CS340: a DeclaratiePeriode starting after the 1st is rejected."""
    xml = load_example("JW323").set(f"{DECLARATIE}/DeclaratiePeriode/Begindatum", "2023-04-02")
    assert_only(xml.to_bytes(), "CS340")


def february_2024_claim(period_end: str) -> Mutable:
    """The official claim moved to February 2024 (a leap year); the claim period and every
    line run from 1 February to ``period_end``."""
    example = load_example("JW323")
    example.set(f"{DECLARATIE}/DeclaratiePeriode/Begindatum", "2024-02-01")
    example.set(f"{DECLARATIE}/DeclaratiePeriode/Einddatum", period_end)
    example.set(f"{DECLARATIE}/DeclaratieDagtekening", "2024-03-05")
    example.set("Header/BerichtIdentificatie/Dagtekening", "2024-03-05")
    for period in example.elements(f"{DECLARATIE}/Clienten/Client/Prestaties/Prestatie"):
        begin, end = (
            find(period, "ProductPeriode/Begindatum"),
            find(period, "ProductPeriode/Einddatum"),
        )
        assert begin is not None and end is not None
        begin.text, end.text = "2024-02-01", period_end
    return example


def test_cs340_february_in_a_leap_year_is_a_month() -> None:
    """CS340/CS337 boundary: 1–29 February 2024 is one whole month, for claim and lines."""
    assert_only(february_2024_claim("2024-02-29").to_bytes())


def test_cs340_february_28_in_a_leap_year_is_not_a_month() -> None:
    """CS340: 1–28 February 2024 misses the leap day."""
    assert_only(february_2024_claim("2024-02-28").to_bytes(), "CS340")


def test_cs100_product_period_before_2021() -> None:
    """CS100: a ProductPeriode in December 2020 cannot be claimed with JW323."""
    example = load_example("JW323")
    example.set(f"{LINE_1}/ProductPeriode/Begindatum", "2020-12-01")
    example.set(f"{LINE_1}/ProductPeriode/Einddatum", "2020-12-31")
    assert_only(example.to_bytes(), "CS100")


def test_cs337_product_period_spanning_two_months() -> None:
    """CS337: a ProductPeriode from March to April is rejected."""
    xml = load_example("JW323").set(f"{LINE_1}/ProductPeriode/Begindatum", "2023-03-01")
    assert_only(xml.to_bytes(), "CS337")


def test_cs337_part_of_a_month_ending_on_its_last_day_is_fine() -> None:
    """CS337 boundary: 10–30 April (the month's last day) stays within one month."""
    xml = load_example("JW323").set(f"{LINE_1}/ProductPeriode/Begindatum", "2023-04-10")
    assert_only(xml.to_bytes())


def test_tr319_product_period_after_claim_period() -> None:
    """TR319: a line for May in an April claim is rejected."""
    example = load_example("JW323")
    example.set(f"{LINE_1}/ProductPeriode/Begindatum", "2023-05-01")
    example.set(f"{LINE_1}/ProductPeriode/Einddatum", "2023-05-05")
    assert_only(example.to_bytes(), "TR319")


def test_tr319_earlier_product_period_is_fine() -> None:
    """TR319 positive: a line for an earlier month (March) may be claimed in April."""
    example = load_example("JW323")
    example.set(f"{LINE_1}/ProductPeriode/Begindatum", "2023-03-01")
    example.set(f"{LINE_1}/ProductPeriode/Einddatum", "2023-03-31")
    assert_only(example.to_bytes())


def test_tr335_product_period_more_than_five_years_old() -> None:
    """TR335: lines ending 2023-04-30 are too old for a claim dated 2028-05-01."""
    xml = load_example("JW323").set(f"{DECLARATIE}/DeclaratieDagtekening", "2028-05-01")
    report = assert_only(xml.to_bytes(), "TR335")
    assert len(report.findings) == 4  # every line of the example ends on 2023-04-30


def test_tr335_exactly_five_years_is_fine() -> None:
    """TR335 boundary: an Einddatum exactly five years before the DeclaratieDagtekening passes."""
    xml = load_example("JW323").set(f"{DECLARATIE}/DeclaratieDagtekening", "2028-04-30")
    assert_only(xml.to_bytes())


# --- references and debit/credit pairing ---------------------------------------------------


def test_cd060_credit_without_previous_reference() -> None:
    """CD060: a credit line without VorigReferentieNummer is rejected."""
    xml = load_example("JW323").remove(f"{LINE_1}/ProductReferentie/VorigReferentieNummer")
    assert_only(xml.to_bytes(), "CD060")


def test_cd060_debit_with_previous_reference() -> None:
    """CD060: a debit line with VorigReferentieNummer is rejected."""
    example = debit_declaration()
    example.insert_after(
        f"{LINE_1}/ProductReferentie/ReferentieNummer", "VorigReferentieNummer", "X1"
    )
    assert_only(example.to_bytes(), "CD060")


def test_cd060_applies_to_the_claim_answer() -> None:
    """CD060 also holds for returned lines in JW325."""
    path = f"{ANSWER}/Clienten/Client[1]/Prestaties/Prestatie[1]/ProductReferentie"
    xml = load_example("JW325").remove(f"{path}/VorigReferentieNummer").to_bytes()
    assert_only(xml, "CD060")


def test_tr315_two_credits_of_the_same_line() -> None:
    """TR315: two lines crediting the same VorigReferentieNummer are rejected."""
    example = load_example("JW323")
    first = example.text(f"{LINE_1}/ProductReferentie/VorigReferentieNummer")
    assert first is not None
    example.set(f"{LINE_2}/ProductReferentie/VorigReferentieNummer", first)
    assert_only(example.to_bytes(), "TR315")


def test_tr316_credit_of_a_line_in_the_same_message() -> None:
    """TR316: crediting a ReferentieNummer of this same message is rejected."""
    example = load_example("JW323")
    own = example.text(f"{LINE_1}/ProductReferentie/ReferentieNummer")
    assert own is not None
    example.set(f"{LINE_2}/ProductReferentie/VorigReferentieNummer", own)
    assert_only(example.to_bytes(), "TR316")


def make_same_debit_key(example: Mutable, line: str, like: str) -> Mutable:
    for name in ("ToewijzingNummer", "ProductCategorie", "ProductCode"):
        value = example.text(f"{like}/{name}")
        assert value is not None
        example.set(f"{line}/{name}", value)
    return example


def test_tr416_two_debits_for_the_same_care() -> None:
    """TR416: a client's second debit for the same period, product and assignment is rejected."""
    example = make_same_debit_key(debit_declaration(), CLIENT_2_LINE_2, CLIENT_2_LINE_1)
    assert_only(example.to_bytes(), "TR416")


def test_tr416_same_care_for_different_clients_is_fine() -> None:
    """TR416 positive: the same key under two different clients is not a duplicate."""
    example = make_same_debit_key(debit_declaration(), CLIENT_2_LINE_1, LINE_1)
    assert_only(example.to_bytes())


# --- amounts --------------------------------------------------------------------------------


def test_tr358_wrong_total() -> None:
    """TR358: a header total one cent off is rejected."""
    xml = load_example("JW323").set(f"{TOTAL}/TotaalBedrag", "58001").to_bytes()
    assert_only(xml, "TR358")


def test_tr358_total_with_the_wrong_sign() -> None:
    """TR358: the right amount as debit when the lines net to credit is rejected."""
    xml = load_example("JW323").set(f"{TOTAL}/DebetCredit", "D").to_bytes()
    assert_only(xml, "TR358")


def test_tr358_mixed_debit_and_credit_lines() -> None:
    """TR358 with credits: debits add, credits subtract (5000 D + 24000 C + ... = total)."""
    example = load_example("JW323")
    # Make line 1 a debit; the lines then net to 58000 - 2 * 5000 = 48000 credit.
    example.set(f"{LINE_1}/IngediendBedrag/DebetCredit", "D")
    example.remove(f"{LINE_1}/ProductReferentie/VorigReferentieNummer")
    assert_only(set_total(example, TOTAL, -48000).to_bytes())
    assert_only(set_total(example, TOTAL, -58000).to_bytes(), "TR358")


def test_cs325_zero_line_as_credit() -> None:
    """CS325: a zero IngediendBedrag must be debit."""
    example = load_example("JW323").set(f"{LINE_1}/IngediendBedrag/Bedrag", "0")
    assert_only(set_total(example, TOTAL, -53000).to_bytes(), "CS325")


def test_cs325_zero_total_as_credit() -> None:
    """CS325: a zero TotaalIngediendBedrag must be debit (TR358 still holds: 0 = 0)."""
    example = debit_declaration()
    for line in (LINE_1, LINE_2, CLIENT_2_LINE_1, CLIENT_2_LINE_2):
        example.set(f"{line}/IngediendBedrag/Bedrag", "0")
    assert_only(example.set(f"{TOTAL}/TotaalBedrag", "0").to_bytes())
    assert_only(example.set(f"{TOTAL}/DebetCredit", "C").to_bytes(), "CS325")


def test_cs325_zero_granted_total_as_credit_in_answer() -> None:
    """CS325 covers JW325 totals too."""
    example = load_example("JW325")
    example.set(f"{ANSWER}/RetourCodes/RetourCode", "9333")
    example.set(f"{ANSWER}/TotaalToegekendBedrag/TotaalBedrag", "0")
    assert_only(example.to_bytes(), "CS325")


def test_cd087_missing_tariff() -> None:
    """CD087: a line in hours (Eenheid 04) without ProductTarief is rejected."""
    xml = load_example("JW323").remove(f"{LINE_1}/ProductTarief").to_bytes()
    assert_only(xml, "CD087")


def test_cd087_tariff_on_euro_line() -> None:
    """CD087: a euro line (Eenheid 83) with a ProductTarief is rejected."""
    example = load_example("JW323").set(f"{LINE_1}/Eenheid", "83")
    example.set(f"{LINE_1}/GeleverdVolume", "5000")
    assert_only(example.to_bytes(), "CD087")


def test_cs339_euro_line_amount_differs_from_volume() -> None:
    """CS339: a euro line whose IngediendBedrag is not its GeleverdVolume is rejected."""
    example = load_example("JW323").set(f"{LINE_1}/Eenheid", "83")
    assert_only(example.remove(f"{LINE_1}/ProductTarief").to_bytes(), "CS339")


def test_cs339_euro_line_amount_equal_to_volume_is_fine() -> None:
    """CS339/CD087 positive: euro line with volume = amount and no tariff passes."""
    example = load_example("JW323").set(f"{LINE_1}/Eenheid", "83")
    example.remove(f"{LINE_1}/ProductTarief").set(f"{LINE_1}/GeleverdVolume", "5000")
    assert_only(example.to_bytes())


# --- JW325 TR342 ---------------------------------------------------------------------------


def test_tr342_signed_arithmetic_on_the_official_answer() -> None:
    """TR342 on the official JW325: 58000 C - 34000 C = 24000 C = the three returned credits."""
    doc = report_for(example_bytes("JW325")).document
    assert doc is not None
    submitted = find(doc.root, f"{ANSWER}/TotaalIngediendBedrag")
    granted = find(doc.root, f"{ANSWER}/TotaalToegekendBedrag")
    assert submitted is not None and granted is not None
    assert (signed_amount(submitted), signed_amount(granted)) == (-58000, -34000)
    returned = [signed_amount(el) for el in doc.iter_local("IngediendBedrag")]
    assert returned == [-5000, -14000, -5000]
    assert tr342_difference(-58000, -34000, returned) == 0
    assert tr342_difference(-58000, -34001, returned) == -1


def test_with_debet_credit_writes_zero_as_debit() -> None:
    """The split helper never produces 0 C (CS325) and keeps the sign in the indicator."""
    assert with_debet_credit(0) == (0, "D")
    assert with_debet_credit(125) == (125, "D")
    assert with_debet_credit(-125) == (125, "C")


def test_tr342_granted_total_off_by_one() -> None:
    """TR342: totals that the returned lines do not explain are rejected."""
    xml = load_example("JW325").set(f"{ANSWER}/TotaalToegekendBedrag/TotaalBedrag", "34001")
    assert_only(xml.to_bytes(), "TR342")


def test_tr342_rejected_declaration_must_grant_zero() -> None:
    """TR342: with a DeclaratieAntwoord code other than 0200/8001, TotaalToegekendBedrag is 0."""
    xml = load_example("JW325").set(f"{ANSWER}/RetourCodes/RetourCode", "9333").to_bytes()
    assert_only(xml, "TR342")


def test_tr342_rejected_declaration_granting_zero_is_fine() -> None:
    """TR342 positive: a rejected declaration granting 0 D passes, whatever lines it returns."""
    example = load_example("JW325").set(f"{ANSWER}/RetourCodes/RetourCode", "9333")
    set_total(example, f"{ANSWER}/TotaalToegekendBedrag", 0)
    assert_only(example.to_bytes())


# --- property tests: TR358 / TR342 arithmetic ------------------------------------------------

Line = tuple[int, str]

lines_strategy = st.lists(
    st.tuples(st.integers(0, MAX_BEDRAG), st.sampled_from(["D", "C"])).map(
        lambda line: (line[0], "D") if line[0] == 0 else line  # CS325: zero is debit
    ),
    min_size=1,
    max_size=8,
)


def _rebuild_lines(example: Mutable, prestaties_path: str, lines: Sequence[Line]) -> Mutable:
    """Replace the first client's lines by copies of its first line carrying ``lines``."""
    prestaties = example.element(prestaties_path)
    template = copy.deepcopy(prestaties[0])
    for old in list(prestaties):
        if isinstance(old.tag, str):
            prestaties.remove(old)
    for index, (amount, indicator) in enumerate(lines):
        line = copy.deepcopy(template)
        for name, value in (
            ("ProductReferentie/ReferentieNummer", f"R{index}"),
            ("ToewijzingNummer", str(20000 + index)),  # distinct care: no TR416 duplicates
            ("IngediendBedrag/Bedrag", str(amount)),
            ("IngediendBedrag/DebetCredit", indicator),
        ):
            target = find(line, name)
            assert target is not None
            target.text = value
        previous = find(line, "ProductReferentie/VorigReferentieNummer")
        assert previous is not None
        if indicator == "C":
            previous.text = f"V{index}"
        else:
            previous.getparent().remove(previous)  # type: ignore[union-attr]
        prestaties.append(line)
    return example


def claim_with_lines(lines: Sequence[Line]) -> Mutable:
    """A one-client JW323 with the given lines and an independently computed header total."""
    example = load_example("JW323").remove(f"{DECLARATIE}/Clienten/Client[2]")
    _rebuild_lines(example, f"{CLIENT_1}/Prestaties", lines)
    return set_total(example, TOTAL, sum(signed(a, dc) for a, dc in lines))


def answer_with_lines(lines: Sequence[Line], submitted: int) -> Mutable:
    """A one-client JW325 returning ``lines``, granting what the test computes they leave."""
    example = load_example("JW325").remove(f"{ANSWER}/Clienten/Client[2]")
    _rebuild_lines(example, f"{ANSWER}/Clienten/Client[1]/Prestaties", lines)
    rejected = sum(signed(a, dc) for a, dc in lines)
    set_total(example, f"{ANSWER}/TotaalIngediendBedrag", submitted)
    return set_total(example, f"{ANSWER}/TotaalToegekendBedrag", submitted - rejected)


def _changed_amount(data: st.DataObject, lines: Sequence[Line]) -> tuple[int, int]:
    index = data.draw(st.integers(0, len(lines) - 1), label="line")
    amount, indicator = lines[index]
    lowest = 1 if indicator == "C" else 0  # stay clear of CS325
    new = data.draw(
        st.integers(lowest, MAX_BEDRAG).filter(lambda value: value != amount), label="amount"
    )
    return index, new


PROPERTY_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(lines=lines_strategy)
def test_tr358_accepts_any_consistent_claim(lines: list[Line]) -> None:
    """TR358 property: any D/C lines with the total computed here pass every rule."""
    assert_only(claim_with_lines(lines).to_bytes())


@PROPERTY_SETTINGS
@given(lines=lines_strategy, data=st.data())
def test_tr358_flags_any_single_changed_line(lines: list[Line], data: st.DataObject) -> None:
    """TR358 property: changing one line's amount after totalling is always flagged."""
    example = claim_with_lines(lines)
    index, new = _changed_amount(data, lines)
    example.set(f"{CLIENT_1}/Prestaties/Prestatie[{index + 1}]/IngediendBedrag/Bedrag", str(new))
    assert_only(example.to_bytes(), "TR358")


@PROPERTY_SETTINGS
@given(lines=lines_strategy, submitted=st.integers(-(10**11), 10**11))
def test_tr342_accepts_any_consistent_answer(lines: list[Line], submitted: int) -> None:
    """TR342 property: returned lines that explain submitted minus granted pass every rule."""
    assert_only(answer_with_lines(lines, submitted).to_bytes())


@PROPERTY_SETTINGS
@given(lines=lines_strategy, submitted=st.integers(-(10**11), 10**11), data=st.data())
def test_tr342_flags_any_single_changed_line(
    lines: list[Line], submitted: int, data: st.DataObject
) -> None:
    """TR342 property: changing one returned line's amount after totalling is always flagged."""
    example = answer_with_lines(lines, submitted)
    index, new = _changed_amount(data, lines)
    path = f"{ANSWER}/Clienten/Client[1]/Prestaties/Prestatie[{index + 1}]/IngediendBedrag/Bedrag"
    assert_only(example.set(path, str(new)).to_bytes(), "TR342")
