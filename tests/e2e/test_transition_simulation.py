"""The 2018 transition of one region through a real ``gateway run`` (tests/simulation/):
seeded clients with allocations before and after 2018-01-01 over HTTP, their starts answered
by the BVO on the gemeente's behalf. Asserted from the traffic: every original the BVO answers
for has exactly one retour, and the ledger maps each recorded pair both ways."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from gateway.core.ledger import LedgerKey
from gateway.core.mapping_tables import Product
from gateway.core.route import token_digest
from gateway.store.sql import SqlStore
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


def _config(folder: Path, port: int) -> Path:
    parties = [
        (GEMEENTE, "gemeente", "mailbox",
         'generation = [{ generation = "legacy" }, '
         '{ generation = "profile-2018", from = 2018-01-01 }]\n'
         'answered_by = "bvo"'),
        (LEGACY_PROVIDER, "aanbieder", "mailbox", 'generation = "legacy"'),
        (PROFILE_PROVIDER, "aanbieder", "mailbox", 'generation = "profile-2018"'),
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


async def _traffic(base: str, allocations: list[Allocation]) -> dict[str, str]:
    """Every allocation, then every start; the gateway ids of the starts."""
    starts: dict[str, str] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        for item in allocations:
            await _post(session, base, GEMEENTE[0], item.jw301)
        for item in allocations:
            starts[item.nummer] = await _post(session, base, item.provider[0], item.jw305)
    return starts


async def test_the_2018_transition_answers_every_start_once(tmp_path: Path) -> None:
    allocations = region(CLIENTS, SEED)
    assert {a.after_cutover for a in allocations} == {True, False}
    port = free_port()
    daemon = Daemon(_config(tmp_path, port), port, tmp_path / "gateway.log")
    daemon.start()
    try:
        await daemon.wait_ready()
        starts = await _traffic(daemon.base, allocations)
    finally:
        assert daemon.stop() == 0, daemon.log()

    store = SqlStore(sqlite_url(tmp_path), pseudonyms=TEST_PSEUDONYMS)
    try:
        answers = {nummer: store.linked_message(mid) for nummer, mid in starts.items()}
        unanswered = sorted(n for n, retour in answers.items() if retour is None)
        assert unanswered == [], [store.get(starts[n]) for n in unanswered[:3]]
        for nummer, message_id in starts.items():
            retours = [r for r in store.related(message_id) if r.relation == "retour"]
            assert len(retours) == 1, nummer
        # The ledger both ways: a translated allocation (a legacy provider, after the
        # cut-over, a code the table maps one to one) has one pair that reads back from
        # either side; one that began before the cut-over, or spoke the receiver's codes,
        # has none.
        for item in allocations:
            pair = store.ledger_entry(LedgerKey.allocation(GEMEENTE[1], item.nummer))
            product = Product(*item.product)
            if not (item.after_cutover and item.provider == LEGACY_PROVIDER):
                assert pair is None, item.nummer
                continue
            if pair is None:  # a one-to-many code waits for the toegang's decision
                continue
            assert pair.side_for("profile-2018") == product
            legacy = pair.side_for("legacy")
            assert legacy is not None and legacy != product
            assert pair.other_side(product) == legacy and pair.other_side(legacy) == product
    finally:
        store.close()
