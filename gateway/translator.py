"""Product-code translation in the daemon: which messages, into which generation, and the
operator's decision for what the mapping tables cannot answer.

The pure work is :func:`gateway.core.translation.translate`; this module decides when it runs
and what happens around it (docs/translation.md, "In the daemon"):

* A message is translated when the party that transmits it and its recipient speak different
  code generations on the message's Dagtekening (``Party.generation_on``).
* X and XSD validation ran on the message as sent. The cross-message (B) and external (E)
  rules run again on the translated message, so they see the receiver's codes; the translated
  message is XSD-checked on the way (a translation must never break the schema).
* A product the tables cannot translate on their own holds the message with the reason
  "needs mapping decision"; :func:`decide_mapping` records the operator's target in the ledger
  and the audit trail, and the message is processed as intake would (B/E rules, retour,
  register, correlation) and queued, held or rejected.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from gateway.clock import Clock
from gateway.core.document import MessageDocument, date_at
from gateway.core.errors import GatewayError
from gateway.core.ledger import (
    ClaimLine,
    InMemoryLedger,
    KeyKind,
    LedgerConflict,
    LedgerEntry,
    LedgerKey,
    Origin,
    TranslationLedger,
)
from gateway.core.lifecycle import waits_for_mapping_decision
from gateway.core.lists import ContractTable, ExternalLists
from gateway.core.mapping_tables import MappingTable, Product
from gateway.core.model import Message
from gateway.core.report import Level, ValidationReport
from gateway.core.route import Party, PartyRegistry, addressing
from gateway.core.rules import REGISTRY, Rule, RuleContext, RuleLevel
from gateway.core.schemaset import SchemaSet
from gateway.core.translation import (
    NEEDS_MAPPING_DECISION,
    Rewrite,
    Translation,
    TranslationError,
    Undecided,
    running_allocation_start,
    translate,
)
from gateway.core.validate import validate
from gateway.store.base import IntakeRecord, Store, TranslationRecord

__all__ = [
    "NEEDS_MAPPING_DECISION",
    "Decided",
    "DecisionError",
    "DecisionOutcome",
    "DecisionProcessing",
    "KeyedTarget",
    "StoreLedger",
    "Translator",
    "decide_mapping",
    "generation_day",
    "hold_reason",
    "ledger_key_of",
    "waits_for_decision",
]

DECIDE_ACTION = "mapping-decision"
"""The audit action of an operator's mapping decision."""


class DecisionError(GatewayError):
    """The mapping decision cannot be applied to this message as asked."""


def waits_for_decision(msg: Message) -> bool:
    """True for a message held until an operator picks a mapping target."""
    return waits_for_mapping_decision(msg)


@dataclass(frozen=True, slots=True)
class Decided:
    """An operator's mapping decision, as the pipeline applies it to the held message.

    ``ledger`` is the store's ledger with the decided pairs on top (nothing is written until
    the message is processed); ``entries`` are the pairs to record with its translation.
    """

    ledger: TranslationLedger
    entries: tuple[LedgerEntry, ...]
    actor: str
    reason: str


def hold_reason(undecided: tuple[Undecided, ...]) -> str:
    """The state reason of a held message: what waits, without any client data."""
    first = undecided[0]
    what = f"{first.product} " if first.product is not None else ""
    more = f" (+{len(undecided) - 1} more)" if len(undecided) > 1 else ""
    return f"{NEEDS_MAPPING_DECISION}: {what}{first.reason}{more}"


class StoreLedger:
    """The translation ledger in the store, as :class:`gateway.core.ledger.TranslationLedger`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, key: LedgerKey) -> LedgerEntry | None:
        """The pair recorded for ``key``, or None."""
        return self.store.ledger_entry(key)

    def requests(self, gemeente: str, referentie: str) -> tuple[LedgerEntry, ...]:
        """Every request entry of a ReferentieAanbieder."""
        return self.store.ledger_requests(gemeente, referentie)

    def claim_lines(self, gemeente: str, aanbieder: str, declaratie: str) -> tuple[ClaimLine, ...]:
        """The converted lines of one declaration."""
        return self.store.ledger_claim_lines(gemeente, aanbieder, declaratie)

    def record(self, entry: LedgerEntry) -> None:
        """Store a pair first-wins; a different pair already recorded is a LedgerConflict."""
        self.store.record_ledger([entry], None)
        kept = self.store.ledger_entry(entry.key)
        if kept is not None and (kept.original, kept.translated) != (
            entry.original,
            entry.translated,
        ):
            raise LedgerConflict(
                f"ledger {entry.key} already maps {kept.original} <-> {kept.translated}"
            )


@dataclass
class _Overlay:
    """Pairs about to be recorded, read before the store's (a dry run writes nothing)."""

    base: StoreLedger
    pending: InMemoryLedger = field(default_factory=InMemoryLedger)

    def get(self, key: LedgerKey) -> LedgerEntry | None:
        return self.pending.get(key) or self.base.get(key)

    def requests(self, gemeente: str, referentie: str) -> tuple[LedgerEntry, ...]:
        return self.pending.requests(gemeente, referentie) + self.base.requests(
            gemeente, referentie
        )

    def claim_lines(self, gemeente: str, aanbieder: str, declaratie: str) -> tuple[ClaimLine, ...]:
        return self.base.claim_lines(gemeente, aanbieder, declaratie)

    def record(self, entry: LedgerEntry) -> None:
        self.pending.record(entry)


def _later_rules() -> tuple[Rule, ...]:
    # Looked up per call: rule modules may register after this module is imported.
    return tuple(rule for rule in REGISTRY if rule.level is not RuleLevel.IN_MESSAGE)


@dataclass(frozen=True)
class Translator:
    """The daemon's translation step, over the mapping tables loaded once at start-up, and the
    contract tariffs that price declaration lines under a declared conversion."""

    table: MappingTable
    contracts: ContractTable | None = None

    def generations(
        self,
        report: ValidationReport,
        sender: Party,
        registry: PartyRegistry,
        today: dt.date,
        ledger: TranslationLedger,
    ) -> tuple[str, str] | None:
        """(from, to) generations when the transmitter and the recipient speak different ones.

        The transmitter is the party the header names (a BVO may send on a member's behalf);
        the date is :func:`generation_day` of the message's Dagtekening.
        """
        doc = report.document
        if doc is None:
            return None
        route = addressing(report.message_type, doc.afzender, doc.ontvanger)
        recipient = registry.by_identity(route.destination)
        if recipient is None:
            return None
        transmitter = registry.by_identity(route.transmitter) or sender
        dagtekening = date_at(doc.root, "Header/BerichtIdentificatie/Dagtekening") or today
        day = generation_day(doc, dagtekening, ledger)
        spoken, wanted = transmitter.generation_on(day), recipient.generation_on(day)
        if spoken is None or wanted is None or spoken == wanted:
            return None
        return spoken, wanted

    def translate(
        self,
        raw: bytes,
        from_generation: str,
        to_generation: str,
        ledger: TranslationLedger,
    ) -> tuple[TranslationRecord, Translation | None]:
        """Translate one message; a message that cannot be read as iJw waits for a decision."""
        try:
            result = translate(
                raw,
                self.table,
                to_generation=to_generation,
                ledger=ledger,
                contracts=self.contracts,
            )
        except TranslationError as exc:
            problem = Undecided("/Bericht", None, f"cannot translate: {exc}")
            return TranslationRecord("", from_generation, to_generation, undecided=(problem,)), None
        record = TranslationRecord(
            gemeente=result.gemeente,
            from_generation=from_generation,
            to_generation=to_generation,
            translated=result.xml if result.changed and not result.needs_decision else None,
            rewrites=result.rewrites,
            undecided=result.undecided,
            entries=result.new_entries,
            refused=result.refused,
            claim_lines=result.new_claim_lines,
        )
        return record, result

    def apply(
        self,
        report: ValidationReport,
        sender: Party,
        registry: PartyRegistry,
        *,
        raw: bytes,
        today: dt.date,
        context: RuleContext,
        schemas: SchemaSet,
        ledger: TranslationLedger,
        max_bytes: int,
    ) -> tuple[ValidationReport, TranslationRecord | None]:
        """Translate a message that passed X validation and re-run the B and E rules on it.

        ``raw`` are the bytes ``report`` was made from: the translation is written from them,
        with their whitespace, not from the report's document (which may lack it).

        Returns the report the pipeline decides on (its document is the translated message,
        so the register sees the receiver's codes) and the translation to store with the
        message, or (``report``, None) when no translation applies.
        """
        doc = report.document
        if doc is None or report.level not in (Level.OK, Level.STATE, Level.EXTERNAL):
            return report, None
        pair = self.generations(report, sender, registry, today, ledger)
        if pair is None:
            return report, None
        record, _ = self.translate(raw, pair[0], pair[1], ledger)
        if record.needs_decision:
            # B/E findings on the sender's codes mean nothing to the receiver: the message
            # waits for the decision with only what X validation said (nothing).
            return _without_later_findings(report), record
        if record.translated is None:
            return report, record
        later = validate(
            record.translated,
            schemas,
            self.receiver_context(context, pair[1]),
            rules=_later_rules(),
            max_bytes=max_bytes,
        )
        if later.level in (Level.MALFORMED, Level.XSD) or later.document is None:
            broken = Undecided(
                "/Bericht",
                None,
                f"the translated message is not valid against the XSD "
                f"({', '.join(later.rule_codes[:3]) or 'unreadable'}); not delivered",
            )
            failed = TranslationRecord(
                record.gemeente,
                record.from_generation,
                record.to_generation,
                rewrites=record.rewrites,
                undecided=(broken,),
            )
            return _without_later_findings(report), failed
        return later, record

    def receiver_context(self, context: RuleContext, generation: str) -> RuleContext:
        """The rule context with the receiver's code list for TR381 (S329): the translated
        message carries the receiver's codes, which need not be on the national list."""
        spoken = self.table.generation(generation)
        lists = context.lists
        if spoken is None or not isinstance(lists, ExternalLists):
            return context
        return dataclasses.replace(
            context, lists=dataclasses.replace(lists, product_codes=spoken.codes)
        )


def generation_day(
    doc: MessageDocument, dagtekening: dt.date, ledger: TranslationLedger
) -> dt.date:
    """The day whose code generations a message speaks: its Dagtekening, or the start of an
    untranslated allocation it follows up when that is earlier (a running allocation keeps
    the codes it was made with until it ends; docs/translation.md)."""
    running = running_allocation_start(doc.root, ledger)
    return running if running is not None and running < dagtekening else dagtekening


def _without_later_findings(report: ValidationReport) -> ValidationReport:
    kept = tuple(f for f in report.findings if f.level not in (Level.STATE, Level.EXTERNAL))
    level = report.level if kept else Level.OK
    return ValidationReport(level, kept, report.message_type, report.release, report.document)


def answer_report(
    report: ValidationReport, original: ValidationReport, record: TranslationRecord | None
) -> ValidationReport:
    """The report a retour is built from: the findings on the original document.

    A retour goes back to the sender, so it must carry the sender's codes; translation only
    changes element text, so the findings' paths point at the same elements in both.
    """
    if record is None or record.translated is None or original.document is None:
        return report
    return ValidationReport(
        report.level, report.findings, report.message_type, report.release, original.document
    )


# -- the operator's decision ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DecisionOutcome:
    """What a mapping decision did (or, on a dry run, would do) to one message."""

    message: Message
    """The message as the decision left it (on a dry run: as it is, unchanged)."""
    entries: tuple[LedgerEntry, ...]
    rewrites: tuple[Rewrite, ...]
    dry_run: bool
    outcome: Message | None = None
    """The message as processing leaves (on a dry run: would leave) it: its state and why."""
    retour: Message | None = None
    """The retour built for the sender when the gateway answers for the recipient."""
    rules: tuple[str, ...] = ()
    """The rule codes the rules found on the (translated) message."""


class DecisionProcessing(Protocol):
    """What :func:`decide_mapping` needs from the service (``GatewayService.decisions``).

    Declared here so this module does not import the service, which imports this module.
    """

    @property
    def translator(self) -> Translator | None: ...
    @property
    def store(self) -> Store: ...
    @property
    def registry(self) -> PartyRegistry: ...
    @property
    def clock(self) -> Clock: ...
    def today(self) -> dt.date: ...
    async def process_decided(self, message_id: str, decided: Decided) -> Message: ...
    async def preview_decided(self, message_id: str, decided: Decided) -> IntakeRecord: ...


def parse_product(value: str) -> Product:
    """``45/IJ01P`` as a product; raises :class:`DecisionError` for anything else."""
    categorie, slash, code = value.strip().partition("/")
    if not slash or not (len(categorie) == 2 and categorie.isdigit()) or not 1 <= len(code) <= 5:
        raise DecisionError(f"target {value!r}: write CATEGORIE/CODE, e.g. 45/IJ01P")
    return Product(categorie, code)


def ledger_key_of(text: str) -> LedgerKey:
    """A ledger key from its text form (``0384/toewijzing/30001``)."""
    gemeente, kind, number = text.split("/", 2)
    return LedgerKey(gemeente, KeyKind(kind), number)


def parse_targets(targets: str | Sequence[str]) -> tuple[Product | None, dict[Product, Product]]:
    """``--target`` values as (the one target for a message waiting for one product, targets
    per waiting product): ``45/IJ01P`` or ``45/45R14=45/IJ01P`` (source=target), repeatable."""
    values = [targets] if isinstance(targets, str) else list(targets)
    if not values:
        raise DecisionError("name a target: --target CAT/CODE or --target CAT/CODE=CAT/CODE")
    single: Product | None = None
    by_source: dict[Product, Product] = {}
    for value in values:
        source, equals, target = value.partition("=")
        if not equals:
            if single is not None or len(values) > 1:
                raise DecisionError(
                    "with several targets write each as SOURCE=TARGET, e.g. 45/45R14=45/IJ01P"
                )
            single = parse_product(value)
        elif parse_product(source) in by_source:
            raise DecisionError(f"{source.strip()} is given two targets")
        else:
            by_source[parse_product(source)] = parse_product(target)
    return single, by_source


@dataclass(frozen=True, slots=True)
class KeyedTarget:
    """The target a gemeente decided for one allocation (or request), who decided and on what
    reference (a row of a decision file, :mod:`gateway.decision_files`)."""

    target: Product
    decided_by: str
    reference: str


def _decidable(
    undecided: tuple[Undecided, ...],
    ledger: StoreLedger,
    single: Product | None,
    by_source: dict[Product, Product],
    by_key: Mapping[str, KeyedTarget] | None = None,
) -> dict[str, Product]:
    """The target for each waiting ledger key; refuses what a decision cannot fix and any
    waiting product left without a target."""
    for item in undecided:
        if item.key is None or item.product is None:
            raise DecisionError(
                f"{item.path}: {item.reason}; a mapping decision needs a product with a "
                "ToewijzingNummer or ReferentieAanbieder (cancel the message and ask the sender)"
            )
        existing = ledger.get(ledger_key_of(item.key))
        if existing is not None:
            raise DecisionError(
                f"{item.key} already travels as {existing.original} <-> {existing.translated}: "
                f"{item.reason}. A decision cannot change a recorded pair or recompute amounts; "
                "cancel the message (gateway cancel ID) and ask the sender for a corrected one"
            )
    keys = {item.key: item.product for item in undecided if item.key and item.product}
    if by_key is not None:
        missing_keys = sorted(set(keys) - set(by_key))
        if missing_keys:
            raise DecisionError(f"no target for {', '.join(missing_keys)}")
        return {key: by_key[key].target for key in keys}
    products = sorted(set(keys.values()))
    if single is not None:
        if len(products) != 1:
            shown = ", ".join(map(str, products))
            raise DecisionError(
                f"the message waits for several products ({shown}): give one --target "
                "SOURCE=TARGET for each"
            )
        return dict.fromkeys(keys, single)
    unknown = sorted(set(by_source) - set(products))
    if unknown:
        raise DecisionError(
            f"{', '.join(map(str, unknown))} is not waiting in this message "
            f"(waiting: {', '.join(map(str, products))})"
        )
    missing = [p for p in products if p not in by_source]
    if missing:
        raise DecisionError(f"no target for {', '.join(map(str, missing))}")
    return {key: by_source[product] for key, product in keys.items()}


def _decided_pair(
    item: Undecided, target: Product, from_generation: str, to_generation: str
) -> LedgerEntry:
    """The pair a decision records: the table's pair for the chosen candidate (its units and
    declared conversion, with the held message's Omvang), so a unit-changing pair converts as
    the table would, or keeps its declaration lines held when no conversion is declared. A
    target outside the candidates is a plain code pair."""
    assert item.key is not None and item.product is not None
    table_pair = next((p for p in item.pairs if p.translated == target), None)
    if table_pair is not None:
        return table_pair
    return LedgerEntry(
        key=ledger_key_of(item.key),
        original=item.product,
        translated=target,
        original_generation=from_generation,
        translated_generation=to_generation,
    )


async def decide_mapping(
    service: DecisionProcessing,
    message_id: str,
    targets: str | Sequence[str],
    *,
    reason: str,
    actor: str,
    dry_run: bool = False,
    by_key: Mapping[str, KeyedTarget] | None = None,
) -> DecisionOutcome:
    """Record an operator's target for a held message and process it as intake would.

    ``by_key`` is the gemeente's decision instead (``targets`` then empty): a target per
    waiting ledger key, with who decided and on what reference; the pairs are recorded with
    origin ``gemeente`` and the audit entry names them.

    The pair goes into the ledger (origin ``operator``), so every later message about the
    allocation uses it; the decision is in the audit trail. The message is then processed with
    the decided pair (``Decisions.process_decided``): the B and E rules run when the
    recipient is answered for, the sender gets its retour, the register and correlation are
    written, and the message moves to ``queued``, ``held`` or ``rejected``. A rejected
    message records no pair. A dry run processes the same way and writes nothing.
    """
    translator = service.translator
    if translator is None:
        raise DecisionError("no party declares a code generation: nothing is translated")
    msg = await asyncio.to_thread(service.store.get, message_id)
    if msg is None:
        raise DecisionError(f"no message {message_id}")
    if not waits_for_decision(msg):
        raise DecisionError(
            f"message {message_id} is {msg.state.value} ({msg.reason or 'no reason'}); only "
            f"messages held with '{NEEDS_MAPPING_DECISION}' take a mapping decision"
        )
    raw = await asyncio.to_thread(service.store.payload, message_id)
    stored = await asyncio.to_thread(service.store.translation_of, message_id)
    recipient = service.registry.get(msg.recipient or "")
    if raw is None or stored is None or recipient is None:
        raise DecisionError(f"message {message_id} has no stored content or translation")
    single, by_source = (None, {}) if by_key is not None else parse_targets(targets)
    to_generation = stored.to_generation
    chosen_targets = (
        [t.target for t in by_key.values()]
        if by_key is not None
        else [single]
        if single is not None
        else list(by_source.values())
    )
    for target in chosen_targets:
        if not translator.table.speaks(to_generation, target):
            raise DecisionError(
                f"{target} is not a {to_generation} code (see gateway mappings explain)"
            )
    ledger = _Overlay(StoreLedger(service.store))
    record, _ = await asyncio.to_thread(
        translator.translate, raw, stored.from_generation, to_generation, ledger
    )
    decided: list[LedgerEntry] = []
    if record.needs_decision:
        chosen = await asyncio.to_thread(
            _decidable, record.undecided, ledger.base, single, by_source, by_key
        )
        today = service.today()
        for item in record.undecided:
            assert item.key is not None and item.product is not None
            gemeente = by_key[item.key] if by_key is not None else None
            entry = dataclasses.replace(
                _decided_pair(item, chosen[item.key], stored.from_generation, to_generation),
                origin=Origin.OPERATOR if gemeente is None else Origin.GEMEENTE,
                basis=f"{'operator' if gemeente is None else 'gemeente'} decision: {reason}",
                recorded_on=today,
                decided_by=actor if gemeente is None else gemeente.decided_by,
                reference=None if gemeente is None else gemeente.reference,
            )
            ledger.record(entry)
            decided.append(entry)
        record, _ = await asyncio.to_thread(
            translator.translate, raw, stored.from_generation, to_generation, ledger
        )
        if record.needs_decision:
            raise DecisionError(
                "still undecided after the decision: " + hold_reason(record.undecided)
            )
    entries = tuple(decided) + tuple(e for e in record.entries if ledger.pending.get(e.key) is None)
    applied = Decided(ledger, tuple(decided), actor, reason)
    try:
        if dry_run:
            return await _preview(service, message_id, applied, entries, record.rewrites)
        return await _apply(service, message_id, applied, entries, record.rewrites)
    except DecisionError:
        raise
    except GatewayError as exc:  # moved or purged meanwhile
        raise DecisionError(str(exc)) from exc


async def _preview(
    service: DecisionProcessing,
    message_id: str,
    applied: Decided,
    entries: tuple[LedgerEntry, ...],
    rewrites: tuple[Rewrite, ...],
) -> DecisionOutcome:
    msg = await asyncio.to_thread(service.store.get, message_id)
    preview = await service.preview_decided(message_id, applied)
    return DecisionOutcome(
        msg or preview.message,
        entries,
        rewrites,
        dry_run=True,
        outcome=preview.message,
        retour=preview.retour.message if preview.retour is not None else None,
        rules=_rule_codes(preview.findings),
    )


async def _apply(
    service: DecisionProcessing,
    message_id: str,
    applied: Decided,
    entries: tuple[LedgerEntry, ...],
    rewrites: tuple[Rewrite, ...],
) -> DecisionOutcome:
    moved = await service.process_decided(message_id, applied)
    summary = ", ".join(
        f"{e.key}: {e.original} -> {e.translated}"
        + (f" (decided by {e.decided_by}, reference {e.reference})" if e.reference else "")
        for e in applied.entries
    )
    await asyncio.to_thread(
        service.store.record_audit,
        service.clock.now(),
        applied.actor,
        DECIDE_ACTION,
        message_id,
        f"{summary or 'translated with the ledger'}; {applied.reason}",
    )
    related = await asyncio.to_thread(service.store.related, message_id)
    retour = next((r.message for r in related if r.relation == "retour"), None)
    findings = await asyncio.to_thread(service.store.findings, message_id)
    return DecisionOutcome(
        moved,
        entries,
        rewrites,
        dry_run=False,
        outcome=moved,
        retour=retour,
        rules=_rule_codes(findings),
    )


def _rule_codes(findings: Iterable[Mapping[str, object]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(f.get("rule")) for f in findings if f.get("rule")))
