"""In-message rules (level X, retourcode 0001) for JW305 Start and JW307 Stop Jeugdhulp."""

from __future__ import annotations

from collections.abc import Iterator

from gateway.core.catalogue import RELEASE_2_3
from gateway.core.document import MessageDocument
from gateway.core.rules.engine import RuleContext, Violation
from gateway.core.rules.registry import REGISTRY

#: StatusAanlevering values iJw allows: 1 (first delivery) and 3 (delete an earlier one).
#: 2 (changed) is forbidden in iJw (OP033x2) and 9 (not applicable) has no meaning here.
ALLOWED_STATUS_AANLEVERING = ("1", "3")


@REGISTRY.rule(
    "CS058",
    types=("JW305", "JW307"),
    summary="StatusAanlevering of a StartProduct/StopProduct is 1 or 3.",
)
def status_aanlevering_first_or_delete(
    doc: MessageDocument, ctx: RuleContext
) -> Iterator[Violation]:
    """CS058: start and stop deliveries are either new (1) or a deletion (3)."""
    for product_name in ("StartProduct", "StopProduct"):
        for product in doc.all_local(product_name):
            status = doc.find(product, "StatusAanlevering")
            value = doc.text(status)
            if status is not None and value not in ALLOWED_STATUS_AANLEVERING:
                yield Violation(
                    status,
                    f"StatusAanlevering {value!r} of a {product_name} is not allowed; "
                    "use 1 (first delivery) or 3 (delete an earlier delivery).",
                )


@REGISTRY.rule(
    "TR018",
    types=("JW307",),
    other_releases={RELEASE_2_3: ("JW307",)},
    summary="Einddatum of a StopProduct is on or after its Begindatum.",
)
def stop_ends_after_start(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR018: a delivery cannot end before it began."""
    for product in doc.all_local("StopProduct"):
        end_element = doc.find(product, "Einddatum")
        begin = doc.date_at(product, "Begindatum")
        end = doc.date_at(end_element)
        if end_element is not None and begin is not None and end is not None and end < begin:
            yield Violation(
                end_element,
                f"Einddatum {end.isoformat()} of a StopProduct lies before its "
                f"Begindatum {begin.isoformat()}.",
            )
