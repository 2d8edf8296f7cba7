"""Cross-message rules (level B): checks against what earlier accepted messages established.

Every rule here needs ``ctx.history`` (a :class:`gateway.core.dossier.History`) and is skipped
without it, so ``gateway validate`` stays in-message only. Each violation names an element
inside the class at fault, so the retour builder puts the rule's retourcode on that class
(StartProduct, ToegewezenProduct, Verzoek, Antwoord, Prestatie, …).

Where the standard lets a message correct itself (a delete + new delivery in one JW305/JW307,
IV008; credits before debits in one JW323, OP366) the rules first apply the message's own
deletions/credits to the history they compare against.
"""

from __future__ import annotations

import calendar as stdlib_calendar
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from gateway.core.document import Element, MessageDocument, date_at, find, findall, int_at, text
from gateway.core.dossier import (
    DELETE_DELIVERY,
    FIRST_DELIVERY,
    Allocation,
    ClaimLine,
    Delivery,
    DeliveryKind,
    DeliveryLine,
    History,
    allocations_in,
    answer_in,
    claim_lines_in,
    current_versions,
    deliveries_in,
    most_recent,
    open_claims,
    request_settled,
    requests_in,
)
from gateway.core.rules.engine import RuleContext, RuleLevel, Violation
from gateway.core.rules.registry import REGISTRY

B = RuleLevel.CROSS_MESSAGE
HISTORY = ("history",)
ORIGINAL_TYPES = ("JW301", "JW305", "JW307", "JW315", "JW317", "JW319", "JW323", "JW325")
MINUTE = "01"
HOUR = "04"
#: Eenheden of output-based delivery (OP261–OP264): weeks are counted by their Sundays (IV077).
OUTPUT_UNITS = frozenset({"82", "83"})
PER_DAY, PER_WEEK, PER_MONTH, TOTAL = "1", "2", "4", "6"
IN_ONDERZOEK = "2"
REJECTED = "1"


def _history(ctx: RuleContext) -> History:
    history: History = ctx.history
    return history


def _at(parent: Element, path: str) -> Element:
    """The element at ``path`` below ``parent``, or ``parent`` itself (same class either way)."""
    found = find(parent, path)
    return found if found is not None else parent


# --- TR056: message identification -----------------------------------------------------------


@REGISTRY.rule(
    "TR056",
    types=ORIGINAL_TYPES,
    summary="BerichtIdentificatie/Identificatie is unique per message type per sender.",
    retourcode="9056",
    level=B,
    needs=HISTORY,
)
def identification_unique(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR056: a sender never reuses an Identificatie for the same message type."""
    sender = doc.header_text("Afzender") or ""
    identificatie = doc.header_text("BerichtIdentificatie/Identificatie") or ""
    if _history(ctx).message_seen(sender, doc.message_type, identificatie):
        yield Violation(
            _at(doc.header, "BerichtIdentificatie/Identificatie"),
            f"{doc.message_type} Identificatie {identificatie!r} was already used by this sender.",
        )


# --- start and stop (JW305, JW307) ------------------------------------------------------------


@dataclass(frozen=True)
class _DeliveryView:
    lines: list[DeliveryLine]
    before: list[Delivery]  # what the history holds
    after_deletes: list[Delivery]  # the history minus this message's own deletions


def _delivery_view(doc: MessageDocument, ctx: RuleContext) -> _DeliveryView:
    lines = deliveries_in(doc)
    if not lines:
        return _DeliveryView([], [], [])
    first = lines[0].delivery
    before = list(_history(ctx).deliveries(first.aanbieder, first.gemeente, first.bsn))
    deleted = {line.delivery for line in lines if line.status == DELETE_DELIVERY}
    return _DeliveryView(lines, before, [d for d in before if d not in deleted])


def _new_lines(view: _DeliveryView) -> Iterator[DeliveryLine]:
    return (line for line in view.lines if line.status == FIRST_DELIVERY)


@REGISTRY.rule(
    "TR019",
    types=("JW305", "JW307"),
    summary="A start/stop with a ToewijzingNummer refers to an assignment of this client.",
    retourcode="9019",
    level=B,
    needs=HISTORY,
)
def delivery_linked_to_allocation(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR019: the ToewijzingNummer names a (not deleted) assignment to this aanbieder and client."""
    for line in _new_lines(_delivery_view(doc, ctx)):
        d = line.delivery
        number = d.key.toewijzing_nummer
        if number is None:
            continue  # taakgericht: no assignment to link to (IV096)
        versions = [
            v
            for v in _history(ctx).allocation_versions(d.gemeente, number)
            if v.aanbieder == d.aanbieder and v.bsn == d.bsn
        ]
        current = most_recent(versions)
        if current is None or current.deleted:
            yield Violation(
                _at(line.element, "ToewijzingNummer"),
                f"ToewijzingNummer {number} is not a current assignment of this client "
                "to this aanbieder.",
            )


@REGISTRY.rule(
    "TR074",
    types=("JW305", "JW307"),
    summary="No second delivery with the same key elements.",
    retourcode="9074",
    level=B,
    needs=HISTORY,
)
def delivery_not_repeated(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR074: a start or stop with these key elements was already received."""
    view = _delivery_view(doc, ctx)
    for line in _new_lines(view):
        if line.delivery in view.after_deletes:
            yield Violation(line.element, f"this {line.delivery.kind} was already received.")


@REGISTRY.rule(
    "TR063",
    types=("JW305", "JW307"),
    summary="A deletion (StatusAanlevering 3) refers to an earlier delivery with the same key.",
    retourcode="9063",
    level=B,
    needs=HISTORY,
)
def deletion_refers_to_delivery(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR063: only what was delivered can be deleted."""
    view = _delivery_view(doc, ctx)
    for line in view.lines:
        if line.status == DELETE_DELIVERY and line.delivery not in view.before:
            yield Violation(
                _at(line.element, "StatusAanlevering"),
                f"no earlier {line.delivery.kind} with these key elements to delete.",
            )


@REGISTRY.rule(
    "TR071",
    types=("JW305",),
    summary="A start cannot be deleted while a stop refers to it.",
    retourcode="9071",
    level=B,
    needs=HISTORY,
)
def start_deletion_without_stop(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR071: delete the stop first, then the start."""
    view = _delivery_view(doc, ctx)
    for line in view.lines:
        if line.status != DELETE_DELIVERY:
            continue
        if any(d.kind is DeliveryKind.STOP and d.key == line.delivery.key for d in view.before):
            yield Violation(
                _at(line.element, "StatusAanlevering"),
                "the start cannot be deleted: a stop refers to it.",
            )


@REGISTRY.rule(
    "TR326",
    types=("JW305",),
    summary="No new start while the current delivery of the assignment is not stopped.",
    retourcode="9326",
    level=B,
    needs=HISTORY,
)
def one_current_start(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR326: a second start needs a stop (temporary or final) of the first (OP378)."""
    view = _delivery_view(doc, ctx)
    stopped = {d.key for d in view.after_deletes if d.kind is DeliveryKind.STOP}
    for line in _new_lines(view):
        key = line.delivery.key
        if line.delivery in view.after_deletes:
            continue  # an exact repeat is TR074's
        running = [
            d
            for d in view.after_deletes
            if d.kind is DeliveryKind.START
            and d.key.assignment == key.assignment
            and d.key != key
            and d.key not in stopped
        ]
        if running:
            yield Violation(
                _at(line.element, "Begindatum"),
                f"a delivery that began {running[0].key.begindatum.isoformat()} is still running.",
            )


def _stops_of(view: _DeliveryView, line: DeliveryLine) -> list[Delivery]:
    return [
        d
        for d in view.after_deletes
        if d.kind is DeliveryKind.STOP and d.key == line.delivery.key and d != line.delivery
    ]


@REGISTRY.rule(
    "TR382",
    types=("JW307",),
    summary="A stop refers to a current start with the same key elements.",
    retourcode="9069",
    level=B,
    needs=HISTORY,
)
def stop_refers_to_start(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR382: ToewijzingNummer, Product and Begindatum equal those of a start (OP155)."""
    view = _delivery_view(doc, ctx)
    starts = {d.key for d in view.before if d.kind is DeliveryKind.START}
    for line in _new_lines(view):
        if line.delivery.key not in starts:
            yield Violation(
                _at(line.element, "Begindatum"),
                "no current start with the same ToewijzingNummer, Product and Begindatum.",
            )


@REGISTRY.rule(
    "TR413",
    types=("JW307",),
    summary="No second temporary stop (RedenBeeindiging 20) for the same start.",
    retourcode="9413",
    level=B,
    needs=HISTORY,
)
def one_temporary_stop(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR413: after a temporary stop only a final stop or a new start may follow (OP379)."""
    view = _delivery_view(doc, ctx)
    for line in _new_lines(view):
        if line.delivery.temporary and any(s.temporary for s in _stops_of(view, line)):
            yield Violation(
                _at(line.element, "RedenBeeindiging"),
                "this start already has a temporary stop.",
            )


@REGISTRY.rule(
    "TR414",
    types=("JW307",),
    summary="A stop does not end before the current (temporary) stop of the same start.",
    retourcode="9414",
    level=B,
    needs=HISTORY,
)
def stop_not_earlier_than_temporary(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR414: the final stop's Einddatum is on or after the temporary stop's."""
    view = _delivery_view(doc, ctx)
    for line in _new_lines(view):
        end = line.delivery.einddatum
        for stop in _stops_of(view, line):
            stop_end = stop.einddatum
            if stop.temporary and end is not None and stop_end is not None and end < stop_end:
                yield Violation(
                    _at(line.element, "Einddatum"),
                    f"Einddatum {end.isoformat()} lies before the temporary stop's "
                    f"{stop_end.isoformat()}.",
                )
                break


@REGISTRY.rule(
    "TR415",
    types=("JW307",),
    summary="No stop after a final stop of the same start.",
    retourcode="9415",
    level=B,
    needs=HISTORY,
)
def nothing_after_final_stop(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR415: a start has at most one final stop."""
    view = _delivery_view(doc, ctx)
    for line in _new_lines(view):
        if any(not s.temporary for s in _stops_of(view, line)):
            yield Violation(line.element, "this start already has a final stop.")


# --- allocations (JW301) -----------------------------------------------------------------------


@REGISTRY.rule(
    "TR332",
    types=("JW301",),
    summary="A ToewijzingNummer belongs to one client and one aanbieder within the gemeente.",
    retourcode="9332",
    level=B,
    needs=HISTORY,
)
def allocation_number_unique(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR332: a resend with the same number changes that assignment; it cannot move it."""
    for product, allocation in allocations_in(doc):
        versions = _history(ctx).allocation_versions(
            allocation.gemeente, allocation.toewijzing_nummer
        )
        if any((v.aanbieder, v.bsn) != (allocation.aanbieder, allocation.bsn) for v in versions):
            yield Violation(
                _at(product, "ToewijzingNummer"),
                f"ToewijzingNummer {allocation.toewijzing_nummer} is already used for another "
                "client or aanbieder.",
            )


@REGISTRY.rule(
    "TR379",
    types=("JW301",),
    summary="ReferentieAanbieder is filled only when honouring a VOT/VOW of this client.",
    retourcode="9379",
    level=B,
    needs=HISTORY,
)
def reference_honours_request(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR379: the reference names an earlier JW315/JW317 of this aanbieder for this client."""
    for product, allocation in allocations_in(doc):
        referentie = allocation.referentie_aanbieder
        if referentie is None:
            continue
        requests = _history(ctx).requests_with_reference(allocation.aanbieder, referentie)
        if not any(r.gemeente == allocation.gemeente and r.bsn == allocation.bsn for r in requests):
            yield Violation(
                _at(product, "ReferentieAanbieder"),
                f"ReferentieAanbieder {referentie!r} is not a request of this client.",
            )


@REGISTRY.rule(
    "TR385",
    types=("JW301",),
    summary="An assignment with accepted claim lines may not be deleted (RedenWijziging 13).",
    retourcode="9385",
    level=B,
    needs=HISTORY,
)
def claimed_allocation_not_deleted(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR385: credit the claims first, then delete the assignment."""
    for product, allocation in allocations_in(doc):
        if not allocation.deleted:
            continue
        claims = _history(ctx).allocation_claims(allocation.gemeente, allocation.toewijzing_nummer)
        if open_claims(claims):
            yield Violation(
                _at(product, "RedenWijziging"),
                f"ToewijzingNummer {allocation.toewijzing_nummer} has accepted claim lines.",
            )


# --- requests (JW315, JW317) -------------------------------------------------------------------


@REGISTRY.rule(
    "TR347",
    types=("JW315", "JW317"),
    summary="ReferentieAanbieder is unique for the aanbieder.",
    retourcode="9347",
    level=B,
    needs=HISTORY,
)
def request_reference_unique(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR347: every request gets a reference the aanbieder never used before (OP361)."""
    for el, request in requests_in(doc):
        if _history(ctx).requests_with_reference(request.aanbieder, request.referentie):
            yield Violation(
                _at(el, "ReferentieAanbieder"),
                f"ReferentieAanbieder {request.referentie!r} was already used.",
            )


@REGISTRY.rule(
    "TR374",
    types=("JW317",),
    summary="No VOW while another request for this client is still open.",
    retourcode="9374",
    level=B,
    needs=HISTORY,
)
def no_pending_request(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR374: one open request per client per aanbieder (OP350)."""
    history = _history(ctx)
    for el, request in requests_in(doc):
        pending = [
            r
            for r in history.client_requests(request.aanbieder, request.gemeente, request.bsn)
            if r.referentie != request.referentie and not request_settled(history, r)
        ]
        if pending:
            yield Violation(
                _at(el, "ReferentieAanbieder"),
                f"request {pending[0].referentie!r} for this client is still open.",
            )


def _client_current(doc: MessageDocument, ctx: RuleContext) -> dict[int, Allocation]:
    """The client's assignments from this gemeente to this aanbieder in force on Dagtekening."""
    aanbieder = doc.header_text("Afzender") or ""
    gemeente = doc.header_text("Ontvanger") or ""
    bsn = text(doc.root, "Client/Bsn") or ""
    day = doc.dagtekening or dt.date.min
    versions = _history(ctx).client_allocations(gemeente, aanbieder, bsn)
    return {n: v for n, v in current_versions(versions).items() if v.in_force_on(day)}


@REGISTRY.rule(
    "TR349",
    types=("JW317",),
    summary="A VOW lists every current assignment as unchanged or to be changed.",
    retourcode="9349",
    level=B,
    needs=HISTORY,
)
def vow_complete(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR349: the VOW describes the complete desired situation."""
    verzoek = find(doc.root, "Client/Verzoek")
    if verzoek is None:
        return
    listed = {
        int_at(p, "ToewijzingNummer")
        for p in findall(verzoek, "OngewijzigdeProducten/OngewijzigdProduct")
        + findall(verzoek, "TeWijzigenProducten/TeWijzigenProduct")
    }
    missing = sorted(set(_client_current(doc, ctx)) - listed)
    if missing:
        yield Violation(
            _at(verzoek, "ReferentieAanbieder"),
            f"current assignments {missing} are missing from the VOW.",
        )


_VOW_CONTAINERS = {
    "OngewijzigdProduct": "OngewijzigdeProducten",
    "TeWijzigenProduct": "TeWijzigenProducten",
    "NieuwProduct": "NieuweProducten",
}


def _vow_products(doc: MessageDocument, name: str) -> list[Element]:
    return findall(doc.root, f"Client/Verzoek/{_VOW_CONTAINERS[name]}/{name}")


@REGISTRY.rule(
    "TR350",
    types=("JW317",),
    summary="An OngewijzigdProduct refers to a current assignment.",
    retourcode="9350",
    level=B,
    needs=HISTORY,
)
def unchanged_product_current(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR350: the ToewijzingNummer of an unchanged product is in force for this client."""
    current = _client_current(doc, ctx)
    for product in _vow_products(doc, "OngewijzigdProduct"):
        if int_at(product, "ToewijzingNummer") not in current:
            yield Violation(
                _at(product, "ToewijzingNummer"),
                "ToewijzingNummer is not a current assignment of this client.",
            )


@REGISTRY.rule(
    "TR351",
    types=("JW317",),
    summary="A TeWijzigenProduct refers to a current assignment.",
    retourcode="9351",
    level=B,
    needs=HISTORY,
)
def changed_product_current(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR351: the ToewijzingNummer of a product to change is in force for this client."""
    current = _client_current(doc, ctx)
    for product in _vow_products(doc, "TeWijzigenProduct"):
        if int_at(product, "ToewijzingNummer") not in current:
            yield Violation(
                _at(product, "ToewijzingNummer"),
                "ToewijzingNummer is not a current assignment of this client.",
            )


def _changed_with_allocation(
    doc: MessageDocument, ctx: RuleContext
) -> Iterator[tuple[Element, Allocation, dt.date]]:
    current = _client_current(doc, ctx)
    for product in _vow_products(doc, "TeWijzigenProduct"):
        allocation = current.get(int_at(product, "ToewijzingNummer") or -1)
        wanted = date_at(product, "GewensteIngangsdatum")
        if allocation is not None and wanted is not None:
            yield product, allocation, wanted


@REGISTRY.rule(
    "TR357",
    types=("JW317",),
    summary="A GewensteIngangsdatum on or before Dagtekening equals the original Ingangsdatum.",
    retourcode="9357",
    level=B,
    needs=HISTORY,
)
def no_retroactive_change(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR357: a change cannot take effect in the past, except from the assignment's start."""
    day = doc.dagtekening
    for product, allocation, wanted in _changed_with_allocation(doc, ctx):
        if day is not None and wanted <= day and wanted != allocation.ingangsdatum:
            yield Violation(
                _at(product, "GewensteIngangsdatum"),
                f"GewensteIngangsdatum {wanted.isoformat()} is not after the Dagtekening and "
                f"differs from the Ingangsdatum {allocation.ingangsdatum.isoformat()}.",
            )


@REGISTRY.rule(
    "TR373",
    types=("JW317",),
    summary="A changed Budget or total volume takes effect from the assignment's Ingangsdatum.",
    retourcode="9373",
    level=B,
    needs=HISTORY,
)
def total_change_from_start(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR373: budgets and totals (Frequentie 6) cover the whole assignment period."""
    for product, allocation, wanted in _changed_with_allocation(doc, ctx):
        budget = int_at(product, "Budget")
        volume = int_at(product, "Omvang/Volume")
        total = text(product, "Omvang/Frequentie") == TOTAL
        changed = (budget is not None and budget != allocation.budget) or (
            total and volume is not None and volume != allocation.volume
        )
        if changed and wanted != allocation.ingangsdatum:
            yield Violation(
                _at(product, "GewensteIngangsdatum"),
                "a changed Budget or total must take effect from the assignment's "
                f"Ingangsdatum {allocation.ingangsdatum.isoformat()}.",
            )


def _same_product(a: tuple[str | None, str | None], b: tuple[str | None, str | None]) -> bool:
    if a[1] is not None and b[1] is not None:
        return a[1] == b[1]
    return a[0] is not None and a[0] == b[0]


def _overlap(a: tuple[dt.date, dt.date | None], b: tuple[dt.date, dt.date | None]) -> bool:
    a_end = a[1] or dt.date.max
    b_end = b[1] or dt.date.max
    return a[0] <= b_end and b[0] <= a_end


@REGISTRY.rule(
    "TR361",
    types=("JW317",),
    summary="A NieuwProduct does not overlap a kept or changed assignment of the same product.",
    retourcode="9361",
    level=B,
    needs=HISTORY,
)
def new_product_no_overlap(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR361: the same product only with non-overlapping periods within the desired situation."""
    current = _client_current(doc, ctx)
    kept: list[tuple[tuple[str | None, str | None], tuple[dt.date, dt.date | None]]] = []
    for product in _vow_products(doc, "OngewijzigdProduct"):
        allocation = current.get(int_at(product, "ToewijzingNummer") or -1)
        if allocation is not None:
            kept.append(
                (
                    (allocation.categorie, allocation.code),
                    (allocation.ingangsdatum, allocation.einddatum),
                )
            )
    for product in _vow_products(doc, "TeWijzigenProduct"):
        allocation = current.get(int_at(product, "ToewijzingNummer") or -1)
        if allocation is not None:
            end = date_at(product, "Einddatum") or allocation.einddatum
            kept.append(((allocation.categorie, allocation.code), (allocation.ingangsdatum, end)))
    for product in _vow_products(doc, "NieuwProduct"):
        start = date_at(product, "GewensteIngangsdatum")
        if start is None:
            continue
        wanted = (text(product, "Product/Categorie"), text(product, "Product/Code"))
        period = (start, date_at(product, "Einddatum"))
        if any(_same_product(wanted, p) and _overlap(period, when) for p, when in kept):
            yield Violation(
                _at(product, "GewensteIngangsdatum"),
                "the new product overlaps a current assignment of the same product.",
            )


# --- answers (JW319) ---------------------------------------------------------------------------


@REGISTRY.rule(
    "TR355",
    types=("JW319",),
    summary="The answer's ReferentieAanbieder is that of an earlier VOT/VOW.",
    retourcode="9355",
    level=B,
    needs=HISTORY,
)
def answer_refers_to_request(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR355: only requests can be answered."""
    found = answer_in(doc)
    if found is None:
        return
    el, answer = found
    requests = _history(ctx).requests_with_reference(answer.aanbieder, answer.referentie)
    if not any(r.gemeente == answer.gemeente for r in requests):
        yield Violation(
            _at(el, "ReferentieAanbieder"),
            f"ReferentieAanbieder {answer.referentie!r} is not a request to this gemeente.",
        )


@REGISTRY.rule(
    "TR359",
    types=("JW319",),
    summary="No answer once an assignment was sent for the ReferentieAanbieder.",
    retourcode="9359",
    level=B,
    needs=HISTORY,
)
def no_answer_after_allocation(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR359: an assignment is the final answer to a request."""
    found = answer_in(doc)
    if found is None:
        return
    el, answer = found
    allocations = _history(ctx).allocations_with_reference(answer.aanbieder, answer.referentie)
    if any(a.gemeente == answer.gemeente for a in allocations):
        yield Violation(
            _at(el, "ReferentieAanbieder"),
            "an assignment was already sent for this ReferentieAanbieder.",
        )


def _earlier_answers(doc: MessageDocument, ctx: RuleContext) -> tuple[Element, str, list[str]]:
    found = answer_in(doc)
    if found is None:
        return doc.root, "", []
    el, answer = found
    earlier = [
        a.verzoek_antwoord
        for a in _history(ctx).answers(answer.aanbieder, answer.referentie)
        if a.gemeente == answer.gemeente
    ]
    return el, answer.verzoek_antwoord, earlier


@REGISTRY.rule(
    "TR360",
    types=("JW319",),
    summary="An answer 'in onderzoek' is the first answer to the request.",
    retourcode="9360",
    level=B,
    needs=HISTORY,
)
def investigation_answer_first(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR360: at most one "in onderzoek", and never after another answer."""
    el, antwoord, earlier = _earlier_answers(doc, ctx)
    if antwoord == IN_ONDERZOEK and earlier:
        yield Violation(
            _at(el, "VerzoekAntwoord"), "an answer already exists for this ReferentieAanbieder."
        )


@REGISTRY.rule(
    "TR365",
    types=("JW319",),
    summary="A second answer follows only an 'in onderzoek' answer.",
    retourcode="9365",
    level=B,
    needs=HISTORY,
)
def rejection_after_investigation(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR365: a rejection may follow an earlier answer only when that was "in onderzoek"."""
    el, antwoord, earlier = _earlier_answers(doc, ctx)
    if antwoord == REJECTED and any(a != IN_ONDERZOEK for a in earlier):
        yield Violation(
            _at(el, "VerzoekAntwoord"),
            "the earlier answer to this ReferentieAanbieder was not 'in onderzoek'.",
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
    if element is not None and nummer and _history(ctx).declaration_number_seen(aanbieder, nummer):
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
        if _history(ctx).claim_line(line.aanbieder, line.gemeente, line.referentie_nummer):
            yield Violation(
                _at(el, "ProductReferentie/ReferentieNummer"),
                f"ReferentieNummer {line.referentie_nummer!r} was already used.",
            )


def _credited_debit(ctx: RuleContext, line: ClaimLine) -> ClaimLine | None:
    if line.vorig_referentie_nummer is None:
        return None
    return _history(ctx).claim_line(line.aanbieder, line.gemeente, line.vorig_referentie_nummer)


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
                _at(el, "ProductReferentie/VorigReferentieNummer"),
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
        if debit is not None and _history(ctx).credits_of(
            line.aanbieder, line.gemeente, debit.referentie_nummer
        ):
            yield Violation(
                _at(el, "ProductReferentie/VorigReferentieNummer"),
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
    history = _history(ctx)
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
                _at(debit.element, "ToewijzingNummer"),
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
                _at(debit.element, "ToewijzingNummer"),
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
                _at(debit.element, "ProductCategorie"),
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
                _at(debit.element, "ProductCode"),
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
            _at(debit.element, "Eenheid"),
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
                _at(debit.element, "ProductPeriode/Begindatum"),
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
                _at(debit.element, "ProductPeriode/Einddatum"),
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
                _at(debit.element, "ProductPeriode/Begindatum"),
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
                _at(debit.element, "ProductPeriode/Einddatum"),
                "the period ends neither on the month's last day nor on the assignment's "
                "Einddatum.",
            )


def _open_history_claims(
    doc: MessageDocument, ctx: RuleContext, line: ClaimLine
) -> list[ClaimLine]:
    claims = _history(ctx).allocation_claims(line.gemeente, line.toewijzing_nummer)
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
                    _at(debit.element, "ProductPeriode"),
                    f"line {other.referentie_nummer!r} already claims this period and product.",
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
                _at(debit.element, "GeleverdVolume"),
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
                _at(debit.element, "GeleverdVolume"),
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
                _at(debit.element, "IngediendBedrag"),
                f"together with earlier lines this exceeds the Budget of {budget} eurocent.",
            )
        else:
            used[number] += debit.line.bedrag
