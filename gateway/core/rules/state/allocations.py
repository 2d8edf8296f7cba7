"""Cross-message rules on allocations (JW301), requests (JW315, JW317) and answers (JW319)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from gateway.core.document import Element, MessageDocument, date_at, find, findall, int_at, text
from gateway.core.dossier import (
    Allocation,
    allocations_in,
    answer_in,
    current_versions,
    open_claims,
    request_settled,
    requests_in,
)
from gateway.core.rules.engine import RuleContext, Violation
from gateway.core.rules.registry import REGISTRY
from gateway.core.rules.state.shared import (
    HISTORY,
    IN_ONDERZOEK,
    REJECTED,
    TOTAL,
    B,
    class_element,
    history_of,
)

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
        versions = history_of(ctx).allocation_versions(
            allocation.gemeente, allocation.toewijzing_nummer
        )
        if any((v.aanbieder, v.bsn) != (allocation.aanbieder, allocation.bsn) for v in versions):
            yield Violation(
                class_element(product, "ToewijzingNummer"),
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
        requests = history_of(ctx).requests_with_reference(allocation.aanbieder, referentie)
        if not any(r.gemeente == allocation.gemeente and r.bsn == allocation.bsn for r in requests):
            yield Violation(
                class_element(product, "ReferentieAanbieder"),
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
        claims = history_of(ctx).allocation_claims(
            allocation.gemeente, allocation.toewijzing_nummer
        )
        if open_claims(claims):
            yield Violation(
                class_element(product, "RedenWijziging"),
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
        if history_of(ctx).requests_with_reference(request.aanbieder, request.referentie):
            yield Violation(
                class_element(el, "ReferentieAanbieder"),
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
    history = history_of(ctx)
    for el, request in requests_in(doc):
        pending = [
            r
            for r in history.client_requests(request.aanbieder, request.gemeente, request.bsn)
            if r.referentie != request.referentie and not request_settled(history, r)
        ]
        if pending:
            yield Violation(
                class_element(el, "ReferentieAanbieder"),
                f"request {pending[0].referentie!r} for this client is still open.",
            )


def _client_current(doc: MessageDocument, ctx: RuleContext) -> dict[int, Allocation]:
    """The client's assignments from this gemeente to this aanbieder in force on Dagtekening."""
    aanbieder = doc.header_text("Afzender") or ""
    gemeente = doc.header_text("Ontvanger") or ""
    bsn = text(doc.root, "Client/Bsn") or ""
    day = doc.dagtekening or dt.date.min
    versions = history_of(ctx).client_allocations(gemeente, aanbieder, bsn)
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
            class_element(verzoek, "ReferentieAanbieder"),
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
                class_element(product, "ToewijzingNummer"),
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
                class_element(product, "ToewijzingNummer"),
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
                class_element(product, "GewensteIngangsdatum"),
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
                class_element(product, "GewensteIngangsdatum"),
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
                class_element(product, "GewensteIngangsdatum"),
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
    requests = history_of(ctx).requests_with_reference(answer.aanbieder, answer.referentie)
    if not any(r.gemeente == answer.gemeente for r in requests):
        yield Violation(
            class_element(el, "ReferentieAanbieder"),
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
    allocations = history_of(ctx).allocations_with_reference(answer.aanbieder, answer.referentie)
    if any(a.gemeente == answer.gemeente for a in allocations):
        yield Violation(
            class_element(el, "ReferentieAanbieder"),
            "an assignment was already sent for this ReferentieAanbieder.",
        )


def _earlier_answers(doc: MessageDocument, ctx: RuleContext) -> tuple[Element, str, list[str]]:
    found = answer_in(doc)
    if found is None:
        return doc.root, "", []
    el, answer = found
    earlier = [
        a.verzoek_antwoord
        for a in history_of(ctx).answers(answer.aanbieder, answer.referentie)
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
            class_element(el, "VerzoekAntwoord"),
            "an answer already exists for this ReferentieAanbieder.",
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
            class_element(el, "VerzoekAntwoord"),
            "the earlier answer to this ReferentieAanbieder was not 'in onderzoek'.",
        )
