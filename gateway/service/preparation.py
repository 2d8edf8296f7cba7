"""Preparing a message: validate, translate, decide and answer it, before anything is written.

Intake prepares a message before its first commit and then stores everything at once: it
validates (in a worker thread, so large files do not stall the event loop), decides with the
pure :mod:`gateway.core.pipeline`, builds the retour when the gateway answers for the
recipient, and makes the ``received`` -> ``queued``/``held``/``rejected`` move with
``core.lifecycle.advance``. The result is one :class:`IntakeRecord`; the use cases write it
(:mod:`gateway.service.intake` in one transaction, :mod:`gateway.service.reprocessing` piece
by piece for a message stored already).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.clock import FixedClock
from gateway.core.catalogue import MESSAGE_KINDS, Role
from gateway.core.correlate import Correlation, correlation_of
from gateway.core.document import MessageDocument
from gateway.core.dossier import RegisterUpdate
from gateway.core.errors import GatewayError
from gateway.core.held_answers import answered_reason, refusal_verdict
from gateway.core.ledger import ClaimLine, LedgerEntry, LedgerKey, TranslationLedger
from gateway.core.lifecycle import advance
from gateway.core.model import Direction, Message, State
from gateway.core.pipeline import (
    Decision,
    decide,
    needs_dossier,
    placement,
    register_update,
    with_dossier_findings,
)
from gateway.core.release_conversion import convert as convert_release
from gateway.core.report import ValidationReport
from gateway.core.retour import RetourError, RetourIdentity, build_retour_for_report
from gateway.core.route import Party, PartyRole
from gateway.core.rules import RuleContext
from gateway.core.rules.provider import warnings_only
from gateway.core.validate import validate
from gateway.logs import get_logger
from gateway.service.shared import SharedState
from gateway.service.sniffing import sniff_bsns, sniff_header
from gateway.store.base import IntakeRecord, TranslationRecord
from gateway.translator import (
    NEEDS_MAPPING_DECISION,
    Decided,
    StoreLedger,
    answer_report,
    generation_day,
    hold_reason,
)

log = get_logger("gateway.service")


@dataclass(frozen=True, slots=True)
class PrepareJob:
    """One message for a prepare worker process, with the parent's moment and operator holds."""

    received: Message
    raw: bytes
    sender: str
    actor: str
    now: dt.datetime
    holds: dict[str, str]


class MessageLedger:
    """The store's translation ledger as one message's translation reads it: a question asked
    again is answered from memory (translation asks for a product's pair up to three times, and
    each answer from the store is a query).

    Serves one message's check only, under that message's client locks, like the dossier
    history; a pair recorded through it is forgotten, so the next read asks the store again.
    """

    def __init__(self, ledger: TranslationLedger) -> None:
        self._ledger = ledger
        self._entries: dict[LedgerKey, LedgerEntry | None] = {}
        self._requests: dict[tuple[str, str], tuple[LedgerEntry, ...]] = {}

    def get(self, key: LedgerKey) -> LedgerEntry | None:
        """The pair recorded for ``key``, or None."""
        if key in self._entries:
            return self._entries[key]
        found = self._entries[key] = self._ledger.get(key)
        return found

    def requests(self, gemeente: str, referentie: str) -> tuple[LedgerEntry, ...]:
        """Every request entry of a ReferentieAanbieder."""
        asked = (gemeente, referentie)
        found = self._requests.get(asked)
        if found is None:
            found = self._requests[asked] = self._ledger.requests(gemeente, referentie)
        return found

    def claim_lines(self, gemeente: str, aanbieder: str, declaratie: str) -> tuple[ClaimLine, ...]:
        """The converted lines of one declaration (asked once per JW325)."""
        return self._ledger.claim_lines(gemeente, aanbieder, declaratie)

    def record(self, entry: LedgerEntry) -> None:
        """Store a pair in the underlying ledger (see :class:`TranslationLedger`)."""
        self._entries.pop(entry.key, None)
        self._requests.clear()
        self._ledger.record(entry)


class HeldAnswerError(GatewayError):
    """The gateway cannot answer this held original itself."""


def retour_identificatie(original_id: str) -> str:
    """A stable 12-character IdentificatieRetour, so re-processing builds the same retour."""
    return hashlib.sha256(original_id.encode()).hexdigest()[:12].upper()


class Preparation:
    """Prepares messages with the shared schemas, parties, translator, lists and holds."""

    def __init__(self, shared: SharedState) -> None:
        self.shared = shared
        self._ledger = StoreLedger(shared.store)

    def prepare_as_of(self, job: PrepareJob, sender: Party) -> IntakeRecord:
        """:meth:`prepare` in a prepare worker process: as of the parent's moment and with
        the parent's operator holds, both carried by ``job``, so it decides as the parent
        would have."""
        self.shared.clock = FixedClock(job.now)
        self.shared.operator_holds = job.holds  # the job's own copy, unpickled in this process
        return self.prepare(job.received, job.raw, sender, job.actor)

    def prepare(
        self,
        received: Message,
        raw: bytes,
        sender: Party,
        actor: str,
        replay_of: str | None = None,
        *,
        decided: Decided | None = None,
    ) -> IntakeRecord:
        """Validate, decide and answer a message not stored yet (in a worker thread).

        Also a stored message again: one left ``received`` (housekeeping), or one held for a
        mapping decision once the operator ``decided`` (translated with the decided pairs, the
        move made by the operator). Runs in one thread hop from start to end: the parts are
        synchronous and pure but for the clock and the register reads, and the operator holds
        are only read.
        """
        today = self.shared.today()
        context = RuleContext(today=today)
        report = validate(
            raw, self.shared.schemas, context, max_bytes=self.shared.max_message_bytes
        )
        original = report
        ledger = decided.ledger if decided is not None else MessageLedger(self._ledger)
        report, translation = self._translate(report, sender, today, context, ledger, raw=raw)
        decision = decide(report, sender, self.shared.registry, today, self.shared.operator_holds)
        refusal = self._refusal(report, decision, translation)
        if refusal is not None:
            # Answered now instead of held: never translatable, or its pair's policy.
            report, decision = refusal
            translation = dataclasses.replace(translation, entries=()) if translation else None
        else:
            # A message waiting for a mapping decision is held here, before the dossier rules:
            # they would read the sender's codes.
            decision, translation = _with_translation(decision, translation)
        if refusal is None and needs_dossier(report, decision):
            # After translation: the B and E rules read the recipient's (gemeente's) codes.
            rules_context = self._rule_context(today, raw, replay_of, received.id, report.document)
            context = self._for_recipient(rules_context, decision, report.document, ledger)
            report = with_dossier_findings(report, context)
            decision = decide(
                report, sender, self.shared.registry, today, self.shared.operator_holds
            )
            decision, translation = _with_translation(decision, translation)
        if warnings_only(report) and not decision.rejected:
            # Delivered all the same; the rule codes only (a finding never names a BSN).
            log.warning(
                "delivered_with_provider_findings",
                message_id=received.id,
                party=sender.id,
                message_type=report.message_type,
                rules=sorted(set(report.rule_codes)),
            )
        decision, translation = self._in_recipient_release(
            report, raw, sender, decision, translation, today=today
        )
        reason, mover = decision.reason, "pipeline"
        if decided is not None:
            reason, mover = f"mapping decided ({decided.reason}): {reason}", decided.actor
            goes_on = not decision.rejected and not _waits_for_mapping(decision)
            if translation is not None and goes_on:
                # Like its own pairs (_with_translation), the decided ones are recorded only
                # for a message that goes on.
                known = {entry.key for entry in decided.entries}
                own = tuple(e for e in translation.entries if e.key not in known)
                translation = dataclasses.replace(translation, entries=decided.entries + own)
        return self._record(
            received,
            raw,
            sender,
            actor=actor,
            reports=(report, original),
            decision=decision,
            translation=translation,
            today=today,
            reason=reason,
            mover=mover,
        )

    def prepare_answer(
        self,
        held: Message,
        raw: bytes,
        sender: Party,
        unaccepted: Sequence[tuple[str, str]],
        *,
        actor: str,
        why: str,
    ) -> IntakeRecord:
        """Answer an original held for a mapping decision on its recipient's behalf, without
        the decision: the S329 retour on each product in ``unaccepted`` (path, reason), and
        the move to ``rejected`` (:mod:`gateway.core.held_answers`). Raises
        :class:`HeldAnswerError` when the BVO does not answer for its recipient or the
        original cannot be read any more."""
        recipient = self.shared.registry.get(held.recipient or "")
        if recipient is None or recipient.answered_by is None:
            raise HeldAnswerError(
                f"message {held.id}: the BVO does not answer for {held.recipient}; its "
                "recipient owes the retour"
            )
        today = self.shared.today()
        report = validate(
            raw,
            self.shared.schemas,
            RuleContext(today=today),
            max_bytes=self.shared.max_message_bytes,
        )
        if report.document is None:
            raise HeldAnswerError(f"message {held.id} cannot be read as iJw any more")
        reason = answered_reason(recipient.id, why)
        refused, decision = refusal_verdict(report, unaccepted, recipient, reason)
        return self._record(
            held,
            raw,
            sender,
            actor=actor,
            reports=(refused, report),
            decision=decision,
            translation=None,
            today=today,
            reason=reason,
            mover=actor,
        )

    def _refusal(
        self,
        report: ValidationReport,
        decision: Decision,
        translation: TranslationRecord | None,
    ) -> tuple[ValidationReport, Decision] | None:
        """The refusal of an original the gateway answers for at once instead of holding it:
        a product no decision can fix (``refused``), or any, when the generation pair's
        policy is to answer at once. None: hold it for a decision as usual."""
        recipient = decision.answer_for
        if translation is None or not translation.needs_decision or recipient is None:
            return None
        if decision.rejected:
            return None
        if translation.refused:
            unaccepted = [(r.path, r.reason) for r in translation.refused]
            why = f"refused: {translation.refused[0].reason}"
        elif self.shared.decision_policies.answers_at_once(
            translation.from_generation, translation.to_generation
        ):
            unaccepted = [(u.path, u.reason) for u in translation.undecided]
            why = (
                f"the policy for {translation.from_generation} -> "
                f"{translation.to_generation} answers at once"
            )
        else:
            return None
        return refusal_verdict(report, unaccepted, recipient, answered_reason(recipient.id, why))

    def _record(
        self,
        received: Message,
        raw: bytes,
        sender: Party,
        *,
        actor: str,
        reports: tuple[ValidationReport, ValidationReport],
        decision: Decision,
        translation: TranslationRecord | None,
        today: dt.date,
        reason: str,
        mover: str,
    ) -> IntakeRecord:
        """The record of a decided message: its retour when answered for, its move, findings,
        correlation, register entries and translation. ``reports`` are the report decided on
        and the one of the message as sent."""
        report, original = reports
        retour = None
        if decision.answer_for is not None:
            answered = answer_report(report, original, translation)
            retour = self._retour_record(received, answered, decision, sender, today)
        changes: dict[str, object] = {}
        if report.message_type:
            changes["message_type"] = report.message_type
        if decision.recipient is not None:
            changes["recipient"] = decision.recipient.id
        moved, event = advance(
            received, decision.state, reason, mover, self.shared.clock.now(), **changes
        )
        findings = tuple(f.as_dict() for f in report.findings)
        # A message held for a mapping decision registers nothing yet: its entries would carry
        # the sender's codes and go unjudged; they are written once the operator decides.
        register = (
            None if _waits_for_mapping(decision) else _register_update(report, original, decision)
        )
        return IntakeRecord(
            moved,
            raw,
            actor,
            (event,),
            findings,
            retour,
            _correlation(report, decision),
            translation,
            register,
        )

    def _rule_context(
        self,
        today: dt.date,
        raw: bytes,
        replay_of: str | None,
        own_id: str | None = None,
        document: MessageDocument | None = None,
    ) -> RuleContext:
        """What the rules may consult: today, the dossier register, the external lists.

        The register is read for this message's clients without the message's own entries (a
        message processed again after a crash or a mapping decision); a replay does not see its
        original's entries either, so it does not collide with itself (TR056, TR314, TR332...).
        """
        history = None
        if self.shared.history is not None:
            excluded = tuple(i for i in (replay_of, own_id) if i is not None)
            history = self.shared.history(sniff_bsns(raw), excluded, document)
        return RuleContext(today=today, history=history, lists=self.shared.lists)

    def _for_recipient(
        self,
        context: RuleContext,
        decision: Decision,
        document: MessageDocument | None,
        ledger: TranslationLedger,
    ) -> RuleContext:
        """TR381 (S329) checks the code list of the recipient's generation when it declares
        one: after translation the message carries the recipient's codes, which need not be
        on the national list. The generation is the one translation chose: spoken on the
        message's Dagtekening (a message of 2017 read in 2026 speaks 2017's codes), or on the
        start of a running allocation it follows up (``generation_day``)."""
        recipient = decision.recipient
        if self.shared.translator is None or recipient is None:
            return context
        day = (document.dagtekening if document is not None else None) or context.today
        day = day or self.shared.today()
        if document is not None:
            day = generation_day(document, day, ledger)
        generation = recipient.generation_on(day)
        if generation is None:
            return context
        return self.shared.translator.receiver_context(context, generation)

    def _in_recipient_release(
        self,
        report: ValidationReport,
        raw: bytes,
        sender: Party,
        decision: Decision,
        translation: TranslationRecord | None,
        *,
        today: dt.date,
    ) -> tuple[Decision, TranslationRecord | None]:
        """The message in the iJw release its recipient speaks on its Dagtekening: converted
        (the bytes to deliver), or held with the reason a conversion would lose or invent
        data. A message waiting for a mapping decision is converted once it is decided."""
        recipient, doc = decision.recipient, report.document
        if recipient is None or doc is None or decision.rejected or _waits_for_mapping(decision):
            return decision, translation
        target = recipient.release_on(doc.dagtekening or today)
        if target is None or target == doc.release:
            return decision, translation
        payload = translation.translated if translation and translation.translated else raw
        converted = convert_release(
            payload,
            doc.release,
            target,
            self.shared.schemas,
            max_bytes=self.shared.max_message_bytes,
        )
        if converted.xml is None:
            assert converted.hold is not None
            held = dataclasses.replace(decision, state=State.HELD, reason=converted.hold)
            return held, translation
        if translation is None:
            # Converted without a code translation: the row carries the bytes to deliver.
            gemeente = recipient if recipient.role is PartyRole.GEMEENTE else sender
            translation = TranslationRecord(gemeente.identity or "", "", "")
        return decision, dataclasses.replace(translation, translated=converted.xml)

    def _translate(
        self,
        report: ValidationReport,
        sender: Party,
        today: dt.date,
        context: RuleContext,
        ledger: TranslationLedger,
        *,
        raw: bytes,
    ) -> tuple[ValidationReport, TranslationRecord | None]:
        """Rewrite product codes into the recipient's generation, before the B and E rules."""
        if self.shared.translator is None:
            return report, None
        return self.shared.translator.apply(
            report,
            sender,
            self.shared.registry,
            raw=raw,
            today=today,
            context=context,
            schemas=self.shared.schemas,
            ledger=ledger,
            max_bytes=self.shared.max_message_bytes,
        )

    def _retour_record(
        self,
        msg: Message,
        report: ValidationReport,
        decision: Decision,
        sender: Party,
        today: dt.date,
    ) -> IntakeRecord | None:
        """The retour the gateway sends back on the recipient's behalf, placed for the sender."""
        answering = decision.answer_for
        assert answering is not None
        identity = RetourIdentity(identificatie=retour_identificatie(msg.id), dagtekening=today)
        try:
            retour = build_retour_for_report(report, identity, self.shared.schemas)
        except RetourError as exc:
            log.error("retour_failed", message_id=msg.id, party=sender.id, error=str(exc))
            return None
        now = self.shared.clock.now()
        message_type, _ = sniff_header(retour)
        made = Message(
            id=self.shared.store.new_message_id(now),
            state=State.RECEIVED,
            sender=answering.id,
            recipient=sender.id,
            message_type=message_type,
            bericht_id=identity.identificatie,
            content_hash=hashlib.sha256(retour).hexdigest(),
            size=len(retour),
            received_at=now,
            updated_at=now,
            direction=Direction.GENERATED,
            in_reply_to=msg.id,
        )
        state, reason = placement(sender, today, self.shared.operator_holds)
        placed, event = advance(
            made,
            state,
            f"retour {reason}" if state is State.QUEUED else reason,
            "pipeline",
            now,
            recipient=sender.id,
        )
        actor = f"gateway for {answering.id} by {answering.answered_by}"
        return IntakeRecord(placed, retour, actor, (event,))


def _with_translation(
    decision: Decision, translation: TranslationRecord | None
) -> tuple[Decision, TranslationRecord | None]:
    """Hold an accepted message that waits for a mapping decision; a message that does not
    go on records no ledger pairs."""
    if translation is None:
        return decision, None
    if decision.rejected:
        return decision, dataclasses.replace(translation, entries=())
    if translation.needs_decision:
        held = Decision(
            State.HELD, hold_reason(translation.undecided), recipient=decision.recipient
        )
        return held, dataclasses.replace(translation, entries=())
    return decision, translation


def _waits_for_mapping(decision: Decision) -> bool:
    return decision.state is State.HELD and decision.reason.startswith(NEEDS_MAPPING_DECISION)


def _register_update(
    report: ValidationReport, original: ValidationReport, decision: Decision
) -> RegisterUpdate | None:
    """The register entries of a decided message, in the gemeente's code generation.

    A message to a gemeente was translated into its codes (``report``); a message from a
    gemeente is read as the gemeente wrote it (``original``).
    """
    kind = MESSAGE_KINDS.get(report.message_type or "")
    from_gemeente = kind is not None and kind.sender is Role.GEMEENTE and not kind.is_retour
    chosen = original if from_gemeente and original.document is not None else report
    return register_update(chosen, decision)


def _correlation(report: ValidationReport, decision: Decision) -> Correlation | None:
    """The exchange an accepted message opens or answers; a rejected one takes part in none."""
    if decision.rejected or report.document is None:
        return None
    return correlation_of(report.document)
