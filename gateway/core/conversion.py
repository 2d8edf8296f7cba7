"""Declared conversions in a translation run: Omvang, the declaration lines (JW323, 2.3 JW303)
and their answer (JW325, 2.3 JW304) of a pair whose ledger entry carries a
:class:`~gateway.core.mapping_tables.Conversion` (docs/translation.md, "Declared
conversions")."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from fractions import Fraction

from gateway.core.document import (
    DECLARATION_2_3_NUMBER,
    Element,
    date_at,
    element_path,
    find,
    findall,
    text,
)
from gateway.core.ledger import ClaimAmounts, ClaimLine, LedgerEntry, Omvang
from gateway.core.mapping_tables import ClaimRule, Conversion, Product
from gateway.core.rules.declaration import INVOICE_TOTAL_FIELDS
from gateway.core.translation_model import Rewrite, Run, Undecided, key_text, whole


def claims_convert(entry: LedgerEntry) -> bool:
    """True when the pair's conversion says how declaration lines change."""
    return entry.conversion is not None and entry.conversion.claim is not None


def omvang_of(element: Element) -> Omvang | None:
    volume, eenheid = whole(text(element, "Omvang/Volume")), text(element, "Omvang/Eenheid")
    if volume is None or eenheid is None:
        return None
    return Omvang(int(volume), eenheid, text(element, "Omvang/Frequentie"))


def _set(run: Run, element: Element, path: str, value: str, *, basis: str, key: str | None) -> None:
    """Write ``value`` at ``path`` below ``element`` and record the rewrite when it changes."""
    target = find(element, path)
    if target is None:
        return
    old = (target.text or "").strip()
    if old != value:
        run.rewrites.append(Rewrite(f"{element_path(element)}/{path}", old, value, basis, key))
        target.text = value


def convert_declared_omvang(
    run: Run, element: Element, entry: LedgerEntry, key: str | None
) -> bool:
    """Omvang under the pair's declared conversion, in whichever direction the message goes."""
    conversion = entry.conversion
    sent = omvang_of(element)
    if conversion is None or sent is None:
        return True
    (unit_before, per_before), (unit_after, per_after) = conversion.units(run.to_generation)
    if sent.eenheid == unit_after and per_after in (None, sent.frequentie):
        return True  # already in the receiver's terms
    path = f"{element_path(element)}/Omvang"
    if sent.eenheid != unit_before or per_before not in (None, sent.frequentie):
        reads = Omvang(sent.volume, unit_before, per_before)
        reason = f"Omvang is {sent}; {conversion.origin} converts {reads} (any Volume)"
        run.undecided.append(Undecided(path, None, reason, key=key))
        return False
    converted = _converted_omvang(conversion, entry, sent, run.to_generation)
    if converted is None:
        reason = (
            f"Omvang {sent} has no exact conversion to {unit_after} under {conversion.origin}"
            if conversion.volume_factor is not None
            else f"the way back of {conversion.origin} (a fixed volume) needs the source-side "
            "Omvang recorded with the pair, and there is none"
        )
        run.undecided.append(Undecided(path, None, reason, key=key))
        return False
    basis = f"{conversion.origin} ({sent} -> {converted})"
    _set(run, element, "Omvang/Volume", str(converted.volume), basis=basis, key=key)
    _set(run, element, "Omvang/Eenheid", converted.eenheid, basis=basis, key=key)
    if converted.frequentie is not None:
        _set(run, element, "Omvang/Frequentie", converted.frequentie, basis=basis, key=key)
    return True


def _converted_omvang(
    conversion: Conversion, entry: LedgerEntry, sent: Omvang, to_generation: str
) -> Omvang | None:
    forward = conversion.towards_target(to_generation)
    (_, _), (unit_after, per_after) = conversion.units(to_generation)
    if conversion.volume_factor is not None:
        factor = conversion.volume_factor if forward else 1 / conversion.volume_factor
        volume = sent.volume * factor
        if volume.denominator != 1:
            return None
        return Omvang(volume.numerator, unit_after, per_after or sent.frequentie)
    if forward and conversion.fixed_volume is not None:
        return Omvang(conversion.fixed_volume, unit_after, per_after or sent.frequentie)
    return entry.source_omvang  # a fixed volume goes back to what the source side sent


# -- Declaration lines: JW323/JW325 (3.2) and JW303/JW304 (2.3) ----------------------------------

#: What both releases keep in the same place on a declaration line (below its Prestatie).
_REFERENTIE, _TOEWIJZING = "ProductReferentie/ReferentieNummer", "ToewijzingNummer"
_BEGIN, _END = "ProductPeriode/Begindatum", "ProductPeriode/Einddatum"


@dataclass(frozen=True, slots=True)
class InvoicePaths:
    """What only a 2.3 line has (below its Prestatie): VAT, Verrekenpercentage, and in the
    JW304 what the gemeente computed and granted."""

    vrijstelling: str
    percentage: str
    btw: str
    verrekenpercentage: str
    computed: str
    """A JW304 line's GemeenteBerekendBedrag."""
    granted: str
    """A JW304 line's ToegekendBedrag, which the answer's ToegekendTotaalBedrag sums."""


@dataclass(frozen=True, slots=True)
class DeclarationForm:
    """Where a release's declaration and its answer keep what a conversion reads and writes.
    Line paths are below the Prestatie, amounts are CDT_BedragMetDC elements (Bedrag and
    DebetCredit); the other paths are below the Bericht."""

    volume: str
    eenheid: str
    tarief: str
    bedrag: str
    """The line's amount before VAT: 3.2 IngediendBedrag, 2.3 BerekendBedrag."""
    claimed: str
    """What the line claims, which the declaration's total sums (2.3: VAT included)."""
    number: tuple[str, str]
    """The declaration's number in the declaration and in its answer."""
    aanbieder: tuple[str, str]
    """The header element naming the provider in the declaration and in its answer."""
    totals: tuple[tuple[str, str], ...]
    """Each header total of a declaration, and the line amount it sums."""
    answer_totals: tuple[str, str]
    """The answer's submitted and granted totals."""
    invoice: InvoicePaths | None = None


FORM_3_2 = DeclarationForm(
    volume="GeleverdVolume",
    eenheid="Eenheid",
    tarief="ProductTarief",
    bedrag="IngediendBedrag",
    claimed="IngediendBedrag",
    number=("Declaratie/DeclaratieNummer", "DeclaratieAntwoord/DeclaratieNummer"),
    aanbieder=("Afzender", "Ontvanger"),
    totals=(("Declaratie/TotaalIngediendBedrag", "IngediendBedrag"),),
    answer_totals=(
        "DeclaratieAntwoord/TotaalIngediendBedrag",
        "DeclaratieAntwoord/TotaalToegekendBedrag",
    ),
)
_FIGURES_2_3 = "IngediendeBedragPrestatie"
FORM_2_3 = DeclarationForm(
    volume=f"{_FIGURES_2_3}/GeleverdVolume",
    eenheid=f"{_FIGURES_2_3}/Eenheid",
    tarief=f"{_FIGURES_2_3}/ProductTarief",
    bedrag=f"{_FIGURES_2_3}/BerekendBedrag",
    claimed=f"{_FIGURES_2_3}/DeclaratieFactuurBedrag",
    number=(f"Header/{DECLARATION_2_3_NUMBER}",) * 2,
    aanbieder=("Aanbieder", "Aanbieder"),
    totals=tuple(
        (f"Header/DeclaratieFactuurBedragen/{total}", f"{_FIGURES_2_3}/{line}")
        for total, line in INVOICE_TOTAL_FIELDS
    ),
    answer_totals=(
        "Header/RetourBedragen/IngediendTotaalBedrag",
        "Header/RetourBedragen/ToegekendTotaalBedrag",
    ),
    invoice=InvoicePaths(
        vrijstelling=f"{_FIGURES_2_3}/BtwVrijstellingIndicatie",
        percentage=f"{_FIGURES_2_3}/BtwPercentage",
        btw=f"{_FIGURES_2_3}/BtwBedrag",
        verrekenpercentage=f"{_FIGURES_2_3}/Verrekenpercentage",
        computed="ToegekendeBedragPrestatie/GemeenteBerekendBedrag",
        granted="ToegekendeBedragPrestatie/ToegekendBedrag",
    ),
)

_VAT_EXEMPT = "1"  # BtwVrijstellingIndicatie: 1 exempt, 2 not
_WHOLE = 10_000
"""A percentage in hundredths (BtwPercentage 2100 is 21 %): 100 %."""


def _form(run: Run) -> DeclarationForm:
    return FORM_2_3 if run.vat_lines else FORM_3_2


@dataclass(frozen=True, slots=True)
class _Line:
    """The figures of one declaration line (a JW323/JW325 or JW303/JW304 Prestatie)."""

    referentie: str
    toewijzing: str
    begin: dt.date
    end: dt.date
    volume: int
    eenheid: str
    tarief: int
    bedrag: int
    debet_credit: str
    btw: int | None
    factuur: int | None

    def amounts(self, product: Product) -> ClaimAmounts:
        return ClaimAmounts(
            product, self.volume, self.eenheid, self.tarief, self.bedrag, self.btw, self.factuur
        )


def _number(element: Element | None, path: str) -> int | None:
    value = whole(text(element, path))
    return None if value is None else int(value)


def _line_of(element: Element, form: DeclarationForm) -> _Line | None:
    volume, tarief, bedrag = (
        _number(element, p) for p in (form.volume, form.tarief, f"{form.bedrag}/Bedrag")
    )
    begin = date_at(element, _BEGIN)
    end = date_at(element, _END) or begin
    referentie, toewijzing, eenheid, sign = (
        text(element, p)
        for p in (_REFERENTIE, _TOEWIJZING, form.eenheid, f"{form.bedrag}/DebetCredit")
    )
    btw = factuur = None
    if form.invoice is not None:
        btw = _number(element, f"{form.invoice.btw}/Bedrag")
        factuur = _number(element, f"{form.claimed}/Bedrag")
        if factuur is None:
            return None
    if volume is None or tarief is None or bedrag is None or begin is None or end is None:
        return None
    if referentie is None or toewijzing is None or eenheid is None or sign is None:
        return None
    return _Line(
        referentie, toewijzing, begin, end, volume, eenheid, tarief, bedrag, sign, btw, factuur
    )


def _btw(element: Element, invoice: InvoicePaths, bedrag: int) -> int | str:
    """The VAT of a converted 2.3 line whose BerekendBedrag is ``bedrag`` (0 when exempt or
    when the line names no VAT), or why the line's own fields do not tell it."""
    verrekend = _number(element, invoice.verrekenpercentage)
    if verrekend is not None and verrekend != _WHOLE:
        return (
            f"the line has Verrekenpercentage {verrekend}: how it enters a 2.3 line's "
            "BerekendBedrag is not confirmed, so the converted amount is not computed"
        )
    exempt = text(element, invoice.vrijstelling)
    percentage = _number(element, invoice.percentage)
    has_btw = find(element, invoice.btw) is not None
    if exempt == _VAT_EXEMPT:
        if percentage:
            return (
                f"BtwVrijstellingIndicatie 1 (exempt) with BtwPercentage {percentage}: the "
                "line does not say whether the converted amount bears VAT"
            )
        return 0
    if percentage is None:
        if exempt is None and not has_btw:
            return 0  # no VAT fields at all: the invoice amount is the BerekendBedrag
        return (
            "the line names no BtwPercentage: the VAT on the converted amount is unknown "
            f"(BtwVrijstellingIndicatie {exempt or 'absent'})"
        )
    # Whole cents, half a cent up (amounts are unsigned; DebetCredit carries the sign).
    vat = math.floor(Fraction(bedrag * percentage, _WHOLE) + Fraction(1, 2))
    if vat and not has_btw:
        return f"BtwPercentage {percentage} without a BtwBedrag to state the converted VAT in"
    return vat


def _write_line(
    run: Run,
    element: Element,
    amounts: ClaimAmounts,
    basis: str,
    key: str | None,
) -> None:
    form = _form(run)
    _set(run, element, form.volume, str(amounts.volume), basis=basis, key=key)
    _set(run, element, form.eenheid, amounts.eenheid, basis=basis, key=key)
    _set(run, element, form.tarief, str(amounts.tarief), basis=basis, key=key)
    _set(run, element, f"{form.bedrag}/Bedrag", str(amounts.bedrag), basis=basis, key=key)
    for path, value in (
        (None if form.invoice is None else form.invoice.btw, amounts.btw_bedrag),
        (form.claimed, amounts.factuur_bedrag),
    ):
        if path is not None and value is not None:
            _set(run, element, f"{path}/Bedrag", str(value), basis=basis, key=key)


def convert_claim(run: Run, element: Element, entry: LedgerEntry, target: Product) -> bool:
    """A JW323 or JW303 line under the pair's conversion: the receiver's volume, unit and
    tariff, and the amounts recomputed (a 2.3 line's VAT and invoice amount too); recorded so
    the answer can go back as the sender declared."""
    conversion = entry.conversion
    assert conversion is not None and conversion.claim is not None  # _claims_convert
    form = _form(run)
    key, path = key_text(entry.key), element_path(element)
    line = _line_of(element, form)

    def hold(reason: str) -> bool:
        run.undecided.append(Undecided(path, None, reason, key=key, candidates=(target,)))
        return False

    if line is None:
        return hold("the line lacks a figure the conversion needs")
    (unit_before, _), (unit_after, _) = conversion.units(run.to_generation)
    forward = conversion.towards_target(run.to_generation)
    if line.eenheid != unit_before:
        return hold(
            f"the line is in Eenheid {line.eenheid}; {conversion.origin} reads {unit_before}"
        )
    if conversion.claim is ClaimRule.PER_MONTH:
        month = (entry.key, line.begin.year, line.begin.month)
        if not forward:
            return hold(
                f"{conversion.origin} turns {conversion.source_eenheid} into one "
                f"{conversion.target_eenheid} per month; a line in {unit_before} cannot be "
                f"read back into {unit_after}"
            )
        if (line.end.year, line.end.month) != month[1:]:
            return hold("the ProductPeriode spans several months; a per-month line needs one")
        if month in run.claimed_months:
            return hold(f"a second line for {entry.key} in {line.begin:%Y-%m}: one per month")
        run.claimed_months.add(month)
        volume = (conversion.fixed_volume or 0) if line.volume > 0 else 0
    else:
        assert conversion.volume_factor is not None  # the loader: claim volume has a factor
        factor = conversion.volume_factor if forward else 1 / conversion.volume_factor
        exact = line.volume * factor
        if exact.denominator != 1:
            return hold(f"GeleverdVolume {line.volume} x {factor} is not a whole number")
        volume = exact.numerator
    aanbieder = run.header(form.aanbieder[0])
    tariff = _tariff(run, conversion, target, line.begin, unit=unit_after, aanbieder=aanbieder)
    if isinstance(tariff, str):
        return hold(tariff)
    bedrag = volume * tariff
    btw = factuur = None
    if form.invoice is not None:
        vat = _btw(element, form.invoice, bedrag)
        if isinstance(vat, str):
            return hold(vat)
        btw = None if line.btw is None else vat
        factuur = bedrag + vat
    sent = line.amounts(entry.other_side(target) or target)
    delivered = ClaimAmounts(target, volume, unit_after, tariff, bedrag, btw, factuur)
    basis = f"{conversion.origin} ({conversion.claim.value}, tariff {tariff})"
    _write_line(run, element, delivered, basis, key)
    run.claim_lines.append(
        ClaimLine(
            gemeente=run.gemeente,
            aanbieder=aanbieder,
            declaratie=text(run.root, form.number[0]) or "",
            referentie=line.referentie,
            toewijzing=line.toewijzing,
            debet_credit=line.debet_credit,
            sent=sent,
            delivered=delivered,
        )
    )
    return True


def _tariff(
    run: Run, conversion: Conversion, target: Product, day: dt.date, *, unit: str, aanbieder: str
) -> int | str:
    """The price per ``unit`` of ``target`` on ``day``, or why there is none."""
    if conversion.tariff is not None:
        return conversion.tariff
    found = (
        None
        if run.contracts is None
        else run.contracts.tariff(run.gemeente, aanbieder, target.categorie, target.code, day)
    )
    if found is None:
        return (
            f"no contract tariff for {target} on {day} (gemeente {run.gemeente}); "
            f"{conversion.origin} prices lines at the contract's"
        )
    if found.eenheid != unit:
        return f"the contract prices {target} per {found.eenheid}, the conversion gives {unit}"
    return found.tarief


def _recorded_claims(run: Run) -> dict[str, ClaimLine]:
    """The converted lines of the declaration an answer is about, by ReferentieNummer."""
    if run.recorded_claims is None:
        form = _form(run)
        declaratie = text(run.root, form.number[1])
        lines = (
            run.ledger.claim_lines(run.gemeente, run.header(form.aanbieder[1]), declaratie)
            if declaratie
            else ()
        )
        run.recorded_claims = {line.referentie: line for line in lines}
    return run.recorded_claims


def restore_claim(run: Run, element: Element, entry: LedgerEntry, product: Product) -> bool:
    """A JW325 or JW304 line back to the sender: the line as it declared it (from the
    recorded claim); a JW304 line's computed and granted amounts in those terms too."""
    key, path = key_text(entry.key), element_path(element)

    def hold(reason: str) -> bool:
        run.undecided.append(Undecided(path, product, reason, key=key))
        return False

    referentie = text(element, _REFERENTIE) or ""
    recorded = _recorded_claims(run).get(referentie)
    if recorded is None or recorded.delivered.product != product:
        return hold(
            f"no converted line {referentie} recorded for this declaration: the answer "
            "cannot be given in the sender's terms"
        )
    invoice = _form(run).invoice
    granted = {} if invoice is None else _granted_as_declared(element, invoice, recorded)
    if isinstance(granted, str):
        return hold(granted)
    basis = f"declared as (ledger {entry.key})"
    _write_line(run, element, recorded.sent, basis, key)
    for amount_path, value in granted.items():
        if invoice is not None and amount_path == invoice.granted:
            run.granted_shift += _signed(find(element, amount_path)) - recorded.signed(value)
        _set(run, element, f"{amount_path}/Bedrag", str(value), basis=basis, key=key)
    return True


def _granted_as_declared(
    element: Element, invoice: InvoicePaths, recorded: ClaimLine
) -> dict[str, int] | str:
    """A JW304 line's GemeenteBerekendBedrag and ToegekendBedrag (by path) in the sender's
    terms: the converted line's whole amount is what the sender declared, nothing stays
    nothing; any other amount (a part of a converted line) has no counterpart."""
    restored = {}
    for amount_path in (invoice.computed, invoice.granted):
        value = _number(element, f"{amount_path}/Bedrag")
        if value is None:
            continue
        if value not in (0, recorded.delivered.claimed):
            return (
                f"{amount_path.rsplit('/', 1)[-1]} {value} is neither 0 nor the converted "
                f"line's {recorded.delivered.claimed}: part of a converted line cannot be "
                "stated in the sender's terms"
            )
        restored[amount_path] = recorded.sent.claimed if value else 0
    return restored


def _signed(amount: Element | None) -> int:
    """A CDT_(Totaal)BedragMetDC's value, credit negative; 0 when absent."""
    value = _number(amount, "Bedrag")
    if value is None:
        value = _number(amount, "TotaalBedrag") or 0
    return -value if text(amount, "DebetCredit") == "C" else value


def _write_total(run: Run, element: Element | None, total: int, basis: str) -> None:
    if element is None:
        return
    _set(run, element, "TotaalBedrag", str(abs(total)), basis=basis, key=None)
    _set(run, element, "DebetCredit", "C" if total < 0 else "D", basis=basis, key=None)


def _line_sum(run: Run, amount_path: str) -> int:
    assert run.root is not None
    return sum(_signed(find(line, amount_path)) for line in run.root.iter("{*}Prestatie"))


def total_declaration(run: Run) -> None:
    """The header totals of a JW323 or JW303 with converted lines: the sums of its lines."""
    assert run.root is not None
    for total_path, line_path in _form(run).totals:
        total = find(run.root, total_path)
        _write_total(run, total, _line_sum(run, line_path), "sum of the converted lines")


ACCEPTING_CODES = frozenset({"0200", "8001"})
"""DeclaratieAntwoord retourcodes that grant the lines not returned (TR342)."""


def total_answer(run: Run) -> None:
    """The totals of an answer in the sender's terms. Submitted: what it declared. Granted,
    in a JW325: that minus the returned (refused) lines as it declared them (TR342); in a
    JW304 (every line states what it grants): the granted lines as it declared them."""
    assert run.root is not None
    recorded = _recorded_claims(run) if not run.undecided else {}
    if not recorded:
        return
    form = _form(run)
    submitted, granted = (find(run.root, path) for path in form.answer_totals)
    shift = sum(
        line.signed(line.delivered.claimed) - line.signed(line.sent.claimed)
        for line in recorded.values()
    )
    declared = _signed(submitted) - shift
    basis = "as declared (ledger)"
    _write_total(run, submitted, declared, basis)
    if form.invoice is not None:
        _write_total(run, granted, _signed(granted) - run.granted_shift, basis)
        return
    answer = find(run.root, "DeclaratieAntwoord")
    codes = (
        {c.text for c in findall(answer, "RetourCodes/RetourCode")} if answer is not None else set()
    )
    if codes <= ACCEPTING_CODES:
        _write_total(run, granted, declared - _line_sum(run, form.claimed), basis)
