"""In-message rules that apply wherever their element occurs: BSN, birth date, duplicates, periods.

The semantics follow the official iJw 3.2 validation XSLT (2.10.5): where that XSLT matches by
local name (``Bsn``, ``Geboortedatum``, the basisschema's ``Datum``/``DatumGebruik``), the rule
covers every message type that carries the element, retours included. The small readers at the
top are shared with the other rule modules of this rule set.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator, Mapping

from gateway.core.catalogue import RELEASE_2_3
from gateway.core.document import Element, MessageDocument, find
from gateway.core.rules.engine import RuleContext, Violation
from gateway.core.rules.registry import REGISTRY

#: Messages whose XSD declares a ``Bsn`` (every message but 319/320).
BSN_MESSAGES = (
    "JW301", "JW302", "JW305", "JW306", "JW307", "JW308",
    "JW315", "JW316", "JW317", "JW318", "JW323", "JW325",
)  # fmt: skip
#: Messages whose XSD declares a client ``Geboortedatum`` (CDT_Geboortedatum).
BIRTH_DATE_MESSAGES = ("JW301", "JW302", "JW305", "JW306", "JW307", "JW308", "JW315", "JW316")

#: iJw 2.3, where a rule of this rule set means the same on the same elements. Every 2.3 message
#: carries a client Bsn and Geboortedatum; all but JW303/JW304 (whose header names the invoice
#: date instead) have a BerichtIdentificatie/Dagtekening.
BSN_MESSAGES_2_3 = (
    "JW301", "JW302", "JW303", "JW304", "JW305", "JW306", "JW307", "JW308", "JW315", "JW316",
)  # fmt: skip
DAGTEKENING_MESSAGES_2_3 = BIRTH_DATE_MESSAGES

#: The 11-proof weights of the official XSLT, leftmost digit first; the last digit counts -1.
_BSN_WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2, -1)
_BSN_WEIGHT_SUM = sum(_BSN_WEIGHTS)
_ASCII_ZERO = ord("0")
_ONE_YEAR_AS_DATE_NUMBER = 10_000  # the XSLT adds years to yyyymmdd numbers


# --- readers shared by the rule modules -------------------------------------------------------


def child(el: Element, path: str) -> Element | None:
    """The first element at a local-name path below ``el`` (direct children first).

    Rules given a document read through ``doc.find`` instead: same answer, from its index.
    """
    return find(el, path)


def raw(el: Element | None) -> str | None:
    """The element's text as the XSLT compares it (``text()``), or None when absent."""
    if el is None:
        return None
    return el.text if el.text is not None else ""


def is_filled(el: Element | None) -> bool:
    """The XSLT's ``*`` test: present with non-blank text."""
    return el is not None and bool((el.text or "").strip())


def value(el: Element | None) -> str | None:
    """The stripped text of a present, non-blank element, else None."""
    return el.text.strip() if el is not None and el.text and el.text.strip() else None


def date_number(text_value: str | None) -> int | None:
    """``2026-04-01`` as ``20260401``: how the XSLT compares dates (``translate(., '-', '')``)."""
    if text_value is None:
        return None
    digits = text_value.strip()[:10].replace("-", "")
    return int(digits) if digits.isdigit() else None


def open_or_after_2020(end: Element | None) -> bool:
    """True when an end date is absent or later than 2020-12-31 (the 2021 variant rules)."""
    if end is None:
        return True
    number = date_number(end.text)
    return number is not None and number > 20201231


# --- CS002 -----------------------------------------------------------------------------------


def bsn_passes_eleven_proof(bsn: str) -> bool:
    """The official 11-proof: weights 9..2 on the first eight digits, -1 on the last."""
    if len(bsn) != len(_BSN_WEIGHTS) or not bsn.isdigit():
        return False
    if bsn.isascii():
        # The same sum over the ASCII codes, in C: each digit is its code minus 48.
        weighted: int = sum(map(operator.mul, _BSN_WEIGHTS, bsn.encode("ascii")))
        return (weighted - _ASCII_ZERO * _BSN_WEIGHT_SUM) % 11 == 0
    return sum(w * int(d) for w, d in zip(_BSN_WEIGHTS, bsn, strict=True)) % 11 == 0


@REGISTRY.rule(
    "CS002",
    types=BSN_MESSAGES,
    other_releases={RELEASE_2_3: BSN_MESSAGES_2_3},
    summary="Every Bsn passes the 11-proof (weights 9..2, last digit -1), in all messages.",
)
def check_bsn_eleven_proof(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """CS002: a Bsn that fails the 11-proof (the value itself is never reported)."""
    for bsn in doc.all_local("Bsn"):
        if not bsn_passes_eleven_proof((bsn.text or "").strip()):
            yield Violation(bsn, "The BSN fails the 11-proof.")


# --- CS139 / TR002 ---------------------------------------------------------------------------


@REGISTRY.rule(
    "CS139",
    types=BIRTH_DATE_MESSAGES,
    other_releases={RELEASE_2_3: BSN_MESSAGES_2_3},
    summary="DatumGebruik agrees with Datum: 1 → day 01; 2 → 01-01; 3 → 1900-01-01.",
)
def check_date_usage(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """CS139: an (partly) unknown birth date must be written the agreed way."""
    for usage in doc.all_local("DatumGebruik"):
        holder = usage.getparent()
        date_el = doc.find(holder, "Datum") if holder is not None else None
        if date_el is None:
            continue
        date_text = raw(date_el) or ""
        kind = raw(usage)
        _year, _, month_day = date_text.partition("-")
        day = month_day.partition("-")[2]
        if kind == "3" and date_text != "1900-01-01":
            yield Violation(usage, "DatumGebruik 3 (date unknown) requires the date 1900-01-01.")
        elif kind == "2" and month_day != "01-01":
            yield Violation(
                usage, "DatumGebruik 2 (day and month unknown) requires month and day 01-01."
            )
        elif kind == "1" and day != "01":
            yield Violation(usage, "DatumGebruik 1 (day unknown) requires day 01.")


@REGISTRY.rule(
    "TR002",
    types=BIRTH_DATE_MESSAGES,
    other_releases={RELEASE_2_3: DAGTEKENING_MESSAGES_2_3},
    summary="A Geboortedatum lies at most 120 years before the Dagtekening, unless unknown "
    "(DatumGebruik 3 with 1900-01-01).",
)
def check_birth_date_age(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR002: compared as yyyymmdd numbers plus 120 years, exactly like the XSLT."""
    dagtekening_text = doc.header_text("BerichtIdentificatie/Dagtekening")
    dagtekening = date_number(dagtekening_text)
    if dagtekening is None:
        return
    for birth in doc.all_local("Geboortedatum"):
        date_el = doc.find(birth, "Datum")
        born = date_number(raw(date_el))
        if date_el is None or born is None:
            continue
        if raw(doc.find(birth, "DatumGebruik")) == "3" and raw(date_el) == "1900-01-01":
            continue
        if born + 120 * _ONE_YEAR_AS_DATE_NUMBER < dagtekening:
            yield Violation(
                date_el,
                f"The birth date lies more than 120 years before the Dagtekening "
                f"{dagtekening_text}.",
            )


# --- TR101 -----------------------------------------------------------------------------------

_PRESTATIE_KEY = ("ProductReferentie/ReferentieNummer", "ProductReferentie/VorigReferentieNummer")

#: The logical key of each class, per message (spec §3 "Key", as the XSLT checks them). Paths
#: are relative to the class; an absent key element counts as a value of its own ("absent").
DUPLICATE_KEYS: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "JW301": {
        "Client": ("Bsn",),
        "Relatie": ("Nummer",),
        "Contact": ("Soort",),
        "ToegewezenProduct": ("ToewijzingNummer",),
    },
    "JW305": {
        "Client": ("Bsn",),
        "StartProduct": ("ToewijzingNummer", "Product/Categorie", "Product/Code", "Begindatum"),
    },
    "JW307": {
        "Client": ("Bsn",),
        "StopProduct": (
            "ToewijzingNummer",
            "Product/Categorie",
            "Product/Code",
            "Begindatum",
            "RedenBeeindiging",
            "Einddatum",
        ),
    },
    "JW315": {"Client": ("Bsn",), "AangevraagdProduct": ("ReferentieAanbieder",)},
    "JW317": {
        "Client": ("Bsn",),
        "Verzoek": ("ReferentieAanbieder",),
        "OngewijzigdProduct": ("ToewijzingNummer",),
        "TeWijzigenProduct": ("ToewijzingNummer",),
        "NieuwProduct": ("Product/Categorie", "Product/Code", "GewensteIngangsdatum"),
    },
    "JW319": {
        "Antwoord": ("ReferentieAanbieder", "VerzoekAntwoord"),
        "Woonplaatsbeginsel": ("Gemeente",),
    },
    "JW323": {
        "Declaratie": ("DeclaratieNummer",),
        "Client": ("Bsn",),
        "Prestatie": _PRESTATIE_KEY,
    },
    "JW325": {
        "DeclaratieAntwoord": ("DeclaratieNummer",),
        "Client": ("Bsn",),
        "Prestatie": _PRESTATIE_KEY,
    },
}


def _key_of(doc: MessageDocument, el: Element, key_paths: Iterable[str]) -> tuple[str | None, ...]:
    return tuple([raw(doc.find(el, path)) for path in key_paths])


@REGISTRY.rule(
    "TR101",
    types=DUPLICATE_KEYS,
    summary="No two sibling classes share their logical key (key table DUPLICATE_KEYS).",
)
def check_duplicate_lines(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR101: one finding per group of duplicates, on its last member (as the XSLT reports)."""
    for class_name, key_paths in DUPLICATE_KEYS.get(doc.message_type, {}).items():
        elements = doc.all_local(class_name)
        if len(elements) < 2:
            continue
        # A duplicate shares its parent, so an element alone under its parent is in no group
        # that is reported: its key is not needed. Leaving it out keeps the reported groups
        # and their order (by first member) as they were.
        parents = [el.getparent() for el in elements]
        siblings: dict[Element | None, int] = {}
        for parent in parents:
            siblings[parent] = siblings.get(parent, 0) + 1
        # Keyed by the parent proxy itself: lxml keeps one proxy per node while it is
        # referenced, whereas id() of a discarded proxy can be reused by another node.
        groups: dict[tuple[Element | None, tuple[str | None, ...]], list[Element]] = {}
        for el, parent in zip(elements, parents, strict=True):
            if siblings[parent] > 1:
                groups.setdefault((parent, _key_of(doc, el, key_paths)), []).append(el)
        for members in groups.values():
            if len(members) > 1:
                yield Violation(
                    members[-1],
                    f"{len(members)} {class_name} classes in the same parent have the same key "
                    f"({', '.join(key_paths)}).",
                )


# --- CS003 -----------------------------------------------------------------------------------

#: (message, class, begin element, end element) pairs the XSLT checks for CS003.
END_AFTER_BEGIN: tuple[tuple[str, str, str, str], ...] = (
    ("JW301", "ToegewezenProduct", "Ingangsdatum", "Einddatum"),
    ("JW301", "Periode", "Begindatum", "Einddatum"),  # Contact/Periode
    ("JW315", "AangevraagdProduct", "ToewijzingIngangsdatum", "ToewijzingEinddatum"),
    ("JW317", "TeWijzigenProduct", "GewensteIngangsdatum", "Einddatum"),
    ("JW317", "NieuwProduct", "GewensteIngangsdatum", "Einddatum"),
)


@REGISTRY.rule(
    "CS003",
    types={message for message, *_ in END_AFTER_BEGIN},
    summary="An end date is not before the begin/ingangsdatum of its class (ToegewezenProduct, "
    "Contact/Periode, AangevraagdProduct, TeWijzigenProduct, NieuwProduct); as in the XSLT, an "
    "end date without a begin date also fails.",
)
def check_end_not_before_begin(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """CS003: a filled end date must be on or after the begin date of the same class."""
    for message, class_name, begin_name, end_name in END_AFTER_BEGIN:
        if message != doc.message_type:
            continue
        for holder in doc.all_local(class_name):
            end = doc.find(holder, end_name)
            if end is None:
                continue
            begin = doc.find(holder, begin_name)
            end_number = date_number(raw(end))
            begin_number = date_number(raw(begin))
            if begin is None or begin_number is None:
                yield Violation(end, f"{end_name} is filled but {begin_name} is missing.")
            elif end_number is not None and end_number < begin_number:
                yield Violation(
                    end,
                    f"{class_name} {end_name} {raw(end)} is before {begin_name} {raw(begin)}.",
                )
