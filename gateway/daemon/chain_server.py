"""The StUF-GGk endpoint: OntvangAsynchroon over SOAP 1.1 on HTTPS with mutual TLS.

One route, ``POST /ggk0210/OntvangAsynchroon``, takes the WSDL's three operations (ggk_Di01,
ggk_Du01, Fo01), told apart by the message in the SOAP Body (a SOAPAction header, when sent,
must agree). A client without a certificate from ``[chain] client_ca`` does not get past the
TLS handshake; the certificate's OIN (subject serialNumber) is handed to
:class:`~gateway.service.chain_intake.ChainIntake`, which checks it against the party the
envelope claims to come from. Connections and bodies are bounded exactly like the REST API's
(:func:`gateway.daemon.server.bounded_app`); busy answers 503 with a Fo03 ``GW503``.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from aiohttp import web

from gateway.core import envelope as env
from gateway.core.errors import ConfigError
from gateway.daemon.server import (
    BODIES,
    LIMITS,
    MAX_BODY,
    BodyTooSlowError,
    HttpLimits,
    bounded_app,
    note_access,
    read_limited,
)
from gateway.logs import get_logger
from gateway.service.chain_intake import RETRY_SECONDS, ChainAnswer, ChainIntake

log = get_logger("gateway.chain")

PATH = "/ggk0210/OntvangAsynchroon"
CHAIN: web.AppKey[ChainIntake] = web.AppKey("chain", ChainIntake)
_XML = "text/xml"


def tls_context(certificate: Path, private_key: Path, client_ca: Path) -> ssl.SSLContext:
    """A server context that demands a client certificate issued under ``client_ca``."""
    # Not create_default_context: that would also trust the system's CAs for client
    # certificates, and only the chain's CAs may vouch for a client.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certificate, private_key)
        context.load_verify_locations(cafile=client_ca)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"[chain] TLS files: {exc}") from None
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_oin(request: web.Request) -> str | None:
    """The OIN in the client certificate's subject (serialNumber), None without one."""
    transport = request.transport
    peer = transport.get_extra_info("peercert") if transport is not None else None
    if not peer:
        return None
    for rdn in peer.get("subject", ()):
        for name, value in rdn:
            if name == "serialNumber":
                return str(value)
    return None


def _soap(answer: ChainAnswer, status: int | None = None, **headers: str) -> web.Response:
    return web.Response(
        body=answer.body,
        status=status or (500 if answer.fault else 200),
        content_type=_XML,
        charset="utf-8",
        headers=headers,
    )


async def post_envelope(request: web.Request) -> web.Response:
    """An OntvangAsynchroon request: Bv03 (200) once the payload is stored, else a Fo03."""
    chain = request.app[CHAIN]
    limit = request.app[MAX_BODY]
    declared = request.content_length
    if declared is not None and declared > limit:
        return _soap(chain.fault(env.ChainCode.TOO_LARGE, f"body over {limit} bytes"))
    reserved = limit if declared is None else declared
    bodies = request.app[BODIES]
    if not bodies.try_take(reserved):
        log.warning("chain_busy", bodies=bodies.bodies, bytes=bodies.bytes)
        busy = chain.fault(env.ChainCode.TRY_AGAIN, "too many envelopes at once")
        response = _soap(busy, 503, **{"Retry-After": str(RETRY_SECONDS)})
        response.force_close()
        return response
    try:
        try:
            body = await read_limited(request, limit)
        except BodyTooSlowError:
            rate = request.app[LIMITS].body_min_bytes_per_second
            response = _soap(chain.fault(env.ChainCode.TRY_AGAIN, f"body slower than {rate} B/s"))
            response.force_close()
            return response
        if body is None:
            return _soap(chain.fault(env.ChainCode.TOO_LARGE, f"body over {limit} bytes"))
        answer = await chain.receive(body, request.headers.get("SOAPAction"), client_oin(request))
    finally:
        bodies.give_back(reserved)
    note_access(party=answer.party, message_id=answer.message_id)
    return _soap(answer)


def create_chain_app(chain: ChainIntake, limits: HttpLimits) -> web.Application:
    """The endpoint's aiohttp application (serve it with ``listen(..., tls=tls_context(...))``)."""
    app = bounded_app(chain.max_body_bytes, limits)
    app[CHAIN] = chain
    app.router.add_post(PATH, post_envelope)
    return app
