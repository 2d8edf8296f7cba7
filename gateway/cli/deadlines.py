"""``gateway deadlines``: exchanges waiting for their retour or answer, and which are late.

Two kinds of clock: every original waits for its retour (3 working days; a JW323 for its JW325,
10), and every request (JW315 product, JW317) waits for its functional answer (a JW319 or a
JW301 honouring it, 5 working days) and, after a JW319 "in onderzoek", for its final answer
(8 weeks). The gemeente a request was sent to owes its answer.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import TYPE_CHECKING

from gateway.cli.common import (
    EXIT_OK,
    Subparsers,
    add_command,
    colour_enabled,
    iso_date,
    open_store,
    print_json,
    render_table,
    settings_of,
)
from gateway.terminal import style

if TYPE_CHECKING:
    from gateway.service.retour_deadlines import (
        RequestDeadline,
        RetourDeadline,
    )

EXAMPLES = """
  gateway deadlines                      # originals waiting for a retour, requests for an answer
  gateway deadlines --overdue            # only those past their due date
  gateway deadlines --party provider-a   # sent by or addressed to one party
  gateway deadlines --overdue --as-of 2026-06-01 --json
"""


def _as_of(day: dt.date | None) -> dt.datetime:
    from gateway.core.deadlines import DUTCH_TIME

    if day is None:
        return dt.datetime.now(dt.UTC)
    # Midday Dutch time: the moment lies on that Dutch day whatever the UTC offset.
    return dt.datetime.combine(day, dt.time(12), tzinfo=DUTCH_TIME)


def cmd_deadlines(args: argparse.Namespace) -> int:
    """List originals waiting for their retour (or JW325), with due dates."""
    from gateway.core.deadlines import dutch_day
    from gateway.service.retour_deadlines import request_deadlines, retour_deadlines

    settings = settings_of(args)
    now = _as_of(args.as_of)
    today = dutch_day(now)
    with open_store(settings) as store:
        policies = settings.translation.policies()
        found = retour_deadlines(store, now, args.party, policies=policies)
        requests = request_deadlines(store, now, args.party)
    if args.overdue:
        found = [d for d in found if d.overdue]
        requests = [d for d in requests if d.overdue]
    if args.json:
        print_json(
            {
                "as_of": today.isoformat(),
                "deadlines": [d.as_json(today) for d in found],
                "requests": [d.as_json(today) for d in requests],
            }
        )
        return EXIT_OK
    colour = colour_enabled(sys.stdout)
    _print_retours(found, today, colour, args.overdue)
    if requests:
        _print_requests(requests, today, colour)
    return EXIT_OK


def _print_retours(
    found: list[RetourDeadline], today: dt.date, colour: bool, overdue: bool
) -> None:
    if not found:
        print("no overdue retours" if overdue else "no originals waiting for a retour")
        return
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
                item.answer_by.isoformat() if item.answer_by else "",
            ]
        )
    render_table(
        [
            "ID",
            "TYPE",
            "BERICHT-ID",
            "FROM",
            "OWED BY",
            "STATE",
            "RECEIVED",
            "DUE",
            "STATUS",
            "DECISION BY",
        ],
        rows,
        sys.stdout,
    )
    late_count = sum(1 for d in found if d.overdue)
    summary = f"{len(found)} waiting, {late_count} overdue (working days as of {today.isoformat()})"
    print(style(summary, "red", colour) if late_count else summary)


def _print_requests(requests: list[RequestDeadline], today: dt.date, colour: bool) -> None:
    print()
    rows = [
        [
            item.message.id,
            item.message.message_type or "-",
            item.exchange.referentie,
            item.message.sender,
            item.owed_by or "-",
            "answer" if item.clock.value == "answer" else "final answer",
            item.started.isoformat(),
            item.due.isoformat(),
            f"{(today - item.due).days}d late" if item.overdue else "open",
        ]
        for item in requests
    ]
    render_table(
        ["ID", "TYPE", "REFERENTIE", "FROM", "OWED BY", "CLOCK", "SINCE", "DUE", "STATUS"],
        rows,
        sys.stdout,
    )
    late_count = sum(1 for d in requests if d.overdue)
    summary = f"{len(requests)} request(s) waiting for an answer, {late_count} overdue"
    print(style(summary, "red", colour) if late_count else summary)


def add_deadlines_command(subparsers: Subparsers) -> None:
    """Register ``deadlines``."""
    cmd = add_command(
        subparsers,
        "deadlines",
        "originals waiting for their retour (3 working days; JW325: 10), requests for their "
        "answer (5 working days; 8 weeks after in onderzoek), and which are late",
        EXAMPLES,
    )
    cmd.add_argument("--overdue", action="store_true", help="only those past their due date")
    cmd.add_argument("--party", help="sent by or addressed to this party id")
    cmd.add_argument(
        "--as-of",
        type=iso_date,
        metavar="DATE",
        help="judge on this day instead of today (YYYY-MM-DD)",
    )
    cmd.add_argument("--json", action="store_true", help="JSON for scripts")
    cmd.set_defaults(func=cmd_deadlines)
