"""``gateway deadlines``: exchanges waiting for their retour, and which of them are late."""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from gateway.console.common import (
    EXIT_OK,
    ConsoleError,
    Subparsers,
    add_command,
    colour_enabled,
    open_store,
    print_json,
    render_table,
    settings_of,
)
from gateway.core.deadlines import DUTCH_TIME, dutch_day
from gateway.retour_deadlines import retour_deadlines
from gateway.terminal import style

EXAMPLES = """
  gateway deadlines                      # every original still waiting for its retour
  gateway deadlines --overdue            # only those past their due date
  gateway deadlines --party provider-a   # sent by or addressed to one party
  gateway deadlines --overdue --as-of 2026-06-01 --json
"""


def _as_of(value: str | None) -> dt.datetime:
    if value is None:
        return dt.datetime.now(dt.UTC)
    try:
        day = dt.date.fromisoformat(value.strip())
    except ValueError as exc:
        raise ConsoleError(f"--as-of takes a date such as 2026-06-01, not {value!r}") from exc
    # Midday Dutch time: the moment lies on that Dutch day whatever the UTC offset.
    return dt.datetime.combine(day, dt.time(12), tzinfo=DUTCH_TIME)


def cmd_deadlines(args: argparse.Namespace) -> int:
    """List originals waiting for their retour (or JW325), with due dates."""
    settings = settings_of(args)
    now = _as_of(args.as_of)
    today = dutch_day(now)
    with open_store(settings) as store:
        found = retour_deadlines(store, now, args.party)
    if args.overdue:
        found = [d for d in found if d.overdue]
    if args.json:
        print_json({"as_of": today.isoformat(), "deadlines": [d.as_json(today) for d in found]})
        return EXIT_OK
    if not found:
        print("no overdue retours" if args.overdue else "no originals waiting for a retour")
        return EXIT_OK
    colour = colour_enabled(sys.stdout)
    rows = []
    for item in found:
        msg = item.message
        late = (today - item.due).days
        rows.append(
            [
                msg.id,
                msg.message_type or "-",
                msg.bericht_id or "-",
                msg.sender,
                item.owed_by or "-",
                msg.state.value,
                item.received.isoformat(),
                item.due.isoformat(),
                f"{late}d late" if item.overdue else "open",
            ]
        )
    render_table(
        ["ID", "TYPE", "BERICHT-ID", "FROM", "OWED BY", "STATE", "RECEIVED", "DUE", "STATUS"],
        rows,
        sys.stdout,
    )
    overdue = sum(1 for d in found if d.overdue)
    summary = f"{len(found)} waiting, {overdue} overdue (working days as of {today.isoformat()})"
    print(style(summary, "red", colour) if overdue else summary)
    return EXIT_OK


def add_deadlines_command(subparsers: Subparsers) -> None:
    """Register ``deadlines``."""
    cmd = add_command(
        subparsers,
        "deadlines",
        "originals waiting for their retour (3 working days; JW325: 10) and which are late",
        EXAMPLES,
    )
    cmd.add_argument("--overdue", action="store_true", help="only those past their due date")
    cmd.add_argument("--party", help="sent by or addressed to this party id")
    cmd.add_argument(
        "--as-of", metavar="DATE", help="judge on this day instead of today (YYYY-MM-DD)"
    )
    cmd.add_argument("--json", action="store_true", help="JSON for scripts")
    cmd.set_defaults(func=cmd_deadlines)
