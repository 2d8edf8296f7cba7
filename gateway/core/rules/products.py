"""In-message rules on products: ToegewezenProduct (301), AangevraagdProduct (315) and
TeWijzigenProduct/NieuwProduct (317).

They fix which combinations of Product, Omvang, Budget, Einddatum and Frequentie a product may
have (spec §6) and forbid overlapping periods of the same product (TR302/TR386/TR410). The
message and class each rule covers are those of the official iJw 3.2 XSLT; in particular the
"Code empty → no Omvang" rule has one code per message: CD080 for the JW301 ToegewezenProduct,
CD095 for the JW315 AangevraagdProduct, CD096 for the JW317 NieuwProduct (a TeWijzigenProduct has
no Product). Likewise CS338 covers 301 and 317, CS343 covers 315.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from gateway.core.document import Element, MessageDocument
from gateway.core.rules.common import date_number, is_filled, open_or_after_2020, raw
from gateway.core.rules.engine import RuleContext, Violation
from gateway.core.rules.registry import REGISTRY


@dataclass(frozen=True, slots=True)
class ProductClass:
    """Where a product class lives and what its begin and end dates are called."""

    message_type: str
    name: str
    begin: str
    end: str


TOEGEWEZEN = ProductClass("JW301", "ToegewezenProduct", "Ingangsdatum", "Einddatum")
AANGEVRAAGD = ProductClass(
    "JW315", "AangevraagdProduct", "ToewijzingIngangsdatum", "ToewijzingEinddatum"
)
TE_WIJZIGEN = ProductClass("JW317", "TeWijzigenProduct", "GewensteIngangsdatum", "Einddatum")
NIEUW = ProductClass("JW317", "NieuwProduct", "GewensteIngangsdatum", "Einddatum")

#: Classes that carry a Product (a TeWijzigenProduct refers to one by ToewijzingNummer).
WITH_PRODUCT = (TOEGEWEZEN, AANGEVRAAGD, NIEUW)
ALL_PRODUCT_CLASSES = (TOEGEWEZEN, AANGEVRAAGD, TE_WIJZIGEN, NIEUW)
_PER_DAY_NOT_ALLOWED_UNITS = ("14", "16", "83", "84")
_PERIODIC_FREQUENCIES = ("2", "4", "6")
_DELETED_OR_OBSOLETE_CORRECTION = ("01", "13")


def _types(*classes: ProductClass) -> set[str]:
    return {c.message_type for c in classes}


def _products(
    doc: MessageDocument, classes: tuple[ProductClass, ...]
) -> list[tuple[ProductClass, Element]]:
    message_type = doc.message_type
    return [
        (product_class, el)
        for product_class in classes
        if product_class.message_type == message_type
        for el in doc.all_local(product_class.name)
    ]


# --- Omvang / Budget / Product / Einddatum combinations ---------------------------------------


@REGISTRY.rule(
    "CD041",
    types=_types(*WITH_PRODUCT),
    summary="Product/Code filled → Omvang present (ToegewezenProduct, AangevraagdProduct, "
    "NieuwProduct).",
)
def check_code_needs_volume(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """CD041: a specific product (with Code) is assigned with an Omvang."""
    for product_class, product in _products(doc, WITH_PRODUCT):
        code = doc.find(product, "Product/Code")
        if is_filled(code) and doc.find(product, "Omvang") is None:
            yield Violation(
                product, f"{product_class.name} has Product/Code {raw(code)} but no Omvang."
            )


@REGISTRY.rule(
    "CD075",
    types=_types(*ALL_PRODUCT_CLASSES),
    summary="Budget filled → end date filled (Einddatum, or ToewijzingEinddatum in 315).",
)
def check_budget_needs_end(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """CD075: a budget is always for a closed period."""
    for product_class, product in _products(doc, ALL_PRODUCT_CLASSES):
        budget = doc.find(product, "Budget")
        end_missing = not is_filled(doc.find(product, product_class.end))
        if budget is not None and is_filled(budget) and end_missing:
            yield Violation(
                budget, f"{product_class.name} has a Budget but no {product_class.end}."
            )


@REGISTRY.rule(
    "CD076",
    types=_types(*ALL_PRODUCT_CLASSES),
    summary="Omvang/Frequentie 2 (per week) → end date filled.",
)
def check_weekly_needs_end(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """CD076: a weekly volume is always for a closed period."""
    for product_class, product in _products(doc, ALL_PRODUCT_CLASSES):
        frequency = doc.find(product, "Omvang/Frequentie")
        end_missing = not is_filled(doc.find(product, product_class.end))
        if frequency is not None and raw(frequency) == "2" and end_missing:
            yield Violation(
                frequency,
                f"{product_class.name} has Frequentie 2 (per week) but no {product_class.end}.",
            )


@REGISTRY.rule(
    "CD077",
    types=_types(*ALL_PRODUCT_CLASSES),
    summary="Budget filled → Omvang absent (reported on the Budget; CD078 states the converse, "
    "so a product with both yields CD077 and CD078, as in the official XSLT).",
)
def check_budget_excludes_volume(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """CD077: a budget product has no volume."""
    for product_class, product in _products(doc, ALL_PRODUCT_CLASSES):
        budget = doc.find(product, "Budget")
        if budget is not None and is_filled(budget) and doc.find(product, "Omvang") is not None:
            yield Violation(
                budget, f"{product_class.name} has a Budget, so it may not have Omvang."
            )


@REGISTRY.rule(
    "CD078",
    types=_types(*ALL_PRODUCT_CLASSES),
    summary="Omvang present → Budget absent (reported on the Omvang).",
)
def check_volume_excludes_budget(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """CD078: a volume product has no budget."""
    for product_class, product in _products(doc, ALL_PRODUCT_CLASSES):
        volume = doc.find(product, "Omvang")
        if volume is not None and doc.find(product, "Budget") is not None:
            yield Violation(
                volume, f"{product_class.name} has Omvang, so it may not have a Budget."
            )


@REGISTRY.rule(
    "CD079",
    types=_types(*WITH_PRODUCT),
    summary="Budget empty → Product present (only a budget assignment may be generic).",
)
def check_product_without_budget(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """CD079: without a budget the product must be named."""
    for product_class, product in _products(doc, WITH_PRODUCT):
        if not is_filled(doc.find(product, "Budget")) and doc.find(product, "Product") is None:
            yield Violation(product, f"{product_class.name} has neither a Budget nor a Product.")


def _volume_without_code(doc: MessageDocument, product_class: ProductClass) -> Iterator[Violation]:
    """Omvang present with an open or post-2020 end date → Product/Code must be filled."""
    for _, product in _products(doc, (product_class,)):
        volume = doc.find(product, "Omvang")
        if volume is None or not open_or_after_2020(doc.find(product, product_class.end)):
            continue
        if not is_filled(doc.find(product, "Product/Code")):
            yield Violation(
                volume,
                f"{product_class.name} has Omvang without Product/Code while its "
                f"{product_class.end} is empty or after 2020-12-31.",
            )


@REGISTRY.rule(
    "CD080",
    types=_types(TOEGEWEZEN),
    summary="JW301 ToegewezenProduct: Product/Code empty and Einddatum empty or after "
    "2020-12-31 → Omvang absent (315 is CD095, 317 NieuwProduct is CD096).",
)
def check_assigned_volume_needs_code(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """CD080: aspecific or generic assignments carry no Omvang."""
    return _volume_without_code(doc, TOEGEWEZEN)


@REGISTRY.rule(
    "CD095",
    types=_types(AANGEVRAAGD),
    summary="JW315 AangevraagdProduct: Product/Code empty and ToewijzingEinddatum empty or after "
    "2020-12-31 → Omvang absent.",
)
def check_requested_volume_needs_code(
    doc: MessageDocument, ctx: RuleContext
) -> Iterator[Violation]:
    """CD095: the request counterpart of CD080."""
    return _volume_without_code(doc, AANGEVRAAGD)


@REGISTRY.rule(
    "CD096",
    types=_types(NIEUW),
    summary="JW317 NieuwProduct: Product/Code empty and Einddatum empty or after 2020-12-31 → "
    "Omvang absent (TeWijzigenProduct has no Product, so no counterpart).",
)
def check_new_volume_needs_code(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """CD096: the change-request counterpart of CD080."""
    return _volume_without_code(doc, NIEUW)


def _unit_needs_periodic_frequency(
    doc: MessageDocument, classes: tuple[ProductClass, ...]
) -> Iterator[Violation]:
    for product_class, product in _products(doc, classes):
        unit = doc.find(product, "Omvang/Eenheid")
        if unit is None or raw(unit) not in _PER_DAY_NOT_ALLOWED_UNITS:
            continue
        if not open_or_after_2020(doc.find(product, product_class.end)):
            continue
        frequency = doc.find(product, "Omvang/Frequentie")
        if raw(frequency) not in _PERIODIC_FREQUENCIES:
            yield Violation(
                frequency if frequency is not None else unit,
                f"{product_class.name} has Eenheid {raw(unit)}, which needs Frequentie 2, 4 or 6 "
                f"(found {raw(frequency)}).",
            )


@REGISTRY.rule(
    "CS338",
    types=_types(TOEGEWEZEN, TE_WIJZIGEN, NIEUW),
    summary="301 ToegewezenProduct, 317 TeWijzigen/NieuwProduct: Eenheid 14, 16, 83 or 84 with "
    "Einddatum empty or after 2020-12-31 → Frequentie 2, 4 or 6 (315 is CS343).",
)
def check_unit_frequency(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """CS338: day parts, days, euros and pieces are not assigned per day."""
    return _unit_needs_periodic_frequency(doc, (TOEGEWEZEN, TE_WIJZIGEN, NIEUW))


@REGISTRY.rule(
    "CS343",
    types=_types(AANGEVRAAGD),
    summary="315 AangevraagdProduct: Eenheid 14, 16, 83 or 84 with ToewijzingEinddatum empty or "
    "after 2020-12-31 → Frequentie 2, 4 or 6.",
)
def check_requested_unit_frequency(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """CS343: the request counterpart of CS338."""
    return _unit_needs_periodic_frequency(doc, (AANGEVRAAGD,))


# --- RedenWijziging (301) ---------------------------------------------------------------------


@REGISTRY.rule(
    "CS335",
    types=_types(TOEGEWEZEN),
    summary="RedenWijziging 13 (verwijderd) only with Einddatum equal to Ingangsdatum (an absent "
    "Einddatum is not checked, as in the XSLT).",
)
def check_deletion_is_zero_length(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """CS335: a deleted assignment is closed on its own start date."""
    for _, product in _products(doc, (TOEGEWEZEN,)):
        if raw(doc.find(product, "RedenWijziging")) != "13":
            continue
        start, end = doc.find(product, "Ingangsdatum"), doc.find(product, "Einddatum")
        if start is not None and end is not None and raw(start) != raw(end):
            yield Violation(
                end,
                f"RedenWijziging 13 (deleted) requires Einddatum {raw(end)} to equal "
                f"Ingangsdatum {raw(start)}.",
            )


@REGISTRY.rule(
    "CS336",
    types=_types(TOEGEWEZEN),
    summary="RedenWijziging 01 (administratieve correctie, vervallen) is not used.",
)
def check_obsolete_reason(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """CS336: reason 01 was withdrawn; 14 replaces it."""
    for _, product in _products(doc, (TOEGEWEZEN,)):
        reason = doc.find(product, "RedenWijziging")
        if reason is not None and raw(reason) == "01":
            yield Violation(reason, "RedenWijziging 01 is obsolete and may not be used (use 14).")


# --- overlapping periods of the same product --------------------------------------------------


def _same_product(doc: MessageDocument, this: Element, other: Element) -> bool:
    """The XSLT's product match: equal code and category; else equal category when either has
    no code; and a product without code and category matches anything."""
    this_code, other_code = doc.find(this, "Product/Code"), doc.find(other, "Product/Code")
    this_cat, other_cat = doc.find(this, "Product/Categorie"), doc.find(other, "Product/Categorie")
    categories_equal = (
        this_cat is not None and other_cat is not None and raw(this_cat) == raw(other_cat)
    )
    if this_code is not None and other_code is not None:
        if raw(this_code) == raw(other_code) and categories_equal:
            return True
    elif categories_equal:
        return True
    return (this_code is None and this_cat is None) or (other_code is None and other_cat is None)


def _overlap(
    doc: MessageDocument, this: Element, other: Element, product_class: ProductClass
) -> bool:
    """The XSLT's period overlap with inclusive ends; an absent end is open."""
    this_start = date_number(raw(doc.find(this, product_class.begin))) or 0
    other_start = date_number(raw(doc.find(other, product_class.begin))) or 0
    this_end = date_number(raw(doc.find(this, product_class.end)))
    other_end = date_number(raw(doc.find(other, product_class.end)))
    if this_end is not None and other_end is not None:
        return not (this_end < other_start or other_end < this_start)
    if this_end is not None:
        return this_end >= other_start
    if other_end is not None:
        return other_end >= this_start
    return True


def _ignored_for_overlap(doc: MessageDocument, product: Element) -> bool:
    """TR302 skips deleted (13) and reden-01 assignments of zero length."""
    if raw(doc.find(product, "RedenWijziging")) not in _DELETED_OR_OBSOLETE_CORRECTION:
        return False
    end = doc.find(product, "Einddatum")
    if not is_filled(end):
        return False
    return date_number(raw(doc.find(product, "Ingangsdatum"))) == date_number(raw(end))


def _overlapping_products(
    doc: MessageDocument, product_class: ProductClass, *, skip_deleted: bool
) -> Iterator[Violation]:
    for _, product in _products(doc, (product_class,)):
        if skip_deleted and _ignored_for_overlap(doc, product):
            continue
        parent = product.getparent()
        if parent is None:
            continue
        for earlier in product.itersiblings(preceding=True):
            if skip_deleted and _ignored_for_overlap(doc, earlier):
                continue
            if _same_product(doc, product, earlier) and _overlap(
                doc, product, earlier, product_class
            ):
                yield Violation(
                    product,
                    f"{product_class.name} {parent.index(product) + 1} has the same product as "
                    f"{product_class.name} {parent.index(earlier) + 1} in an overlapping period.",
                )


@REGISTRY.rule(
    "TR302",
    types=_types(TOEGEWEZEN),
    summary="A product occurs more than once in a 301 only with non-overlapping periods; "
    "zero-length assignments with RedenWijziging 13 or 01 are ignored.",
)
def check_assigned_overlap(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR302: no two assignments of the same product cover the same day."""
    return _overlapping_products(doc, TOEGEWEZEN, skip_deleted=True)


@REGISTRY.rule(
    "TR386",
    types=_types(AANGEVRAAGD),
    summary="A product occurs more than once in a 315 only with non-overlapping requested periods.",
)
def check_requested_overlap(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR386: the request counterpart of TR302."""
    return _overlapping_products(doc, AANGEVRAAGD, skip_deleted=False)


@REGISTRY.rule(
    "TR410",
    types=_types(NIEUW),
    summary="A product occurs more than once among the 317 NieuwProducten only with "
    "non-overlapping periods.",
)
def check_new_overlap(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR410: the change-request counterpart of TR302, for new products only."""
    return _overlapping_products(doc, NIEUW, skip_deleted=False)
