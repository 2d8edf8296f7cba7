"""The 2018 transition of one region through a real ``gateway run`` (tests/simulation/):
seeded clients with allocations before and after 2018-01-01 over HTTP, their starts and monthly
declarations answered by the BVO on the gemeente's behalf, one provider not ready until
2018-04-01. Every message is sent on its own day of the demo clock, which the test moves by
writing the clock file. Asserted from the traffic: every original the BVO answers for has exactly
one retour within its deadline, nothing waits for the late provider once it is ready, and the
ledger maps each recorded pair both ways."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import aiohttp

from gateway.core.deadlines import dutch_day, retour_due
from gateway.core.ledger import LedgerKey
from gateway.core.mapping_tables import Product
from gateway.core.model import State
from gateway.core.route import token_digest
from gateway.daemon.app import DEMO_CLOCK_VARIABLE
from gateway.service.retour_deadlines import retour_deadlines
from gateway.store.sql import SqlStore
from gateway.translator import waits_for_decision
from tests.paths import OFFICIAL_XSD_DIR
from tests.pseudonyms import TEST_PSEUDONYMS
from tests.reliability.daemon import Daemon, free_port, sqlite_url, token
from tests.simulation.transition import (
    GEMEENTE,
    LEGACY_PROVIDER,
    NOT_READY_PROVIDER,
    NOT_READY_UNTIL,
    PROFILE_PROVIDER,
    Allocation,
    Declaration,
    declarations,
    region,
)

CLIENTS, SEED = 300, 2018
DELIVERABLE = (State.QUEUED, State.DELIVERED)
SENT_AT = dt.time(8, 0, tzinfo=dt.UTC)  # office hours in the Netherlands, winter and summer


def _config(folder: Path, port: int) -> Path:
    parties = [
        (GEMEENTE, "gemeente", "mailbox",
         'generation = [{ generation = "legacy" }, '
         '{ generation = "profile-2018", from = 2018-01-01 }]\n'
         'answered_by = "bvo"'),
        (LEGACY_PROVIDER, "aanbieder", "mailbox", 'generation = "legacy"'),
        (PROFILE_PROVIDER, "aanbieder", "mailbox",
         'generation = [{ generation = "legacy" }, '
         '{ generation = "profile-2018", from = 2018-01-01 }]'),
        (NOT_READY_PROVIDER, "aanbieder", "mailbox",
         'generation = [{ generation = "legacy" }, '
         '{ generation = "profile-2018", from = 2018-01-01 }]\n'
         f"not_ready_until = {NOT_READY_UNTIL.isoformat()}"),
    ]  # fmt: skip
    lines = [
        "[server]", 'host = "127.0.0.1"', f"port = {port}",
        "[paths]", f'schemas = ["{OFFICIAL_XSD_DIR}"]', f'outbox = "{folder / "outbox"}"',
        f'inbox = "{folder / "inbox"}"', f'data = "{folder / "data"}"',
        "[delivery]", "interval_seconds = 0.2",
        "[[parties]]", 'id = "bvo"', 'role = "bvo"', 'channel = "mailbox"',
        f'token_sha256 = "{token_digest(token("bvo"))}"',
    ]  # fmt: skip
    for (party, identity), role, channel, extra in parties:
        lines += [
            "[[parties]]", f'id = "{party}"', f'role = "{role}"', f'identity = "{identity}"',
            f'channel = "{channel}"', f'token_sha256 = "{token_digest(token(party))}"', extra,
        ]  # fmt: skip
    path = folder / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def _post(session: aiohttp.ClientSession, base: str, party: str, raw: bytes) -> str:
    async with session.post(
        f"{base}/v1/messages", data=raw, headers={"Authorization": f"Bearer {token(party)}"}
    ) as response:
        body = await response.json()
        assert response.status == 202, body
        return str(body["id"])


class DemoClock:
    """The daemon's clock file: each write names a new instant. The file's modification time is
    set by hand to a fresh value, so the daemon sees every write even within one timestamp tick."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writes = 0

    def set(self, instant: dt.datetime) -> None:
        self.path.write_text(instant.isoformat(), encoding="utf-8")
        self._writes += 1
        os.utime(self.path, ns=(self._writes * 1_000_000_000, self._writes * 1_000_000_000))


def _sending_order(
    allocations: list[Allocation], claims: list[Declaration]
) -> Iterator[tuple[dt.date, str, str, bytes]]:
    """(day, key, sending party, message) in the order the region sends them."""
    traffic = [(a.start, 0, f"JW301:{a.nummer}", GEMEENTE[0], a.jw301) for a in allocations]
    traffic += [
        (a.reported, 1, f"JW305:{a.nummer}", a.provider[0], a.jw305)
        for a in allocations
        if a.jw305 is not None and a.reported is not None
    ]
    traffic += [
        (c.sent, 2, f"JW323:{c.provider[0]}:{c.month:%Y-%m}", c.provider[0], c.raw) for c in claims
    ]
    for day, _, key, party, raw in sorted(traffic, key=lambda t: (t[0], t[1], t[2])):
        yield day, key, party, raw


async def _traffic(
    base: str, clock: DemoClock, allocations: list[Allocation], claims: list[Declaration]
) -> dict[str, tuple[str, dt.date]]:
    """Every message on its own day of the demo clock; the gateway id and day by key."""
    sent: dict[str, tuple[str, dt.date]] = {}
    today: dt.date | None = None
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        for day, key, party, raw in _sending_order(allocations, claims):
            if day != today:
                clock.set(dt.datetime.combine(day, SENT_AT))
                today = day
            sent[key] = (await _post(session, base, party, raw), day)
    return sent


def _answered_in_time(store: SqlStore, original_id: str, sent: dt.date) -> bool:
    """The original has exactly one retour, made by the retour's last day."""
    original = store.get(original_id)
    assert original is not None and original.message_type is not None
    # Received on the demo clock's day, not the wall clock's.
    assert dutch_day(original.received_at) == sent, original_id
    retours = [r for r in store.related(original_id) if r.relation == "retour"]
    retour_id = store.linked_message(original_id)
    retour = store.get(retour_id) if retour_id is not None else None
    if len(retours) != 1 or retour is None:
        return False
    due = retour_due(original.message_type, sent)
    return due is not None and dutch_day(retour.received_at) <= due


def _held_for_readiness_until_ready(store: SqlStore, message_id: str) -> bool:
    """Whether the message waited for its recipient's readiness and left only once ready."""
    events = store.history(message_id)
    held = [e for e in events if e.to_state is State.HELD and e.reason.startswith("party not")]
    released = [e for e in events if e.from_state is State.HELD and e.to_state is State.QUEUED]
    if not held:
        return False
    assert released, (message_id, events)
    return all(dutch_day(e.at) >= NOT_READY_UNTIL for e in released)


async def test_the_2018_transition_answers_every_original_once(tmp_path: Path) -> None:
    allocations = region(CLIENTS, SEED)
    claims = declarations(allocations, SEED)
    assert {a.after_cutover for a in allocations} == {True, False}
    clock = DemoClock(tmp_path / "now.txt")
    clock.set(dt.datetime.combine(min(a.start for a in allocations), SENT_AT))
    port = free_port()
    daemon = Daemon(
        _config(tmp_path, port),
        port,
        tmp_path / "gateway.log",
        env={DEMO_CLOCK_VARIABLE: str(clock.path)},
    )
    daemon.start()
    try:
        await daemon.wait_ready()
        sent = await _traffic(daemon.base, clock, allocations, claims)
    finally:
        assert daemon.stop() == 0, daemon.log()
    last_day = max(day for _, day in sent.values())

    store = SqlStore(sqlite_url(tmp_path), pseudonyms=TEST_PSEUDONYMS)
    try:
        # Allocations travel; only a one-to-many code for the legacy provider waits for the
        # toegang's decision (its provider never sees it, so no start follows). Those for the
        # provider not ready until 2018-04-01 wait for it and leave once the clock passes it.
        late = 0
        for item in allocations:
            allocation = store.get(sent[f"JW301:{item.nummer}"][0])
            assert allocation is not None
            if item.jw305 is None:
                assert allocation.state is State.HELD, item.nummer
                assert waits_for_decision(allocation), allocation.reason
                continue
            assert allocation.state in DELIVERABLE, (item.nummer, allocation.reason)
            waited = _held_for_readiness_until_ready(store, allocation.id)
            assert waited == (item.provider == NOT_READY_PROVIDER and item.start < NOT_READY_UNTIL)
            late += waited
        assert late > 0
        # Every start and every monthly declaration is answered exactly once, in time, by the
        # BVO on the gemeente's behalf: 3 working days for a JW306, 10 for a JW325.
        crossing = {a.nummer for a in allocations if a.crosses_cutover}
        crossed = 0
        for key, (message_id, day) in sent.items():
            if key.startswith("JW301:"):
                continue
            original = store.get(message_id)
            assert original is not None, key
            assert _answered_in_time(store, message_id, day), key
            findings = {(f["rule"], f["retourcode"]) for f in store.findings(message_id)}
            if key.startswith("JW305:"):
                # Every start is accepted, also one reported from 2018 on for a legacy
                # allocation of 2017: a running allocation keeps its generation and codes.
                assert original.state in DELIVERABLE, (key, findings)
                crossed += key.removeprefix("JW305:") in crossing
                continue
            # A 3.2 JW323 claims care from 2021 on (CS100; 2018 was claimed with the 2.3
            # JW303): each 2017-2018 declaration is refused on its periods with 0001, answered.
            assert (original.state, findings) == (State.REJECTED, {("CS100", "0001")}), key
        assert crossed > 0
        assert sum(key.startswith("JW323:") for key in sent) == len(claims) > 0
        # A month after the last message, the deadlines read model finds no original the BVO
        # answers for (those addressed to the gemeente) overdue; the allocations wait for the
        # providers' JW302s, which the simulated providers do not send.
        later = dt.datetime.combine(last_day + dt.timedelta(days=30), SENT_AT)
        overdue = retour_deadlines(store, later, overdue_only=True)
        assert {d.message.message_type for d in overdue} == {"JW301"}
        assert [d for d in overdue if d.message.recipient == GEMEENTE[0]] == []
        # The ledger both ways: every translated allocation that reached its provider has a
        # pair that reads back from either side; every other allocation has none.
        pairs = 0
        for item in allocations:
            pair = store.ledger_entry(LedgerKey.allocation(GEMEENTE[1], item.nummer))
            if not item.translated or item.jw305 is None:
                assert pair is None, item.nummer
                continue
            assert pair is not None, item.nummer
            product = Product(*item.product)
            legacy = pair.side_for("legacy")
            assert pair.side_for("profile-2018") == product
            assert legacy is not None and legacy != product
            assert pair.other_side(product) == legacy and pair.other_side(legacy) == product
            pairs += 1
        assert pairs > 0
    finally:
        store.close()
