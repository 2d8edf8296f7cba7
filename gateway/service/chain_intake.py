"""Intake from the national chain: a StUF-GGk envelope in, a Bv03 or Fo03 out.

The endpoint (:mod:`gateway.daemon.chain_server`) hands over the request body, its SOAPAction
and the OIN of the client certificate. Here the envelope is checked against the ggk0210 schema,
the party registry, the certificate and the iJw header it carries; then its payload goes
through the same :class:`~gateway.service.intake.Intake` as HTTP and ``inbox/``, durably
stored before the answer. The answer is recorded under the envelope's ``referentienummer``, so
a repeated envelope gets the same answer and its payload is stored once. docs/chain.md maps
every check to its chain error code.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass

from lxml import etree

from gateway.core import envelope as env
from gateway.core.errors import IdentificatieReused, StoreError
from gateway.core.model import State
from gateway.core.pipeline import failed_before_rules
from gateway.core.route import Party, addressing
from gateway.logs import get_logger
from gateway.service.errors import IntakeClosedError, MessageTooLargeError
from gateway.service.gateway_service import GatewayService
from gateway.service.sniffing import recipient_identity, sender_identity, sniff_header
from gateway.service.volume import QuotaExceededError, StorageFullError
from gateway.store.chain import ChainDirection, envelope_row

log = get_logger("gateway.chain")

RETRY_SECONDS = 60
"""What a ``GW503`` answer asks the GGk to wait before it sends the same envelope again."""
_UNKNOWN = "onbekend"


@dataclass(frozen=True, slots=True)
class ChainAnswer:
    """What the endpoint sends back: a SOAP body, and whether it is a fault (HTTP 500)."""

    body: bytes
    code: env.ChainCode | None = None
    message_id: str | None = None
    party: str | None = None

    @property
    def fault(self) -> bool:
        return self.code is not None


def max_envelope_bytes(max_message_bytes: int) -> int:
    """The largest request body: the largest payload as base64, plus the envelope around it."""
    return -(-max_message_bytes // 3) * 4 + env.MAX_ENVELOPE_OVERHEAD


class ChainIntake:
    """Takes StUF-GGk envelopes (Di01, Du01, Fo01) into the gateway."""

    def __init__(self, service: GatewayService, schema: etree.XMLSchema, us: env.Systeem) -> None:
        self.service = service
        self.schema = schema
        self.us = us
        self.max_body_bytes = max_envelope_bytes(service.max_message_bytes)

    async def receive(
        self, raw: bytes, soap_action: str | None, client_oin: str | None
    ) -> ChainAnswer:
        """Check an OntvangAsynchroon request and take its payload in; never raises for
        anything the request holds (each refusal is a Fo03)."""
        try:
            # Parsing and validating a 33 MB envelope takes a while: not on the event loop.
            message = await asyncio.to_thread(self._read, raw, soap_action)
        except env.EnvelopeError as exc:
            return self._fault(None, exc.code, exc.reason)
        sg = message.stuurgegevens
        try:
            party = self._sender(sg, client_oin)
            if isinstance(message, env.Envelope):
                return await self._take_envelope(message, party)
            if isinstance(message, env.Fault):
                return await self._take_fault(message, party)
            raise env.EnvelopeError(
                env.ChainCode.BERICHTCODE_NOT_ALLOWED, "OntvangAsynchroon takes no Bv03"
            )
        except env.EnvelopeError as exc:
            return self._fault(sg, exc.code, exc.reason)

    # -- reading and checking -------------------------------------------------------------------

    def _read(self, raw: bytes, soap_action: str | None) -> env.ChainMessage:
        element = env.soap_body(raw, self.max_body_bytes)
        code = env.berichtcode_of(element)
        if code not in env.SOAP_ACTIONS:
            raise env.EnvelopeError(
                env.ChainCode.BERICHTCODE_NOT_ALLOWED, f"OntvangAsynchroon takes no {code.value}"
            )
        action = (soap_action or "").strip().strip('"')
        if action and action != env.SOAP_ACTIONS[code]:
            raise env.EnvelopeError(
                env.ChainCode.ENVELOPE_INVALID,
                f"SOAPAction {action!r} is not the {code.value} operation",
            )
        env.check_schema(element, self.schema)
        return env.read_message(element)

    def _sender(self, sg: env.Stuurgegevens, client_oin: str | None) -> Party:
        """The party the envelope speaks for, when the client certificate may speak for it."""
        party = self.service.registry.by_identity(sg.zender.organisatie)
        if party is None:
            raise env.EnvelopeError(
                env.ChainCode.UNKNOWN_SENDER,
                f"zender organisatie {sg.zender.organisatie} is no known party",
            )
        if client_oin is None or client_oin not in party.chain_oins:
            log.warning("chain_certificate_refused", party=party.id, oin=client_oin)
            raise env.EnvelopeError(
                env.ChainCode.NOT_AUTHORISED,
                f"the client certificate may not deliver for {sg.zender.organisatie}",
            )
        return party

    def _check_payload(self, message: env.Envelope) -> None:
        sg = message.stuurgegevens
        if self.service.registry.by_identity(sg.ontvanger.organisatie) is None:
            raise env.EnvelopeError(
                env.ChainCode.UNKNOWN_RECEIVER,
                f"ontvanger organisatie {sg.ontvanger.organisatie} is no known party",
            )
        if len(message.payload) > self.service.max_message_bytes:
            raise env.EnvelopeError(
                env.ChainCode.TOO_LARGE,
                f"payload is {len(message.payload)} bytes; the limit is "
                f"{self.service.max_message_bytes}",
            )
        message_type, _ = sniff_header(message.payload)
        route = addressing(
            message_type, sender_identity(message.payload), recipient_identity(message.payload)
        )
        env.check_against_header(sg, message_type, route.transmitter, route.destination)

    # -- taking in ------------------------------------------------------------------------------

    async def _take_envelope(self, message: env.Envelope, party: Party) -> ChainAnswer:
        sg = message.stuurgegevens
        digest = hashlib.sha256(message.payload).hexdigest()
        earlier = await self._earlier(sg, digest)
        if earlier is not None:
            return earlier
        self._check_payload(message)
        try:
            receipt = await self.service.intake.submit(
                party, message.payload, actor=f"chain:{party.id}"
            )
        except MessageTooLargeError as exc:
            raise env.EnvelopeError(env.ChainCode.TOO_LARGE, str(exc)) from None
        except IdentificatieReused as exc:
            raise env.EnvelopeError(env.ChainCode.IDENTIFICATIE_REUSED, str(exc)) from None
        except (IntakeClosedError, QuotaExceededError, StorageFullError, StoreError) as exc:
            log.warning("chain_intake_unavailable", party=party.id, reason=type(exc).__name__)
            raise env.EnvelopeError(
                env.ChainCode.TRY_AGAIN, "the gateway cannot store it now"
            ) from None
        stored = receipt.message
        if stored.state is State.REJECTED and failed_before_rules(stored.reason):
            answer = self._fault(
                sg, env.ChainCode.PAYLOAD_INVALID, "payload fails its iJw schema", stored.id
            )
        else:
            answer = self._acknowledge(sg, stored.id)
        return await self._record(sg, digest, answer, party)

    async def _take_fault(self, fault: env.Fault, party: Party) -> ChainAnswer:
        """A Fo01 about an envelope the gateway sent: recorded (the outbound side acts on it)."""
        sg = fault.stuurgegevens
        digest = hashlib.sha256(f"{fault.code}|{fault.omschrijving}".encode()).hexdigest()
        earlier = await self._earlier(sg, digest)
        if earlier is not None:
            return earlier
        sent = None
        if sg.cross_refnummer is not None:
            sent = await self.service.db(
                self.service.store.chain_envelope, ChainDirection.OUT, sg.cross_refnummer
            )
        log.warning(
            "chain_fault_received",
            party=party.id,
            code=fault.code,
            cross_refnummer=sg.cross_refnummer,
            message_id=sent.message_id if sent is not None else None,
        )
        answer = self._acknowledge(sg, sent.message_id if sent is not None else None)
        return await self._record(sg, digest, answer, party)

    async def _earlier(self, sg: env.Stuurgegevens, digest: str) -> ChainAnswer | None:
        """The answer an envelope with this reference got before, or a refusal when the
        reference was used for another envelope (CC08); None for a new reference."""
        try:
            earlier = await self.service.db(
                self.service.store.chain_envelope, ChainDirection.IN, sg.referentienummer
            )
        except StoreError:
            raise env.EnvelopeError(
                env.ChainCode.TRY_AGAIN, "the gateway cannot read its store"
            ) from None
        if earlier is None:
            return None
        if (
            earlier.payload_sha256 != digest
            or earlier.zender != sg.zender.organisatie
            or earlier.berichtcode != sg.berichtcode.value
            or earlier.answer is None
        ):
            raise env.EnvelopeError(
                env.ChainCode.REFERENCE_NOT_UNIQUE,
                f"referentienummer {sg.referentienummer} was used for another envelope",
            )
        log.info("chain_envelope_repeated", referentienummer=sg.referentienummer)
        code = env.ChainCode(earlier.answer_code) if earlier.answer_code else None
        return ChainAnswer(earlier.answer, code, earlier.message_id)

    async def _record(
        self, sg: env.Stuurgegevens, digest: str, answer: ChainAnswer, party: Party
    ) -> ChainAnswer:
        entry = envelope_row(
            ChainDirection.IN,
            sg,
            payload_sha256=digest,
            message_id=answer.message_id,
            answer=answer.body,
            answer_code=answer.code.value if answer.code is not None else None,
            at=self.service.clock.now(),
        )
        try:
            recorded = await self.service.db(self.service.store.record_chain_envelope, entry)
        except StoreError:
            # The payload is stored; the GGk sends the envelope again and intake finds it.
            raise env.EnvelopeError(
                env.ChainCode.TRY_AGAIN, "the gateway cannot record it now"
            ) from None
        log.info(
            "chain_envelope_received",
            referentienummer=sg.referentienummer,
            berichtcode=sg.berichtcode.value,
            party=party.id,
            message_id=recorded.message_id,
            answer=recorded.answer_code or "Bv03",
        )
        code = env.ChainCode(recorded.answer_code) if recorded.answer_code else None
        assert recorded.answer is not None  # recorded with one above, or by a racing twin
        return ChainAnswer(recorded.answer, code, recorded.message_id, party.id)

    # -- answers --------------------------------------------------------------------------------

    def fault(self, code: env.ChainCode, reason: str) -> ChainAnswer:
        """A Fo03 about a request whose envelope was not read (too large, too slow, busy)."""
        return self._fault(None, code, reason)

    def _acknowledge(self, sg: env.Stuurgegevens, message_id: str | None) -> ChainAnswer:
        answer = env.answer_stuurgegevens(
            env.Berichtcode.BV03, sg, self.us, env.new_referentienummer(), self._now()
        )
        body = env.soap_message(env.build_acknowledgement(env.Acknowledgement(answer)))
        return ChainAnswer(body, None, message_id)

    def _fault(
        self,
        sg: env.Stuurgegevens | None,
        code: env.ChainCode,
        reason: str,
        message_id: str | None = None,
    ) -> ChainAnswer:
        answered = sg or env.Stuurgegevens(
            env.Berichtcode.DI01, env.Systeem(None, _UNKNOWN), self.us, _UNKNOWN, self._now()
        )
        fo03 = env.answer_stuurgegevens(
            env.Berichtcode.FO03, answered, self.us, env.new_referentienummer(), self._now()
        )
        element = env.build_fault(env.Fault(fo03, code.value, code.plek, reason))
        if message_id is None:
            log.warning(
                "chain_envelope_refused",
                code=code.value,
                referentienummer=sg.referentienummer if sg is not None else None,
                reason=reason,
            )
        return ChainAnswer(env.soap_fault(element, reason), code, message_id)

    def _now(self) -> str:
        return env.tijdstip(self.service.clock.now())
