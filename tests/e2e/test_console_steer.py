"""Steering commands as subprocesses: replay with duplicate warning, bulk runs, audit trail."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.core.model import State
from gateway.store.base import AuditQuery, SearchQuery
from tests.e2e.console_env import BSN_A, ConsoleEnv, example, make_env


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ConsoleEnv]:
    """A fresh gateway environment on each backend."""
    yield from make_env(tmp_path, request.param)


def test_replay_warns_about_acknowledged_messages_and_links_the_copy(env: ConsoleEnv) -> None:
    """Replay: dry-run count, reason for bulk, duplicate warning, linked copy, audit entries."""
    delivered, waiting = env.submit(
        ("provider-a", example("JW323.xml", identificatie="400000001", bsns=(BSN_A,))),
        ("provider-a", example("JW323.xml", identificatie="400000002", declaratie="DN402")),
    )
    env.deliver(delivered.id)

    asked, dry, no_reason = env.run_all(
        ("replay", delivered.id),
        ("replay", "--type", "JW323", "--dry-run"),
        ("replay", "--type", "JW323", "--yes"),
    )
    assert asked.returncode == 2
    assert "already delivered to diemen" in asked.stderr and "--yes" in asked.stderr
    assert BSN_A not in asked.stdout + asked.stderr
    assert dry.returncode == 0, dry.stderr
    assert "2 message(s) to replay" in dry.stdout and "nothing was changed" in dry.stdout
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr

    bulk = env.run("replay", "--type", "JW323", "--reason", "rule fix", "--skip-delivered", "--yes")
    assert bulk.returncode == 0, bulk.stderr
    assert "1 done, 0 not done" in bulk.stdout and "skipped" in bulk.stderr
    single = env.run("replay", delivered.id, "--yes")
    assert single.returncode == 0, single.stderr

    store = env.store()
    try:
        copies = store.search(SearchQuery(message_type="JW323", newest_first=False)).messages
        assert len(copies) == 4
        assert [store.replay_of(m.id) for m in copies] == [None, None, waiting.id, delivered.id]
        assert all(m.state is State.QUEUED for m in copies[2:])
        related = {(r.relation, r.message.id) for r in store.related(delivered.id)}
        assert ("replayed as", copies[3].id) in related
        trail = store.audit_entries(AuditQuery())
    finally:
        store.close()
    assert [(e.action, e.target) for e in trail] == [
        ("replay", delivered.id),
        ("bulk-replay", "type=JW323"),
        ("replay", waiting.id),
    ]
    assert trail[2].reason == f"rule fix (replayed as {copies[2].id})"
    assert all(e.actor.startswith("operator") for e in trail)


def test_hold_release_cancel_retry_single_and_bulk(tmp_path: Path) -> None:
    """Message hold/release, cancel needs a reason, retry revives dead, bulk cancel by filter."""
    env = next(make_env(tmp_path, "sqlite"))
    queued, held = env.submit(
        ("provider-a", example("JW323.xml", identificatie="500000001")),
        ("diemen", example("JW301.xml", identificatie="500000002")),
    )
    steps = [
        (("hold", queued.id, "--reason", "check first"), State.HELD),
        (("release", queued.id), State.QUEUED),
        (("cancel", queued.id, "--reason", "sent twice"), State.DEAD),
        (("retry", queued.id), State.QUEUED),
    ]
    store = env.store()
    try:
        for args, state in steps:
            done = env.run(*args)
            assert done.returncode == 0, (args, done.stderr)
            current = store.get(queued.id)
            assert current is not None and current.state is state, args
        refused = env.run("cancel", queued.id)
        assert refused.returncode == 2 and "--reason" in refused.stderr

        dry = env.run("cancel", "--to", "provider-b", "--dry-run")
        assert dry.returncode == 0 and "1 message(s) to cancel" in dry.stdout
        assert store.get(held.id).state is State.HELD  # type: ignore[union-attr]
        bulk = env.run("cancel", "--to", "provider-b", "--reason", "withdrawn", "--yes")
        assert bulk.returncode == 0, bulk.stderr
        assert store.get(held.id).state is State.DEAD  # type: ignore[union-attr]
        history = store.history(queued.id)
        trail = store.audit_entries(AuditQuery())
    finally:
        store.close()
    assert [e.reason for e in history][-4:] == [
        "operator hold (message): check first",
        "released by operator: no reason given",
        "cancelled: sent twice",
        "retried by operator: retry now",
    ]
    assert [e.action for e in reversed(trail)] == [
        "hold",
        "release",
        "cancel",
        "retry",
        "cancel",
        "bulk-cancel",
    ]
