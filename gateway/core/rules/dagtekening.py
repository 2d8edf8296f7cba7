"""In-message rules on dates that may not lie after the message's Dagtekening: TR134, TR137.

What happened, started, stopped or was fixed cannot be dated after the day the message was
made: a birth date, a Toewijzingsdatum, a StartProduct's Begindatum, a StopProduct's Einddatum,
the Begindatum of a declared period (TR134), and a declared period must have ended (TR137). The
elements per message type are those the official iJw 3.2 validation (XSLT 2.10.5) was measured
to reject; docs/rules.md says what could not be confirmed against its text. Like TR002, the
rules read the header's Dagtekening and match by local name, so retours that carry the element
are covered too. Dates are compared as yyyymmdd numbers, as the XSLT does.

A finding never quotes the date itself: a birth date is personal data.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from gateway.core.document import MessageDocument
from gateway.core.rules.common import BIRTH_DATE_MESSAGES, date_number, raw
from gateway.core.rules.engine import RuleContext, Violation
from gateway.core.rules.registry import REGISTRY

DateElements = Mapping[str, tuple[tuple[str, str], ...]]

#: TR134 per message type: (class, date element below it) pairs whose date may not lie after
#: the Dagtekening.
NOT_AFTER_DAGTEKENING: DateElements = {
    **dict.fromkeys(BIRTH_DATE_MESSAGES, (("Geboortedatum", "Datum"),)),
    "JW301": (("Geboortedatum", "Datum"), ("ToegewezenProduct", "Toewijzingsdatum")),
    "JW302": (("Geboortedatum", "Datum"), ("ToegewezenProduct", "Toewijzingsdatum")),
    "JW305": (("Geboortedatum", "Datum"), ("StartProduct", "Begindatum")),
    "JW306": (("Geboortedatum", "Datum"), ("StartProduct", "Begindatum")),
    "JW307": (("Geboortedatum", "Datum"), ("StopProduct", "Einddatum")),
    "JW308": (("Geboortedatum", "Datum"), ("StopProduct", "Einddatum")),
    "JW323": (("DeclaratiePeriode", "Begindatum"), ("ProductPeriode", "Begindatum")),
    "JW325": (("ProductPeriode", "Begindatum"),),
}

#: TR137 per message type: the periods whose Einddatum may not lie after the Dagtekening.
PERIOD_ENDED_BY_DAGTEKENING: DateElements = {
    "JW323": (("DeclaratiePeriode", "Einddatum"), ("ProductPeriode", "Einddatum")),
    "JW325": (("ProductPeriode", "Einddatum"),),
}


def _dates_after_dagtekening(doc: MessageDocument, elements: DateElements) -> Iterator[Violation]:
    dagtekening_text = doc.header_text("BerichtIdentificatie/Dagtekening")
    dagtekening = date_number(dagtekening_text)
    if dagtekening is None:
        return
    for class_name, date_name in elements.get(doc.message_type, ()):
        for holder in doc.all_local(class_name):
            date_el = doc.find(holder, date_name)
            dated = date_number(raw(date_el))
            if date_el is not None and dated is not None and dated > dagtekening:
                yield Violation(
                    date_el,
                    f"{class_name}/{date_name} lies after the message's Dagtekening "
                    f"{dagtekening_text}.",
                )


@REGISTRY.rule(
    "TR134",
    types=NOT_AFTER_DAGTEKENING,
    summary="A date that records what already happened does not lie after the Dagtekening: "
    "Geboortedatum, Toewijzingsdatum, StartProduct Begindatum, StopProduct Einddatum, "
    "DeclaratiePeriode/ProductPeriode Begindatum (table NOT_AFTER_DAGTEKENING).",
)
def check_date_not_after_dagtekening(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR134: one finding per date after the Dagtekening, on the date element."""
    yield from _dates_after_dagtekening(doc, NOT_AFTER_DAGTEKENING)


@REGISTRY.rule(
    "TR137",
    types=PERIOD_ENDED_BY_DAGTEKENING,
    summary="A declared period (DeclaratiePeriode, ProductPeriode) has ended: its Einddatum does "
    "not lie after the Dagtekening.",
)
def check_period_ended_by_dagtekening(
    doc: MessageDocument, ctx: RuleContext
) -> Iterator[Violation]:
    """TR137: a claim or its answer may only cover days up to the Dagtekening."""
    yield from _dates_after_dagtekening(doc, PERIOD_ENDED_BY_DAGTEKENING)
