"""Declared conversions in a translation run: Omvang, JW323 lines and the JW325 answer of a
pair whose ledger entry carries a :class:`~gateway.core.mapping_tables.Conversion`
(docs/translation.md, "Declared conversions")."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from fractions import Fraction

from gateway.core.document import Element, date_at, element_path, find, findall, text
from gateway.core.ledger import ClaimAmounts, ClaimLine, LedgerEntry, Omvang
from gateway.core.mapping_tables import ClaimRule, Conversion, Product
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


@dataclass(frozen=True, slots=True)
class _Line:
    """The figures of one declaration line (JW323/JW325 Prestatie)."""

    referentie: str
    toewijzing: str
    begin: dt.date
    end: dt.date
    volume: int
    eenheid: str
    tarief: int
    bedrag: int
    debet_credit: str


def _line_of(element: Element) -> _Line | None:
    numbers = [
        whole(text(element, p))
        for p in ("GeleverdVolume", "ProductTarief", "IngediendBedrag/Bedrag")
    ]
    begin = date_at(element, "ProductPeriode/Begindatum")
    end = date_at(element, "ProductPeriode/Einddatum") or begin
    strings = [
        text(element, p)
        for p in (
            "ProductReferentie/ReferentieNummer",
            "ToewijzingNummer",
            "Eenheid",
            "IngediendBedrag/DebetCredit",
        )
    ]
    volume, tarief, bedrag = numbers
    referentie, toewijzing, eenheid, sign = strings
    if volume is None or tarief is None or bedrag is None or begin is None or end is None:
        return None
    if referentie is None or toewijzing is None or eenheid is None or sign is None:
        return None
    return _Line(
        referentie, toewijzing, begin, end, int(volume), eenheid, int(tarief), int(bedrag), sign
    )


def _write_line(
    run: Run, element: Element, amounts: ClaimAmounts, basis: str, key: str | None
) -> None:
    _set(run, element, "GeleverdVolume", str(amounts.volume), basis=basis, key=key)
    _set(run, element, "Eenheid", amounts.eenheid, basis=basis, key=key)
    _set(run, element, "ProductTarief", str(amounts.tarief), basis=basis, key=key)
    _set(run, element, "IngediendBedrag/Bedrag", str(amounts.bedrag), basis=basis, key=key)


def convert_claim(run: Run, element: Element, entry: LedgerEntry, target: Product) -> bool:
    """A JW323 line under the pair's conversion: the receiver's volume, unit and tariff, and
    the amount recomputed; recorded so the JW325 answer can go back as the sender declared."""
    conversion = entry.conversion
    assert conversion is not None and conversion.claim is not None  # _claims_convert
    key, path = key_text(entry.key), element_path(element)
    line = _line_of(element)

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
    tariff = _tariff(run, conversion, target, line.begin, unit_after)
    if isinstance(tariff, str):
        return hold(tariff)
    sent = ClaimAmounts(
        entry.other_side(target) or target,
        line.volume,
        line.eenheid,
        line.tarief,
        line.bedrag,
    )
    delivered = ClaimAmounts(target, volume, unit_after, tariff, volume * tariff)
    basis = f"{conversion.origin} ({conversion.claim.value}, tariff {tariff})"
    _write_line(run, element, delivered, basis, key)
    run.claim_lines.append(
        ClaimLine(
            gemeente=run.gemeente,
            aanbieder=run.header("Afzender"),
            declaratie=text(run.root, "Declaratie/DeclaratieNummer") or "",
            referentie=line.referentie,
            toewijzing=line.toewijzing,
            debet_credit=line.debet_credit,
            sent=sent,
            delivered=delivered,
        )
    )
    return True


def _tariff(
    run: Run, conversion: Conversion, target: Product, day: dt.date, unit: str
) -> int | str:
    """The price per ``unit`` of ``target`` on ``day``, or why there is none."""
    if conversion.tariff is not None:
        return conversion.tariff
    found = (
        None
        if run.contracts is None
        else run.contracts.tariff(
            run.gemeente, run.header("Afzender"), target.categorie, target.code, day
        )
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
    """The converted lines of the declaration a JW325 answers, by ReferentieNummer."""
    if run.recorded_claims is None:
        declaratie = text(run.root, "DeclaratieAntwoord/DeclaratieNummer")
        lines = (
            run.ledger.claim_lines(run.gemeente, run.header("Ontvanger"), declaratie)
            if declaratie
            else ()
        )
        run.recorded_claims = {line.referentie: line for line in lines}
    return run.recorded_claims


def restore_claim(run: Run, element: Element, entry: LedgerEntry, product: Product) -> bool:
    """A JW325 line back to the sender: the line as it declared it (from the recorded claim)."""
    key, path = key_text(entry.key), element_path(element)
    referentie = text(element, "ProductReferentie/ReferentieNummer") or ""
    recorded = _recorded_claims(run).get(referentie)
    if recorded is None or recorded.delivered.product != product:
        run.undecided.append(
            Undecided(
                path,
                product,
                f"no converted line {referentie} recorded for this declaration: the answer "
                "cannot be given in the sender's terms",
                key=key,
            )
        )
        return False
    _write_line(run, element, recorded.sent, f"declared as (ledger {entry.key})", key)
    return True


def _signed(element: Element | None, amount: str, sign: str) -> int:
    value = whole(text(element, amount)) or Fraction(0)
    return int(-value if text(element, sign) == "C" else value)


def _write_total(run: Run, element: Element | None, total: int, basis: str) -> None:
    if element is None:
        return
    _set(run, element, "TotaalBedrag", str(abs(total)), basis=basis, key=None)
    _set(run, element, "DebetCredit", "C" if total < 0 else "D", basis=basis, key=None)


def _line_sum(run: Run) -> int:
    assert run.root is not None
    return sum(
        _signed(line, "IngediendBedrag/Bedrag", "IngediendBedrag/DebetCredit")
        for line in run.root.iter("{*}Prestatie")
    )


def total_declaration(run: Run) -> None:
    """TotaalIngediendBedrag of a JW323 with converted lines: the sum of its lines."""
    assert run.root is not None
    total = find(run.root, "Declaratie/TotaalIngediendBedrag")
    _write_total(run, total, _line_sum(run), "sum of the converted lines")


ACCEPTING_CODES = frozenset({"0200", "8001"})
"""DeclaratieAntwoord retourcodes that grant the lines not returned (TR342)."""


def total_answer(run: Run) -> None:
    """The totals of a JW325 in the sender's terms: what it declared, and that minus the
    returned (refused) lines as it declared them (TR342)."""
    assert run.root is not None
    recorded = _recorded_claims(run) if not run.undecided else {}
    if not recorded:
        return
    answer = find(run.root, "DeclaratieAntwoord")
    submitted, granted = (
        find(run.root, f"DeclaratieAntwoord/{name}")
        for name in ("TotaalIngediendBedrag", "TotaalToegekendBedrag")
    )
    shift = sum(
        line.signed(line.delivered.bedrag) - line.signed(line.sent.bedrag)
        for line in recorded.values()
    )
    declared = _signed(submitted, "TotaalBedrag", "DebetCredit") - shift
    basis = "as declared (ledger)"
    _write_total(run, submitted, declared, basis)
    codes = (
        {c.text for c in findall(answer, "RetourCodes/RetourCode")} if answer is not None else set()
    )
    if codes <= ACCEPTING_CODES:
        _write_total(run, granted, declared - _line_sum(run), basis)
