"""Operator actions: the one place where a person steers messages.

Every steering command of the console (retry, hold, release, cancel, replay, reveal, purge)
goes through :class:`Operator`. Each action moves messages only through the service's
``move`` (so ``core.lifecycle`` decides what is allowed and the store writes state and event
in one transaction) and records who, what and why in the audit trail. Nothing here writes SQL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gateway.config import RetentionSettings
from gateway.core.errors import GatewayError
from gateway.core.lifecycle import CANCELLED, WAITING_STATES
from gateway.core.model import Direction, Message, State
from gateway.core.pipeline import MESSAGE_HOLD, OPERATOR_HOLD, gateway_answers, placement
from gateway.core.release_conversion import waits_for_release
from gateway.service.errors import NotFoundError
from gateway.service.gateway_service import GatewayService
from gateway.service.preparation import HeldAnswerError
from gateway.store.base import NewMessage, PurgeResult, SearchQuery, Store
from gateway.translator import waits_for_decision

T = TypeVar("T")


_PAGE = 500


class OperatorError(GatewayError):
    """The operator action does not apply here."""


@dataclass(frozen=True, slots=True)
class ReplayCheck:
    """What replaying one message would do: deliver again what was acknowledged, or fail."""

    original: Message
    delivered_copies: list[Message] = field(default_factory=list)
    payload_purged: bool = False

    @property
    def duplicate(self) -> bool:
        """True when the recipient already acknowledged this content."""
        return bool(self.delivered_copies)


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of an action on one message of a (bulk) run."""

    message_id: str
    ok: bool
    detail: str
    new_id: str | None = None


def retention_cutoffs(retention: RetentionSettings, now: dt.datetime) -> dict[State, dt.datetime]:
    """The per-state cutoffs of a retention pass (states with 0 days are kept forever)."""
    cutoffs: dict[State, dt.datetime] = {}
    if retention.delivered_days:
        cutoffs[State.DELIVERED] = now - dt.timedelta(days=retention.delivered_days)
    if retention.rejected_days:
        cutoffs[State.REJECTED] = now - dt.timedelta(days=retention.rejected_days)
    return cutoffs


def _refuse_undecided(msg: Message) -> None:
    """A message waiting for a mapping decision would go out untranslated, one held for its
    recipient's release unconverted: refuse."""
    if waits_for_release(msg.reason):
        raise OperatorError(
            f"message {msg.id} is held because its recipient's iJw release cannot take it "
            f"({msg.reason}); cancel it, or have the sender send it in that release"
        )
    if waits_for_decision(msg):
        raise OperatorError(
            f"message {msg.id} waits for a mapping decision; release it with "
            "'gateway mappings decide ID --target CAT/CODE --reason ...'"
        )


class Operator:
    """Steering actions on behalf of ``actor`` (``operator:<login>``), all audited."""

    def __init__(self, service: GatewayService, actor: str) -> None:
        self.service = service
        self.store: Store = service.store
        self.actor = actor

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    async def _audit(self, action: str, target: str, reason: str | None) -> None:
        await self._db(
            self.store.record_audit, self.service.clock.now(), self.actor, action, target, reason
        )

    async def record_bulk(self, action: str, filters: str, count: int, reason: str) -> None:
        """One audit entry for a bulk run, beside the entries of each message it touched."""
        await self._audit(f"bulk-{action}", filters[:200], f"{reason} ({count} message(s))")

    async def message(self, message_id: str) -> Message:
        """The message with this id, or ``NotFoundError`` telling how to find one."""
        msg = await self._db(self.store.get, message_id)
        if msg is None:
            raise NotFoundError(
                f"no message {message_id} (find ids with: gateway messages --bericht-id ...)"
            )
        return msg

    async def select(self, query: SearchQuery) -> AsyncIterator[Message]:
        """Every message matching ``query``, oldest first, page by page."""
        cursor: str | None = None
        while True:
            page = await self._db(
                self.store.search,
                SearchQuery(
                    **{
                        **_fields(query),
                        "cursor": cursor,
                        "newest_first": False,
                        "limit": _PAGE,
                    }
                ),
            )
            for msg in page.messages:
                yield msg
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    # -- single-message moves ------------------------------------------------------------

    async def retry(self, message_id: str, reason: str | None) -> Message:
        """Deliver now: ``dead``/``held`` → ``queued``; a queued message in backoff is due now."""
        msg = await self.message(message_id)
        _refuse_undecided(msg)
        note = reason or "retry now"
        if msg.state in (State.DEAD, State.HELD):
            moved = await self.service.move(
                msg, State.QUEUED, f"retried by operator: {note}", self.actor, next_attempt_at=None
            )
        elif msg.state is State.QUEUED:
            now = self.service.clock.now()
            if msg.next_attempt_at is None or msg.next_attempt_at <= now:
                raise OperatorError(
                    f"message {message_id} is queued and already due; "
                    "the next delivery pass sends it"
                )
            # The lifecycle has no queued → queued move; a hold and release in a row is the
            # recorded way to clear the backoff.
            held = await self.service.move(
                msg, State.HELD, f"{MESSAGE_HOLD}: retry now", self.actor
            )
            moved = await self.service.move(
                held, State.QUEUED, f"retried by operator: {note}", self.actor, next_attempt_at=None
            )
        else:
            raise OperatorError(
                f"message {message_id} is {msg.state.value}; only dead, held or queued messages "
                "can be retried (use 'gateway replay' to send a delivered one again)"
            )
        await self._audit("retry", message_id, f"from {msg.state.value}: {note}")
        return moved

    async def hold(self, message_id: str, reason: str | None) -> Message:
        """Keep one queued message back until released."""
        msg = await self.message(message_id)
        if msg.state is not State.QUEUED:
            raise OperatorError(
                f"message {message_id} is {msg.state.value}; only a queued message can be held"
            )
        note = reason or "no reason given"
        moved = await self.service.move(msg, State.HELD, f"{MESSAGE_HOLD}: {note}", self.actor)
        await self._audit("hold", message_id, reason)
        return moved

    async def release(self, message_id: str, reason: str | None) -> Message:
        """Put one held message back in the queue (it waits again if its party is held)."""
        msg = await self.message(message_id)
        if msg.state is not State.HELD:
            raise OperatorError(
                f"message {message_id} is {msg.state.value}; only a held message can be released"
            )
        _refuse_undecided(msg)
        moved = await self.service.move(
            msg,
            State.QUEUED,
            f"released by operator: {reason or 'no reason given'}",
            self.actor,
            next_attempt_at=None,
        )
        await self._audit("release", message_id, reason)
        return moved

    async def cancel(self, message_id: str, reason: str) -> Message:
        """Stop a waiting message for good: it goes to ``dead`` and is never sent by itself.

        An original held for a mapping decision whose recipient the BVO answers for has no
        retour yet: cancelling it answers it (the S329 retour, ``rejected``) instead, so it
        never ends unanswered. Any other original the BVO answers for that has no retour is
        refused."""
        msg = await self.message(message_id)
        if msg.state not in WAITING_STATES:
            raise OperatorError(
                f"message {message_id} is {msg.state.value}; only queued or "
                "held messages can be cancelled"
            )
        if waits_for_decision(msg) and self._answered_for(msg):
            try:
                answered = await self.service.held_answers.answer(
                    message_id, actor=self.actor, why=f"{CANCELLED}: {reason}"
                )
            except HeldAnswerError as exc:
                raise OperatorError(str(exc)) from exc
            if answered is None:
                raise OperatorError(f"message {message_id} moved meanwhile; look again")
            return answered
        if self._answered_for(msg) and await self._unanswered(msg):
            raise OperatorError(
                f"message {message_id} is an original the BVO answers for and has no retour "
                "yet; it cannot end unanswered"
            )
        moved = await self.service.move(msg, State.DEAD, f"{CANCELLED}: {reason}", self.actor)
        await self._audit("cancel", message_id, reason)
        return moved

    def _answered_for(self, msg: Message) -> bool:
        recipient = self.service.registry.get(msg.recipient or "")
        return (
            msg.direction is not Direction.GENERATED
            and recipient is not None
            and gateway_answers(msg.message_type, recipient)
        )

    async def _unanswered(self, msg: Message) -> bool:
        return await self._db(self.store.linked_message, msg.id) is None

    # -- parties ---------------------------------------------------------------------------

    async def hold_party(self, party_id: str, reason: str | None) -> int:
        """Hold all deliveries to a party (persists; audited by the service)."""
        why = f"{OPERATOR_HOLD}: {reason}" if reason else OPERATOR_HOLD
        return await self.service.steering.hold_party(party_id, self.actor, why)

    async def release_party(self, party_id: str, reason: str | None) -> int:
        """Lift a party hold; its messages go back to the queue in arrival order."""
        moved = await self.service.steering.release_party(party_id, self.actor)
        if reason:
            await self._audit("release-note", party_id, reason)
        return moved

    # -- replay ----------------------------------------------------------------------------

    async def check_replay(self, msg: Message) -> ReplayCheck:
        """Whether replaying ``msg`` would deliver content already acknowledged."""
        copies = await self._db(self.store.delivered_copies, msg)
        purged = await self._db(self.store.payload, msg.id) is None
        return ReplayCheck(msg, copies, purged)

    async def replay(self, message_id: str, reason: str) -> Message:
        """Run a stored message through the pipeline again as a new message linked to it."""
        original = await self.message(message_id)
        raw = await self._db(self.store.payload, message_id)
        if raw is None:
            raise OperatorError(
                f"the content of message {message_id} was purged by retention; "
                "it cannot be replayed"
            )
        now = self.service.clock.now()
        generated = original.direction is Direction.GENERATED
        saved = await self._db(
            self.store.save_received,
            NewMessage(
                sender=original.sender,
                raw=raw,
                content_hash=original.content_hash,
                bericht_id=original.bericht_id,
                message_type=original.message_type,
                received_at=now,
                actor=self.actor,
                direction=original.direction.value,
                in_reply_to=original.in_reply_to,
                recipient=original.recipient if generated else None,
                replay_of=original.id,
            ),
        )
        copy = saved.message
        registry = self.service.registry
        if generated:
            recipient = registry.get(original.recipient or "")
            if recipient is None:
                result = await self.service.move(
                    copy, State.REJECTED, "recipient no longer configured", self.actor
                )
            else:
                state, why = placement(recipient, self.service.today(), self.service.holds)
                result = await self.service.move(
                    copy,
                    state,
                    f"replay of {original.id}: {why}",
                    self.actor,
                    recipient=recipient.id,
                )
        else:
            sender = registry.get(original.sender)
            if sender is None:
                result = await self.service.move(
                    copy, State.REJECTED, "sender no longer configured", self.actor
                )
            else:
                result = await self.service.reprocessing.process(copy, raw, sender)
        await self._audit("replay", original.id, f"{reason} (replayed as {copy.id})")
        return result

    # -- payloads and retention ------------------------------------------------------------

    async def reveal(self, message_id: str, reason: str) -> bytes:
        """The unmasked payload; recorded in the audit trail before it is handed out."""
        await self.message(message_id)
        raw = await self._db(self.store.payload, message_id)
        if raw is None:
            raise OperatorError(f"the content of message {message_id} was purged by retention")
        await self._audit("reveal", message_id, reason)
        return raw

    async def purge(
        self, retention: RetentionSettings, *, dry_run: bool, full_vacuum: bool, reason: str | None
    ) -> PurgeResult:
        """One retention pass (also the scheduled job's body); audited unless a dry run."""
        cutoffs = retention_cutoffs(retention, self.service.clock.now())
        result = await self._db(
            lambda: self.store.purge(cutoffs, batch_size=retention.batch_size, dry_run=dry_run)
        )
        if dry_run:
            return result
        freed = 0
        if retention.reclaim_space or full_vacuum:
            freed = await self._db(self.store.reclaim_space, full_vacuum)
        summary = ", ".join(f"{n} {state}" for state, n in result.payloads.items()) or "nothing"
        await self._audit("purge", "payloads", f"{reason or 'retention'}: dropped {summary}")
        return PurgeResult(result.payloads, freed)


def retention_job(
    service: GatewayService, retention: RetentionSettings, actor: str = "retention"
) -> Callable[[], Any]:
    """The scheduled retention pass: ``scheduler.every("retention", hours * 3600, job)``."""
    operator = Operator(service, actor)

    async def job() -> PurgeResult:
        return await operator.purge(
            retention, dry_run=False, full_vacuum=False, reason="scheduled retention"
        )

    return job


def _fields(query: SearchQuery) -> dict[str, Any]:
    return {name: getattr(query, name) for name in SearchQuery.__dataclass_fields__}
