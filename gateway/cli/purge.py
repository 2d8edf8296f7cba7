"""``gateway purge``: apply ``[retention]`` now (the daemon runs the same pass on a schedule)."""

from __future__ import annotations

import argparse
import datetime as dt

from gateway.cli.common import (
    EXIT_OK,
    Subparsers,
    add_command,
    print_json,
    require_reason,
    settings_of,
    with_operator,
)

EXAMPLES = """
  gateway purge --dry-run                          # what [retention] would drop now
  gateway purge --reason "monthly retention"       # drop payloads, reclaim space
  gateway purge --reason "first purge" --vacuum    # SQLite: rewrite the file once (VACUUM)
"""


def cmd_purge(args: argparse.Namespace) -> int:
    """Drop payloads of delivered/rejected messages older than the retention; keep the rest."""
    settings = settings_of(args)
    retention = settings.retention
    reason = None if args.dry_run else require_reason(args, "purge")
    from gateway.service.operator import retention_cutoffs

    cutoffs = retention_cutoffs(retention, dt.datetime.now(dt.UTC))
    result = with_operator(
        args,
        lambda op: op.purge(
            retention, dry_run=args.dry_run, full_vacuum=args.vacuum, reason=reason
        ),
    )
    if args.json:
        print_json(
            {
                "dry_run": args.dry_run,
                "payloads": result.payloads,
                "bytes_freed": result.bytes_freed,
                "cutoffs": {s.value: c.isoformat() for s, c in cutoffs.items()},
            }
        )
        return EXIT_OK
    if not cutoffs:
        print("retention keeps everything ([retention] delivered_days = rejected_days = 0)")
        return EXIT_OK
    verb = "would drop" if args.dry_run else "dropped"
    for state, cutoff in cutoffs.items():
        count = result.payloads.get(state.value, 0)
        print(
            f"{verb} {count} payload(s) of {state.value} messages last moved before "
            f"{cutoff:%Y-%m-%d %H:%M} UTC"
        )
    print(
        "kept: metadata, history, findings and the audit trail of every message; all "
        "queued, held, sending and dead messages"
    )
    if args.dry_run:
        print('dry run: nothing was changed; run again with --reason "..." to purge')
    else:
        print(f"disk space handed back: {result.bytes_freed // 1024} KiB")
    return EXIT_OK


def add_purge_command(subparsers: Subparsers) -> None:
    """Register ``purge``."""
    cmd = add_command(subparsers, "purge", "drop old payloads as [retention] says", EXAMPLES)
    cmd.add_argument("--dry-run", action="store_true", help="only count")
    cmd.add_argument("--reason", help="why (required unless --dry-run; audited)")
    cmd.add_argument(
        "--vacuum",
        action="store_true",
        help="SQLite: rewrite the file with VACUUM (takes a lock; use off-hours)",
    )
    cmd.add_argument("--json", action="store_true", help="JSON for scripts")
    cmd.set_defaults(func=cmd_purge)
