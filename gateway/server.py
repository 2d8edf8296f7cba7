"""The HTTP API: thin aiohttp handlers over :class:`GatewayService`.

Every party authenticates with ``Authorization: Bearer <token>`` and sees only its own
traffic: another party's message id answers 404, exactly like an id that does not exist.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from gateway.core.errors import StoreError
from gateway.core.route import Party
from gateway.logs import get_logger
from gateway.service import (
    GatewayService,
    IntakeClosedError,
    MessageTooLargeError,
    NotFoundError,
    OperatorRefusedError,
    event_summary,
    message_summary,
)

log = get_logger("gateway.server")

SERVICE: web.AppKey[GatewayService] = web.AppKey("service", GatewayService)
MAX_BODY: web.AppKey[int] = web.AppKey("max_body", int)

MAILBOX_DEFAULT_LIMIT = 100
MAILBOX_MAX_LIMIT = 1000
_CHUNK = 64 * 1024


def _error(status: int, reason: str, **extra: Any) -> web.Response:
    return web.json_response({"error": reason, **extra}, status=status)


def _party(request: web.Request) -> Party:
    """The authenticated party, or a 401 response raised as an exception."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    party = None
    if scheme.lower() == "bearer" and token.strip():
        party = request.app[SERVICE].registry.authenticate(token.strip())
    if party is None:
        raise web.HTTPUnauthorized(
            text=json.dumps({"error": "missing or unknown bearer token"}),
            content_type="application/json",
            headers={"WWW-Authenticate": 'Bearer realm="ijw-gateway"'},
        )
    return party


async def _read_limited(request: web.Request, limit: int) -> bytes | None:
    """The body, or None when it is larger than ``limit`` (without reading all of it)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def post_message(request: web.Request) -> web.Response:
    """Intake: 202 only once the bytes are durably stored."""
    party = _party(request)
    service = request.app[SERVICE]
    if not service.accepting:
        return _error(503, "the gateway is shutting down; try again shortly")
    limit = request.app[MAX_BODY]
    body = await _read_limited(request, limit)
    if body is None:
        return _error(413, f"message larger than the limit of {limit} bytes", limit=limit)
    if not body:
        return _error(400, "empty body; send the message XML as the request body")
    try:
        receipt = await service.submit(party, body, actor=f"party:{party.id}")
    except MessageTooLargeError as exc:
        return _error(413, str(exc), limit=service.max_message_bytes)
    except IntakeClosedError:
        return _error(503, "the gateway is shutting down; try again shortly")
    except StoreError as exc:
        log.error("intake_store_failed", party=party.id, error=str(exc))
        return _error(503, f"message not accepted: the store is unavailable ({exc})")
    msg = receipt.message
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
        view = await request.app[SERVICE].view(party, request.match_info["id"])
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
        messages = await request.app[SERVICE].mailbox(party, after, limit)
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
        raw = await request.app[SERVICE].mailbox_payload(party, request.match_info["id"])
    except NotFoundError:
        return _error(404, "no such message in your mailbox")
    except OperatorRefusedError as exc:
        return _error(409, str(exc))
    return web.Response(body=raw, content_type="application/xml", charset="utf-8")


async def ack_mailbox_message(request: web.Request) -> web.Response:
    """The party has the message: it becomes delivered."""
    party = _party(request)
    try:
        msg = await request.app[SERVICE].ack(party, request.match_info["id"])
    except NotFoundError:
        return _error(404, "no such message in your mailbox")
    except OperatorRefusedError as exc:
        return _error(409, str(exc))
    except StoreError as exc:
        return _error(503, f"acknowledgement not recorded: the store is unavailable ({exc})")
    return web.json_response({"id": msg.id, "state": msg.state.value})


async def healthz(_request: web.Request) -> web.Response:
    """The process is alive."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when intake is open and the store answers."""
    service = request.app[SERVICE]
    healthy = await service.healthy()
    if not service.accepting:
        return _error(503, "shutting down")
    if not healthy:
        return _error(503, "store unavailable")
    return web.json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format."""
    service = request.app[SERVICE]
    try:
        text = await service.render_metrics()
    except StoreError as exc:
        return _error(503, f"store unavailable ({exc})")
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


def create_app(service: GatewayService, max_body_bytes: int | None = None) -> web.Application:
    """The aiohttp application for a service."""
    limit = max_body_bytes or service.max_message_bytes
    # aiohttp's own limit answers with plain text; ours (in post_message) answers JSON, so
    # aiohttp's is set just above it as a backstop only.
    app = web.Application(client_max_size=limit + 1)
    app[SERVICE] = service
    app[MAX_BODY] = limit
    app.router.add_post("/v1/messages", post_message)
    app.router.add_get("/v1/messages/{id}", get_message)
    app.router.add_get("/v1/mailbox", get_mailbox)
    app.router.add_get("/v1/mailbox/{id}", get_mailbox_message)
    app.router.add_post("/v1/mailbox/{id}/ack", ack_mailbox_message)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app
