"""status, report held, purge, audit, completion and --help as subprocesses."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import io
import json
from pathlib import Path

import pytest

from gateway.cli import build_parser
from gateway.core.lifecycle import advance
from gateway.core.model import Message, State
from gateway.store.base import AuditQuery, NewMessage
from gateway.store.sql import SqlStore
from tests.e2e.console_env import BSN_A, example, make_env


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_status_and_report_held_with_declaration_totals(tmp_path: Path, backend: str) -> None:
    """status counts per party; report held totals JW323 per month in csv and json."""
    environments = make_env(tmp_path, backend)  # kept alive: closing it drops the PG schema
    env = next(environments)
    env.submit(
        ("provider-a", example("JW323.xml", identificatie="600000001", bsns=(BSN_A,))),
        ("provider-a", example("JW323.xml", identificatie="600000002", declaratie="DN602")),
        ("provider-a", example("JW317.xml", identificatie="600000003")),
        ("diemen", example("JW301.xml", identificatie="600000004")),
    )
    status_run, report, as_csv = env.run_all(
        ("status", "--json"),
        ("report", "held", "--party", "diemen", "--format", "json"),
        ("report", "held", "--party", "diemen", "--format", "csv"),
    )
    assert status_run.returncode == 0, status_run.stderr
    status = {row["party"]: row for row in json.loads(status_run.stdout)["parties"]}
    assert (status["diemen"]["queued"], status["diemen"]["held"]) == (3, 0)
    assert status["provider-b"]["held"] == 1
    assert status["provider-b"]["readiness"] == "party not ready until 2999-01-01"
    # Everything arrived just now, so no retour is late yet (see test_console_deadlines.py).
    assert status["provider-b"]["overdue_deadlines"] == 0

    assert report.returncode == 0, report.stderr
    data = json.loads(report.stdout)
    assert len(data["messages"]) == 3
    # The example declares 58000 eurocent as credit (C) for April 2023; two of them.
    assert data["jw323_totals_per_month"] == [
        {
            "month": "2023-04",
            "declarations": 2,
            "debit_eur": "0.00",
            "credit_eur": "1160.00",
            "net_eur": "-1160.00",
        }
    ]
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.reader(io.StringIO(as_csv.stdout)))
    assert rows[0][:3] == ["id", "received_at", "message_type"]
    assert {r[6] for r in rows[1:4]} == {"DN001", "DN602", ""}
    assert ["2023-04", "2", "0.00", "1160.00", "-1160.00"] in rows
    assert BSN_A not in as_csv.stdout + report.stdout


def _stored(store: SqlStore, n: int, state: State, at: dt.datetime) -> Message:
    """A message moved to ``state`` at time ``at`` (directly through the lifecycle)."""
    raw = f"<Bericht n='{n}'><Bsn>{BSN_A}</Bsn></Bericht>".encode()
    msg = store.save_received(
        NewMessage(
            sender="provider-a",
            raw=raw,
            content_hash=hashlib.sha256(raw).hexdigest(),
            bericht_id=f"P{n}",
            message_type="JW315",
            received_at=at,
            actor="test",
        )
    ).message
    path = {
        State.REJECTED: [State.REJECTED],
        State.QUEUED: [State.QUEUED],
        State.HELD: [State.HELD],
        State.DEAD: [State.QUEUED, State.DEAD],
        State.DELIVERED: [State.QUEUED, State.SENDING, State.DELIVERED],
    }[state]
    for to in path:
        changes: dict[str, object] = {"recipient": "diemen"} if to is State.QUEUED else {}
        if to is State.HELD:
            changes = {"recipient": "diemen"}
        if to is State.SENDING:
            changes = {"lease_until": at + dt.timedelta(minutes=5)}
        moved, event = advance(msg, to, f"to {to}", "test", at, **changes)
        store.apply_transition(moved, event, msg.state)
        msg = moved
    return msg


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_purge_keeps_what_it_must(tmp_path: Path, backend: str) -> None:
    """purge drops only old delivered/rejected payloads; waiting and dead ones, metadata,
    history and the audit trail stay; a dry run changes nothing; a real run needs a reason."""
    environments = make_env(tmp_path, backend)  # kept alive: closing it drops the PG schema
    env = next(environments)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    recent = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    store = env.store()
    try:
        gone = [
            _stored(store, 1, State.DELIVERED, old),
            _stored(store, 2, State.REJECTED, old),
            _stored(store, 3, State.DELIVERED, old),
        ]
        kept = [
            _stored(store, n, s, old)
            for n, s in ((4, State.QUEUED), (5, State.HELD), (6, State.DEAD))
        ]
        kept.append(_stored(store, 7, State.DELIVERED, recent))
        kept.append(_stored(store, 8, State.REJECTED, recent))

        dry_run, refused = env.run_all(("purge", "--dry-run", "--json"), ("purge",))
        assert json.loads(dry_run.stdout)["payloads"] == {"delivered": 2, "rejected": 1}
        assert all(store.payload(m.id) is not None for m in gone + kept)
        assert refused.returncode == 2 and "--reason" in refused.stderr

        done = env.json("purge", "--reason", "monthly retention", "--vacuum")
        assert done["payloads"] == {"delivered": 2, "rejected": 1}
        assert [store.payload(m.id) for m in gone] == [None, None, None]
        assert all(store.payload(m.id) is not None for m in kept)
        for msg in gone:  # metadata, history and search keys survive the payload
            assert store.get(msg.id) == msg
            assert len(store.history(msg.id)) >= 2
        shown = env.json("show", gone[0].id)
        assert shown["header"] == {"purged": True}
        trail = store.audit_entries(AuditQuery(action="purge"))
        assert len(trail) == 1 and "monthly retention" in (trail[0].reason or "")
    finally:
        store.close()
    replay = env.run("replay", gone[0].id, "--yes")
    assert replay.returncode == 1 and "purged" in replay.stderr


def test_completion_and_help_with_examples(tmp_path: Path) -> None:
    """completion bash lists the console commands; every console command's help has examples."""
    env = next(make_env(tmp_path, "sqlite"))
    done = env.run("completion", "bash")
    assert done.returncode == 0, done.stderr
    assert "complete -F _gateway gateway" in done.stdout
    for word in ("messages", "replay", "--skip-delivered", "--bsn", "purge", "status"):
        assert word in done.stdout

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    for name in (
        "messages",
        "show",
        "retry",
        "hold",
        "release",
        "cancel",
        "replay",
        "status",
        "purge",
        "audit",
        "completion",
    ):
        assert "examples:" in commands[name].format_help(), name
    report = next(
        a for a in commands["report"]._actions if isinstance(a, argparse._SubParsersAction)
    ).choices["held"]
    assert "examples:" in report.format_help()
