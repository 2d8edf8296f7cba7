"""The access log, message ids on log lines, and /metrics as prometheus_client exposes it,
against a real server on loopback."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gateway.core.model import State
from gateway.logs import configure_logging, reset_logging
from tests.integration.conftest import (
    METRICS_TOKEN,
    Harness,
    example,
    sample,
    samples,
    token,
)


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    configure_logging(json=True, stream=out)
    try:
        yield out
    finally:
        reset_logging()


def _entries(stream: io.StringIO, start: int = 0) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue()[start:].splitlines()]


async def test_one_access_line_per_request(harness: Harness, log_stream: io.StringIO) -> None:
    """Method, canonical route, party, status, duration and request id; a sane X-Request-ID
    is kept and echoed, anything else replaced by a generated one; the token never shows."""
    posted = await harness.client.post(
        "/v1/messages",
        data=example("JW301"),
        headers={"Authorization": f"Bearer {token('diemen')}", "X-Request-ID": "abc-123"},
    )
    assert posted.status == 202 and posted.headers["X-Request-ID"] == "abc-123"
    message_id = (await posted.json())["id"]
    fetched = await harness.client.get(
        f"/v1/messages/{message_id}",
        headers={"Authorization": f"Bearer {token('diemen')}", "X-Request-ID": "x" * 65},
    )
    assert fetched.status == 200
    generated = fetched.headers["X-Request-ID"]
    assert generated != "x" * 65 and len(generated) == 32
    refused = await harness.client.get(
        "/v1/mailbox",
        headers={"Authorization": "Bearer not-a-token", "X-Request-ID": "bsn-999912347"},
    )
    assert refused.status == 401
    assert refused.headers["X-Request-ID"] not in ("", "bsn-999912347")

    access = [e for e in _entries(log_stream) if e["event"] == "http_request"]
    assert [(e["method"], e["route"], e["party"], e["status"]) for e in access] == [
        ("POST", "/v1/messages", "diemen", 202),
        ("GET", "/v1/messages/{id}", "diemen", 200),
        ("GET", "/v1/mailbox", None, 401),
    ]
    assert [e["request_id"] for e in access] == [
        "abc-123",
        generated,
        refused.headers["X-Request-ID"],
    ]
    assert [e["message_id"] for e in access[:2]] == [message_id, message_id]
    assert all(isinstance(e["duration_ms"], float) and e["duration_ms"] >= 0 for e in access)
    assert token("diemen") not in log_stream.getvalue()


async def test_every_line_of_a_submission_carries_its_message_id(
    harness: Harness, log_stream: io.StringIO
) -> None:
    """Each line logged while a message is received and processed names it, and the request."""
    posted = await harness.client.post(
        "/v1/messages",
        data=example("JW301"),
        headers={"Authorization": f"Bearer {token('diemen')}", "X-Request-ID": "sub-1"},
    )
    assert posted.status == 202
    message_id = (await posted.json())["id"]
    entries = _entries(log_stream)
    assert {e["event"] for e in entries} >= {"message_received", "http_request"}
    assert [e for e in entries if e.get("message_id") != message_id] == []
    assert {e.get("request_id") for e in entries} == {"sub-1"}

    mark = len(log_stream.getvalue())
    report = await harness.gateway.delivery.tick()
    assert report.delivered == 0  # provider-a fetches by mailbox; nothing to push
    ack = await harness.client.post(
        f"/v1/mailbox/{message_id}/ack", headers={"Authorization": f"Bearer {token('provider-a')}"}
    )
    assert ack.status == 200
    # The pass's own lines are about the node (its summary, taking the folders), not a message.
    about = [
        e
        for e in _entries(log_stream, mark)
        if e["event"] not in {"delivery_tick", "folders_owned"}
    ]
    assert about and all(e.get("message_id") == message_id for e in about)


async def test_metrics_show_latencies_and_process_figures(
    make_harness: Callable[..., Any],
) -> None:
    """After a submission, a mailbox ack and a folder delivery the histograms have counted
    them; waiting states only in the queue depth; process figures are there. Each gateway
    has its own registry."""
    harness: Harness = await make_harness()
    other: Harness = await make_harness()
    before = await harness.metrics()
    assert sample(before, "gateway_intake_latency_seconds_count", party="diemen") is None

    to_mailbox = await harness.submit("diemen", example("JW301"))  # for provider-a (mailbox)
    to_folder = await harness.submit("provider-a", example("JW302"))  # for diemen (folder)
    harness.clock.advance(seconds=90)
    ack = await harness.client.post(
        f"/v1/mailbox/{to_mailbox['id']}/ack",
        headers={"Authorization": f"Bearer {token('provider-a')}"},
    )
    assert ack.status == 200
    harness.clock.advance(seconds=30)
    assert (await harness.gateway.delivery.tick()).delivered == 1
    delivered = harness.store.get(str(to_folder["id"]))
    assert delivered is not None and delivered.state is State.DELIVERED

    text = await harness.metrics()
    assert sample(text, "gateway_intake_latency_seconds_count", party="diemen") == 1
    assert sample(text, "gateway_intake_latency_seconds_count", party="provider-a") == 1
    # The FakeClock measures the wait from queued to delivered: 90 s and 120 s.
    assert sample(text, "gateway_delivery_latency_seconds_sum", party="provider-a") == 90
    assert sample(text, "gateway_delivery_latency_seconds_sum", party="diemen") == 120
    assert sample(text, "gateway_delivery_latency_seconds_bucket", party="diemen", le="60.0") == 0
    assert sample(text, "gateway_delivery_latency_seconds_bucket", party="diemen", le="300.0") == 1
    assert sample(text, "gateway_messages_delivered_total", party="diemen") == 1
    assert {dict(k)["state"] for k in samples(text, "gateway_queue_depth")} <= {
        "received",
        "queued",
        "held",
        "sending",
    }
    assert samples(text, "gateway_dead_messages") == {}
    assert (sample(text, "process_resident_memory_bytes") or 0) > 0
    assert sample(text, "gateway_write_batches_total") == harness.service.commits.commits

    untouched = await other.metrics()
    assert sample(untouched, "gateway_messages_received_total", party="diemen") == 0
    assert sample(untouched, "gateway_intake_latency_seconds_count", party="diemen") is None


async def test_metrics_answer_in_prometheus_text_format(harness: Harness) -> None:
    response = await harness.client.get(
        "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
