"""``gateway messages`` and ``gateway show`` as subprocesses, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.core.model import State
from tests.e2e.console_env import BSN_A, BSN_B, BSN_C, ConsoleEnv, example, make_env


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ConsoleEnv]:
    """A fresh gateway environment on each backend."""
    yield from make_env(tmp_path, request.param)


def _ids(listing: dict[str, object]) -> list[str]:
    messages = listing["messages"]
    assert isinstance(messages, list)
    return [m["id"] for m in messages]


def test_filters_and_keyset_pages(env: ConsoleEnv) -> None:
    """Each filter finds exactly its messages; pages follow the cursor without overlap."""
    d1, d2, d3, held = env.submit(
        (
            "provider-a",
            example(
                "JW323.xml", identificatie="100000001", declaratie="DNA01", bsns=(BSN_A, BSN_B)
            ),
        ),
        (
            "provider-a",
            example(
                "JW323.xml",
                identificatie="100000002",
                declaratie="DNB01",
                bsns=(BSN_C, BSN_C),
                toewijzing="55555",
            ),
        ),
        (
            "provider-a",
            example(
                "JW323.xml", identificatie="100000003", declaratie="DNC01", bsns=(BSN_B, BSN_B)
            ),
        ),
        ("diemen", example("JW301.xml", identificatie="200000001")),
    )
    assert (d1.state, held.state) == (State.QUEUED, State.HELD)

    # Every filter is covered in-process by tests/contract/test_search_contract.py; here the
    # command line itself: BSN input, number, party + state, pages through the cursor.
    by_client, declaratie, held_for_b, first, rest = env.json_all(
        ("messages", "--bsn", BSN_C),
        ("messages", "--declaratie", "DNB01", "--toewijzing", "55555", "--type", "jw323"),
        ("messages", "--party", "provider-b", "--state", "held"),
        ("messages", "--type", "JW323", "--limit", "2"),
        ("messages", "--type", "JW323", "--limit", "2", "--cursor", d2.id),
    )
    assert _ids(by_client) == [d2.id]
    assert BSN_C not in str(by_client)
    assert _ids(declaratie) == [d2.id]
    assert _ids(held_for_b) == [held.id]
    assert _ids(first) == [d3.id, d2.id]  # newest first
    assert first["next_cursor"] == d2.id
    assert _ids(rest) == [d1.id] and rest["next_cursor"] is None

    table = env.run("messages", "--from", "provider-a")
    assert table.returncode == 0, table.stderr
    assert "ID" in table.stdout and "STATE" in table.stdout and d1.id in table.stdout
    assert "\x1b[" not in table.stdout  # no colours when not on a terminal
    assert BSN_A not in table.stdout and BSN_B not in table.stdout


def test_show_masks_bsns_and_reveal_is_audited(tmp_path: Path) -> None:
    """show: header, history, keys; --xml masks BSNs; --reveal needs a reason and is audited."""
    env = next(make_env(tmp_path, "sqlite"))
    (msg,) = env.submit(
        ("provider-a", example("JW323.xml", identificatie="300000001", bsns=(BSN_A, BSN_B)))
    )
    shown, text, masked, refused, missing = env.run_all(
        ("show", msg.id, "--json"),
        ("show", msg.id),
        ("show", msg.id, "--xml"),
        ("show", msg.id, "--xml", "--reveal"),
        ("show", "01J00000000000000000000000"),
    )
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["header"]["identificatie"] == "300000001"
    assert data["header"]["clients"] == ["******006", "******018"]
    assert data["declaratie"] == ["DN001"] and "10072" in data["toewijzingen"]
    assert [e["to"] for e in data["history"]] == ["received", "queued"]

    for done in (text, masked):
        assert done.returncode == 0, done.stderr
        assert BSN_A not in done.stdout and BSN_B not in done.stdout
    assert "<" in masked.stdout and "******006" in masked.stdout

    assert refused.returncode == 2 and "--reason" in refused.stderr
    revealed = env.run("show", msg.id, "--xml", "--reveal", "--reason", "ticket 4711")
    assert revealed.returncode == 0, revealed.stderr
    assert BSN_A in revealed.stdout
    assert missing.returncode == 2 and "gateway messages" in missing.stderr
    trail = env.json("audit", "--target", msg.id)
    assert [(e["action"], e["reason"]) for e in trail] == [("reveal", "ticket 4711")]
    assert missing.returncode == 2 and "gateway messages" in missing.stderr
