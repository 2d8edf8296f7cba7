"""``gateway messages``: find messages by party, type, state, period, numbers, rule or client."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from gateway.cli.common import (
    EXIT_OK,
    Subparsers,
    add_command,
    add_filter_arguments,
    add_group,
    message_json,
    open_store,
    print_json,
    query_from,
    render_table,
    settings_of,
    when,
)

if TYPE_CHECKING:
    from gateway.store.base import SearchPage

EXAMPLES = """
  gateway messages                                   # the newest 50 messages
  gateway messages --party kompas --state held       # what waits for kompas
  gateway messages --bericht-id 765432198            # "where is my message?"
  gateway messages --declaratie DN001 --json         # for scripts
  gateway messages --bsn 999900006 --since 30d       # a client's messages (BSN never shown)
  gateway messages --rule TR301 --type JW315 --since 2025-03-01 --until 2025-04-01
  gateway messages --state dead --cursor 01JQ...     # the next page (printed under the table)
"""


def cmd_messages(args: argparse.Namespace) -> int:
    """List messages matching the filters, one page at a time."""
    settings = settings_of(args)
    with open_store(settings) as store:
        query = query_from(
            args,
            store.pseudonyms,
            limit=args.limit,
            newest_first=not args.oldest_first,
            cursor=args.cursor,
        )
        if args.count:
            total = store.count(query)
            if args.json:
                print_json({"count": total})
            else:
                print(total)
            return EXIT_OK
        page = store.search(query)
    if args.json:
        print_json(
            {"messages": [message_json(m) for m in page.messages], "next_cursor": page.next_cursor}
        )
        return EXIT_OK
    _print_page(page, args)
    return EXIT_OK


def _print_page(page: SearchPage, args: argparse.Namespace) -> None:
    if not page.messages:
        print("no messages match" + ("" if args.cursor is None else " after this cursor"))
        return
    rows = [
        [
            m.id,
            when(m.received_at),
            m.message_type or "?",
            m.state.value,
            m.sender,
            m.recipient or "-",
            str(m.attempts),
            (m.reason or "")[:60],
        ]
        for m in page.messages
    ]
    render_table(
        ["ID", "RECEIVED (UTC)", "TYPE", "STATE", "FROM", "TO", "TRIES", "REASON"],
        rows,
        sys.stdout,
        colour_column=3,
    )
    if page.next_cursor:
        print(f"\nmore: add --cursor {page.next_cursor}")


def cmd_outbox_list(args: argparse.Namespace) -> int:
    """The former ``gateway outbox list``: the oldest matching messages as a JSON list."""
    args.oldest_first, args.cursor, args.count = True, None, False
    settings = settings_of(args)
    with open_store(settings) as store:
        page = store.search(
            query_from(args, store.pseudonyms, limit=args.limit, newest_first=False)
        )
    if args.json:
        print_json([message_json(m) for m in page.messages])
        return EXIT_OK
    _print_page(page, args)
    return EXIT_OK


def add_search_commands(subparsers: Subparsers) -> None:
    """Register ``messages`` (and ``outbox list``, kept for existing scripts)."""
    cmd = add_command(subparsers, "messages", "find and list messages", EXAMPLES)
    add_filter_arguments(cmd)
    cmd.add_argument("--limit", type=int, default=50, help="rows per page (default 50)")
    cmd.add_argument("--cursor", metavar="ID", help="continue after this id (from the last page)")
    cmd.add_argument("--oldest-first", action="store_true", help="oldest first (default newest)")
    cmd.add_argument("--count", action="store_true", help="only count the matches")
    cmd.add_argument("--json", action="store_true", help="JSON for scripts")
    cmd.set_defaults(func=cmd_messages)

    actions = add_group(
        subparsers,
        "outbox",
        "(older name) list waiting messages",
        "  gateway outbox list --state held",
        dest="outbox_command",
        metavar="ACTION",
    )
    cmd = add_command(
        actions,
        "list",
        "list messages oldest first (same filters as 'gateway messages')",
        "  gateway outbox list --state held --json",
    )
    add_filter_arguments(cmd)
    cmd.add_argument("--limit", type=int, default=200, help="at most this many (default 200)")
    cmd.add_argument("--json", action="store_true", help="JSON list for scripts")
    cmd.set_defaults(func=cmd_outbox_list)
