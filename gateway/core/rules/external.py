"""External-source rules (level E): the system date, the CBS list, product codes, contracts.

``TR135`` needs ``ctx.today``; the others need ``ctx.lists`` (a
:class:`gateway.core.lists.ExternalLists`) and quietly do nothing when the particular list they
consult is not configured. Codes go on the class at fault, as for level B.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from gateway.core.catalogue import RELEASE_2_3
from gateway.core.document import Element, MessageDocument, date_at, find, int_at, text
from gateway.core.lists import ContractTariff, ExternalLists, MissingTariff
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
    other_releases={RELEASE_2_3: ("JW301", "JW305", "JW307", "JW315")},
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


#: Where the period of a product begins, per class holding a Product, first found wins: the
#: allocation's own start before a start/stop's Begindatum, so a running allocation keeps the
#: code it was assigned under (domain-codes §6.6: resolve by the toewijzing's Ingangsdatum).
PRODUCT_BEGIN_PATHS = (
    "ToewijzingIngangsdatum",
    "Ingangsdatum",
    "GewensteIngangsdatum",
    "Begindatum",
)
CLAIM_BEGIN_PATH = "ProductPeriode/Begindatum"


def _coded_products(doc: MessageDocument) -> Iterator[tuple[Element, str, str, dt.date | None]]:
    """(element holding the code, category, code, the day the product's period begins) for
    every product in the message; the day is None when the class carries no date."""
    for product in doc.iter_local("Product"):
        category, code = text(product, "Categorie"), text(product, "Code")
        element = find(product, "Code")
        holder = product.getparent()
        begin = next(
            (
                day
                for path in PRODUCT_BEGIN_PATHS
                if holder is not None and (day := date_at(holder, path)) is not None
            ),
            None,
        )
        if element is not None and category and code:
            yield element, category, code, begin
    for prestatie in doc.iter_local("Prestatie"):
        category, code = text(prestatie, "ProductCategorie"), text(prestatie, "ProductCode")
        element = find(prestatie, "ProductCode")
        if element is not None and category and code:
            yield element, category, code, date_at(prestatie, CLAIM_BEGIN_PATH)


@REGISTRY.rule(
    "TR381",
    types=("JW301", "JW305", "JW307", "JW315", "JW317", "JW323"),
    summary="A ProductCode belongs to its ProductCategorie in the product code list in use, "
    "valid on the day the product's period begins (else the Dagtekening).",
    retourcode="S329",
    level=E,
    needs=("lists",),
)
def product_code_in_category(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR381: the code is listed under the category (IV075) on the day that decides: where the
    product's period begins (Ingangsdatum, ProductPeriode/Begindatum...), else the Dagtekening."""
    codes = _lists(ctx).product_codes
    if codes is None:
        return
    for element, category, code, begin in _coded_products(doc):
        day = begin or doc.dagtekening
        if codes.belongs(category, code, day):
            continue
        if not codes.knows(code):
            why = "is not on the product code list"
        elif not codes.belongs(category, code):
            why = f"does not belong to category {category}"
        else:
            assert day is not None  # undated, the code would belong
            why = f"is not valid on {day.isoformat()} (listed for {codes.validity(code)})"
        yield Violation(element, f"ProductCode {code} {why}.")


def _contract(ctx: RuleContext, doc: MessageDocument, prestatie: Element) -> ContractTariff | None:
    contracts = _lists(ctx).contracts
    begin = date_at(prestatie, CLAIM_BEGIN_PATH)
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
    summary="ProductTarief equals the contract tariff valid when the ProductPeriode begins "
    "(a line no contract prices: per [lists] missing_tariff).",
    retourcode="0611",
    level=E,
    needs=("lists",),
)
def tariff_is_contract_tariff(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR418: the claimed tariff is the agreed one; per minute on an hourly contract it is the
    hourly tariff / 60 rounded half up to whole cents (IV081). A line (Eenheid not 83) that no
    contract row prices on its ProductPeriode's Begindatum is rejected too when the policy is
    :attr:`MissingTariff.REJECT`."""
    lists = _lists(ctx)
    reject_unpriced = lists.contracts is not None and lists.missing_tariff is MissingTariff.REJECT
    for prestatie in doc.iter_local("Prestatie"):
        element = find(prestatie, "ProductTarief")
        tariff = int_at(element)
        contract = _contract(ctx, doc, prestatie)
        if contract is None and reject_unpriced and text(prestatie, "Eenheid") != EURO_UNIT:
            yield _unpriced(doc, prestatie)
            continue
        if element is None or tariff is None or contract is None:
            continue
        expected = contract.tarief
        if text(prestatie, "Eenheid") == MINUTE and contract.eenheid == HOUR:
            expected = _minute_amount(contract.tarief, 1)
        if tariff != expected:
            yield Violation(
                element, f"ProductTarief {tariff} differs from the contract tariff {expected}."
            )


def _unpriced(doc: MessageDocument, prestatie: Element) -> Violation:
    """The finding for a claim line without an applicable contract tariff."""
    category, code = text(prestatie, "ProductCategorie"), text(prestatie, "ProductCode")
    begin = date_at(prestatie, CLAIM_BEGIN_PATH)
    element = find(prestatie, "ProductTarief")
    if element is None:
        element = find(prestatie, "ProductCode")
    return Violation(
        element if element is not None else prestatie,
        f"no contract tariff for {category}/{code} between gemeente "
        f"{doc.header_text('Ontvanger')} and aanbieder {doc.header_text('Afzender')} on "
        f"{begin.isoformat() if begin else 'the ProductPeriode'}.",
    )
