"""Cross-message rules on declarations (JW323): numbers, credits, links, periods and limits."""

from __future__ import annotations

import calendar as stdlib_calendar
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from gateway.core.document import Element, MessageDocument, find, text
from gateway.core.dossier import (
    Allocation,
    ClaimLine,
    claim_lines_in,
    most_recent,
    open_claims,
)
from gateway.core.rules.engine import RuleContext, Violation
from gateway.core.rules.registry import REGISTRY
from gateway.core.rules.state.shared import (
    HISTORY,
    HOUR,
    MINUTE,
    OUTPUT_UNITS,
    PER_DAY,
    PER_MONTH,
    TOTAL,
    B,
    class_element,
    history_of,
)

# --- declarations (JW323) ----------------------------------------------------------------------


@REGISTRY.rule(
    "TR333",
    types=("JW323",),
    summary="DeclaratieNummer is unique for the aanbieder.",
    retourcode="9333",
    level=B,
    needs=HISTORY,
)
def declaration_number_unique(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR333: a declaration number is used once (rejected declarations do not count)."""
    element = find(doc.root, "Declaratie/DeclaratieNummer")
    nummer = text(element)
    aanbieder = doc.header_text("Afzender") or ""
    if (
        element is not None
        and nummer
        and history_of(ctx).declaration_number_seen(aanbieder, nummer)
    ):
        yield Violation(element, f"DeclaratieNummer {nummer!r} was already used.")


@REGISTRY.rule(
    "TR314",
    types=("JW323",),
    summary="The ReferentieNummer of a prestatie was not used before.",
    retourcode="8021",
    level=B,
    needs=HISTORY,
)
def reference_number_unused(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR314: every claim line has a fresh ReferentieNummer."""
    for el, line in claim_lines_in(doc):
        if history_of(ctx).claim_line(line.aanbieder, line.gemeente, line.referentie_nummer):
            yield Violation(
                class_element(el, "ProductReferentie/ReferentieNummer"),
                f"ReferentieNummer {line.referentie_nummer!r} was already used.",
            )


def _credited_debit(ctx: RuleContext, line: ClaimLine) -> ClaimLine | None:
    if line.vorig_referentie_nummer is None:
        return None
    return history_of(ctx).claim_line(line.aanbieder, line.gemeente, line.vorig_referentie_nummer)


@REGISTRY.rule(
    "TR323",
    types=("JW323",),
    summary="A credit line refers to an accepted debit line of the same client.",
    retourcode="8017",
    level=B,
    needs=HISTORY,
)
def credit_has_debit(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR323: VorigReferentieNummer names a known debit line."""
    for el, line in claim_lines_in(doc):
        if not line.credit:
            continue
        debit = _credited_debit(ctx, line)
        if debit is None or debit.credit or debit.bsn != line.bsn:
            yield Violation(
                class_element(el, "ProductReferentie/VorigReferentieNummer"),
                f"no accepted debit line {line.vorig_referentie_nummer!r} for this client.",
            )


@REGISTRY.rule(
    "TR390",
    types=("JW323",),
    summary="A debit line is credited at most once.",
    retourcode="9390",
    level=B,
    needs=HISTORY,
)
def credit_once(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR390: a credit already exists for this ProductReferentie."""
    for el, line in claim_lines_in(doc):
        debit = _credited_debit(ctx, line) if line.credit else None
        if debit is not None and history_of(ctx).credits_of(
            line.aanbieder, line.gemeente, debit.referentie_nummer
        ):
            yield Violation(
                class_element(el, "ProductReferentie/VorigReferentieNummer"),
                f"debit line {debit.referentie_nummer!r} was already credited.",
            )


@dataclass(frozen=True)
class _DebitLine:
    element: Element
    line: ClaimLine
    allocation: Allocation | None


def _debit_lines(doc: MessageDocument, ctx: RuleContext) -> list[_DebitLine]:
    """The debit lines of the message with the current version of their assignment (to this
    aanbieder and client), or None when there is none (TR338)."""
    history = history_of(ctx)
    result = []
    for el, line in claim_lines_in(doc):
        if line.credit:
            continue  # a credit cancels an accepted debit; it is not judged against the assignment
        versions = [
            v
            for v in history.allocation_versions(line.gemeente, line.toewijzing_nummer)
            if v.aanbieder == line.aanbieder and v.bsn == line.bsn
        ]
        result.append(_DebitLine(el, line, most_recent(versions)))
    return result


def _credited_here(doc: MessageDocument) -> set[str]:
    """ReferentieNummers of debits this message credits: credits go first (OP366)."""
    return {
        line.vorig_referentie_nummer
        for _, line in claim_lines_in(doc)
        if line.credit and line.vorig_referentie_nummer is not None
    }


@REGISTRY.rule(
    "TR338",
    types=("JW323",),
    summary="A prestatie refers by ToewijzingNummer to an assignment of this client.",
    retourcode="9338",
    level=B,
    needs=HISTORY,
)
def claim_linked_to_allocation(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR338: the assignment exists for this aanbieder and this client."""
    for debit in _debit_lines(doc, ctx):
        if debit.allocation is None:
            yield Violation(
                class_element(debit.element, "ToewijzingNummer"),
                f"ToewijzingNummer {debit.line.toewijzing_nummer} is not an assignment of this "
                "client to this aanbieder.",
            )


def _linked(doc: MessageDocument, ctx: RuleContext) -> Iterator[tuple[_DebitLine, Allocation]]:
    for debit in _debit_lines(doc, ctx):
        if debit.allocation is not None:
            yield debit, debit.allocation


@REGISTRY.rule(
    "TR384",
    types=("JW323",),
    summary="No claim on a deleted assignment (RedenWijziging 13).",
    retourcode="9384",
    level=B,
    needs=HISTORY,
)
def no_claim_on_deleted(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR384: a deleted assignment never existed, so nothing can be claimed on it."""
    for debit, allocation in _linked(doc, ctx):
        if allocation.deleted:
            yield Violation(
                class_element(debit.element, "ToewijzingNummer"),
                f"ToewijzingNummer {allocation.toewijzing_nummer} was deleted.",
            )


def _live(doc: MessageDocument, ctx: RuleContext) -> Iterator[tuple[_DebitLine, Allocation]]:
    # Deleted assignments are TR384's; judging their details too would only add noise.
    return ((d, a) for d, a in _linked(doc, ctx) if not a.deleted)


@REGISTRY.rule(
    "TR339",
    types=("JW323",),
    summary="ProductCategorie equals the assignment's.",
    retourcode="9339",
    level=B,
    needs=HISTORY,
)
def claim_category_matches(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR339: generic assignments (no category) accept any category."""
    for debit, allocation in _live(doc, ctx):
        if allocation.categorie is not None and debit.line.categorie != allocation.categorie:
            yield Violation(
                class_element(debit.element, "ProductCategorie"),
                f"ProductCategorie {debit.line.categorie} differs from the assignment's "
                f"{allocation.categorie}.",
            )


@REGISTRY.rule(
    "TR340",
    types=("JW323",),
    summary="ProductCode equals the assignment's when the assignment has one.",
    retourcode="9340",
    level=B,
    needs=HISTORY,
)
def claim_code_matches(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR340: aspecific assignments (no code) accept any code of the list (IV075)."""
    for debit, allocation in _live(doc, ctx):
        if allocation.code is not None and debit.line.code != allocation.code:
            yield Violation(
                class_element(debit.element, "ProductCode"),
                f"ProductCode {debit.line.code} differs from the assignment's {allocation.code}.",
            )


@REGISTRY.rule(
    "TR341",
    types=("JW323",),
    summary="Eenheid equals the assignment's (minutes may be claimed on hours).",
    retourcode="9341",
    level=B,
    needs=HISTORY,
)
def claim_unit_matches(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR341: the claim is in the assigned unit, or in minutes on an hourly assignment (IV081)."""
    for debit, allocation in _live(doc, ctx):
        assigned = allocation.eenheid
        claimed = debit.line.eenheid
        if assigned is None or claimed == assigned or (claimed, assigned) == (MINUTE, HOUR):
            continue
        yield Violation(
            class_element(debit.element, "Eenheid"),
            f"Eenheid {claimed} does not fit the assigned Eenheid {assigned}.",
        )


@REGISTRY.rule(
    "TR307",
    types=("JW323",),
    summary="ProductPeriode does not begin before the assignment's Ingangsdatum.",
    retourcode="9307",
    level=B,
    needs=HISTORY,
)
def claim_after_allocation_start(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR307: care before the assignment cannot be claimed."""
    for debit, allocation in _live(doc, ctx):
        if debit.line.begindatum < allocation.ingangsdatum:
            yield Violation(
                class_element(debit.element, "ProductPeriode/Begindatum"),
                f"the period begins before the Ingangsdatum {allocation.ingangsdatum.isoformat()}.",
            )


@REGISTRY.rule(
    "TR308",
    types=("JW323",),
    summary="ProductPeriode does not end after the assignment's Einddatum.",
    retourcode="9308",
    level=B,
    needs=HISTORY,
)
def claim_before_allocation_end(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR308: care after the assignment cannot be claimed."""
    for debit, allocation in _live(doc, ctx):
        end = allocation.einddatum
        if end is not None and debit.line.einddatum > end:
            yield Violation(
                class_element(debit.element, "ProductPeriode/Einddatum"),
                f"the period ends after the Einddatum {end.isoformat()}.",
            )


def _month_end(day: dt.date) -> dt.date:
    return day.replace(day=stdlib_calendar.monthrange(day.year, day.month)[1])


@REGISTRY.rule(
    "TR387",
    types=("JW323",),
    summary="ProductPeriode begins on the 1st, or on a later Ingangsdatum in that month.",
    retourcode="9387",
    level=B,
    needs=HISTORY,
)
def claim_period_starts_on_month(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR387: whole months are claimed, cut only by the assignment itself (IV089)."""
    for debit, allocation in _live(doc, ctx):
        begin = debit.line.begindatum
        if begin.day != 1 and begin != allocation.ingangsdatum:
            yield Violation(
                class_element(debit.element, "ProductPeriode/Begindatum"),
                "the period begins neither on the 1st nor on the assignment's Ingangsdatum.",
            )


@REGISTRY.rule(
    "TR388",
    types=("JW323",),
    summary="ProductPeriode ends on the month's last day, or on an earlier Einddatum.",
    retourcode="9388",
    level=B,
    needs=HISTORY,
)
def claim_period_ends_on_month(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR388: whole months are claimed, cut only by the assignment itself (IV089)."""
    for debit, allocation in _live(doc, ctx):
        end = debit.line.einddatum
        if end != _month_end(end) and end != allocation.einddatum:
            yield Violation(
                class_element(debit.element, "ProductPeriode/Einddatum"),
                "the period ends neither on the month's last day nor on the assignment's "
                "Einddatum.",
            )


def _open_history_claims(
    doc: MessageDocument, ctx: RuleContext, line: ClaimLine
) -> list[ClaimLine]:
    claims = history_of(ctx).allocation_claims(line.gemeente, line.toewijzing_nummer)
    credited = _credited_here(doc)
    return [c for c in open_claims(claims) if c.referentie_nummer not in credited]


@REGISTRY.rule(
    "TR389",
    types=("JW323",),
    summary="No second debit for the same period, product and assignment without a credit.",
    retourcode="9389",
    level=B,
    needs=HISTORY,
)
def no_double_debit(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR389: credit the earlier line (in this or an earlier message) before claiming again."""
    for debit in _debit_lines(doc, ctx):
        line = debit.line
        for other in _open_history_claims(doc, ctx, line):
            same_product = (other.categorie, other.code) == (line.categorie, line.code)
            overlaps = other.begindatum <= line.einddatum and line.begindatum <= other.einddatum
            if same_product and overlaps and other.bsn == line.bsn:
                yield Violation(
                    class_element(debit.element, "ProductPeriode"),
                    f"line {other.referentie_nummer!r} already claims this period and product.",
                )
                break


SETTLED_OUTSIDE_THE_CHAIN = "BVO001"
"""The gateway's own rule (not the standard's): no claim on a period settled outside the chain."""


@REGISTRY.rule(
    SETTLED_OUTSIDE_THE_CHAIN,
    types=("JW323",),
    summary="BVO rule: no debit for a period of an assignment settled outside the chain "
    "(gateway settle); answered as a second debit for a paid period.",
    retourcode="9389",
    level=B,
    needs=HISTORY,
)
def no_claim_on_settled_period(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """A debit line whose ProductPeriode overlaps a period the BVO recorded as settled outside
    the chain (``gateway settle``) would pay that period twice: 9389, as a second debit for
    the same period without a credit (docs/translation.md says why this code)."""
    for debit in _debit_lines(doc, ctx):
        line = debit.line
        for settled in history_of(ctx).settlements(line.gemeente, line.toewijzing_nummer):
            if settled.overlaps(line.begindatum, line.einddatum):
                yield Violation(
                    class_element(debit.element, "ProductPeriode"),
                    f"ToewijzingNummer {line.toewijzing_nummer} was settled outside the chain "
                    f"for {settled.begindatum.isoformat()}..{settled.einddatum.isoformat()} "
                    f"(reference {settled.reference!r}).",
                )
                break


# --- volume and budget limits (TR321, TR322, TR369; IV076/IV077) -----------------------------


def _sundays(start: dt.date, end: dt.date) -> int:
    first_sunday = start + dt.timedelta(days=(6 - start.weekday()) % 7)
    if first_sunday > end:
        return 0
    return (end - first_sunday).days // 7 + 1


def _iso_weeks(start: dt.date, end: dt.date) -> int:
    """Calendar weeks (Monday–Sunday) that touch [start, end], partial weeks included."""
    first_monday = start - dt.timedelta(days=start.weekday())
    return (end - first_monday).days // 7 + 1


def _months(start: dt.date, end: dt.date) -> int:
    return (end.year - start.year) * 12 + end.month - start.month + 1


def _last_sunday_on_or_before(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=(day.weekday() + 1) % 7)


def allowed_volume(allocation: Allocation, start: dt.date, end: dt.date) -> int | None:
    """The most that may be claimed on ``allocation`` for [start, end], in its Eenheid.

    Per day: volume × days. Per week: for effort-based units volume × the calendar weeks that
    touch the period (IV076); for output-based units (82, 83) volume × the Sundays in the
    period, plus one week in the period that holds the assignment's last Sunday when the
    assignment does not end on a Sunday (IV077). Per month: volume × months touched. Total
    (Frequentie 6): the volume itself. None when the assignment has no Omvang or the period
    lies wholly outside the assignment.
    """
    volume, frequentie = allocation.volume, allocation.frequentie
    if volume is None or frequentie is None:
        return None
    start = max(start, allocation.ingangsdatum)
    if allocation.einddatum is not None:
        end = min(end, allocation.einddatum)
    if end < start:
        return None  # wholly outside the assignment: TR307/TR308 say so, not a volume rule
    if frequentie == TOTAL:
        return volume
    if frequentie == PER_DAY:
        return volume * ((end - start).days + 1)
    if frequentie == PER_MONTH:
        return volume * _months(start, end)
    if allocation.eenheid not in OUTPUT_UNITS:
        return volume * _iso_weeks(start, end)
    weeks = _sundays(start, end)
    last_day = allocation.einddatum
    if last_day is not None and last_day.weekday() != 6:
        last_sunday = _last_sunday_on_or_before(last_day)
        # With no Sunday in the whole assignment, its one week goes to the period holding its end.
        holder = last_sunday if last_sunday >= allocation.ingangsdatum else last_day
        if start <= holder <= end:
            weeks += 1
    return volume * weeks


def _in_assigned_unit(line: ClaimLine, allocation: Allocation) -> float:
    if (line.eenheid, allocation.eenheid) == (MINUTE, HOUR):
        return line.volume / 60
    return float(line.volume)


@REGISTRY.rule(
    "TR321",
    types=("JW323",),
    summary="The claimed volume of a prestatie does not exceed the assigned volume for its period.",
    retourcode="9321",
    level=B,
    needs=HISTORY,
)
def claim_within_period_volume(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR321: GeleverdVolume ≤ the assigned volume over the ProductPeriode (IV076/IV077)."""
    for debit, allocation in _live(doc, ctx):
        line = debit.line
        limit = allowed_volume(allocation, line.begindatum, line.einddatum)
        if limit is not None and _in_assigned_unit(line, allocation) > limit:
            yield Violation(
                class_element(debit.element, "GeleverdVolume"),
                f"GeleverdVolume exceeds the {limit} assigned for this period.",
            )


@REGISTRY.rule(
    "TR322",
    types=("JW323",),
    summary="All claimed volumes together do not exceed the volume of the whole assignment.",
    retourcode="9322",
    level=B,
    needs=HISTORY,
)
def claims_within_total_volume(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR322: accepted lines plus this message's lines stay within the assignment's total."""
    used: dict[int, float] = {}
    for debit, allocation in _live(doc, ctx):
        if allocation.einddatum is None and allocation.frequentie != TOTAL:
            continue  # an open-ended assignment has no total to exceed
        limit = allowed_volume(
            allocation, allocation.ingangsdatum, allocation.einddatum or dt.date.max
        )
        if limit is None:
            continue
        number = allocation.toewijzing_nummer
        if number not in used:
            used[number] = sum(
                _in_assigned_unit(c, allocation) for c in _open_history_claims(doc, ctx, debit.line)
            )
        claimed = _in_assigned_unit(debit.line, allocation)
        if used[number] + claimed > limit:
            yield Violation(
                class_element(debit.element, "GeleverdVolume"),
                f"together with earlier lines this exceeds the {limit} assigned in total.",
            )
        else:
            used[number] += claimed


@REGISTRY.rule(
    "TR369",
    types=("JW323",),
    summary="Claimed amounts on a budget assignment do not exceed its Budget.",
    retourcode="9369",
    level=B,
    needs=HISTORY,
)
def claims_within_budget(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR369: accepted amounts plus this message's stay within the assigned Budget."""
    used: dict[int, int] = {}
    for debit, allocation in _live(doc, ctx):
        budget = allocation.budget
        if budget is None:
            continue
        number = allocation.toewijzing_nummer
        if number not in used:
            used[number] = sum(c.bedrag for c in _open_history_claims(doc, ctx, debit.line))
        if used[number] + debit.line.bedrag > budget:
            yield Violation(
                class_element(debit.element, "IngediendBedrag"),
                f"together with earlier lines this exceeds the Budget of {budget} eurocent.",
            )
        else:
            used[number] += debit.line.bedrag
