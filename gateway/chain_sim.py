"""A chain simulator: plays the GGk's side of StUF-GGk over real HTTPS with mutual TLS.

:class:`GgkSimulator` is the GGk's OntvangAsynchroon: it takes the Di01 and Du01 envelopes the
gateway sends (``[chain] ggk_url``), checks them against ggk0210, keeps their payloads and
answers Bv03, or a Fo03 for the first ``fail_first`` envelopes (to exercise retries).
:func:`send_folder` is the GGk delivering: it sends every iJw original in a folder to the
gateway's endpoint as a Di01. ``gateway chain-sim`` (docs/chain.md) runs both for operators;
the integration tests use them directly. Envelopes are built and read by
:mod:`gateway.core.envelope`, the same module the gateway uses.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web
from lxml import etree

from gateway.core import envelope as env
from gateway.core.errors import TransientDeliveryError
from gateway.core.route import addressing
from gateway.daemon.chain_client import read_bounded
from gateway.daemon.chain_server import PATH
from gateway.daemon.server import MAX_BODY, HttpLimits, bounded_app, listen, read_limited
from gateway.service.chain_intake import max_envelope_bytes
from gateway.service.sniffing import recipient_identity, sender_identity, sniff_header

GGK = env.Systeem("GGk", env.GGK_APPLICATION)
"""Who the simulator is in the stuurgegevens of its answers."""
DEFAULT_MAX_MESSAGE_BYTES = 25 * 1024 * 1024
TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Received:
    """An envelope the simulator took in, and what it answered."""

    envelope: env.Envelope
    answer: str  # "Bv03" or the Fo03's code


@dataclass
class GgkSimulator:
    """The GGk's receiving endpoint. ``received`` lists every envelope in arrival order;
    ``folder`` (when set) gets each acknowledged payload as ``<referentienummer>.xml``."""

    schema: etree.XMLSchema
    fail_first: int = 0
    fault_code: str = "GW503"
    folder: Path | None = None
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    received: list[Received] = field(default_factory=list)
    notify: Callable[[Received], None] | None = None
    """Called with every envelope taken in (``gateway chain-sim serve`` prints a line)."""
    _runner: web.AppRunner | None = None
    _server: asyncio.Server | None = None

    def app(self) -> web.Application:
        """The aiohttp application: ``POST /ggk0210/OntvangAsynchroon``, bounded like the
        gateway's own endpoint."""
        app = bounded_app(max_envelope_bytes(self.max_message_bytes), HttpLimits())
        app.router.add_post(PATH, self._post)
        return app

    async def start(self, host: str, port: int, tls: ssl.SSLContext) -> str:
        """Listen with ``tls`` (a server context that demands client certificates); returns
        the endpoint's URL."""
        self._runner = web.AppRunner(self.app(), **HttpLimits().runner_options())
        await self._runner.setup()
        server = await listen(self._runner, host, port, tls)
        self._server = server
        bound = server.sockets[0].getsockname()[1]
        return f"https://{host}:{bound}{PATH}"

    async def close(self) -> None:
        """Stop listening and let requests in flight finish."""
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _post(self, request: web.Request) -> web.Response:
        body = await read_limited(request, request.app[MAX_BODY])
        if body is None:
            return _fault_response(None, env.ChainCode.TOO_LARGE.value, "body too large")
        try:
            element = env.soap_body(body, len(body) + 1)
            env.check_schema(element, self.schema)
            message = env.read_message(element)
        except env.EnvelopeError as exc:
            return _fault_response(None, exc.code.value, exc.reason)
        if not isinstance(message, env.Envelope):
            return _acknowledge(message.stuurgegevens)  # a Fo01 about our Di01: noted
        sg = message.stuurgegevens
        if len(self.received) < self.fail_first:
            self._note(Received(message, self.fault_code))
            return _fault_response(sg, self.fault_code, "simulated refusal (--fail-first)")
        self._note(Received(message, "Bv03"))
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / f"{sg.referentienummer}.xml").write_bytes(message.payload)
        return _acknowledge(sg)

    def _note(self, received: Received) -> None:
        self.received.append(received)
        if self.notify is not None:
            self.notify(received)


def _now() -> str:
    return env.tijdstip(dt.datetime.now(dt.UTC))


def _acknowledge(sg: env.Stuurgegevens) -> web.Response:
    answer = env.answer_stuurgegevens(
        env.Berichtcode.BV03, sg, GGK, env.new_referentienummer(), _now()
    )
    body = env.soap_message(env.build_acknowledgement(env.Acknowledgement(answer)))
    return web.Response(body=body, content_type="text/xml", charset="utf-8")


def _fault_response(sg: env.Stuurgegevens | None, code: str, reason: str) -> web.Response:
    answered = sg or env.Stuurgegevens(
        env.Berichtcode.DI01, env.Systeem(None, "onbekend"), GGK, "onbekend", _now()
    )
    fo03 = env.answer_stuurgegevens(
        env.Berichtcode.FO03, answered, GGK, env.new_referentienummer(), _now()
    )
    plek = "server" if code == env.ChainCode.TRY_AGAIN.value else "client"
    element = env.build_fault(env.Fault(fo03, code, plek, reason))
    body = env.soap_fault(element, reason)
    return web.Response(body=body, status=500, content_type="text/xml", charset="utf-8")


@dataclass(frozen=True, slots=True)
class Sent:
    """One file sent by :func:`send_folder`: its envelope's reference and the answer."""

    file: str
    referentienummer: str | None
    answer: str  # "Bv03", the Fo03's code, or why it was not sent


async def send_folder(
    folder: Path,
    url: str,
    tls: ssl.SSLContext,
    *,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    timeout: float = TIMEOUT_SECONDS,
    schema: etree.XMLSchema,
) -> list[Sent]:
    """Send every original (``*.xml``, by name) in ``folder`` to ``url`` as a Di01, as the GGk
    would; retours are skipped (a Du01 names a Di01 the GGk received, and this one received
    none)."""
    results: list[Sent] = []
    async with aiohttp.ClientSession() as session:
        for path in sorted(folder.glob("*.xml")):
            if not path.is_file() or path.is_symlink():
                continue
            if path.stat().st_size > max_message_bytes:
                results.append(Sent(path.name, None, f"over {max_message_bytes} bytes"))
                continue
            payload = path.read_bytes()
            message_type = sniff_header(payload)[0]
            if message_type is None:
                results.append(Sent(path.name, None, "no iJw message"))
                continue
            if env.berichtcode_for(message_type) is not env.Berichtcode.DI01:
                results.append(Sent(path.name, None, f"a retour ({message_type}): skipped"))
                continue
            route = addressing(message_type, sender_identity(payload), recipient_identity(payload))
            sg = env.Stuurgegevens(
                env.Berichtcode.DI01,
                env.Systeem(route.transmitter, env.GGK_APPLICATION),
                env.Systeem(route.destination, env.GGK_APPLICATION),
                env.new_referentienummer(),
                _now(),
                None,
                message_type,
            )
            body = env.soap_message(env.build_envelope(env.Envelope(sg, payload)))
            answer = await _post(session, url, body, tls=tls, timeout=timeout, schema=schema)
            results.append(Sent(path.name, sg.referentienummer, answer))
    return results


async def _post(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    *,
    tls: ssl.SSLContext,
    timeout: float,
    schema: etree.XMLSchema,
) -> str:
    headers = {
        "Content-Type": "text/xml; charset=utf-8",
        "SOAPAction": f'"{env.SOAP_ACTIONS[env.Berichtcode.DI01]}"',
    }
    async with session.post(
        url,
        data=body,
        headers=headers,
        ssl=tls,
        timeout=aiohttp.ClientTimeout(total=timeout),
        allow_redirects=False,
    ) as response:
        try:
            raw = await read_bounded(response, env.MAX_ENVELOPE_OVERHEAD)
        except TransientDeliveryError as exc:
            return str(exc)
    try:
        reply = env.read_answer(raw, env.MAX_ENVELOPE_OVERHEAD, schema)
    except env.EnvelopeError as exc:
        return f"HTTP {response.status}, no Bv03 or Fo03: {exc.reason[:100]}"
    return reply.code if isinstance(reply, env.Fault) else "Bv03"
