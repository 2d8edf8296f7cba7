"""In-message rules (level X, retourcode 0001) for JW323 Declaratie and JW325 Declaratie-antwoord.

Amounts are whole eurocents with a separate DebetCredit indicator. The arithmetic rules (TR358 on
the claim, TR342 on the answer) work on *signed* amounts: debit positive, credit negative.
:func:`signed_amount`, :func:`with_debet_credit` and :func:`tr342_difference` are public because
the JW325 retour builder must produce totals that satisfy exactly the rule checked here.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable, Iterator

from gateway.core.catalogue import RELEASE_2_3
from gateway.core.document import (
    Element,
    MessageDocument,
    int_at,
    local_name,
    text,
)
from gateway.core.rules.engine import RuleContext, Violation
from gateway.core.rules.registry import REGISTRY

DEBET = "D"
CREDIT = "C"
EURO_UNIT = "83"
#: Claims over periods before 2021 go through the old JW303 message (CS100).
FIRST_CLAIMABLE_DATE = dt.date(2021, 1, 1)
#: DeclaratieAntwoord codes under which the prestaties were assessed (TR342).
ASSESSED_CODES = frozenset({"0200", "8001"})
#: Elements of type CDT_BedragMetDC / CDT_TotaalBedragMetDC that CS325 covers.
AMOUNT_WITH_DC_NAMES = ("TotaalIngediendBedrag", "IngediendBedrag", "TotaalToegekendBedrag")


# --- signed-amount arithmetic (shared with the JW325 retour builder) ------------------------


def signed_amount(amount_with_dc: Element, doc: MessageDocument | None = None) -> int:
    """The eurocent value of a ``Bedrag``/``TotaalBedrag`` + ``DebetCredit`` pair, signed.

    Works for ``IngediendBedrag`` (CDT_BedragMetDC) and for ``TotaalIngediendBedrag`` /
    ``TotaalToegekendBedrag`` (CDT_TotaalBedragMetDC): debit is positive, credit negative.
    Raises :class:`ValueError` when the element lacks an integer amount or a D/C indicator,
    which an XSD-valid message never does. Rules pass their ``doc`` to read through its index;
    the answer is the same either way.
    """
    if doc is None:
        amount = int_at(amount_with_dc, "Bedrag")
        if amount is None:
            amount = int_at(amount_with_dc, "TotaalBedrag")
        indicator = text(amount_with_dc, "DebetCredit")
    else:
        amount = doc.int_at(amount_with_dc, "Bedrag")
        if amount is None:
            amount = doc.int_at(amount_with_dc, "TotaalBedrag")
        indicator = doc.text(amount_with_dc, "DebetCredit")
    if amount is None or indicator not in (DEBET, CREDIT):
        raise ValueError(f"{local_name(amount_with_dc)} has no amount with a D/C indicator")
    return amount if indicator == DEBET else -amount


def with_debet_credit(signed: int) -> tuple[int, str]:
    """Split a signed eurocent value into (amount, indicator); zero is debit (CS325)."""
    return (signed, DEBET) if signed >= 0 else (-signed, CREDIT)


def tr342_difference(
    totaal_ingediend: int, totaal_toegekend: int, returned_lines: Iterable[int]
) -> int:
    """How far a JW325 is off TR342; zero means the totals reconcile.

    All values are signed (debit positive): the returned (rejected) lines must add up to
    ``totaal_ingediend - totaal_toegekend``. A retour builder picks
    ``totaal_toegekend = totaal_ingediend - sum(rejected lines)`` to make this zero.
    """
    return sum(returned_lines) - (totaal_ingediend - totaal_toegekend)


def _last_day_of_month(day: dt.date) -> dt.date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _years_before(day: dt.date, years: int) -> dt.date:
    """The same calendar date ``years`` earlier; 29 February falls back to the 28th."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def _prestaties(doc: MessageDocument) -> tuple[Element, ...]:
    return doc.all_local("Prestatie")


# --- JW323 Declaratie: periods ---------------------------------------------------------------


@REGISTRY.rule(
    "CS340",
    types=("JW323",),
    summary="DeclaratiePeriode is exactly one whole calendar month.",
)
def declaratie_period_is_a_month(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """CS340: the claim period runs from the 1st to the last day of one month."""
    for period in doc.all_local("DeclaratiePeriode"):
        begin = doc.date_at(period, "Begindatum")
        end = doc.date_at(period, "Einddatum")
        if begin is None or end is None:
            continue
        if begin.day != 1 or end != _last_day_of_month(begin):
            yield Violation(
                period,
                f"DeclaratiePeriode {begin.isoformat()} to {end.isoformat()} is not exactly "
                "one whole calendar month.",
            )


@REGISTRY.rule(
    "CS100",
    types=("JW323",),
    summary="Begindatum of DeclaratiePeriode and of every ProductPeriode is on/after 2021-01-01.",
)
def periods_from_2021(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """CS100: JW323 only claims care from 2021 onwards."""
    periods = doc.all_local("DeclaratiePeriode") + doc.all_local("ProductPeriode")
    for period in periods:
        begin_element = doc.find(period, "Begindatum")
        begin = doc.date_at(begin_element)
        if begin_element is not None and begin is not None and begin < FIRST_CLAIMABLE_DATE:
            yield Violation(
                begin_element,
                f"Begindatum {begin.isoformat()} of the {local_name(period)} lies before "
                f"{FIRST_CLAIMABLE_DATE.isoformat()}.",
            )


@REGISTRY.rule(
    "CS337",
    types=("JW323",),
    summary="ProductPeriode begins and ends in the same calendar month of the same year.",
)
def product_period_within_a_month(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """CS337: one claim line covers at most one calendar month."""
    for prestatie in _prestaties(doc):
        period = doc.find(prestatie, "ProductPeriode")
        begin = doc.date_at(period, "Begindatum")
        end = doc.date_at(period, "Einddatum")
        if period is None or begin is None or end is None:
            continue
        if (begin.year, begin.month) != (end.year, end.month):
            yield Violation(
                period,
                f"ProductPeriode {begin.isoformat()} to {end.isoformat()} spans more than one "
                "calendar month.",
            )


@REGISTRY.rule(
    "TR319",
    types=("JW323",),
    summary="ProductPeriode does not lie after the DeclaratiePeriode (current or earlier only).",
)
def product_period_not_after_claim(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR319: a claim holds lines for its own period or earlier ones, never later ones."""
    claim_end = doc.date_at(doc.find(doc.root, "Declaratie/DeclaratiePeriode"), "Einddatum")
    if claim_end is None:
        return
    for prestatie in _prestaties(doc):
        period = doc.find(prestatie, "ProductPeriode")
        begin = doc.date_at(period, "Begindatum")
        end = doc.date_at(period, "Einddatum")
        if period is None:
            continue
        if (begin is not None and begin > claim_end) or (end is not None and end > claim_end):
            yield Violation(
                period,
                f"ProductPeriode ending {end.isoformat() if end else '?'} lies after the end "
                f"of the DeclaratiePeriode {claim_end.isoformat()}.",
            )


@REGISTRY.rule(
    "TR335",
    types=("JW323",),
    summary="ProductPeriode Einddatum is not more than 5 years before DeclaratieDagtekening.",
)
def product_period_not_too_old(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR335: care older than five years can no longer be claimed; exactly five years is fine."""
    claim_date = doc.date_at(doc.find(doc.root, "Declaratie"), "DeclaratieDagtekening")
    if claim_date is None:
        return
    oldest_allowed = _years_before(claim_date, 5)
    for prestatie in _prestaties(doc):
        end_element = doc.find(prestatie, "ProductPeriode/Einddatum")
        end = doc.date_at(end_element)
        if end_element is not None and end is not None and end < oldest_allowed:
            yield Violation(
                end_element,
                f"ProductPeriode Einddatum {end.isoformat()} is more than 5 years before the "
                f"DeclaratieDagtekening {claim_date.isoformat()}.",
            )


# --- JW323 Declaratie: references, debit/credit pairing -----------------------------------


@REGISTRY.rule(
    "CD060",
    types=("JW323", "JW325"),
    summary="VorigReferentieNummer is filled if and only if the IngediendBedrag is credit (C).",
)
def credit_refers_to_previous(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """CD060: a credit line names the debit line it cancels; a debit line names none."""
    for prestatie in _prestaties(doc):
        indicator = doc.text(prestatie, "IngediendBedrag/DebetCredit")
        reference = doc.find(prestatie, "ProductReferentie")
        previous = doc.find(prestatie, "ProductReferentie/VorigReferentieNummer")
        if reference is None or indicator is None:
            continue
        if indicator == CREDIT and previous is None:
            yield Violation(
                reference,
                "A credit Prestatie must have a VorigReferentieNummer naming the debit line "
                "it cancels.",
            )
        elif indicator == DEBET and previous is not None:
            yield Violation(
                previous,
                "A debit Prestatie may not have a VorigReferentieNummer.",
            )


@REGISTRY.rule(
    "TR315",
    types=("JW323",),
    summary="VorigReferentieNummer is unique among the Prestaties of the message.",
)
def previous_references_unique(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR315: a debit line can be credited only once per message."""
    seen: set[str] = set()
    for previous in doc.all_local("VorigReferentieNummer"):
        value = doc.text(previous)
        if value is None:
            continue
        if value in seen:
            yield Violation(
                previous,
                f"VorigReferentieNummer {value!r} is used by more than one Prestatie.",
            )
        seen.add(value)


@REGISTRY.rule(
    "TR316",
    types=("JW323",),
    summary="No Prestatie credits a line of the same message (VorigReferentieNummer is no "
    "ReferentieNummer in the message).",
)
def no_credit_of_same_message(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR316: debit lines may not be credited in the message that claims them."""
    own_references = {
        value for el in doc.all_local("ReferentieNummer") if (value := doc.text(el)) is not None
    }
    for previous in doc.all_local("VorigReferentieNummer"):
        value = doc.text(previous)
        if value is not None and value in own_references:
            yield Violation(
                previous,
                f"VorigReferentieNummer {value!r} is the ReferentieNummer of a Prestatie in "
                "this same message; a line cannot be credited in the message that claims it.",
            )


@REGISTRY.rule(
    "TR416",
    types=("JW323",),
    summary="No two debit Prestaties of one client share ProductPeriode, ProductCategorie, "
    "ProductCode and ToewijzingNummer.",
)
def no_duplicate_debit(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR416: the same care is claimed (debited) at most once per message."""
    for prestaties in doc.all_local("Prestaties"):
        seen: set[tuple[str | None, ...]] = set()
        for prestatie in doc.findall(prestaties, "Prestatie"):
            if doc.text(prestatie, "IngediendBedrag/DebetCredit") != DEBET:
                continue
            key = (
                doc.text(prestatie, "ProductPeriode/Begindatum"),
                doc.text(prestatie, "ProductPeriode/Einddatum"),
                doc.text(prestatie, "ProductCategorie"),
                doc.text(prestatie, "ProductCode"),
                doc.text(prestatie, "ToewijzingNummer"),
            )
            if key in seen:
                begin, end, category, code, assignment = key
                yield Violation(
                    prestatie,
                    f"A second debit Prestatie for ToewijzingNummer {assignment}, product "
                    f"{category}/{code} and period {begin} to {end}.",
                )
            seen.add(key)


# --- JW323 Declaratie: amounts ---------------------------------------------------------------


@REGISTRY.rule(
    "TR358",
    types=("JW323",),
    summary="TotaalIngediendBedrag equals the sum of IngediendBedrag of all Prestaties, "
    "debit added and credit subtracted.",
)
def claim_total_matches_lines(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR358: the header total is the signed sum of the lines."""
    total_element = doc.find(doc.root, "Declaratie/TotaalIngediendBedrag")
    if total_element is None:
        return
    yield from _total_of_lines(doc, total_element, "IngediendBedrag", "Prestaties' total")


def _total_of_lines(
    doc: MessageDocument, total_element: Element, line_name: str, lines_label: str
) -> Iterator[Violation]:
    """A violation when a header total is not the signed sum of every ``line_name`` amount."""
    total = signed_amount(total_element, doc)
    lines = sum([signed_amount(el, doc) for el in doc.all_local(line_name)])
    if total != lines:
        line_amount, line_indicator = with_debet_credit(lines)
        total_amount, total_indicator = with_debet_credit(total)
        yield Violation(
            total_element,
            f"{local_name(total_element)} {total_amount} {total_indicator} does not equal the "
            f"{lines_label} {line_amount} {line_indicator} (debit minus credit).",
        )


#: The gateway's own check of a 2.3 JW303's totals (the 2.3 rule could not be confirmed).
INVOICE_TOTALS_2_3 = "BVO002"
#: A 2.3 JW303's header totals (in DeclaratieFactuurBedragen) and the line amount each sums.
INVOICE_TOTAL_FIELDS = (
    ("DeclaratieFactuurTotaalBedrag", "DeclaratieFactuurBedrag"),
    ("BtwTotaalBedrag", "BtwBedrag"),
)


@REGISTRY.rule(
    INVOICE_TOTALS_2_3,
    types=(),
    other_releases={RELEASE_2_3: ("JW303",)},
    summary="BVO rule (2.3 JW303, as TR358 for 3.2): DeclaratieFactuurTotaalBedrag equals the "
    "signed sum of the lines' DeclaratieFactuurBedrag, and BtwTotaalBedrag (when present) that "
    "of their BtwBedrag; the JW304 totals rest on it.",
)
def invoice_totals_match_lines(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """BVO002: each header total of a 2.3 JW303 is the signed sum of its lines' amounts."""
    bedragen = doc.find(doc.header, "DeclaratieFactuurBedragen")
    if bedragen is None:
        return
    for total_name, line_name in INVOICE_TOTAL_FIELDS:
        total_element = doc.find(bedragen, total_name)
        if total_element is not None:
            yield from _total_of_lines(doc, total_element, line_name, f"lines' {line_name} total")


@REGISTRY.rule(
    "CS325",
    types=("JW323", "JW325"),
    summary="A (Totaal)Bedrag of 0 has DebetCredit D.",
)
def zero_amount_is_debit(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """CS325: zero is always written as a debit."""
    for name in AMOUNT_WITH_DC_NAMES:
        for amount_element in doc.all_local(name):
            amount = doc.int_at(amount_element, "Bedrag")
            if amount is None:
                amount = doc.int_at(amount_element, "TotaalBedrag")
            if amount == 0 and doc.text(amount_element, "DebetCredit") == CREDIT:
                yield Violation(
                    amount_element,
                    f"{name} is 0 with DebetCredit C; a zero amount must be D.",
                )


@REGISTRY.rule(
    "CD087",
    types=("JW323",),
    summary="ProductTarief is filled if and only if Eenheid is not 83 (euro's).",
)
def tariff_unless_euros(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """CD087: lines claimed in euros have no tariff; every other unit needs one."""
    for prestatie in _prestaties(doc):
        unit = doc.text(prestatie, "Eenheid")
        tariff = doc.find(prestatie, "ProductTarief")
        if unit is None:
            continue
        if unit != EURO_UNIT and tariff is None:
            yield Violation(
                prestatie,
                f"ProductTarief is required for Eenheid {unit} (only Eenheid 83 has none).",
            )
        elif unit == EURO_UNIT and tariff is not None:
            yield Violation(tariff, "ProductTarief must be left out for Eenheid 83 (euro's).")


@REGISTRY.rule(
    "CS339",
    types=("JW323",),
    summary="With Eenheid 83 (euro's), IngediendBedrag equals GeleverdVolume.",
)
def euro_amount_is_volume(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """CS339: for euro lines the delivered volume already is the amount in eurocent."""
    for prestatie in _prestaties(doc):
        if doc.text(prestatie, "Eenheid") != EURO_UNIT:
            continue
        amount_element = doc.find(prestatie, "IngediendBedrag")
        amount = doc.int_at(amount_element, "Bedrag")
        volume = doc.int_at(prestatie, "GeleverdVolume")
        if amount_element is not None and amount is not None and amount != volume:
            yield Violation(
                amount_element,
                f"IngediendBedrag {amount} differs from GeleverdVolume {volume} on a "
                "line with Eenheid 83 (euro's).",
            )


# --- JW325 Declaratie-antwoord ----------------------------------------------------------------


@REGISTRY.rule(
    "TR342",
    types=("JW325",),
    summary="Returned (rejected) Prestaties explain TotaalIngediendBedrag minus "
    "TotaalToegekendBedrag (signed); with a DeclaratieAntwoord code other than 0200/8001, "
    "TotaalToegekendBedrag is 0.",
)
def answer_totals_reconcile(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR342: a claim answer's totals are explained by the lines it sends back."""
    for answer in doc.all_local("DeclaratieAntwoord"):
        submitted_element = doc.find(answer, "TotaalIngediendBedrag")
        granted_element = doc.find(answer, "TotaalToegekendBedrag")
        if submitted_element is None or granted_element is None:
            continue
        granted = signed_amount(granted_element, doc)
        codes = {doc.text(code) for code in doc.findall(answer, "RetourCodes/RetourCode")}
        rejection_codes = sorted(c for c in codes if c is not None and c not in ASSESSED_CODES)
        if rejection_codes:
            if granted != 0:
                yield Violation(
                    granted_element,
                    f"DeclaratieAntwoord is rejected with {', '.join(rejection_codes)}, so "
                    f"TotaalToegekendBedrag must be 0, not {abs(granted)}.",
                )
            continue
        returned = [
            signed_amount(el, doc)
            for el in doc.findall(answer, "Clienten/Client/Prestaties/Prestatie/IngediendBedrag")
        ]
        submitted = signed_amount(submitted_element, doc)
        if tr342_difference(submitted, granted, returned) != 0:
            yield Violation(
                granted_element,
                f"Returned Prestaties total {sum(returned)} (signed) but TotaalIngediendBedrag "
                f"minus TotaalToegekendBedrag is {submitted - granted} (signed).",
            )
