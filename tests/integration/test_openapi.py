"""The OpenAPI document (gateway/openapi.json) against the server that really answers.

The document must be valid OpenAPI 3.1 and name exactly the routes the application serves.
Then one gateway on a loopback port is driven through every documented (path, method,
status) it can produce; each real answer must be documented, carry the documented headers
and media type, and its body must validate against the documented schema.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from jsonschema import Draft202012Validator
from multidict import CIMultiDict, CIMultiDictProxy
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from gateway.core.errors import StoreError
from gateway.daemon.server import BODIES, create_app
from tests.integration.conftest import (
    METRICS_TOKEN,
    Harness,
    example,
    start_harness,
    stop_harness,
    token,
    trickle_body,
    variant,
)

DOCUMENT: dict[str, Any] = json.loads(
    resources.files("gateway").joinpath("openapi.json").read_text(encoding="utf-8")
)
BASE_URI = "urn:ijw-gateway:openapi"


MAX_MESSAGE_BYTES = 100_000
MIN_BYTES_PER_SECOND = 1000

Headers = Mapping[str, str]


def _absolute_refs(node: Any) -> Any:
    """``node`` with its document-local ``$ref``s made absolute (the schema is validated on
    its own, outside the document)."""
    if isinstance(node, dict):
        return {
            key: (BASE_URI + value if key == "$ref" else _absolute_refs(value))
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_absolute_refs(item) for item in node]
    return node


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    """A response or header object, following its ``$ref`` within the document."""
    while "$ref" in node:
        target: Any = DOCUMENT
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


class Conformance:
    """Checks real answers against the document and records which were seen."""

    def __init__(self) -> None:
        resource = Resource.from_contents(DOCUMENT, default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource(BASE_URI, resource)
        self.exercised: set[tuple[str, str, str]] = set()

    def validate(self, instance: object, schema: dict[str, Any]) -> None:
        validator = Draft202012Validator(
            _absolute_refs(copy.deepcopy(schema)),
            registry=self.registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]
        assert not errors, f"{instance!r} does not match {schema}: {errors}"

    async def check(self, method: str, path: str, response: ClientResponse) -> bytes:
        """The response body, after checking the response against ``method path``."""
        body = await response.read()
        self.check_raw(method, path, response.status, response.headers, body)
        return body

    def check_raw(self, method: str, path: str, status: int, headers: Headers, body: bytes) -> None:
        operation = DOCUMENT["paths"][path][method]
        documented = operation["responses"].get(str(status))
        where = f"{method.upper()} {path} -> {status} {body[:300]!r}"
        assert documented is not None, f"undocumented status: {where}"
        documented = _resolve(documented)
        for name, declared in documented.get("headers", {}).items():
            header = _resolve(declared)
            value = headers.get(name)
            if header.get("required"):
                assert value is not None, f"no {name} header: {where}"
            if value is not None:
                self.validate(value, header["schema"])
        media = headers.get("Content-Type", "").partition(";")[0].strip()
        content = documented["content"]
        assert media in content, f"{media} is not documented ({list(content)}): {where}"
        schema = content[media]["schema"]
        self.validate(json.loads(body) if media == "application/json" else body.decode(), schema)
        self.exercised.add((path, method, str(status)))


def _documented_statuses() -> set[tuple[str, str, str]]:
    return {
        (path, method, status)
        for path, operations in DOCUMENT["paths"].items()
        for method, operation in operations.items()
        for status in operation["responses"]
    }


def test_the_document_is_valid_openapi_3_1() -> None:
    validate_openapi(DOCUMENT)
    assert DOCUMENT["openapi"].startswith("3.1.")


async def test_the_document_names_exactly_the_routes_served(harness: Harness) -> None:
    served = {
        (route.resource.canonical, route.method.lower())
        for route in harness.gateway.web_app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    documented = {(path, method) for path, ops in DOCUMENT["paths"].items() for method in ops}
    assert served == documented


async def _trickled_post(harness: Harness) -> tuple[int, CIMultiDictProxy[str], bytes]:
    """A POST whose body arrives at 400 B/s against a minimum of 1000 B/s: status, headers
    and body of the answer (read off a raw socket; aiohttp's client cannot send this slowly)."""
    server = harness.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(
        b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 50000\r\n"
        + f"Authorization: Bearer {token('diemen')}\r\n\r\n".encode()
    )

    sending = trickle_body(writer)
    try:
        async with asyncio.timeout(8):
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers: CIMultiDict[str] = CIMultiDict()
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name:
                    headers.add(name.strip(), value.strip())
            body = await reader.readexactly(int(headers["Content-Length"]))
    finally:
        sending.cancel()
        writer.close()
    return int(lines[0].split(" ", 2)[1]), CIMultiDictProxy(headers), body


@pytest.fixture
async def served(tmp_path: Path) -> Any:
    raw = variant(example("JW301"), 1)
    harness = await start_harness(
        tmp_path,
        extra=f"[limits]\nmax_message_bytes = {MAX_MESSAGE_BYTES}\n"
        f"party_bytes_per_window = {len(raw) * 5}",
        server=f"body_min_bytes_per_second = {MIN_BYTES_PER_SECOND}\nbody_grace_seconds = 0.2",
    )
    yield harness
    await stop_harness(harness)


async def test_every_documented_response_is_what_the_server_returns(
    served: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness, seen = served, Conformance()
    client = harness.client

    def auth(party: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token(party)}"}

    def broken(*_args: object) -> object:
        raise StoreError("disk I/O error")

    async def submit(party: str, body: bytes) -> tuple[int, dict[str, Any]]:
        response = await harness.post(party, body)
        data = await seen.check("post", "/v1/messages", response)
        return response.status, json.loads(data)

    # -- intake
    raw = variant(example("JW301"), 1)
    status, receipt = await submit("diemen", raw)
    assert status == 202 and receipt["state"] == "queued" and not receipt["duplicate"]
    message_id = receipt["id"]
    status, again = await submit("diemen", raw)
    assert (status, again["id"], again["duplicate"]) == (202, message_id, True)
    status, refused = await submit("provider-a", variant(example("JW301"), 2))
    assert (status, refused["state"]) == (202, "rejected") and refused["reason"]
    assert (await submit("diemen", b""))[0] == 400
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}):
        response = await client.post("/v1/messages", data=raw, headers=headers)
        await seen.check("post", "/v1/messages", response)
        assert response.status == 401
    status, too_large = await submit("diemen", b"<" * (MAX_MESSAGE_BYTES + 1))
    assert (status, too_large["limit"]) == (413, MAX_MESSAGE_BYTES)
    status, headers, body = await _trickled_post(harness)
    seen.check_raw("post", "/v1/messages", status, headers, body)
    assert status == 408

    budget = harness.gateway.web_app[BODIES]
    taken = 0
    while budget.try_take(1):
        taken += 1
    response = await harness.post("diemen", raw)
    await seen.check("post", "/v1/messages", response)
    assert (response.status, response.headers["Retry-After"]) == (503, "2")
    for _ in range(taken):
        budget.give_back(1)

    monkeypatch.setattr(harness.service.intake.volume, "free_disk", lambda: 0)
    response = await harness.post("diemen", variant(raw, 3))
    await seen.check("post", "/v1/messages", response)
    assert response.status == 503 and "Retry-After" in response.headers
    monkeypatch.undo()
    monkeypatch.setattr(harness.store, "write_batch", broken)
    response = await harness.post("diemen", variant(raw, 3))
    await seen.check("post", "/v1/messages", response)
    assert response.status == 503
    monkeypatch.undo()

    # The same BerichtIdentificatie with other content: refused, naming the earlier message.
    reused = await submit("diemen", raw.replace(b"?>", b"?><!-- sent again -->", 1))
    assert reused[0] == 409 and reused[1]["earlier"] == message_id

    # The party's allowance (five messages' worth per window) runs out.
    statuses = [(await submit("diemen", variant(raw, n)))[0] for n in range(10, 16)]
    assert statuses[-1] == 429 and 202 in statuses

    # -- message status
    path = f"/v1/messages/{message_id}"
    for party, status in (("diemen", 200), ("provider-a", 200), ("provider-b", 404)):
        response = await harness.get(party, path)
        await seen.check("get", "/v1/messages/{id}", response)
        assert response.status == status
    for response in (
        await harness.get("diemen", "/v1/messages/01KQ00000000000000000000ZZ"),
        await client.get(path),
    ):
        await seen.check("get", "/v1/messages/{id}", response)
        assert response.status in (401, 404)

    # -- mailbox
    page = json.loads(
        await seen.check("get", "/v1/mailbox", await harness.get("provider-a", "/v1/mailbox"))
    )
    assert message_id in [m["id"] for m in page["messages"]]
    first = json.loads(
        await seen.check(
            "get", "/v1/mailbox", await harness.get("provider-a", "/v1/mailbox?limit=1")
        )
    )
    assert first["more"] is True and first["next_after"] == first["messages"][0]["id"]
    for party, query, status in (
        ("provider-a", "?limit=x", 400),
        ("provider-a", "?limit=0", 400),
        ("provider-b", "", 409),
    ):
        response = await harness.get(party, f"/v1/mailbox{query}")
        await seen.check("get", "/v1/mailbox", response)
        assert response.status == status
    await seen.check("get", "/v1/mailbox", await client.get("/v1/mailbox"))

    fetch = f"/v1/mailbox/{message_id}"
    response = await harness.get("provider-a", fetch)
    assert await seen.check("get", "/v1/mailbox/{id}", response) == raw
    for response in (
        await harness.get("amsterdam", fetch),
        await harness.get("provider-b", fetch),
        await client.get(fetch),
    ):
        await seen.check("get", "/v1/mailbox/{id}", response)
    ack = f"/v1/mailbox/{message_id}/ack"
    monkeypatch.setattr(harness.store, "write_batch", broken)
    response = await client.post(ack, headers=auth("provider-a"))
    await seen.check("post", "/v1/mailbox/{id}/ack", response)
    assert response.status == 503
    monkeypatch.undo()
    for party in ("provider-a", "provider-a", "amsterdam", "provider-b"):
        response = await client.post(ack, headers=auth(party))
        await seen.check("post", "/v1/mailbox/{id}/ack", response)
    await seen.check("post", "/v1/mailbox/{id}/ack", await client.post(ack))

    # -- operations
    served_document = await seen.check(
        "get", "/v1/openapi.json", await client.get("/v1/openapi.json")
    )
    assert json.loads(served_document) == DOCUMENT
    await seen.check("get", "/healthz", await client.get("/healthz"))
    await seen.check("get", "/readyz", await client.get("/readyz"))
    metrics = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    await seen.check("get", "/metrics", await client.get("/metrics", headers=metrics))
    await seen.check("get", "/metrics", await client.get("/metrics", headers=auth("bvo")))
    monkeypatch.setattr(harness.store, "counts_by_party", broken)
    await seen.check("get", "/metrics", await client.get("/metrics", headers=metrics))
    monkeypatch.undo()
    unconfigured = TestClient(TestServer(create_app(harness.service)))
    await unconfigured.start_server()
    try:
        response = await unconfigured.get("/metrics", headers=metrics)
        await seen.check("get", "/metrics", response)
    finally:
        await unconfigured.close()

    harness.service.intake.stop()
    await seen.check("get", "/readyz", await client.get("/readyz"))
    response = await harness.post("diemen", variant(raw, 4))
    await seen.check("post", "/v1/messages", response)
    assert response.status == 503 and "Retry-After" not in response.headers

    assert _documented_statuses() - seen.exercised == set()
