"""The HTTP API: thin aiohttp handlers over :class:`GatewayService`.

Every party authenticates with ``Authorization: Bearer <token>`` and sees only its own
traffic: another party's message id answers 404, exactly like an id that does not exist.

Every connection is bounded in time (:class:`HttpLimits`): the request head must be complete
within ``header_timeout`` of its first byte (:class:`HeadDeadline`), a connection without a
request is closed after ``idle_timeout`` (aiohttp's keep-alive timer, which also runs from
the moment a connection opens), and a body must keep up a minimum average rate. Bodies being
received at once are bounded in number and declared bytes; beyond that intake answers 503
with ``Retry-After`` at once rather than queueing connections.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import hmac
import json
import re
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from gateway.core.errors import IdentificatieReused, StoreError
from gateway.core.privacy import mask_free_text
from gateway.core.route import Party, token_digest
from gateway.logs import get_logger
from gateway.metrics import CONTENT_TYPE
from gateway.service.errors import (
    IntakeClosedError,
    MessageTooLargeError,
    NotFoundError,
    OperatorRefusedError,
)
from gateway.service.gateway_service import GatewayService
from gateway.service.mailbox import event_summary, message_summary
from gateway.service.volume import QuotaExceededError, StorageFullError

log = get_logger("gateway.server")
access_log = get_logger("gateway.access")

MAILBOX_DEFAULT_LIMIT = 100
MAILBOX_MAX_LIMIT = 1000
BUSY_RETRY_SECONDS = 2
"""Retry-After when too many bodies are being received: they finish within seconds."""


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """Time and volume bounds on connections and bodies (``[server]``, defaults alike)."""

    header_timeout: float = 10.0
    idle_timeout: float = 15.0
    body_min_bytes_per_second: int = 16 * 1024
    body_grace: float = 10.0
    max_bodies_in_flight: int = 32
    max_body_bytes_in_flight: int = 128 * 1024 * 1024

    def runner_options(self) -> dict[str, Any]:
        """Keyword arguments for ``web.AppRunner`` (passed on to aiohttp's protocol)."""
        return {"keepalive_timeout": self.idle_timeout}


class BodyBudget:
    """Counts the bodies being received and stored, and their declared bytes."""

    def __init__(self, max_bodies: int, max_bytes: int) -> None:
        self.max_bodies = max_bodies
        self.max_bytes = max_bytes
        self.bodies = 0
        self.bytes = 0

    def try_take(self, size: int) -> bool:
        """Take room for one body of ``size`` bytes, or False when there is none."""
        if self.bodies >= self.max_bodies or self.bytes + size > self.max_bytes:
            return False
        self.bodies += 1
        self.bytes += size
        return True

    def give_back(self, size: int) -> None:
        self.bodies -= 1
        self.bytes -= size


class HeadDeadline(asyncio.Protocol):
    """aiohttp's protocol for one connection, plus a deadline on each request head.

    From the first byte of a request until aiohttp has parsed its head and the request
    reaches the application (:func:`_heads_seen`), at most ``timeout`` seconds may pass;
    then the connection is closed. Everything else is passed on unchanged.
    """

    def __init__(self, inner: RequestHandler, heads: ConnectionHeads, timeout: float) -> None:
        self._inner = inner
        self._heads = heads
        self._timeout = timeout
        self._awaiting_head = True
        self._timer: asyncio.TimerHandle | None = None
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._heads.open[transport] = self
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._awaiting_head and self._timer is None and data:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._timeout, self._expire)
        self._inner.data_received(data)

    def eof_received(self) -> None:
        self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        if self._transport is not None:
            self._heads.open.pop(self._transport, None)
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def head_received(self) -> None:
        """The request reached the application: its head is complete."""
        self._awaiting_head = False
        self._stop_timer()

    def request_done(self) -> None:
        """The next bytes start a new request head."""
        self._awaiting_head = True

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        if self._awaiting_head:
            log.warning("request_head_timeout", seconds=self._timeout)
            self._inner.force_close()


class ConnectionHeads:
    """The open connections' head deadlines, by transport (how a request finds its own)."""

    def __init__(self) -> None:
        self.open: dict[asyncio.BaseTransport, HeadDeadline] = {}


SERVICE: web.AppKey[GatewayService] = web.AppKey("service", GatewayService)
MAX_BODY: web.AppKey[int] = web.AppKey("max_body", int)
LIMITS: web.AppKey[HttpLimits] = web.AppKey("limits", HttpLimits)
BODIES: web.AppKey[BodyBudget] = web.AppKey("bodies", BodyBudget)
HEADS: web.AppKey[ConnectionHeads] = web.AppKey("heads", ConnectionHeads)
METRICS_TOKEN: web.AppKey[str | None] = web.AppKey("metrics_token", str)


@dataclass(slots=True)
class _AccessNotes:
    """What the handlers learn about a request for its access line."""

    party: str | None = None
    message_id: str | None = None


# Set by the access middleware for the request it runs (the handler runs in its context).
_ACCESS: contextvars.ContextVar[_AccessNotes | None] = contextvars.ContextVar(
    "gateway_access", default=None
)


def note_access(*, party: str | None = None, message_id: str | None = None) -> None:
    """Tell the access line of the request being handled its party and message."""
    notes = _ACCESS.get()
    if notes is not None:
        notes.party = party or notes.party
        notes.message_id = message_id or notes.message_id


REQUEST_ID_HEADER = "X-Request-ID"
# A caller's request id is taken as given only when it is short and plain (it is logged).
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class BodyTooSlowError(Exception):
    """The body arrived below the minimum average rate."""


def _error(
    status: int, reason: str, headers: dict[str, str] | None = None, **extra: Any
) -> web.Response:
    return web.json_response({"error": reason, **extra}, status=status, headers=headers)


def _party(request: web.Request) -> Party:
    """The authenticated party, or a 401 response raised as an exception."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    party = None
    if scheme.lower() == "bearer" and token.strip():
        party = request.app[SERVICE].registry.authenticate(token.strip())
    if party is not None:
        note_access(party=party.id)
    else:
        raise web.HTTPUnauthorized(
            text=json.dumps({"error": "missing or unknown bearer token"}),
            content_type="application/json",
            headers={"WWW-Authenticate": 'Bearer realm="ijw-gateway"'},
        )
    return party


async def read_limited(request: web.Request, limit: int) -> bytes | None:
    """The body, or None when it is larger than ``limit`` (without reading all of it).

    Raises ``BodyTooSlowError`` when, after the grace period, fewer bytes than the minimum
    rate asks for have arrived (the deadline for the next byte moves with each byte read).
    """
    limits = request.app[LIMITS]
    if request.content_length is not None and request.content_length > limit:
        return None
    loop = asyncio.get_running_loop()
    started = loop.time()
    chunks: list[bytes] = []
    size = 0
    while True:
        deadline = started + limits.body_grace + size / limits.body_min_bytes_per_second
        try:
            async with asyncio.timeout_at(deadline):
                chunk = await request.content.readany()
        except TimeoutError:
            raise BodyTooSlowError() from None
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)


def _closing(response: web.Response) -> web.Response:
    """The response, sent with ``Connection: close``."""
    response.force_close()
    return response


async def post_message(request: web.Request) -> web.Response:
    """Intake: 202 only once the bytes are durably stored."""
    party = _party(request)
    service = request.app[SERVICE]
    if not service.intake.accepting:
        return _error(503, "the gateway is shutting down; try again shortly")
    limit = request.app[MAX_BODY]
    declared = request.content_length
    if declared is not None and declared > limit:
        return _error(413, f"message larger than the limit of {limit} bytes", limit=limit)
    reserved = limit if declared is None else declared
    bodies = request.app[BODIES]
    if not bodies.try_take(reserved):
        log.warning("intake_busy", party=party.id, bodies=bodies.bodies, bytes=bodies.bytes)
        return _closing(
            _error(
                503,
                "too many messages being received at once; try again shortly",
                headers={"Retry-After": str(BUSY_RETRY_SECONDS)},
            )
        )
    arrived = time.perf_counter()
    try:
        response = await _receive(request, service, party, limit)
    finally:
        bodies.give_back(reserved)
    if response.status == 202:
        service.metrics.intake_answered(party.id, time.perf_counter() - arrived)
    return response


async def _receive(
    request: web.Request, service: GatewayService, party: Party, limit: int
) -> web.Response:
    try:
        body = await read_limited(request, limit)
    except BodyTooSlowError:
        rate = request.app[LIMITS].body_min_bytes_per_second
        log.warning("request_body_too_slow", party=party.id, min_bytes_per_second=rate)
        return _closing(_error(408, f"body arrived slower than {rate} bytes per second"))
    if body is None:
        return _error(413, f"message larger than the limit of {limit} bytes", limit=limit)
    if not body:
        return _error(400, "empty body; send the message XML as the request body")
    try:
        receipt = await service.intake.submit(party, body, actor=f"party:{party.id}")
    except MessageTooLargeError as exc:
        return _error(413, str(exc), limit=service.max_message_bytes)
    except IntakeClosedError:
        return _error(503, "the gateway is shutting down; try again shortly")
    except IdentificatieReused as exc:
        log.warning("intake_identificatie_reused", party=party.id, earlier=exc.earlier_id)
        return _error(409, str(exc), earlier=exc.earlier_id)
    except QuotaExceededError as exc:
        log.warning("intake_quota_exceeded", party=party.id, retry_after=exc.retry_after)
        return _error(429, str(exc), headers={"Retry-After": str(exc.retry_after)})
    except StorageFullError as exc:
        log.error("intake_disk_floor", party=party.id)
        return _error(503, str(exc), headers={"Retry-After": str(exc.retry_after)})
    except StoreError as exc:
        log.error("intake_store_failed", party=party.id, error=str(exc))
        return _error(503, f"message not accepted: the store is unavailable ({exc})")
    msg = receipt.message
    note_access(message_id=msg.id)
    return web.json_response(
        {
            "id": msg.id,
            "state": msg.state.value,
            "duplicate": not receipt.created,
            "reason": msg.reason,
        },
        status=202,
        headers={"Location": f"/v1/messages/{msg.id}"},
    )


async def get_message(request: web.Request) -> web.Response:
    """A message's state and history, to its sender or recipient only."""
    party = _party(request)
    try:
        view = await request.app[SERVICE].mailbox.view(party, request.match_info["id"])
    except NotFoundError:
        return _error(404, "no such message")
    return web.json_response(
        {
            **message_summary(view.message),
            "history": [event_summary(e) for e in view.history],
            "findings": view.findings,
        }
    )


async def get_mailbox(request: web.Request) -> web.Response:
    """The party's waiting messages, oldest first, after an optional cursor."""
    party = _party(request)
    after = request.query.get("after") or None
    try:
        limit = int(request.query.get("limit", MAILBOX_DEFAULT_LIMIT))
    except ValueError:
        return _error(400, "limit must be a whole number")
    if not 1 <= limit <= MAILBOX_MAX_LIMIT:
        return _error(400, f"limit must be between 1 and {MAILBOX_MAX_LIMIT}")
    try:
        messages = await request.app[SERVICE].mailbox.waiting(party, after, limit)
    except OperatorRefusedError as exc:
        return _error(409, str(exc))
    items = [
        {
            "id": m.id,
            "message_type": m.message_type,
            "sender": m.sender,
            "received_at": m.received_at.isoformat(),
            "size": m.size,
            "in_reply_to": m.in_reply_to,
        }
        for m in messages
    ]
    more = len(messages) == limit
    # The cursor pages within one pass only. Ids are given at intake, but a message becomes
    # visible here when it is queued (after validation, in another transaction), so one with
    # a smaller id can appear after a larger one was listed; a cursor kept across passes would
    # skip it forever. At the end of a pass the next one starts from the beginning (acked
    # messages have left the list, so this costs nothing).
    cursor = messages[-1].id if more else None
    return web.json_response({"messages": items, "next_after": cursor, "more": more})


async def get_mailbox_message(request: web.Request) -> web.Response:
    """The XML of one message in the party's mailbox."""
    party = _party(request)
    try:
        raw = await request.app[SERVICE].mailbox.payload(party, request.match_info["id"])
    except NotFoundError:
        return _error(404, "no such message in your mailbox")
    except OperatorRefusedError as exc:
        return _error(409, str(exc))
    return web.Response(body=raw, content_type="application/xml", charset="utf-8")


async def ack_mailbox_message(request: web.Request) -> web.Response:
    """The party has the message: it becomes delivered."""
    party = _party(request)
    try:
        msg = await request.app[SERVICE].mailbox.ack(party, request.match_info["id"])
    except NotFoundError:
        return _error(404, "no such message in your mailbox")
    except OperatorRefusedError as exc:
        return _error(409, str(exc))
    except StoreError as exc:
        return _error(503, f"acknowledgement not recorded: the store is unavailable ({exc})")
    return web.json_response({"id": msg.id, "state": msg.state.value})


@functools.cache
def _openapi_document() -> bytes:
    return resources.files("gateway").joinpath("openapi.json").read_bytes()


async def openapi_document(_request: web.Request) -> web.Response:
    """The API's OpenAPI 3.1 description (docs/api.md); no token: vendors read it first."""
    return web.Response(body=_openapi_document(), content_type="application/json")


async def healthz(_request: web.Request) -> web.Response:
    """The process is alive."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when intake is open and the store answers."""
    service = request.app[SERVICE]
    healthy = await service.healthy()
    if not service.intake.accepting:
        return _error(503, "shutting down")
    if not healthy:
        return _error(503, "store unavailable")
    return web.json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format, for the holder of the metrics token only."""
    expected = request.app[METRICS_TOKEN]
    if expected is None:
        return _error(404, "metrics are off; set [server] metrics_token_sha256 to serve them")
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    given = token_digest(token.strip()) if scheme.lower() == "bearer" else ""
    if not hmac.compare_digest(given, expected):
        raise web.HTTPUnauthorized(
            text=json.dumps({"error": "missing or wrong metrics token"}),
            content_type="application/json",
            headers={"WWW-Authenticate": 'Bearer realm="ijw-gateway-metrics"'},
        )
    service = request.app[SERVICE]
    try:
        body = await service.render_metrics()
    except StoreError as exc:
        return _error(503, f"store unavailable ({exc})")
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _heads_seen(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Tell the connection's head deadline that this request's head is complete."""
    transport = request.transport
    deadline = request.app[HEADS].open.get(transport) if transport is not None else None
    if deadline is not None:
        deadline.head_received()
    try:
        return await handler(request)
    finally:
        if deadline is not None:
            deadline.request_done()


def _request_id(given: str) -> str:
    """The caller's request id when it is short and plain, else a fresh one. Neither may be
    one the log scrubber would mask (nine digits), or the log and the caller would differ."""
    if _SANE_REQUEST_ID.fullmatch(given) and mask_free_text(given) == given:
        return given
    while True:
        fresh = uuid.uuid4().hex
        if mask_free_text(fresh) == fresh:
            return fresh


@web.middleware
async def _access(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One access line per request, and a request id on every line logged meanwhile."""
    request_id = _request_id(request.headers.get(REQUEST_ID_HEADER, ""))
    started = time.perf_counter()
    status = 500
    notes = _AccessNotes()
    token = _ACCESS.set(notes)
    with structlog.contextvars.bound_contextvars(request_id=request_id):
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            status = exc.status
            exc.headers[REQUEST_ID_HEADER] = request_id
            raise
        else:
            status = response.status
            response.headers[REQUEST_ID_HEADER] = request_id
            return response
        finally:
            _ACCESS.reset(token)
            route = request.match_info.route.resource
            access_log.info(
                "http_request",
                method=request.method,
                # The route as registered (/v1/messages/{id}), not the path with its ids.
                route=route.canonical if route is not None else None,
                party=notes.party,
                message_id=notes.message_id or request.match_info.get("id"),
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
            )


def bounded_app(max_body: int, limits: HttpLimits) -> web.Application:
    """An application whose connections and bodies are bounded by ``limits`` (with
    :func:`listen` and :func:`read_limited`), with one access line per request."""
    # aiohttp's own limit answers with plain text; ours (in the handlers) answers in the API's
    # own format, so aiohttp's is set just above it as a backstop only.
    app = web.Application(client_max_size=max_body + 1, middlewares=[_access, _heads_seen])
    app[MAX_BODY] = max_body
    app[LIMITS] = limits
    app[BODIES] = BodyBudget(limits.max_bodies_in_flight, limits.max_body_bytes_in_flight)
    app[HEADS] = ConnectionHeads()
    return app


def create_app(
    service: GatewayService,
    max_body_bytes: int | None = None,
    *,
    limits: HttpLimits | None = None,
    metrics_token_sha256: str | None = None,
) -> web.Application:
    """The aiohttp application for a service (``metrics_token_sha256`` None: no /metrics)."""
    app = bounded_app(max_body_bytes or service.max_message_bytes, limits or HttpLimits())
    app[SERVICE] = service
    app[METRICS_TOKEN] = metrics_token_sha256
    app.router.add_post("/v1/messages", post_message)
    app.router.add_get("/v1/messages/{id}", get_message)
    app.router.add_get("/v1/mailbox", get_mailbox)
    app.router.add_get("/v1/mailbox/{id}", get_mailbox_message)
    app.router.add_post("/v1/mailbox/{id}/ack", ack_mailbox_message)
    app.router.add_get("/v1/openapi.json", openapi_document)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


async def listen(
    runner: web.AppRunner, host: str, port: int, tls: ssl.SSLContext | None = None
) -> asyncio.Server:
    """Listen on ``host:port`` for a set-up runner of a :func:`bounded_app`, each connection
    behind its :class:`HeadDeadline` (and TLS when ``tls`` is given). Close the server before
    ``runner.cleanup()``.
    """
    server = runner.server
    if server is None:
        raise RuntimeError("listen() needs a runner that is set up")
    app = runner.app
    heads, timeout = app[HEADS], app[LIMITS].header_timeout
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: HeadDeadline(server(), heads, timeout), host, port, ssl=tls
    )
