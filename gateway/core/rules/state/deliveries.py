"""Cross-message rules on message identification (TR056) and start and stop (JW305, JW307)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from gateway.core.catalogue import ORIGINAL_TYPES
from gateway.core.document import MessageDocument
from gateway.core.dossier import (
    DELETE_DELIVERY,
    FIRST_DELIVERY,
    Delivery,
    DeliveryKind,
    DeliveryLine,
    deliveries_in,
    most_recent,
)
from gateway.core.rules.engine import RuleContext, Violation
from gateway.core.rules.registry import REGISTRY
from gateway.core.rules.state.shared import HISTORY, B, class_element, history_of

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
    if history_of(ctx).message_seen(sender, doc.message_type, identificatie):
        yield Violation(
            class_element(doc.header, "BerichtIdentificatie/Identificatie"),
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
    before = list(history_of(ctx).deliveries(first.aanbieder, first.gemeente, first.bsn))
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
            for v in history_of(ctx).allocation_versions(d.gemeente, number)
            if v.aanbieder == d.aanbieder and v.bsn == d.bsn
        ]
        current = most_recent(versions)
        if current is None or current.deleted:
            yield Violation(
                class_element(line.element, "ToewijzingNummer"),
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
                class_element(line.element, "StatusAanlevering"),
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
                class_element(line.element, "StatusAanlevering"),
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
                class_element(line.element, "Begindatum"),
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
                class_element(line.element, "Begindatum"),
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
                class_element(line.element, "RedenBeeindiging"),
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
                    class_element(line.element, "Einddatum"),
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
