"""The ``ggk`` channel: a stored message leaves for the GGk in a StUF-GGk envelope.

An original leaves as a Di01, a retour as a Du01 whose ``crossRefnummer`` is the reference of
the envelope its original came in (or went out) with. The envelope is built by
:mod:`gateway.core.envelope` and POSTed as SOAP 1.1 over HTTPS with the gateway's client
certificate; the answer is read up to :data:`MAX_ANSWER_BYTES`. A Bv03 naming the envelope
marks the message delivered; a Fo03, any other answer and a transport error raise
:class:`TransientDeliveryError`, so :mod:`gateway.daemon.delivery` retries with its backoff and
dead-letters in the end.

Every attempt at a message carries the same ``referentienummer``
(:func:`~gateway.core.envelope.outbound_referentienummer`), recorded in ``chain_envelopes``
before the first attempt leaves; a repeat of an envelope the GGk acknowledged is not sent again.
"""

from __future__ import annotations

import hashlib
import ssl
from pathlib import Path

import aiohttp
from lxml import etree

from gateway.core import envelope as env
from gateway.core.errors import ConfigError, PermanentDeliveryError, TransientDeliveryError
from gateway.core.model import Message
from gateway.core.privacy import mask_free_text
from gateway.core.route import addressing
from gateway.logs import get_logger
from gateway.service.gateway_service import GatewayService
from gateway.service.sniffing import recipient_identity, sender_identity, sniff_header
from gateway.store.chain import ChainDirection, ChainEnvelope, envelope_row

log = get_logger("gateway.chain")

MAX_ANSWER_BYTES = env.MAX_ENVELOPE_OVERHEAD
"""The largest Bv03 or Fo03 read from the GGk; a longer answer is a failed attempt."""


def client_tls_context(certificate: Path, private_key: Path, ca: Path) -> ssl.SSLContext:
    """A client context that presents the gateway's certificate and trusts only ``ca``."""
    try:
        # With a cafile the system's CAs are not loaded: only the chain's CAs vouch for the GGk.
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
        context.load_cert_chain(certificate, private_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"[chain] client TLS files: {exc}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class ChainSender:
    """Sends stored messages to the GGk's OntvangAsynchroon, one envelope per attempt."""

    def __init__(
        self,
        service: GatewayService,
        schema: etree.XMLSchema,
        us: env.Systeem,
        url: str,
        tls: ssl.SSLContext,
    ) -> None:
        self.service = service
        self.schema = schema
        self.us = us
        self.url = url
        self.tls = tls

    async def send(
        self, session: aiohttp.ClientSession, msg: Message, raw: bytes, timeout: float
    ) -> str:
        """One attempt; returns what the delivered event says, raises when it failed."""
        envelope = await self._envelope(msg, raw)
        sg = envelope.stuurgegevens
        recorded = await self._record(msg, sg, raw)
        if recorded.answer is not None and recorded.answer_code is None:
            # Acknowledged before (the outcome was lost, say by a crash): not sent twice.
            return f"acknowledged by the GGk before (Bv03 to {sg.referentienummer})"
        body = env.soap_message(env.build_envelope(envelope))
        status, answer = await self._post(session, body, sg.berichtcode, timeout)
        try:
            reply = env.read_answer(answer, MAX_ANSWER_BYTES, self.schema)
        except env.EnvelopeError as exc:
            raise TransientDeliveryError(
                f"the GGk answered HTTP {status} without a Bv03 or Fo03 ({exc.reason[:100]})"
            ) from None
        if reply.stuurgegevens.cross_refnummer != sg.referentienummer:
            raise TransientDeliveryError(
                f"the GGk's {reply.stuurgegevens.berichtcode.value} names another envelope"
            )
        if isinstance(reply, env.Fault):
            await self.service.db(
                self.service.store.record_chain_answer,
                ChainDirection.OUT,
                sg.referentienummer,
                answer,
                reply.code[:7],
            )
            log.warning(
                "chain_envelope_refused_by_ggk",
                message_id=msg.id,
                referentienummer=sg.referentienummer,
                code=reply.code,
            )
            omschrijving = mask_free_text(reply.omschrijving)[:120]
            raise TransientDeliveryError(f"the GGk refused it: Fo03 {reply.code} {omschrijving}")
        await self.service.db(
            self.service.store.record_chain_answer,
            ChainDirection.OUT,
            sg.referentienummer,
            answer,
            None,
        )
        return f"sent to the GGk as {sg.berichtcode.value} {sg.referentienummer}: Bv03"

    async def _envelope(self, msg: Message, raw: bytes) -> env.Envelope:
        message_type = msg.message_type or sniff_header(raw)[0]
        if message_type is None:
            raise PermanentDeliveryError("no iJw message type: it cannot travel in an envelope")
        route = addressing(message_type, sender_identity(raw), recipient_identity(raw))
        code = env.berichtcode_for(message_type)
        cross = await self._original_reference(msg) if code is env.Berichtcode.DU01 else None
        sg = env.Stuurgegevens(
            berichtcode=code,
            zender=env.Systeem(route.transmitter, self.us.applicatie),
            ontvanger=env.Systeem(route.destination, env.GGK_APPLICATION),
            referentienummer=env.outbound_referentienummer(msg.id),
            tijdstip_bericht=env.tijdstip(self.service.clock.now()),
            cross_refnummer=cross,
            functie=message_type,
        )
        return env.Envelope(sg, raw)

    async def _original_reference(self, msg: Message) -> str:
        """The reference of the envelope the retour's original travelled in."""
        store = self.service.store
        original = await self.service.db(store.linked_message, msg.id)
        if original is None:
            # Its original may still arrive (the two are linked whichever comes first).
            raise TransientDeliveryError("a retour whose original is not known yet")
        for direction in (ChainDirection.IN, ChainDirection.OUT):
            carried = await self.service.db(store.chain_envelope_of_message, original, direction)
            if carried is not None:
                return carried.referentienummer
        raise PermanentDeliveryError(
            f"its original {original} did not travel through the GGk: a Du01 has nothing to name"
        )

    async def _record(self, msg: Message, sg: env.Stuurgegevens, raw: bytes) -> ChainEnvelope:
        entry = envelope_row(
            ChainDirection.OUT,
            sg,
            payload_sha256=hashlib.sha256(raw).hexdigest(),
            message_id=msg.id,
            answer=None,
            answer_code=None,
            at=self.service.clock.now(),
        )
        return await self.service.db(self.service.store.record_chain_envelope, entry)

    async def _post(
        self,
        session: aiohttp.ClientSession,
        body: bytes,
        code: env.Berichtcode,
        timeout: float,
    ) -> tuple[int, bytes]:
        headers = {
            "Content-Type": "text/xml; charset=utf-8",
            "SOAPAction": f'"{env.SOAP_ACTIONS[code]}"',
        }
        try:
            async with session.post(
                self.url,
                data=body,
                headers=headers,
                ssl=self.tls,
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
            ) as response:
                return response.status, await read_bounded(response, MAX_ANSWER_BYTES)
        except TimeoutError as exc:
            raise TransientDeliveryError(f"timeout sending to the GGk ({timeout:.1f} s)") from exc
        except aiohttp.ClientError as exc:
            raise TransientDeliveryError(f"connection error sending to the GGk: {exc}") from exc


async def read_bounded(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The response body, or :class:`TransientDeliveryError` once it passes ``limit`` bytes."""
    declared = response.content_length
    if declared is not None and declared > limit:
        raise TransientDeliveryError(f"an answer of {declared} bytes (at most {limit} are read)")
    received = bytearray()
    async for chunk in response.content.iter_chunked(16 * 1024):
        received += chunk
        if len(received) > limit:
            raise TransientDeliveryError(f"an answer over {limit} bytes")
    return bytes(received)
