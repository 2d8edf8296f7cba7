"""The HTTP API on a real SQLite store: intake, visibility, mailbox, limits and failures."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from gateway.core.errors import StoreError
from gateway.core.model import Direction, State
from gateway.core.rules import RuleContext
from gateway.core.validate import validate
from gateway.store.base import MessageQuery
from tests.integration.conftest import Harness, example, sample, samples, variant


async def test_submit_routes_and_shows_history_to_sender_and_recipient(harness: Harness) -> None:
    """JW301 from Diemen is stored, queued for provider A, and visible only to those two."""
    data = await harness.submit("diemen", example("JW301"))
    assert data["state"] == "queued"
    msg = harness.store.get(str(data["id"]))
    assert msg is not None and msg.recipient == "provider-a" and msg.message_type == "JW301"
    assert harness.store.payload(msg.id) == example("JW301")

    for party in ("diemen", "provider-a"):
        response = await harness.get(party, f"/v1/messages/{msg.id}")
        assert response.status == 200
        body = await response.json()
        assert [e["to"] for e in body["history"]] == ["received", "queued"]
    for party in ("provider-b", "amsterdam", "bvo"):
        response = await harness.get(party, f"/v1/messages/{msg.id}")
        assert response.status == 404
    assert (await harness.get("diemen", "/v1/messages/NOPE")).status == 404


async def test_every_official_example_accepted_from_its_transmitter(harness: Harness) -> None:
    """Each valid example, sent by the party its header names, is queued (JW318 is XSD-bad)."""
    transmitter = {
        "0384": "diemen",
        "0363": "amsterdam",
        "42420001": "provider-a",
        "65656055": "provider-b",
    }
    for name in (
        "JW301",
        "JW302",
        "JW305",
        "JW307",
        "JW315",
        "JW317",
        "JW318",
        "JW319",
        "JW320",
        "JW323",
        "JW325",
    ):
        raw = example(name)
        report = validate(raw, harness.service.schemas, RuleContext())
        assert report.document is not None
        header = report.document.header_text
        retour = name in {"JW302", "JW320"}
        sender = transmitter[header("Ontvanger") if retour else header("Afzender")]
        data = await harness.submit(sender, raw)
        expected = "rejected" if name == "JW318" else "queued"
        assert data["state"] == expected, (name, data)


async def test_resubmission_is_idempotent(harness: Harness) -> None:
    """The same message twice: same id, flagged duplicate, processed once."""
    first = await harness.submit("diemen", example("JW301"))
    second = await harness.submit("diemen", example("JW301"))
    assert second["id"] == first["id"]
    assert (first["duplicate"], second["duplicate"]) == (False, True)
    history = harness.store.history(str(first["id"]))
    assert [e.to_state for e in history] == [State.RECEIVED, State.QUEUED]
    assert len(harness.store.query(MessageQuery(sender="diemen"))) == 1
    third = await harness.submit("diemen", variant(example("JW301"), 2))
    assert third["id"] != first["id"]


async def test_sender_identity_mismatch_is_refused(harness: Harness) -> None:
    """Provider A cannot send a message whose header names Diemen as sender."""
    data = await harness.submit("provider-a", example("JW301"))
    assert data["state"] == "rejected"
    assert "sender identity mismatch" in str(data["reason"])
    msg = harness.store.get(str(data["id"]))
    assert msg is not None and msg.recipient is None
    assert harness.store.query(MessageQuery(recipient="provider-a")) == []


async def test_unknown_recipient_is_rejected_and_kept(harness: Harness) -> None:
    """A header Ontvanger no party has: rejected with a clear reason, stored for inspection."""
    raw = example("JW301").replace(b">42420001<", b">99999999<")
    data = await harness.submit("diemen", raw)
    assert data["state"] == "rejected"
    assert data["reason"] == "unknown recipient 99999999"
    assert harness.store.payload(str(data["id"])) == raw


async def test_gateway_answers_for_municipality_with_retour(harness: Harness) -> None:
    """JW305 to Amsterdam (answered by the BVO): routed, and a JW306 goes back to the sender."""
    data = await harness.submit("provider-b", example("JW305"))
    assert data["state"] == "queued"
    retours = harness.store.query(MessageQuery(recipient="provider-b"))
    assert len(retours) == 1
    retour = retours[0]
    assert retour.direction is Direction.GENERATED
    assert retour.in_reply_to == data["id"]
    assert retour.message_type == "JW306"
    assert retour.sender == "amsterdam" and retour.state is State.QUEUED
    raw = harness.store.payload(retour.id)
    assert raw is not None
    report = validate(raw, harness.service.schemas, RuleContext())
    assert report.message_type == "JW306" and report.level.value == "ok", report.findings
    assert b"RetourCode" not in raw  # accepted: a header without codes

    await harness.gateway.delivery.tick()
    delivered = harness.store.get(retour.id)
    assert delivered is not None and delivered.state is State.DELIVERED
    assert (harness.folder / "outbox" / "provider-b" / f"{retour.id}.xml").read_bytes() == raw
    # The retour's sender side (Amsterdam, on whose behalf it was sent) can follow it.
    assert (await harness.get("amsterdam", f"/v1/messages/{retour.id}")).status == 200


async def test_rejected_message_for_answered_party_gets_error_retour(harness: Harness) -> None:
    """A JW305 to Amsterdam failing CS002 (BSN 11-proof): rejected, and a JW306 with 0001."""
    raw = example("JW305").replace(b">999900006<", b">999900007<")
    data = await harness.submit("provider-b", raw)
    assert data["state"] == "rejected"
    assert "CS002" in str(data["reason"])
    assert [f["rule"] for f in harness.store.findings(str(data["id"]))] == ["CS002"]
    retours = harness.store.query(MessageQuery(recipient="provider-b"))
    assert len(retours) == 1 and retours[0].message_type == "JW306"
    assert retours[0].in_reply_to == data["id"]
    payload = harness.store.payload(retours[0].id)
    assert payload is not None and re.search(rb"RetourCode>0001<", payload)
    # Amsterdam never sees the rejected message.
    assert (await harness.get("amsterdam", f"/v1/messages/{data['id']}")).status == 404


async def test_missing_or_wrong_token_is_401(harness: Harness) -> None:
    """No token, or an unknown one: 401 and nothing stored."""
    response = await harness.client.post("/v1/messages", data=example("JW301"))
    assert response.status == 401
    response = await harness.client.post(
        "/v1/messages", data=example("JW301"), headers={"Authorization": "Bearer nope"}
    )
    assert response.status == 401
    assert harness.store.query(MessageQuery()) == []


async def test_oversize_body_is_413_with_json_reason(make_harness: Callable[..., Any]) -> None:
    """A body over the limit is refused with 413 and a JSON reason; nothing is stored."""
    harness: Harness = await make_harness(extra="[limits]\nmax_message_bytes = 1000")
    response = await harness.post("diemen", example("JW301"))
    assert response.status == 413
    body = await response.json()
    assert "limit of 1000 bytes" in body["error"]
    assert harness.store.query(MessageQuery()) == []


async def test_store_failure_answers_503_never_202(harness: Harness, monkeypatch: Any) -> None:
    """When the store cannot save, intake answers 503 with a reason."""

    def broken(*_args: object) -> object:
        raise StoreError("saving a received message failed: disk I/O error")

    monkeypatch.setattr(harness.store, "write_batch", broken)
    response = await harness.post("diemen", example("JW301"))
    assert response.status == 503
    assert "store is unavailable" in (await response.json())["error"]
    monkeypatch.undo()
    assert harness.store.query(MessageQuery()) == []


async def test_store_down_makes_readyz_fail(harness: Harness, monkeypatch: Any) -> None:
    """/healthz stays up while /readyz reports the store."""
    assert (await harness.client.get("/readyz")).status == 200
    monkeypatch.setattr(harness.store, "healthy", lambda: False)
    assert (await harness.client.get("/readyz")).status == 503
    assert (await harness.client.get("/healthz")).status == 200


async def test_mailbox_list_fetch_ack_and_isolation(harness: Harness) -> None:
    """Provider A pages through its mailbox, fetches and acks; nobody else sees its mail."""
    ids = [
        str((await harness.submit("diemen", variant(example("JW301"), n)))["id"]) for n in range(3)
    ]
    page = await (await harness.get("provider-a", "/v1/mailbox?limit=2")).json()
    assert [m["id"] for m in page["messages"]] == ids[:2] and page["more"] is True
    rest = await (await harness.get("provider-a", f"/v1/mailbox?after={page['next_after']}")).json()
    assert [m["id"] for m in rest["messages"]] == ids[2:]

    response = await harness.get("provider-a", f"/v1/mailbox/{ids[0]}")
    assert response.status == 200
    assert await response.read() == variant(example("JW301"), 0)
    assert response.content_type == "application/xml"
    fetched_at = harness.clock.now()
    harness.clock.advance(seconds=30)
    again = await harness.get("provider-a", f"/v1/mailbox/{ids[0]}")
    assert again.status == 200  # a second GET right after the first is not noted again
    harness.clock.advance(seconds=30)

    # Amsterdam has a mailbox too but sees none of provider A's messages.
    assert (await (await harness.get("amsterdam", "/v1/mailbox")).json())["messages"] == []
    assert (await harness.get("amsterdam", f"/v1/mailbox/{ids[0]}")).status == 404
    ack = await harness.client.post(
        f"/v1/mailbox/{ids[0]}/ack", headers={"Authorization": "Bearer token-amsterdam"}
    )
    assert ack.status == 404
    # A folder party has no mailbox.
    assert (await harness.get("provider-b", "/v1/mailbox")).status == 409

    ack = await harness.client.post(
        f"/v1/mailbox/{ids[0]}/ack", headers={"Authorization": "Bearer token-provider-a"}
    )
    assert ack.status == 200 and (await ack.json())["state"] == "delivered"
    again = await harness.client.post(
        f"/v1/mailbox/{ids[0]}/ack", headers={"Authorization": "Bearer token-provider-a"}
    )
    assert again.status == 200 and (await again.json())["state"] == "delivered"
    listed = await (await harness.get("provider-a", "/v1/mailbox")).json()
    assert [m["id"] for m in listed["messages"]] == ids[1:]
    history = harness.store.history(ids[0])
    states = [e.to_state for e in history]
    assert states == [State.RECEIVED, State.QUEUED, State.QUEUED, State.SENDING, State.DELIVERED]
    # The GET is noted when it happened (no state move), the ack a minute later.
    fetch = history[2]
    assert (fetch.from_state, fetch.reason, fetch.actor) == (
        State.QUEUED,
        "fetched",
        "party:provider-a",
    )
    assert fetch.at == fetched_at
    assert history[-1].reason == "acknowledged"
    assert history[-1].at == fetched_at + dt.timedelta(seconds=60)


async def test_metrics_exposes_counters_and_queue_figures(harness: Harness) -> None:
    """/metrics: received/rejected counters and per-party queue depth and age."""
    await harness.submit("diemen", example("JW301"))
    await harness.submit("provider-a", example("JW301"))  # identity mismatch → rejected
    harness.clock.advance(seconds=90)
    text = await harness.metrics()
    assert sample(text, "gateway_messages_received_total", party="diemen") == 1
    assert sample(text, "gateway_messages_rejected_total", party="provider-a") == 1
    assert sample(text, "gateway_queue_depth", party="provider-a", state="queued") == 1
    assert sample(text, "gateway_oldest_waiting_seconds", party="provider-a") == 90
    # Every configured party shows every counter, at zero before anything happened to it.
    dead = samples(text, "gateway_messages_dead_total")
    assert dead and set(dead.values()) == {0}
    assert len(dead) == len(list(harness.service.registry))


async def test_queue_depth_counts_waiting_messages_only(harness: Harness) -> None:
    """A delivered (acknowledged) message is in no queue: the depth counts queued and held."""
    first = await harness.submit("diemen", example("JW301"))
    await harness.submit("diemen", variant(example("JW301"), 2))
    ack = await harness.client.post(
        f"/v1/mailbox/{first['id']}/ack", headers={"Authorization": "Bearer token-provider-a"}
    )
    assert ack.status == 200
    text = await harness.metrics()
    assert samples(text, "gateway_queue_depth") == {
        (("party", "provider-a"), ("state", "queued")): 1
    }
