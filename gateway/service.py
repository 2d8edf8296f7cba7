"""The gateway's use cases, shared by the HTTP server, the inbox watcher, delivery and the CLI.

Intake stores the raw bytes first and only then looks at them: once :meth:`submit` returns,
the message survives a crash. Processing validates (in a thread, so large files do not stall
the event loop), decides with the pure :mod:`gateway.core.pipeline`, builds retours when the
gateway answers for the recipient, and moves the message through ``core.lifecycle.advance``
and ``Store.apply_transition``. Nothing else changes a message's state.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from gateway.clock import Clock
from gateway.core.catalogue import MESSAGE_KINDS
from gateway.core.errors import GatewayError, IllegalTransition
from gateway.core.lifecycle import advance
from gateway.core.model import Direction, Event, Message, State
from gateway.core.pipeline import OPERATOR_HOLD, Decision, decide, placement
from gateway.core.report import ValidationReport
from gateway.core.retour import RetourError, RetourIdentity, build_retour_for_report
from gateway.core.route import Channel, Party, PartyRegistry
from gateway.core.rules import RuleContext
from gateway.core.schemaset import SchemaSet
from gateway.core.validate import validate
from gateway.logs import get_logger
from gateway.metrics import Metrics
from gateway.store.base import MessageQuery, NewMessage, Store

log = get_logger("gateway.service")

T = TypeVar("T")

_BERICHTCODE = re.compile(rb"<(?:[\w.-]+:)?BerichtCode>\s*(\d{3})\s*<")
_IDENTIFICATIE = re.compile(
    rb"<(?:[\w.-]+:)?BerichtIdentificatie>\s*<(?:[\w.-]+:)?Identificatie>\s*([^<\s]{1,40})\s*<"
)
_TYPE_BY_CODE = {kind.berichtcode: kind.name for kind in MESSAGE_KINDS.values()}
_SNIFF_BYTES = 4096
_PAGE = 500


class IntakeClosedError(GatewayError):
    """The gateway is shutting down and accepts no new messages."""


class MessageTooLargeError(GatewayError):
    """The message is larger than the configured limit."""


class NotFoundError(GatewayError):
    """No such message, or not one the asking party may see."""


class OperatorRefusedError(GatewayError):
    """The operator action does not apply to the message in its current state."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """The answer to a submission: the stored message and whether this call created it."""

    message: Message
    created: bool


@dataclass(frozen=True, slots=True)
class MessageView:
    """What a party (or operator) may see of a message."""

    message: Message
    history: list[Event]
    findings: list[dict[str, Any]]


def sniff_header(raw: bytes) -> tuple[str | None, str | None]:
    """Message type and BerichtIdentificatie from the first bytes, without parsing.

    Only for the intake record (listings, idempotency); validation reads the real header.
    """
    head = raw[:_SNIFF_BYTES]
    code = _BERICHTCODE.search(head)
    ident = _IDENTIFICATIE.search(head)
    message_type = _TYPE_BY_CODE.get(code.group(1).decode()) if code else None
    bericht_id = ident.group(1).decode("utf-8", "replace") if ident else None
    return message_type, bericht_id


def retour_identificatie(original_id: str) -> str:
    """A stable 12-character IdentificatieRetour, so re-processing builds the same retour."""
    return hashlib.sha256(original_id.encode()).hexdigest()[:12].upper()


class GatewayService:
    """Receive, process, show and operate on messages."""

    def __init__(
        self,
        *,
        store: Store,
        registry: PartyRegistry,
        schemas: SchemaSet,
        clock: Clock,
        max_message_bytes: int,
        lease: dt.timedelta = dt.timedelta(seconds=120),
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.schemas = schemas
        self.clock = clock
        self.max_message_bytes = max_message_bytes
        self.lease = lease
        self.metrics = metrics or Metrics()
        self.accepting = True
        self._holds: dict[str, str] = {}
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    # -- plumbing ---------------------------------------------------------------------------

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a synchronous store call in a worker thread."""
        return await asyncio.to_thread(fn, *args)

    async def move(
        self, msg: Message, to: State, reason: str, actor: str, **changes: object
    ) -> Message:
        """Move a message through the lifecycle and record it (compare-and-set in the store)."""
        moved, event = advance(msg, to, reason, actor, self.clock.now(), **changes)
        await self._db(self.store.apply_transition, moved, event, msg.state)
        log.info(
            "message_moved",
            message_id=msg.id,
            party=moved.recipient or moved.sender,
            from_state=msg.state.value,
            state=to.value,
            reason=reason,
            actor=actor,
        )
        return moved

    def today(self) -> dt.date:
        """The gateway's date (UTC) for readiness and rule checks."""
        return self.clock.now().date()

    @property
    def holds(self) -> dict[str, str]:
        """Parties on operator hold, as last read from the store."""
        return dict(self._holds)

    async def refresh_holds(self) -> dict[str, str]:
        """Re-read operator holds (another process, e.g. the CLI, may have changed them)."""
        self._holds = await self._db(self.store.party_holds)
        return self.holds

    async def healthy(self) -> bool:
        """True when the store answers (any driver error counts as unhealthy)."""
        try:
            return await self._db(self.store.healthy)
        except Exception:
            return False

    async def render_metrics(self) -> str:
        """Prometheus text: counters plus queue figures read from the store now."""
        counts = await self._db(self.store.counts_by_party)
        oldest = await self._db(self.store.oldest_waiting)
        return self.metrics.render(counts, oldest, self.clock.now())

    def stop_intake(self) -> None:
        """Refuse new submissions from now on (shutdown)."""
        self.accepting = False

    async def drain(self) -> None:
        """Wait until every submission already accepted has been stored and processed."""
        await self._idle.wait()

    # -- intake -----------------------------------------------------------------------------

    async def submit(self, party: Party, raw: bytes, actor: str) -> Receipt:
        """Store ``raw`` durably as sent by ``party``, then process it once.

        Raises ``IntakeClosedError``, ``MessageTooLargeError`` or ``StoreError`` (then nothing
        was stored). Re-submitting the same bytes returns the stored message without
        processing it again.
        """
        if not self.accepting:
            raise IntakeClosedError()
        if len(raw) > self.max_message_bytes:
            raise MessageTooLargeError(
                f"message is {len(raw)} bytes; the limit is {self.max_message_bytes}"
            )
        self._in_flight += 1
        self._idle.clear()
        try:
            return await self._submit(party, raw, actor)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def _submit(self, party: Party, raw: bytes, actor: str) -> Receipt:
        message_type, bericht_id = sniff_header(raw)
        new = NewMessage(
            sender=party.id,
            raw=raw,
            content_hash=hashlib.sha256(raw).hexdigest(),
            bericht_id=bericht_id,
            message_type=message_type,
            received_at=self.clock.now(),
            actor=actor,
        )
        saved = await self._db(self.store.save_received, new)
        self.metrics.inc("received", party.id)
        if not saved.created:
            log.info(
                "message_resubmitted",
                message_id=saved.message.id,
                party=party.id,
                state=saved.message.state.value,
            )
            return Receipt(saved.message, created=False)
        log.info(
            "message_received",
            message_id=saved.message.id,
            party=party.id,
            size=len(raw),
            message_type=message_type,
            actor=actor,
        )
        try:
            processed = await self.process(saved.message, raw, party)
        except Exception:
            # The message is stored; housekeeping processes it again later. The sender's
            # acknowledgement stands because nothing acknowledged may be lost.
            log.exception("processing_failed", message_id=saved.message.id, party=party.id)
            return Receipt(saved.message, created=True)
        return Receipt(processed, created=True)

    async def process(self, msg: Message, raw: bytes, sender: Party) -> Message:
        """Validate, decide, answer and move one ``received`` message."""
        today = self.today()
        report: ValidationReport = await asyncio.to_thread(
            validate,
            raw,
            self.schemas,
            RuleContext(today=today),
            max_bytes=self.max_message_bytes,
        )
        if report.findings:
            await self._db(
                self.store.record_findings, msg.id, [f.as_dict() for f in report.findings]
            )
        decision = decide(report, sender, self.registry, today, self._holds)
        if decision.answer_for is not None:
            await self._answer(msg, report, decision, sender, today)
        changes: dict[str, object] = {}
        if report.message_type:
            changes["message_type"] = report.message_type
        if not decision.rejected and decision.recipient is not None:
            changes["recipient"] = decision.recipient.id
        moved = await self.move(msg, decision.state, decision.reason, "pipeline", **changes)
        if decision.rejected:
            self.metrics.inc("rejected", sender.id)
        return moved

    async def _answer(
        self,
        msg: Message,
        report: ValidationReport,
        decision: Decision,
        sender: Party,
        today: dt.date,
    ) -> None:
        """Build the retour on the recipient's behalf and queue it back to the sender."""
        answering = decision.answer_for
        assert answering is not None
        identity = RetourIdentity(identificatie=retour_identificatie(msg.id), dagtekening=today)
        try:
            retour = await asyncio.to_thread(
                build_retour_for_report, report, identity, self.schemas
            )
        except RetourError as exc:
            log.error("retour_failed", message_id=msg.id, party=sender.id, error=str(exc))
            return
        message_type, _ = sniff_header(retour)
        saved = await self._db(
            self.store.save_received,
            NewMessage(
                sender=answering.id,
                raw=retour,
                content_hash=hashlib.sha256(retour).hexdigest(),
                bericht_id=identity.identificatie,
                message_type=message_type,
                received_at=self.clock.now(),
                actor=f"gateway for {answering.id} by {answering.answered_by}",
                direction=Direction.GENERATED.value,
                in_reply_to=msg.id,
                recipient=sender.id,
            ),
        )
        if saved.message.state is State.RECEIVED:
            await self._place(saved.message, sender, "retour")

    async def _place(self, msg: Message, recipient: Party, what: str) -> Message:
        state, reason = placement(recipient, self.today(), self._holds)
        return await self.move(
            msg,
            state,
            f"{what} {reason}" if state is State.QUEUED else reason,
            "pipeline",
            recipient=recipient.id,
        )

    async def process_stuck(self, older_than: dt.timedelta = dt.timedelta(minutes=1)) -> int:
        """Process messages left in ``received`` by a crash or a failed processing step."""
        cutoff = self.clock.now() - older_than
        stuck = await self._db(self.store.query, MessageQuery(state=State.RECEIVED, limit=_PAGE))
        done = 0
        for msg in stuck:
            if msg.received_at > cutoff:
                continue
            try:
                await self._process_again(msg)
                done += 1
            except IllegalTransition:
                continue  # another worker got there first
            except Exception:
                log.exception("reprocessing_failed", message_id=msg.id, party=msg.sender)
        return done

    async def _process_again(self, msg: Message) -> None:
        if msg.direction is Direction.GENERATED:
            recipient = self.registry.get(msg.recipient or "")
            if recipient is None:
                await self.move(msg, State.REJECTED, "recipient no longer configured", "pipeline")
            else:
                await self._place(msg, recipient, "retour")
            return
        sender = self.registry.get(msg.sender)
        raw = await self._db(self.store.payload, msg.id)
        if sender is None or raw is None:
            await self.move(
                msg, State.REJECTED, "sender no longer configured or payload gone", "pipeline"
            )
            return
        await self.process(msg, raw, sender)

    # -- what parties may see ---------------------------------------------------------------

    async def view(self, party: Party | None, message_id: str) -> MessageView:
        """A message with its history; ``party=None`` is the operator, who sees everything.

        A party sees only messages it sent or that are addressed to it; anything else is
        ``NotFoundError``, so ids of other parties' traffic reveal nothing.
        """
        msg = await self._db(self.store.get, message_id)
        if msg is None or (party is not None and party.id not in (msg.sender, msg.recipient)):
            raise NotFoundError(f"no message {message_id}")
        history = await self._db(self.store.history, message_id)
        findings = await self._db(self.store.findings, message_id)
        if party is not None and party.id != msg.sender:
            findings = []  # a recipient has no business with the sender's validation findings
        return MessageView(msg, history, findings)

    def _check_mailbox(self, party: Party) -> None:
        if party.channel is not Channel.MAILBOX:
            raise OperatorRefusedError(
                f"party {party.id} receives by {party.channel.value}, not by mailbox"
            )

    async def mailbox(self, party: Party, after: str | None, limit: int) -> list[Message]:
        """Messages waiting for ``party`` to fetch, oldest first, after the cursor."""
        self._check_mailbox(party)
        return await self._db(
            self.store.query,
            MessageQuery(recipient=party.id, state=State.QUEUED, after_id=after, limit=limit),
        )

    async def _mailbox_message(self, party: Party, message_id: str) -> Message:
        self._check_mailbox(party)
        msg = await self._db(self.store.get, message_id)
        visible = (State.QUEUED, State.SENDING, State.DELIVERED)
        if msg is None or msg.recipient != party.id or msg.state not in visible:
            raise NotFoundError(f"no message {message_id} in the mailbox of {party.id}")
        return msg

    async def mailbox_payload(self, party: Party, message_id: str) -> bytes:
        """The XML of a message in ``party``'s mailbox."""
        await self._mailbox_message(party, message_id)
        raw = await self._db(self.store.payload, message_id)
        if raw is None:
            raise NotFoundError(f"the content of message {message_id} has been purged")
        return raw

    async def ack(self, party: Party, message_id: str) -> Message:
        """``party`` confirms it has the message: it becomes ``delivered`` (idempotent)."""
        msg = await self._mailbox_message(party, message_id)
        actor = f"party:{party.id}"
        try:
            if msg.state is State.QUEUED:
                msg = await self.move(
                    msg,
                    State.SENDING,
                    "fetched from mailbox",
                    actor,
                    lease_until=self.clock.now() + self.lease,
                )
            if msg.state is State.SENDING:
                msg = await self.move(msg, State.DELIVERED, "acknowledged by recipient", actor)
                self.metrics.inc("delivered", party.id)
        except IllegalTransition:
            # A concurrent ack won; report the state it left.
            current = await self._db(self.store.get, message_id)
            assert current is not None
            return current
        return msg

    # -- operator actions ---------------------------------------------------------------------

    async def retry(self, message_id: str, actor: str) -> Message:
        """Send a ``dead`` message again, or release a ``held`` one now."""
        msg = await self._db(self.store.get, message_id)
        if msg is None:
            raise NotFoundError(f"no message {message_id}")
        if msg.state not in (State.DEAD, State.HELD):
            raise OperatorRefusedError(
                f"message {message_id} is {msg.state.value}; only dead or held messages "
                "can be retried"
            )
        moved = await self.move(msg, State.QUEUED, "retried by operator", actor)
        await self._db(
            self.store.record_audit,
            self.clock.now(),
            actor,
            "retry",
            message_id,
            f"from {msg.state.value}",
        )
        return moved

    async def hold_party(self, party_id: str, actor: str, reason: str = OPERATOR_HOLD) -> int:
        """Hold all deliveries to a party until released; returns messages moved to held."""
        party = self._party(party_id)
        now = self.clock.now()
        await self._db(self.store.set_party_hold, party.id, reason, now, actor)
        await self._db(self.store.record_audit, now, actor, "hold", party.id, reason)
        self._holds[party.id] = reason
        return await self.rebalance(party, actor)

    async def release_party(self, party_id: str, actor: str) -> int:
        """Lift an operator hold; returns messages moved back to the queue, in order."""
        party = self._party(party_id)
        now = self.clock.now()
        await self._db(self.store.set_party_hold, party.id, None, now, actor)
        await self._db(self.store.record_audit, now, actor, "release", party.id, None)
        self._holds.pop(party.id, None)
        return await self.rebalance(party, actor)

    def _party(self, party_id: str) -> Party:
        party = self.registry.get(party_id)
        if party is None:
            known = ", ".join(p.id for p in self.registry)
            raise NotFoundError(f"no party {party_id!r} (configured: {known})")
        return party

    async def rebalance(self, party: Party, actor: str = "scheduler") -> int:
        """Make a party's waiting messages match its readiness: hold or release, in order."""
        state, reason = placement(party, self.today(), self._holds)
        source = State.HELD if state is State.QUEUED else State.QUEUED
        moved = 0
        after: str | None = None
        while True:
            page = await self._db(
                self.store.query,
                MessageQuery(recipient=party.id, state=source, after_id=after, limit=_PAGE),
            )
            for msg in page:
                try:
                    await self.move(
                        msg,
                        state,
                        "released: " + reason if state is State.QUEUED else reason,
                        actor,
                    )
                    moved += 1
                except IllegalTransition:
                    continue
            if len(page) < _PAGE:
                return moved
            after = page[-1].id


def message_summary(msg: Message) -> dict[str, Any]:
    """The JSON shape of a message's metadata (never its content)."""
    data = dataclasses.asdict(msg)
    for key, value in data.items():
        if isinstance(value, dt.datetime):
            data[key] = value.isoformat()
        elif isinstance(value, State | Direction):
            data[key] = value.value
    return data


def event_summary(event: Event) -> dict[str, Any]:
    """The JSON shape of one state move."""
    return {
        "at": event.at.isoformat(),
        "from": event.from_state.value if event.from_state else None,
        "to": event.to_state.value,
        "reason": event.reason,
        "actor": event.actor,
    }
