"""``gateway audit``: who did what, when and why."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from gateway.cli.common import (
    EXIT_OK,
    Subparsers,
    add_command,
    moment,
    open_store,
    parse_moment,
    print_json,
    render_table,
    settings_of,
    when,
)

if TYPE_CHECKING:
    pass

EXAMPLES = """
  gateway audit                                  # the latest 50 operator actions
  gateway audit --target 01JQ3V6X9N8W2M4K7P5R1T0ABC
  gateway audit --action replay --since 7d --json
  gateway audit --actor operator:anna --before 1200   # the next page
"""


def cmd_audit(args: argparse.Namespace) -> int:
    """List recorded operator actions, newest first."""
    from gateway.core.privacy import mask_free_text
    from gateway.store.base import AuditQuery

    settings = settings_of(args)
    query = AuditQuery(
        target=args.target,
        actor=args.actor,
        action=args.action,
        since=parse_moment(args.since) if args.since else None,
        before_id=args.before,
        limit=args.limit,
    )
    with open_store(settings) as store:
        entries = store.audit_entries(query)
    if args.json:
        print_json(
            [
                {
                    "id": e.id,
                    "at": e.at.isoformat(),
                    "actor": e.actor,
                    "action": e.action,
                    "target": e.target,
                    "reason": mask_free_text(e.reason) if e.reason else None,
                }
                for e in entries
            ]
        )
        return EXIT_OK
    if not entries:
        print("no audit entries match")
        return EXIT_OK
    render_table(
        ["#", "AT (UTC)", "ACTOR", "ACTION", "TARGET", "REASON"],
        [
            [
                str(e.id),
                when(e.at),
                e.actor,
                e.action,
                e.target,
                mask_free_text(e.reason or "")[:80],
            ]
            for e in entries
        ],
        sys.stdout,
    )
    if len(entries) == args.limit:
        print(f"\nmore: add --before {entries[-1].id}")
    return EXIT_OK


def add_audit_command(subparsers: Subparsers) -> None:
    """Register ``audit``."""
    cmd = add_command(subparsers, "audit", "list operator actions (who, when, what, why)", EXAMPLES)
    cmd.add_argument("--target", help="a message id, party id or 'payloads'")
    cmd.add_argument("--actor", help="e.g. operator:anna")
    cmd.add_argument("--action", help="retry, hold, release, cancel, replay, reveal, purge, ...")
    cmd.add_argument(
        "--since", type=moment, metavar="WHEN", help="at or after (date, time, 7d, 24h)"
    )
    cmd.add_argument("--before", type=int, metavar="N", help="entries before number N (paging)")
    cmd.add_argument("--limit", type=int, default=50, help="rows (default 50)")
    cmd.add_argument("--json", action="store_true", help="JSON for scripts")
    cmd.set_defaults(func=cmd_audit)
