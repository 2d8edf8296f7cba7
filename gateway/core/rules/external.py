"""External-source rules (level E): the system date, the CBS list, product codes, contracts.

``TR135`` needs ``ctx.today``; the others need ``ctx.lists`` (a
:class:`gateway.core.lists.ExternalLists`) and quietly do nothing when the particular list they
consult is not configured. Codes go on the class at fault, as for level B.
"""

from __future__ import annotations

from collections.abc import Iterator

from gateway.core.document import Element, MessageDocument, date_at, find, int_at, text
from gateway.core.lists import ContractTariff, ExternalLists
from gateway.core.rules.engine import RuleContext, RuleLevel, Violation
from gateway.core.rules.registry import REGISTRY

E = RuleLevel.EXTERNAL
#: Messages with their own BerichtIdentificatie (a retour repeats its original's header).
ALL_TYPES = ("JW301", "JW305", "JW307", "JW315", "JW317", "JW319", "JW323", "JW325")
GEMEENTE_SENDS = frozenset({"JW301", "JW319", "JW325"})
EURO_UNIT = "83"
MINUTE = "01"
HOUR = "04"
MINUTES_PER_HOUR = 60


def _lists(ctx: RuleContext) -> ExternalLists:
    lists: ExternalLists = ctx.lists
    return lists


@REGISTRY.rule(
    "TR135",
    types=ALL_TYPES,
    summary="Dagtekening does not lie after the receiver's system date.",
    retourcode="8848",
    level=E,
    needs=("today",),
)
def dagtekening_not_in_future(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR135: a message cannot be dated after the day it is received."""
    # The document's cached Dagtekening is the same value; the element is looked up only
    # for a finding.
    day = doc.dagtekening
    if day is not None and ctx.today is not None and day > ctx.today:
        element = find(doc.header, "BerichtIdentificatie/Dagtekening")
        assert element is not None  # a Dagtekening was read from it
        yield Violation(
            element,
            f"Dagtekening {day.isoformat()} lies after the system date {ctx.today.isoformat()}.",
        )


@REGISTRY.rule(
    "TR378",
    types=ALL_TYPES,
    summary="A gemeentecode is in the CBS list valid on the message's Dagtekening.",
    retourcode="S300",
    level=E,
    needs=("lists",),
)
def gemeente_in_cbs_list(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR378: the header gemeente and a Woonplaatsbeginsel gemeente exist on the Dagtekening."""
    gemeenten = _lists(ctx).gemeenten
    day = doc.dagtekening
    if gemeenten is None or day is None:
        return
    header_field = "Afzender" if doc.message_type in GEMEENTE_SENDS else "Ontvanger"
    elements = [find(doc.header, header_field)]
    elements += [find(w, "Gemeente") for w in doc.iter_local("Woonplaatsbeginsel")]
    for element in elements:
        code = text(element)
        if element is not None and code is not None and not gemeenten.valid_on(code, day):
            yield Violation(
                element, f"gemeentecode {code} is not in the CBS list on {day.isoformat()}."
            )


def _coded_products(doc: MessageDocument) -> Iterator[tuple[Element, str, str]]:
    """(element holding the code, category, code) for every product in the message."""
    for product in doc.iter_local("Product"):
        category, code = text(product, "Categorie"), text(product, "Code")
        element = find(product, "Code")
        if element is not None and category and code:
            yield element, category, code
    for prestatie in doc.iter_local("Prestatie"):
        category, code = text(prestatie, "ProductCategorie"), text(prestatie, "ProductCode")
        element = find(prestatie, "ProductCode")
        if element is not None and category and code:
            yield element, category, code


@REGISTRY.rule(
    "TR381",
    types=("JW301", "JW305", "JW307", "JW315", "JW317", "JW323"),
    summary="A ProductCode belongs to its ProductCategorie in the product code list in use.",
    retourcode="S329",
    level=E,
    needs=("lists",),
)
def product_code_in_category(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR381: the code is listed under the category (IV075)."""
    codes = _lists(ctx).product_codes
    if codes is None:
        return
    for element, category, code in _coded_products(doc):
        if not codes.belongs(category, code):
            why = (
                "is not on the product code list"
                if not codes.knows(code)
                else (f"does not belong to category {category}")
            )
            yield Violation(element, f"ProductCode {code} {why}.")


def _contract(ctx: RuleContext, doc: MessageDocument, prestatie: Element) -> ContractTariff | None:
    contracts = _lists(ctx).contracts
    begin = date_at(prestatie, "ProductPeriode/Begindatum")
    category, code = text(prestatie, "ProductCategorie"), text(prestatie, "ProductCode")
    if contracts is None or begin is None or not category or not code:
        return None
    return contracts.tariff(
        doc.header_text("Ontvanger") or "", doc.header_text("Afzender") or "", category, code, begin
    )


def _minute_amount(hourly_tariff: int, minutes: int) -> int:
    """round(hourly tariff × minutes / 60), halves up (IV081)."""
    return (hourly_tariff * minutes * 2 + MINUTES_PER_HOUR) // (2 * MINUTES_PER_HOUR)


@REGISTRY.rule(
    "TR346",
    types=("JW323",),
    summary="IngediendBedrag = GeleverdVolume × ProductTarief when Eenheid is not 83.",
    retourcode="9346",
    level=E,
    needs=("lists",),
)
def amount_is_volume_times_tariff(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR346: the amount follows from volume and tariff; for minutes claimed on an hourly
    contract the amount is round(hourly tariff × minutes / 60) (IV081)."""
    for prestatie in doc.iter_local("Prestatie"):
        eenheid = text(prestatie, "Eenheid")
        volume = int_at(prestatie, "GeleverdVolume")
        tariff = int_at(prestatie, "ProductTarief")
        element = find(prestatie, "IngediendBedrag")
        amount = int_at(element, "Bedrag")
        if eenheid == EURO_UNIT or volume is None or tariff is None or amount is None:
            continue
        accepted = {volume * tariff}
        contract = _contract(ctx, doc, prestatie)
        if eenheid == MINUTE and contract is not None and contract.eenheid == HOUR:
            accepted.add(_minute_amount(contract.tarief, volume))
        if amount not in accepted and element is not None:
            yield Violation(
                element,
                f"IngediendBedrag {amount} is not GeleverdVolume {volume} × ProductTarief "
                f"{tariff}.",
            )


@REGISTRY.rule(
    "TR418",
    types=("JW323",),
    summary="ProductTarief equals the contract tariff.",
    retourcode="0611",
    level=E,
    needs=("lists",),
)
def tariff_is_contract_tariff(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR418: the claimed tariff is the agreed one; per minute on an hourly contract it is the
    hourly tariff / 60 rounded half up to whole cents (IV081)."""
    for prestatie in doc.iter_local("Prestatie"):
        element = find(prestatie, "ProductTarief")
        tariff = int_at(element)
        contract = _contract(ctx, doc, prestatie)
        if element is None or tariff is None or contract is None:
            continue
        expected = contract.tarief
        if text(prestatie, "Eenheid") == MINUTE and contract.eenheid == HOUR:
            expected = _minute_amount(contract.tarief, 1)
        if tariff != expected:
            yield Violation(
                element, f"ProductTarief {tariff} differs from the contract tariff {expected}."
            )
