"""``gateway report held``: what waits for and from a party, with the estimated value of the
allocations among it and JW323 declaration totals per month.

For a party whose software is not ready, the region settles by a separate arrangement until it
is; this report is the list to settle from (``gateway settle`` records what was settled).
Messages waiting FOR the party are those addressed to it; messages FROM it are those it sent
that still wait. Each waiting JW301's allocations get an estimated value (volume x contract
tariff over the period up to ``--until``: :mod:`gateway.core.settlement` defines it) and the
periods already settled. Amounts are eurocents in the messages and euros in the report.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import functools
import sys
from dataclasses import dataclass
from pathlib import Path
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
    from gateway.config import Settings
    from gateway.core.dossier import Allocation, Settlement
    from gateway.core.lists import ContractTable
    from gateway.core.schemaset import SchemaSet
    from gateway.store.base import Store

EXAMPLES = """
  gateway report held --party kompas                  # table on the terminal
  gateway report held --party kompas --format csv > kompas.csv
  gateway report held --party kompas --format json --until 2026-06-30
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


def allocations_of(raw: bytes, settings: Settings) -> list[Allocation]:
    """The allocations a stored JW301 states (none when it does not read as one)."""
    from gateway.core.settlement import allocations_in_payload

    return allocations_in_payload(raw, _schemas(tuple(settings.schemas)))


@functools.cache
def _schemas(folders: tuple[Path, ...]) -> SchemaSet:
    from gateway.schemas import load_schema_set

    return load_schema_set(list(folders))


def _waiting(
    store: Store,
    states: tuple[State, ...],
    *,
    recipient: str | None = None,
    sender: str | None = None,
) -> list[Message]:
    from gateway.store.base import SearchQuery

    messages: list[Message] = []
    cursor: str | None = None
    while True:
        page = store.search(
            SearchQuery(
                recipient=recipient,
                sender=sender,
                states=states,
                newest_first=False,
                limit=500,
                cursor=cursor,
            )
        )
        messages += page.messages
        if page.next_cursor is None:
            return messages
        cursor = page.next_cursor


def _contracts(settings: Settings) -> ContractTable | None:
    from gateway.contracts import load_contract_table

    if settings.contracts is None:
        return None
    return load_contract_table(settings.contracts, settings.mappings)


def cmd_report_held(args: argparse.Namespace) -> int:
    """List what waits for and from a party: allocations with their estimated value, and
    JW323 declarations totalled per month."""
    settings = settings_of(args)
    if args.party not in {p.id for p in settings.parties}:
        known = ", ".join(p.id for p in settings.parties)
        raise ConsoleError(f"no party {args.party!r} (configured: {known})")
    states = tuple(State(s) for s in args.state) if args.state else WAITING
    until = args.until or dt.datetime.now(dt.UTC).date()
    contracts = _contracts(settings)
    items: list[tuple[Message, Declaration | None]] = []
    allocations: list[dict[str, Any]] = []
    with open_store(settings) as store:
        for_party = _waiting(store, states, recipient=args.party)
        from_party = _waiting(store, states, sender=args.party)
        progress = Progress(len(for_party) + len(from_party), sys.stderr)
        for msg in [*for_party, *from_party]:
            raw = store.payload(msg.id) if msg.message_type in ("JW301", "JW323") else None
            declaration = declaration_of(raw) if msg.message_type == "JW323" else None
            items.append((msg, declaration))
            if msg.message_type == "JW301" and raw is not None:
                for allocation in allocations_of(raw, settings):
                    settled = [
                        s.settlement
                        for s in store.settlements(
                            allocation.gemeente, allocation.toewijzing_nummer
                        )
                    ]
                    allocations.append(_allocation_row(msg, allocation, contracts, until, settled))
            progress.step()
        progress.done()
    rows = [_row(msg, dec) for msg, dec in items[: len(for_party)]]
    rows_from = [_row(msg, dec) for msg, dec in items[len(for_party) :]]
    totals = _totals(items)
    estimated = sum(a["estimated_cents"] for a in allocations if a["estimated_cents"] is not None)
    for row in allocations:
        del row["estimated_cents"]
    if args.format == "json":
        print_json(
            {
                "party": args.party,
                "until": until.isoformat(),
                "messages": rows,
                "messages_from_party": rows_from,
                "allocations": allocations,
                "allocations_estimated_eur": euros(estimated),
                "jw323_totals_per_month": totals,
            }
        )
    elif args.format == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow([*_FIELDS, "direction"])
        for direction, listed in (("for", rows), ("from", rows_from)):
            for row in listed:
                writer.writerow(
                    [row[f] if row[f] is not None else "" for f in _FIELDS] + [direction]
                )
        writer.writerow([])
        writer.writerow(list(_ALLOCATION_FIELDS))
        for row in allocations:
            writer.writerow([row[f] if row[f] is not None else "" for f in _ALLOCATION_FIELDS])
        writer.writerow(["total", "", "", "", "", "", "", "", euros(estimated)])
        writer.writerow([])
        writer.writerow(["month", "declarations", "debit_eur", "credit_eur", "net_eur"])
        for t in totals:
            writer.writerow(
                [t["month"], t["declarations"], t["debit_eur"], t["credit_eur"], t["net_eur"]]
            )
    else:
        _print_table(args.party, rows, rows_from, totals)
        _print_allocations(allocations, estimated, until)
    return EXIT_OK


_ALLOCATION_FIELDS = (
    "message_id",
    "gemeente",
    "toewijzing_nummer",
    "product",
    "omvang",
    "from",
    "to",
    "basis",
    "estimated_eur",
    "settled",
)


def _allocation_row(
    msg: Message,
    allocation: Allocation,
    contracts: ContractTable | None,
    until: dt.date,
    settled: list[Settlement],
) -> dict[str, Any]:
    from gateway.core.settlement import estimate_value

    estimate = estimate_value(allocation, contracts, until)
    omvang = (
        f"{allocation.volume} x {allocation.eenheid} / {allocation.frequentie}"
        if allocation.volume is not None
        else (f"budget {euros(allocation.budget)}" if allocation.budget is not None else "")
    )
    return {
        "message_id": msg.id,
        "gemeente": allocation.gemeente,
        "toewijzing_nummer": allocation.toewijzing_nummer,
        "product": f"{allocation.categorie or '-'}/{allocation.code or '-'}",
        "omvang": omvang,
        "from": estimate.begin.isoformat(),
        "to": estimate.end.isoformat(),
        "basis": estimate.basis,
        "estimated_eur": euros(estimate.cents) if estimate.cents is not None else None,
        "estimated_cents": estimate.cents,
        "settled": "; ".join(
            f"{s.begindatum.isoformat()}..{s.einddatum.isoformat()} ({s.reference})"
            for s in settled
        )
        or None,
    }


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


def _print_table(
    party: str,
    rows: list[dict[str, Any]],
    rows_from: list[dict[str, Any]],
    totals: list[dict[str, Any]],
) -> None:
    _print_messages(f"{len(rows)} message(s) waiting for {party}", rows)
    _print_messages(f"\n{len(rows_from)} message(s) from {party} waiting", rows_from)
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


def _print_messages(title: str, rows: list[dict[str, Any]]) -> None:
    print(title)
    if not rows:
        return
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


def _print_allocations(allocations: list[dict[str, Any]], cents: int, until: dt.date) -> None:
    if not allocations:
        return
    print(f"\nAllocations in waiting JW301s, estimated up to {until.isoformat()}")
    render_table(
        [
            "GEMEENTE",
            "TOEWIJZING",
            "PRODUCT",
            "OMVANG",
            "FROM",
            "TO",
            "EST. EUR",
            "BASIS",
            "SETTLED",
        ],
        [
            [
                a["gemeente"],
                str(a["toewijzing_nummer"]),
                a["product"],
                a["omvang"] or "-",
                a["from"],
                a["to"],
                a["estimated_eur"] or "-",
                a["basis"],
                a["settled"] or "-",
            ]
            for a in allocations
        ],
        sys.stdout,
    )
    print(f"estimated total: EUR {euros(cents)}")


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
        kinds,
        "held",
        "what waits for and from a party: allocations' estimated value, JW323 totals per month",
        EXAMPLES,
    )
    cmd.add_argument("--party", required=True, help="the party id")
    cmd.add_argument(
        "--until",
        type=dt.date.fromisoformat,
        metavar="DATE",
        help="estimate allocations up to this day (default today, UTC)",
    )
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
