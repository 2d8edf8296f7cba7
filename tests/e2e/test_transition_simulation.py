"""The 2018 transition of one region through a real ``gateway run`` (tests/simulation/):
seeded clients with allocations before and after 2018-01-01 over HTTP, their starts answered
by the BVO on the gemeente's behalf. Asserted from the traffic: every original the BVO answers
for has exactly one retour, and the ledger maps each recorded pair both ways."""

from __future__ import annotations

import datetime as dt
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
    PROFILE_PROVIDER,
    Allocation,
    region,
)

CLIENTS, SEED = 300, 2018
SIMULATED_NOW = dt.datetime(2018, 7, 2, 9, 0, tzinfo=dt.UTC)
DELIVERABLE = (State.QUEUED, State.DELIVERED)


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


async def _traffic(
    base: str, allocations: list[Allocation]
) -> tuple[dict[str, str], dict[str, str]]:
    """Every allocation, then every start; the gateway ids of both by ToewijzingNummer."""
    allocated: dict[str, str] = {}
    starts: dict[str, str] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        for item in allocations:
            allocated[item.nummer] = await _post(session, base, GEMEENTE[0], item.jw301)
        for item in allocations:
            if item.jw305 is not None:
                starts[item.nummer] = await _post(session, base, item.provider[0], item.jw305)
    return allocated, starts


def _in_time(store: SqlStore, original_id: str) -> bool:
    """The original's one retour exists and was made by its retour's last day."""
    original, retour_id = store.get(original_id), store.linked_message(original_id)
    assert original is not None and original.message_type is not None
    # Received on the demo clock's day, not the wall clock's.
    assert dutch_day(original.received_at) == SIMULATED_NOW.date()
    retour = store.get(retour_id) if retour_id is not None else None
    if retour is None:
        return False
    due = retour_due(original.message_type, dutch_day(original.received_at))
    return due is not None and dutch_day(retour.received_at) <= due


async def test_the_2018_transition_answers_every_start_once(tmp_path: Path) -> None:
    allocations = region(CLIENTS, SEED)
    assert {a.after_cutover for a in allocations} == {True, False}
    # The region's July 2018, on a clock the test moves (docs/configuration.md).
    clock_file = tmp_path / "now.txt"
    clock_file.write_text(SIMULATED_NOW.isoformat(), encoding="utf-8")
    port = free_port()
    daemon = Daemon(
        _config(tmp_path, port),
        port,
        tmp_path / "gateway.log",
        env={DEMO_CLOCK_VARIABLE: str(clock_file)},
    )
    daemon.start()
    try:
        await daemon.wait_ready()
        allocated, starts = await _traffic(daemon.base, allocations)
    finally:
        assert daemon.stop() == 0, daemon.log()

    store = SqlStore(sqlite_url(tmp_path), pseudonyms=TEST_PSEUDONYMS)
    try:
        # Allocations travel; only a one-to-many code for the legacy provider waits for the
        # toegang's decision (its provider never sees it, so no start follows).
        for item in allocations:
            allocation = store.get(allocated[item.nummer])
            assert allocation is not None
            if item.jw305 is None:
                assert allocation.state is State.HELD, item.nummer
                assert waits_for_decision(allocation), allocation.reason
            else:
                assert allocation.state in DELIVERABLE, (item.nummer, allocation.reason)
        # Every start is accepted and answered exactly once, in time, by the BVO.
        for nummer, message_id in starts.items():
            start = store.get(message_id)
            assert start is not None and start.state in DELIVERABLE, (nummer, start)
            retours = [r for r in store.related(message_id) if r.relation == "retour"]
            assert len(retours) == 1, nummer
            assert _in_time(store, message_id), nummer
        # A month on, the deadlines read model finds no original the BVO answers for (those
        # addressed to the gemeente) overdue; the allocations wait for the providers' JW302s,
        # which the simulated providers do not send.
        later = SIMULATED_NOW + dt.timedelta(days=30)
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
