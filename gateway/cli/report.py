"""``gateway report held``: what waits for a party, with JW323 declaration totals per month.

For a party whose software is not ready, the BVO settles by hand until it is; this report is
the list to settle from. Amounts are eurocents in the messages and euros in the report.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.cli.common import (
    EXIT_OK,
    ConsoleError,
    Subparsers,
    add_command,
    add_group,
    open_store,
    print_json,
    render_table,
    settings_of,
    when,
)
from gateway.core.model import Message, State
from gateway.terminal import Progress

if TYPE_CHECKING:
    pass

EXAMPLES = """
  gateway report held --party kompas                  # table on the terminal
  gateway report held --party kompas --format csv > kompas.csv
  gateway report held --party kompas --format json
"""

WAITING = (State.QUEUED, State.HELD, State.SENDING)


@dataclass(frozen=True, slots=True)
class Declaration:
    """The settlement facts of one JW323."""

    number: str | None
    month: str | None
    cents: int


def declaration_of(raw: bytes | None) -> Declaration | None:
    """DeclaratieNummer, the month the declared period starts in, and the signed total."""
    from gateway.core.document import findall, text
    from gateway.core.xmlsafe import parse_safely

    if raw is None:
        return None
    parsed = parse_safely(raw)
    if parsed.tree is None:
        return None
    declaraties = findall(parsed.tree.getroot(), "Declaratie")
    if not declaraties:
        return None
    el = declaraties[0]
    amount = text(el, "TotaalIngediendBedrag/TotaalBedrag")
    sign = text(el, "TotaalIngediendBedrag/DebetCredit")
    begin = text(el, "DeclaratiePeriode/Begindatum")
    try:
        cents = int(amount or "0")
    except ValueError:
        cents = 0
    return Declaration(
        number=text(el, "DeclaratieNummer"),
        month=begin[:7] if begin else None,
        cents=-cents if sign == "C" else cents,
    )


def euros(cents: int) -> str:
    """``58000`` → ``580.00``."""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    return f"{sign}{whole}.{rest:02d}"


def cmd_report_held(args: argparse.Namespace) -> int:
    """List the messages waiting for a party and total its JW323 declarations per month."""
    from gateway.store.base import SearchQuery

    settings = settings_of(args)
    if args.party not in {p.id for p in settings.parties}:
        known = ", ".join(p.id for p in settings.parties)
        raise ConsoleError(f"no party {args.party!r} (configured: {known})")
    states = tuple(State(s) for s in args.state) if args.state else WAITING
    items: list[tuple[Message, Declaration | None]] = []
    with open_store(settings) as store:
        query = SearchQuery(recipient=args.party, states=states, newest_first=False, limit=500)
        messages: list[Message] = []
        while True:
            page = store.search(query)
            messages += page.messages
            if page.next_cursor is None:
                break
            query = SearchQuery(
                recipient=args.party,
                states=states,
                newest_first=False,
                limit=500,
                cursor=page.next_cursor,
            )
        progress = Progress(len(messages), sys.stderr)
        for msg in messages:
            declaration = (
                declaration_of(store.payload(msg.id)) if msg.message_type == "JW323" else None
            )
            items.append((msg, declaration))
            progress.step()
        progress.done()
    rows = [_row(msg, dec) for msg, dec in items]
    totals = _totals(items)
    if args.format == "json":
        print_json({"party": args.party, "messages": rows, "jw323_totals_per_month": totals})
    elif args.format == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(list(_FIELDS))
        for row in rows:
            writer.writerow([row[f] if row[f] is not None else "" for f in _FIELDS])
        writer.writerow([])
        writer.writerow(["month", "declarations", "debit_eur", "credit_eur", "net_eur"])
        for t in totals:
            writer.writerow(
                [t["month"], t["declarations"], t["debit_eur"], t["credit_eur"], t["net_eur"]]
            )
    else:
        _print_table(args.party, rows, totals)
    return EXIT_OK


_FIELDS = (
    "id",
    "received_at",
    "message_type",
    "state",
    "sender",
    "bericht_id",
    "declaratie_nummer",
    "month",
    "amount_eur",
    "reason",
)


def _row(msg: Message, dec: Declaration | None) -> dict[str, Any]:
    return {
        "id": msg.id,
        "received_at": msg.received_at.isoformat(),
        "message_type": msg.message_type,
        "state": msg.state.value,
        "sender": msg.sender,
        "bericht_id": msg.bericht_id,
        "declaratie_nummer": dec.number if dec else None,
        "month": dec.month if dec else None,
        "amount_eur": euros(dec.cents) if dec else None,
        "reason": msg.reason,
    }


def _totals(items: list[tuple[Message, Declaration | None]]) -> list[dict[str, Any]]:
    by_month: dict[str, list[int]] = {}
    for _, dec in items:
        if dec is None:
            continue
        by_month.setdefault(dec.month or "unknown", []).append(dec.cents)
    return [
        {
            "month": month,
            "declarations": len(amounts),
            "debit_eur": euros(sum(a for a in amounts if a > 0)),
            "credit_eur": euros(-sum(a for a in amounts if a < 0)),
            "net_eur": euros(sum(amounts)),
        }
        for month, amounts in sorted(by_month.items())
    ]


def _print_table(party: str, rows: list[dict[str, Any]], totals: list[dict[str, Any]]) -> None:
    print(f"{len(rows)} message(s) waiting for {party}")
    if rows:
        render_table(
            [
                "ID",
                "RECEIVED (UTC)",
                "TYPE",
                "STATE",
                "FROM",
                "BERICHT-ID",
                "DECLARATIE",
                "MONTH",
                "EUR",
            ],
            [
                [
                    r["id"],
                    when_iso(r["received_at"]),
                    r["message_type"] or "?",
                    r["state"],
                    r["sender"],
                    r["bericht_id"] or "-",
                    r["declaratie_nummer"] or "-",
                    r["month"] or "-",
                    r["amount_eur"] or "-",
                ]
                for r in rows
            ],
            sys.stdout,
            colour_column=3,
        )
    if totals:
        print("\nJW323 declarations per month (declared period)")
        render_table(
            ["MONTH", "DECLARATIONS", "DEBIT EUR", "CREDIT EUR", "NET EUR"],
            [
                [t["month"], str(t["declarations"]), t["debit_eur"], t["credit_eur"], t["net_eur"]]
                for t in totals
            ],
            sys.stdout,
        )


def when_iso(value: str) -> str:
    """An ISO time from row data, printed like other tables."""
    return when(dt.datetime.fromisoformat(value))


def add_report_commands(subparsers: Subparsers) -> None:
    """Register ``report held``."""
    kinds = add_group(
        subparsers,
        "report",
        "reports for settling by hand",
        "  gateway report held --party kompas --format csv > kompas.csv",
        dest="report_command",
        metavar="REPORT",
    )
    cmd = add_command(
        kinds, "held", "what waits for a party, with JW323 totals per month", EXAMPLES
    )
    cmd.add_argument("--party", required=True, help="the party id")
    cmd.add_argument(
        "--state",
        action="append",
        choices=[s.value for s in State],
        help="states to include (default queued, held, sending)",
    )
    cmd.add_argument(
        "--format",
        choices=["table", "csv", "json"],
        default="table",
        help="output format (default table)",
    )
    cmd.set_defaults(func=cmd_report_held)
