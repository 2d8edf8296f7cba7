"""After an operator's mapping decision the held message goes through the whole pipeline.

A legacy provider (provider-b, "old" codes) asks Diemen (0384, "new" codes, answered by the
BVO) for an allocation (JW315) of 45A48, which maps one-to-many (45P01 | 45P02): the message is
held before the cross-message rules run. ``decide_mapping`` must then run those rules on the
translated request, answer the provider with a JW316, write the register and the correlation,
and move the message to queued, held or rejected. A dry run writes nothing.

(A start or stop (JW305/JW307) is never held for a decision an operator can make: follow-up
messages are translated by the ledger only, and ``_decidable`` refuses a recorded pair.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from lxml import etree

from gateway.core.ledger import LedgerKey, Origin
from gateway.core.mapping_tables import Product
from gateway.core.model import Message, State
from gateway.service.operator import Operator
from gateway.store.base import AuditQuery, MessageQuery
from gateway.translator import NEEDS_MAPPING_DECISION, decide_mapping
from tests.integration import test_translation_daemon as daemon
from tests.integration.conftest import Harness, example
from tests.unit.translation.builders import products, set_text, to_bytes

ACTOR = "operator:test"
DIEMEN, PROVIDER = daemon.DIEMEN, daemon.PROVIDER
_schema_valid = daemon._schema_valid

make_mixed = daemon.make_mixed  # the mixed-generation region's fixture, used by ``mixed``


@pytest.fixture
async def mixed(make_mixed: Callable[[], object]) -> Harness:
    """A gateway for the mixed region of test_translation_daemon.py."""
    return await daemon._mixed(make_mixed)


def _request(reference: str, code: str, identificatie: str) -> bytes:
    """The JW315 example cut to one requested product, from provider-b to Diemen."""
    tree = etree.fromstring(example("JW315")).getroottree()
    root = tree.getroot()
    set_text(root, "Header/Afzender", PROVIDER)
    set_text(root, "Header/Ontvanger", DIEMEN)
    set_text(root, "Header/BerichtIdentificatie/Identificatie", identificatie)
    set_text(root, "Header/BerichtIdentificatie/Dagtekening", "2026-04-20")
    requested = list(root.iter("{*}AangevraagdProduct"))
    for extra in requested[1:]:
        extra.getparent().remove(extra)  # type: ignore[union-attr]
    product = requested[0]
    set_text(product, "ReferentieAanbieder", reference)
    set_text(product, "Product/Categorie", code[:2])
    set_text(product, "Product/Code", code)
    set_text(product, "BeschikkingIngangsdatum", "2026-04-01")
    set_text(product, "ToewijzingIngangsdatum", "2026-05-01")
    set_text(product, "ToewijzingEinddatum", "2026-12-31")
    set_text(product, "Omvang/Eenheid", "04")
    return to_bytes(tree)


def _retourcodes(xml: bytes) -> dict[str, set[str]]:
    """RetourCode values by the local name of the element that carries them."""
    found: dict[str, set[str]] = {}
    for code in etree.fromstring(xml).iter("{*}RetourCode"):
        holder = code.getparent()
        holder = holder.getparent() if holder is not None else None  # RetourCodes -> owner
        name = etree.QName(holder).localname if holder is not None else "?"
        found.setdefault(name, set()).add(code.text or "")
    return found


def _retours_of(harness: Harness, message_id: str) -> list[Message]:
    return [m for m in harness.store.query(MessageQuery(limit=200)) if m.in_reply_to == message_id]


def _registered_requests(harness: Harness) -> set[str]:
    return {exchange.message.id for exchange in harness.store.request_exchanges()}


async def _held_request(harness: Harness, reference: str, identificatie: str) -> str:
    data = await harness.submit("provider-b", _request(reference, "45A48", identificatie))
    message_id = str(data["id"])
    msg = harness.store.get(message_id)
    assert msg is not None and msg.state is State.HELD
    assert (msg.reason or "").startswith(NEEDS_MAPPING_DECISION)
    return message_id


async def test_a_decided_request_is_answered_registered_and_correlated(
    mixed: Harness,
) -> None:
    harness = mixed
    message_id = await _held_request(harness, "REF-A1", "REQ000000001")
    # Held before the dossier rules: no answer, no register entries in the sender's codes.
    assert _retours_of(harness, message_id) == []
    assert message_id not in _registered_requests(harness)

    done = await decide_mapping(
        harness.service.decisions, message_id, "45/45P01", reason="gezinsplan", actor=ACTOR
    )

    assert done.message.state is State.QUEUED and not done.dry_run
    assert "mapping decided (gezinsplan)" in (done.message.reason or "")
    assert products(harness.store.delivery_payload(message_id) or b"") == [("45", "45P01")]
    entry = harness.store.ledger_entry(LedgerKey.request(DIEMEN, "REF-A1"))
    assert entry is not None and entry.origin is Origin.OPERATOR
    assert (entry.original, entry.translated) == (Product("45", "45A48"), Product("45", "45P01"))
    (event,) = [e for e in harness.store.history(message_id) if e.from_state is State.HELD]
    assert (event.to_state, event.actor) == (State.QUEUED, ACTOR)

    # The provider gets a clean JW316 on Diemen's behalf (a retour without faults is its header).
    (retour,) = _retours_of(harness, message_id)
    assert (retour.message_type, retour.recipient, retour.state) == (
        "JW316",
        "provider-b",
        State.QUEUED,
    )
    assert done.retour is not None and done.retour.id == retour.id
    answer = harness.store.delivery_payload(retour.id)
    assert answer is not None and _schema_valid(answer)
    assert _retourcodes(answer) == {}

    # Register and correlation: the request counts, and its exchange is closed by the JW316.
    assert message_id in _registered_requests(harness)
    assert harness.store.linked_message(message_id) == retour.id
    assert message_id not in {o.message.id for o in harness.store.open_originals()}

    # A later message is judged with it: reusing its Identificatie is TR056 (9056).
    reused = await harness.submit("provider-b", _request("REF-A2", "45A03", "REQ000000001"))
    later = harness.store.get(str(reused["id"]))
    assert later is not None and later.state is State.REJECTED
    assert "TR056" in {f["rule"] for f in harness.store.findings(later.id)}


async def test_the_rules_reject_a_decided_request_and_its_retour_says_why(
    mixed: Harness,
) -> None:
    harness = mixed
    first = await harness.submit("provider-b", _request("REF-B1", "45A03", "REQ000000002"))
    assert harness.store.get(str(first["id"])).state is State.QUEUED  # type: ignore[union-attr]
    # The same Identificatie again: TR056 would reject it, but it is held before that rule.
    message_id = await _held_request(harness, "REF-B2", "REQ000000002")

    done = await decide_mapping(
        harness.service.decisions, message_id, "45/45P02", reason="profiel b", actor=ACTOR
    )

    assert done.message.state is State.REJECTED
    assert "TR056" in done.rules
    stored = harness.store.get(message_id)
    assert stored is not None and stored.state is State.REJECTED
    (retour,) = _retours_of(harness, message_id)
    answer = harness.store.delivery_payload(retour.id)
    assert answer is not None and _schema_valid(answer)
    assert "9056" in set().union(*_retourcodes(answer).values())
    # A rejected message records no pair and no register entries; the decision is audited.
    assert harness.store.ledger_entry(LedgerKey.request(DIEMEN, "REF-B2")) is None
    assert message_id not in _registered_requests(harness)
    (audit,) = harness.store.audit_entries(AuditQuery(target=message_id))
    assert audit.action == "mapping-decision" and "profiel b" in (audit.reason or "")


async def test_a_dry_run_says_what_the_rules_decide_and_writes_nothing(
    mixed: Harness,
) -> None:
    harness = mixed
    message_id = await _held_request(harness, "REF-C1", "REQ000000003")
    before = harness.store.get(message_id)
    history = harness.store.history(message_id)
    findings = harness.store.findings(message_id)
    translation = harness.store.translation_of(message_id)

    dry = await decide_mapping(
        harness.service.decisions, message_id, "45/45P01", reason="try", actor=ACTOR, dry_run=True
    )

    assert dry.dry_run and dry.message == before
    assert dry.outcome is not None and dry.outcome.state is State.QUEUED
    assert dry.retour is not None and dry.retour.message_type == "JW316"
    assert harness.store.get(message_id) == before
    assert harness.store.history(message_id) == history
    assert harness.store.findings(message_id) == findings
    assert harness.store.translation_of(message_id) == translation
    assert harness.store.ledger_entry(LedgerKey.request(DIEMEN, "REF-C1")) is None
    assert harness.store.audit_entries(AuditQuery(target=message_id)) == []
    assert _retours_of(harness, message_id) == []
    assert message_id not in _registered_requests(harness)


async def test_a_decided_message_for_a_recipient_on_hold_stays_held_for_that_reason(
    mixed: Harness,
) -> None:
    harness = mixed
    message_id = await _held_request(harness, "REF-D1", "REQ000000004")
    operator = Operator(harness.service, ACTOR)
    await operator.hold_party("diemen", "maintenance")

    done = await decide_mapping(
        harness.service.decisions, message_id, "45/45P01", reason="x", actor=ACTOR
    )

    assert done.message.state is State.HELD
    assert not (done.message.reason or "").startswith(NEEDS_MAPPING_DECISION)
    assert len(_retours_of(harness, message_id)) == 1  # answered all the same
    await operator.release_party("diemen", "done")
    assert harness.store.get(message_id).state is State.QUEUED  # type: ignore[union-attr]


@pytest.fixture
async def unanswered(tmp_path: Path) -> AsyncIterator[Harness]:
    """The mixed region where Diemen answers its own messages (no BVO answers for it)."""
    async for factory in daemon.mixed_region(tmp_path, answered=False):
        harness = await factory()  # type: ignore[misc]
        assert isinstance(harness, Harness)
        yield harness


async def test_two_held_messages_under_one_identificatie_never_both_go_on(
    unanswered: Harness,
) -> None:
    """Held for a decision, neither holds the Identificatie; the first decided claims it and
    goes on, the second is rejected naming it instead of being forwarded."""
    harness = unanswered
    first = await _held_request(harness, "REF-B1", "REQ000000009")
    second = await _held_request(harness, "REF-B2", "REQ000000009")

    done = await decide_mapping(
        harness.service.decisions, first, "45/45P01", reason="gezinsplan", actor=ACTOR
    )
    assert done.message.state is State.QUEUED

    later = await decide_mapping(
        harness.service.decisions, second, "45/45P02", reason="gezinsplan", actor=ACTOR
    )
    assert later.message.state is State.REJECTED
    assert f"already used by message {first}" in (later.message.reason or "")
    queued = harness.store.query(MessageQuery(recipient="diemen", state=State.QUEUED))
    assert [m.id for m in queued] == [first]
