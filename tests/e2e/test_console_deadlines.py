"""``gateway deadlines`` as a subprocess against a temporary configuration and store."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from tests.e2e.console_env import BSN_A, example, make_env


def test_deadlines_overdue_lists_only_originals_past_their_due_date(tmp_path: Path) -> None:
    """A JW301 without its JW302 is overdue after 3 working days; a JW323 answered by its
    JW325 is not listed at all; nothing is late on the day it arrived."""
    env = next(make_env(tmp_path, "sqlite"))
    toewijzing, declaratie, antwoord = env.submit(
        ("diemen", example("JW301.xml", identificatie="700000001", bsns=(BSN_A,))),
        ("provider-a", example("JW323.xml")),
        ("diemen", example("JW325.xml")),
    )
    later = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    waiting, overdue_today, overdue_later, table, other_party = env.run_all(
        ("deadlines", "--json"),
        ("deadlines", "--overdue", "--json"),
        ("deadlines", "--overdue", "--as-of", later, "--json"),
        ("deadlines", "--overdue", "--as-of", later),
        ("deadlines", "--overdue", "--as-of", later, "--party", "provider-a", "--json"),
    )
    for done in (waiting, overdue_today, overdue_later, table, other_party):
        assert done.returncode == 0, done.stderr
        assert BSN_A not in done.stdout + done.stderr

    (open_one,) = json.loads(waiting.stdout)["deadlines"]
    assert (open_one["id"], open_one["overdue"]) == (toewijzing.id, False)
    assert open_one["owed_by"] == "provider-b"
    assert declaratie.id not in waiting.stdout and antwoord.id not in waiting.stdout
    assert json.loads(overdue_today.stdout)["deadlines"] == []
    (late,) = json.loads(overdue_later.stdout)["deadlines"]
    assert (late["id"], late["message_type"], late["overdue"]) == (toewijzing.id, "JW301", True)
    assert late["days_overdue"] > 0
    assert toewijzing.id in table.stdout and "late" in table.stdout
    assert "1 waiting, 1 overdue" in table.stdout
    assert json.loads(other_party.stdout)["deadlines"] == []


def test_deadlines_rejects_a_bad_date(tmp_path: Path) -> None:
    """--as-of takes a date; anything else is a clear error and a non-zero exit."""
    env = next(make_env(tmp_path, "sqlite"))
    done = env.run("deadlines", "--as-of", "next week")
    assert done.returncode != 0
    assert "argument --as-of: 'next week' is not a date; use YYYY-MM-DD" in done.stderr
