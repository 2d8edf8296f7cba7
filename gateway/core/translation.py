"""Rewrite product codes into the receiver's code generation, consistently in both directions.

Bytes + :class:`MappingTable` + a read-only view of the ledger in; a :class:`Translation` out:
the new XML, every rewrite made (field path, old and new value), every product that needs an
operator's mapping decision, and the ledger entries the message would add.

Protocol rules (docs/translation.md, anchors.md finding 4):

* The ledger wins. An allocation or request that was translated before travels under the same
  pair in every later message, in whichever direction, so a round trip restores the original.
* Follow-up messages (JW302, JW305-JW308, JW316, JW318, JW323, JW325) never consult the table:
  an allocation the gateway never translated already travels under a code both sides know.
* No retroactive rewriting: an allocation that began before the cut-over keeps its code,
  unless the gemeente re-sends it with RedenWijziging 10.
* Nothing is guessed. A missing mapping, a one-to-many row, a code that matches neither side of
  the recorded pair, or an Eenheid change without a declared conversion is reported as
  "needs mapping decision" and the caller holds the message.
* Amounts change only under a declared conversion (:class:`~gateway.core.mapping_tables.
  Conversion`): a JW323 (2.3: JW303) line gets the converted volume, unit and tariff and the
  amounts are recomputed (2.3: VAT too); its JW325 (JW304) answer goes back with the amounts
  as the sender declared them. Without one, a declaration line whose pair changes the Eenheid
  is held.

Only element text changes (codes, Omvang, and declaration figures under a conversion), so a
schema-valid message stays schema-valid: targets are 1-5 character codes from the loaded lists.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace
from enum import StrEnum

from lxml import etree

from gateway.core.conversion import (
    claims_convert,
    convert_claim,
    convert_declared_omvang,
    omvang_of,
    restore_claim,
    total_answer,
    total_declaration,
)
from gateway.core.document import (
    Element,
    date_at,
    day_of,
    element_path,
    find,
    findall,
    text,
)
from gateway.core.ledger import (
    LedgerEntry,
    LedgerKey,
    Origin,
    TranslationLedger,
)
from gateway.core.lists import ContractTable
from gateway.core.mapping_tables import (
    DBC_MAX_DAYS,
    Candidate,
    MappingTable,
    Product,
    dbc_running_at,
)
from gateway.core.translation_model import (
    DBC_CLOSED_RETOURCODE,
    NEEDS_MAPPING_DECISION,
    Kept,
    Refusal,
    Rewrite,
    Run,
    Translation,
    TranslationError,
    Undecided,
    key_text,
    whole,
)
from gateway.core.xmlsafe import parse_safely

__all__ = [
    "DBC_CLOSED_RETOURCODE",
    "HOLDERS",
    "NEEDS_MAPPING_DECISION",
    "Kept",
    "Refusal",
    "Rewrite",
    "Role",
    "Translation",
    "TranslationError",
    "Undecided",
    "running_allocation_start",
    "translate",
]

_MESSAGE_NAMESPACE = re.compile(r"/(jw\d{3})/schema$", re.IGNORECASE)
_GEMEENTE = re.compile(r"^\d{4}$")


class Role(StrEnum):
    """What a product-bearing element means for translation."""

    ALLOCATION = "allocation"  # JW301: may start a pair from the table
    REQUEST = "request"  # JW315/JW317 new products: may start a pair from the table
    FOLLOW_UP = "follow-up"  # start, stop, retours: ledger only
    DECLARATION = "declaration"  # JW323, JW303: ledger only; units change by conversion
    OMVANG_ONLY = "omvang-only"  # JW317 TeWijzigenProduct: no product, only Omvang


@dataclass(frozen=True, slots=True)
class _Holder:
    element: str
    role: Role
    date_paths: tuple[str, ...]
    flat: bool = False  # JW323/JW325 carry ProductCategorie/ProductCode instead of Product
    request_key: str | None = None  # "own" (ReferentieAanbieder child) or "verzoek" (JW317)
    # Where a running jeugd-GGZ DBC's opening date is (the start of the allocation it is
    # delivered under), and the day the product is for; empty: not a DBC run-off holder.
    dbc_opened_paths: tuple[str, ...] = ()
    dbc_day_paths: tuple[str, ...] = ()


_ALLOCATED = _Holder("ToegewezenProduct", Role.ALLOCATION, ("Ingangsdatum",))
_ALLOCATED_RETOUR = _Holder("ToegewezenProduct", Role.FOLLOW_UP, ("Ingangsdatum",))
_START = _Holder(
    "StartProduct",
    Role.FOLLOW_UP,
    ("ToewijzingIngangsdatum", "Begindatum"),
    dbc_opened_paths=("ToewijzingIngangsdatum",),
    dbc_day_paths=("Begindatum",),
)
_STOP = _Holder("StopProduct", Role.FOLLOW_UP, ("ToewijzingIngangsdatum", "Begindatum"))
_ASKED = _Holder(
    "AangevraagdProduct",
    Role.REQUEST,
    ("ToewijzingIngangsdatum",),
    request_key="own",
    dbc_opened_paths=("ToewijzingIngangsdatum",),
)
_ASKED_RETOUR = replace(_ASKED, role=Role.FOLLOW_UP, dbc_opened_paths=())
_NEW = _Holder("NieuwProduct", Role.REQUEST, ("GewensteIngangsdatum",), request_key="verzoek")
_NEW_RETOUR = replace(_NEW, role=Role.FOLLOW_UP)
_TO_CHANGE = _Holder("TeWijzigenProduct", Role.OMVANG_ONLY, ("GewensteIngangsdatum",))
# A JW323 line names no allocation start: its run-off pair comes from the request or start
# (the ledger); without one the line waits (dbc_day_paths set, dbc_opened_paths empty).
_LINE = _Holder(
    "Prestatie",
    Role.DECLARATION,
    ("ProductPeriode/Begindatum",),
    flat=True,
    dbc_day_paths=("ProductPeriode/Begindatum",),
)
_LINE_RETOUR = replace(_LINE, role=Role.FOLLOW_UP, dbc_day_paths=())

HOLDERS: dict[str, tuple[_Holder, ...]] = {
    "JW301": (_ALLOCATED,),
    "JW302": (_ALLOCATED_RETOUR,),
    "JW305": (_START,),
    "JW306": (_START,),
    "JW307": (_STOP,),
    "JW308": (_STOP,),
    "JW315": (_ASKED,),
    "JW316": (_ASKED_RETOUR,),
    "JW317": (_NEW, _TO_CHANGE),
    "JW318": (_NEW_RETOUR, _TO_CHANGE),
    "JW319": (),  # the Antwoord carries no product
    "JW320": (),
    "JW323": (_LINE,),
    "JW325": (_LINE_RETOUR,),
    # iJw 2.3: JW301, JW305, JW307 and JW315 carry their products in the elements of 3.2
    # above; a JW303 line, like a JW323 line, has a flat ProductCategorie/ProductCode.
    "JW303": (_LINE,),
    "JW304": (_LINE_RETOUR,),
}

#: The 2.3 declaration types: their lines carry VAT.
_DECLARATIONS_2_3 = frozenset({"JW303", "JW304"})
#: Declarations whose totals follow converted lines, and the answers that go back as declared.
_DECLARATIONS, _ANSWERS = frozenset({"JW323", "JW303"}), frozenset({"JW325", "JW304"})


def translate(
    raw: bytes,
    table: MappingTable,
    *,
    to_generation: str,
    gemeente: str | None = None,
    as_of: dt.date | None = None,
    ledger: TranslationLedger,
    contracts: ContractTable | None = None,
) -> Translation:
    """Translate every product code in a message into ``to_generation``.

    Takes the bytes, not a validated document: the output is written from a fresh parse that
    keeps the sender's whitespace (validation's tree may lack it).

    ``gemeente`` defaults to the 4-digit party in the header; ``as_of`` (the date used where an
    element carries none, and for RedenWijziging 10) defaults to the message's Dagtekening.
    The ledger is only read; record ``new_entries`` (and ``new_claim_lines``) once the message
    is accepted for delivery. ``contracts`` price JW323 lines converted under a declared
    conversion whose tariff is the contract's.
    """
    if table.generation(to_generation) is None:
        known = ", ".join(sorted(table.generations)) or "none"
        raise TranslationError(f"unknown generation {to_generation!r} (known: {known})")
    tree = _tree_of(raw)
    root = tree.getroot()
    message_type = _message_type(root)
    party = gemeente or _gemeente_of(root)
    day = as_of or day_of(root)
    if day is None:
        raise TranslationError("no Dagtekening in the header; pass as_of (--date)")
    run = Run(
        table,
        ledger,
        to_generation,
        party,
        day,
        root=root,
        contracts=contracts,
        vat_lines=message_type in _DECLARATIONS_2_3,
    )
    for holder in HOLDERS.get(message_type, ()):
        for position, element in enumerate(root.iter("{*}" + holder.element), start=1):
            _translate_holder(run, holder, element, position)
    if message_type in _DECLARATIONS and run.claim_lines:
        total_declaration(run)
    elif message_type in _ANSWERS:
        total_answer(run)
    xml = etree.tostring(tree, xml_declaration=True, encoding="UTF-8")
    return Translation(
        message_type=message_type,
        gemeente=party,
        to_generation=to_generation,
        xml=xml,
        rewrites=tuple(run.rewrites),
        undecided=tuple(run.undecided),
        kept=tuple(run.kept),
        new_entries=() if run.undecided else tuple(run.new_entries.values()),
        refused=tuple(run.refused),
        new_claim_lines=() if run.undecided else tuple(run.claim_lines),
    )


def running_allocation_start(root: Element, ledger: TranslationLedger) -> dt.date | None:
    """The earliest ToewijzingIngangsdatum of an allocation this message follows up that the
    gateway never translated (no ledger pair), or None.

    Such an allocation travels under the code it was made with until it ends: a start or
    stop reported after a cut-over still speaks the generation of the allocation's start.
    A translated allocation (one with a pair) travels under its pair instead.
    """
    try:
        gemeente = _gemeente_of(root)
        holders = HOLDERS.get(_message_type(root), ())
    except TranslationError:
        return None
    starts = [
        begin
        for holder in holders
        if holder.role is Role.FOLLOW_UP
        for element in root.iter("{*}" + holder.element)
        if (number := text(element, "ToewijzingNummer"))
        and (begin := date_at(element, "ToewijzingIngangsdatum")) is not None
        and ledger.get(LedgerKey.allocation(gemeente, number)) is None
    ]
    return min(starts, default=None)


def _tree_of(raw: bytes) -> etree._ElementTree:
    # From the bytes, with their blank text: the translation is written from this tree, and
    # the receiver gets the sender's layout with only codes changed. (Validation's tree may
    # lack the whitespace between elements; translating a copy of it would flatten the
    # message into one line.)
    parsed = parse_safely(raw)
    if parsed.tree is None:
        reasons = "; ".join(f.message for f in parsed.findings)
        raise TranslationError(f"cannot translate: {reasons}")
    return parsed.tree


def _message_type(root: Element) -> str:
    namespace = etree.QName(root).namespace or ""
    match = _MESSAGE_NAMESPACE.search(namespace)
    if match is None:
        raise TranslationError(f"not an iJw message (root namespace {namespace!r})")
    return match.group(1).upper()


def _gemeente_of(root: Element) -> str:
    # A 2.3 JW303/JW304 header names Gemeente and Aanbieder instead of Afzender/Ontvanger.
    for name in ("Afzender", "Ontvanger", "Gemeente"):
        value = text(root, f"Header/{name}")
        if value is not None and _GEMEENTE.match(value):
            return value
    raise TranslationError("no 4-digit gemeentecode in Afzender or Ontvanger; pass --gemeente")


def _product_fields(element: Element, holder: _Holder) -> tuple[Element, Element] | None:
    if holder.flat:
        categorie, code = find(element, "ProductCategorie"), find(element, "ProductCode")
    else:
        product = find(element, "Product")
        if product is None:
            return None
        categorie, code = find(product, "Categorie"), find(product, "Code")
    if categorie is None or code is None or not (categorie.text or "").strip():
        return None  # generic or aspecific: no code to translate
    return categorie, code


def _key_for(run: Run, holder: _Holder, element: Element, position: int) -> LedgerKey | None:
    if holder.request_key == "own":
        reference = text(element, "ReferentieAanbieder")
        return LedgerKey.request(run.gemeente, reference) if reference else None
    if holder.request_key == "verzoek":
        verzoek = element.getparent()
        verzoek = verzoek.getparent() if verzoek is not None else None
        reference = text(verzoek, "ReferentieAanbieder")
        if not reference or verzoek is None:
            return None
        index = findall(verzoek, "NieuweProducten/NieuwProduct").index(element) + 1
        return LedgerKey.request(run.gemeente, reference, index)
    number = text(element, "ToewijzingNummer")
    return LedgerKey.allocation(run.gemeente, number) if number else None


def _allocation_day(run: Run, holder: _Holder, element: Element) -> dt.date:
    for path in holder.date_paths:
        found = date_at(element, path)
        if found is not None:
            return found
    return run.as_of


def _translate_holder(run: Run, holder: _Holder, element: Element, position: int) -> None:
    key = _key_for(run, holder, element, position)
    if holder.role is Role.OMVANG_ONLY:
        entry = run.lookup(key) if key is not None else None
        if entry is not None:
            _convert_omvang(run, element, entry, key)
        return
    fields = _product_fields(element, holder)
    if fields is None:
        return
    categorie_el, code_el = fields
    product = Product((categorie_el.text or "").strip(), (code_el.text or "").strip())
    path = element_path(element)
    entry = run.lookup(key) if key is not None else None
    if entry is None and holder.role is Role.ALLOCATION:
        entry = _from_request(run, element, product, key)
    if entry is None and _is_dbc_product(run, holder, product):
        entry = _from_dbc(run, holder, element, product, key=key, path=path)
        if entry is None:
            return
    if entry is None and holder.role in (Role.ALLOCATION, Role.REQUEST):
        entry = _from_table(run, holder, element, product, key=key, path=path)
        if entry is None:
            return
    if entry is None:
        run.kept.append(
            Kept(
                path,
                product,
                "no ledger entry: this allocation was never "
                "translated, so both sides already use this code",
            )
        )
        return
    _apply(run, holder, element, (categorie_el, code_el), product=product, entry=entry, path=path)


def _from_request(
    run: Run, element: Element, product: Product, key: LedgerKey | None
) -> LedgerEntry | None:
    """A JW301 that honours a translated VOT/VOW goes back under the requested code."""
    reference = text(element, "ReferentieAanbieder")
    if key is None or not reference:
        return None
    matches = {
        e.original: e
        for e in run.ledger.requests(run.gemeente, reference)
        if e.translated == product and e.original_generation == run.to_generation
    }
    if len(matches) != 1:
        return None
    request = next(iter(matches.values()))
    # Oriented as this message travels: the gemeente's code is the original of the allocation.
    return LedgerEntry(
        key=key,
        original=product,
        translated=request.original,
        original_generation=request.translated_generation,
        translated_generation=request.original_generation,
        origin=Origin.REQUEST,
        basis=f"request {request.key}",
        unit_original=request.unit_translated,
        unit_translated=request.unit_original,
        volume_factor=None if request.volume_factor is None else 1 / request.volume_factor,
        recorded_on=run.as_of,
        conversion=request.conversion,
        source_omvang=request.source_omvang,
    )


def _from_table(
    run: Run,
    holder: _Holder,
    element: Element,
    product: Product,
    *,
    key: LedgerKey | None,
    path: str,
) -> LedgerEntry | None:
    reden_10 = text(element, "RedenWijziging") == "10"
    day = run.as_of if reden_10 else _allocation_day(run, holder, element)
    cutover = _first_cutover(run.table, run.to_generation)
    if not reden_10 and cutover is not None and day < cutover:
        run.kept.append(
            Kept(
                path,
                product,
                f"began {day}, before the cut-over {cutover}: no retroactive rewriting",
            )
        )
        return None
    candidates = run.table.candidates(run.gemeente, product, day, run.to_generation)
    if not candidates:
        if run.table.speaks(run.to_generation, product):
            run.kept.append(Kept(path, product, f"already a {run.to_generation} code"))
        else:
            run.undecided.append(
                Undecided(
                    path,
                    product,
                    f"no mapping into {run.to_generation} for gemeente {run.gemeente} on {day}",
                    key=key_text(key),
                )
            )
        return None
    if len(candidates) > 1 or any(c.row.needs_decision for c in candidates):
        options = tuple(sorted({c.result for c in candidates}))
        rows = ", ".join(c.row.origin for c in candidates)
        run.undecided.append(
            Undecided(
                path,
                product,
                f"one-to-many mapping ({rows})",
                key=key_text(key),
                candidates=options,
                pairs=()
                if key is None
                else tuple(
                    _pair_of(run, key, product, c, element=element, day=day) for c in candidates
                ),
            )
        )
        return None
    if key is None:
        run.undecided.append(_nowhere_to_record(path, product))
        return None
    candidate = candidates[0]
    entry = _pair_of(run, key, product, candidate, element=element, day=day)
    if entry.changes_unit and entry.conversion is None and entry.volume_factor is None:
        run.undecided.append(
            Undecided(
                path,
                product,
                f"{candidate.row.origin} changes the Eenheid ({candidate.unit_before} -> "
                f"{candidate.unit_after}) without a declared conversion (conversions/)",
                key=key_text(key),
                candidates=(candidate.result,),
                pairs=(entry,),
            )
        )
        return None
    return entry


def _pair_of(
    run: Run,
    key: LedgerKey,
    product: Product,
    candidate: Candidate,
    *,
    element: Element,
    day: dt.date,
) -> LedgerEntry:
    """The pair ``candidate`` records for ``product``, with the row's declared conversion valid
    on ``day`` when there is one: the table applies it, and so does a decision that picks it."""
    entry = _entry_from_candidate(run, key, product, candidate)
    conversion = run.table.conversion(run.gemeente, candidate.row, day)
    if conversion is None:
        return entry
    # A message in the conversion's source generation carries the source-side Omvang: the
    # way back of a fixed volume restores it.
    source_side = candidate.from_generation == conversion.from_generation
    return replace(
        entry,
        conversion=conversion,
        volume_factor=None,
        source_omvang=omvang_of(element) if source_side else None,
        basis=f"{entry.basis}, converted by {conversion.origin}",
    )


def _is_dbc_product(run: Run, holder: _Holder, product: Product) -> bool:
    """A product about a running jeugd-GGZ DBC: a DBC key does not fit in a ProductCode, so
    the message carries a code of the DBC rows' category that no product row translates and
    the receiver does not speak (e.g. 54/54002, the national code that replaced DBCs)."""
    if not (holder.dbc_opened_paths or holder.dbc_day_paths):
        return False
    return (
        bool(run.table.dbc_rows(run.gemeente, product.categorie, to_generation=run.to_generation))
        and not run.table.rows_for_product(run.gemeente, product, generation=run.to_generation)
        and not run.table.speaks(run.to_generation, product)
    )


def _first_date(element: Element, paths: tuple[str, ...]) -> dt.date | None:
    for path in paths:
        found = date_at(element, path)
        if found is not None:
            return found
    return None


def _from_dbc(
    run: Run,
    holder: _Holder,
    element: Element,
    product: Product,
    *,
    key: LedgerKey | None,
    path: str,
) -> LedgerEntry | None:
    """The run-off pair for a DBC still running at the transition; a refusal for one that
    had closed before it (opened more than 365 days earlier)."""
    rows = run.table.dbc_rows(run.gemeente, product.categorie, to_generation=run.to_generation)
    transition = min(row.cutover for row in rows)
    day = _first_date(element, holder.dbc_day_paths) or run.as_of
    if day < transition:
        run.kept.append(
            Kept(path, product, f"for {day}, before the transition {transition}: DBC era")
        )
        return None
    opened = _first_date(element, holder.dbc_opened_paths)
    if opened is None:
        run.undecided.append(
            Undecided(
                path,
                product,
                "a running DBC's product without a recorded run-off pair, and the element "
                "names no allocation start (the DBC's opening date)",
                key=key_text(key),
            )
        )
        return None
    if opened >= transition:
        run.undecided.append(
            Undecided(
                path,
                product,
                f"allocation began {opened}, on or after the transition {transition}: not a "
                "running DBC, and no product row maps it",
                key=key_text(key),
            )
        )
        return None
    if not dbc_running_at(opened, transition):
        reason = (
            f"DBC opened {opened} closed before the transition {transition} (a DBC closes "
            f"after at most {DBC_MAX_DAYS} days): no run-off; a new allocation is needed"
        )
        run.refused.append(Refusal(path, product, reason, key=key_text(key)))
        run.undecided.append(Undecided(path, product, reason, key=key_text(key)))
        return None
    matching = [r for r in rows if r.dbc_band_contains(opened) and r.valid_on(day)]
    targets = tuple(sorted({r.target for r in matching}))
    if not matching:
        run.undecided.append(
            Undecided(
                path,
                product,
                f"no run-off row for a DBC opened {opened}, for {day}",
                key=key_text(key),
            )
        )
        return None
    if len(targets) > 1 or any(r.needs_decision for r in matching):
        origins = ", ".join(r.origin for r in matching)
        run.undecided.append(
            Undecided(
                path,
                product,
                f"the message does not name the DBC key and the run-off rows differ ({origins})",
                key=key_text(key),
                candidates=targets,
            )
        )
        return None
    if key is None:
        run.undecided.append(_nowhere_to_record(path, product))
        return None
    row = matching[0]
    entry = replace(
        _entry_from_candidate(run, key, product, Candidate(row, reverse=False)),
        basis=f"{row.origin} (DBC opened {opened}, running at {transition})",
    )
    run.new_entries.setdefault(key, entry)
    return entry


def _entry_from_candidate(
    run: Run, key: LedgerKey, product: Product, candidate: Candidate
) -> LedgerEntry:
    return LedgerEntry(
        key=key,
        original=product,
        translated=candidate.result,
        original_generation=candidate.from_generation,
        translated_generation=run.to_generation,
        origin=Origin.TABLE,
        basis=candidate.row.origin,
        unit_original=candidate.unit_before if candidate.row.changes_unit else None,
        unit_translated=candidate.unit_after if candidate.row.changes_unit else None,
        volume_factor=candidate.volume_factor,
        recorded_on=run.as_of,
    )


def _first_cutover(table: MappingTable, generation: str) -> dt.date | None:
    cutovers = [s.cutover for s in table.sets if generation in (s.to_generation, s.from_generation)]
    return min(cutovers) if cutovers else None


def _apply(
    run: Run,
    holder: _Holder,
    element: Element,
    fields: tuple[Element, Element],
    *,
    product: Product,
    entry: LedgerEntry,
    path: str,
) -> None:
    key = key_text(entry.key)
    target = entry.side_for(run.to_generation)
    if target is None:
        run.undecided.append(
            Undecided(
                path,
                product,
                f"the recorded pair {entry.original} <-> {entry.translated} is "
                f"{entry.original_generation}/{entry.translated_generation}, not "
                f"{run.to_generation}",
                key=key,
            )
        )
        return
    if product != target and entry.other_side(product) != target:
        run.undecided.append(
            Undecided(
                path,
                product,
                f"does not match the recorded pair {entry.original} <-> {entry.translated}",
                key=key,
                candidates=(target,),
            )
        )
        return
    if holder.role is Role.DECLARATION and entry.changes_unit and not claims_convert(entry):
        run.undecided.append(
            Undecided(
                path,
                product,
                f"the pair changes the Eenheid ({entry.unit_original} <-> "
                f"{entry.unit_translated}) and no declared conversion says how its "
                "declaration lines convert",
                key=key,
                candidates=(target,),
            )
        )
        return
    if (
        holder.role in (Role.ALLOCATION, Role.REQUEST)
        and entry.key not in run.new_entries
        and (run.ledger.get(entry.key) is None)
    ):
        run.new_entries[entry.key] = entry
    if product == target:
        return
    if holder.flat and claims_convert(entry):
        converted = (
            convert_claim(run, element, entry, target)
            if holder.role is Role.DECLARATION
            else restore_claim(run, element, entry, product)
        )
        if not converted:
            return
    elif not _convert_omvang(run, element, entry, key):
        return
    categorie_el, code_el = fields
    basis = f"ledger {entry.key}" if run.ledger.get(entry.key) is not None else entry.basis
    run.rewrites.append(Rewrite(path, str(product), str(target), basis, key))
    categorie_el.text = target.categorie
    code_el.text = target.code


def _convert_omvang(
    run: Run, element: Element, entry: LedgerEntry, key: str | LedgerKey | None
) -> bool:
    """Bring Omvang into the target side's Eenheid; False (and undecided) when not exact."""
    if entry.conversion is not None:
        return convert_declared_omvang(run, element, entry, key_text(key))
    if not entry.changes_unit:
        return True
    omvang = find(element, "Omvang")
    if omvang is None:
        return True
    volume_el, eenheid_el = find(omvang, "Volume"), find(omvang, "Eenheid")
    if volume_el is None or eenheid_el is None:
        return True
    towards_translated = run.to_generation == entry.translated_generation
    before, after = (
        (entry.unit_original, entry.unit_translated)
        if towards_translated
        else (entry.unit_translated, entry.unit_original)
    )
    eenheid = (eenheid_el.text or "").strip()
    if eenheid == after:
        return True
    path = element_path(omvang)
    factor = entry.volume_factor
    if factor is not None and not towards_translated:
        factor = 1 / factor
    volume = whole(volume_el.text)
    converted = None if factor is None or volume is None else volume * factor
    if eenheid != before or converted is None or converted.denominator != 1:
        reason = (
            f"Omvang is in Eenheid {eenheid}, the pair maps {before} -> {after}"
            if eenheid != before
            else f"Eenheid changes {before} -> {after} and no exact volume conversion is known"
        )
        run.undecided.append(Undecided(path, None, reason, key=key_text(key)))
        return False
    run.rewrites.append(
        Rewrite(
            f"{path}/Volume",
            str(volume),
            str(converted.numerator),
            f"volume factor {factor}",
            key_text(key),
        )
    )
    run.rewrites.append(Rewrite(f"{path}/Eenheid", eenheid, str(after), entry.basis, key_text(key)))
    volume_el.text = str(converted.numerator)
    eenheid_el.text = after
    return True


def _nowhere_to_record(path: str, product: Product) -> Undecided:
    # A pair is recorded under the allocation or request it belongs to: without either key a
    # later message could not follow it, so the message waits for a decision instead.
    return Undecided(
        path, product, "no ToewijzingNummer or ReferentieAanbieder to record the pair under"
    )
