"""Steering: ``retry``, ``hold``, ``release``, ``cancel`` and ``replay``, single or in bulk.

All of them go through :class:`gateway.service.operator.Operator`. A bulk run (filters instead of
ids) shows its size first (``--dry-run`` stops there), needs ``--reason`` and a confirmation
(``--yes`` for scripts), and leaves one audit entry per message plus one for the run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from gateway.cli.common import (
    EXIT_OK,
    ConsoleError,
    Subparsers,
    add_command,
    add_filter_arguments,
    confirm,
    describe_filters,
    has_filter,
    query_from,
    require_reason,
    when,
    with_operator,
)
from gateway.core.errors import GatewayError
from gateway.core.ids import is_message_id
from gateway.core.model import Message, State
from gateway.terminal import Progress

if TYPE_CHECKING:
    from gateway.service.operator import Operator, ReplayCheck

EXIT_PARTLY = 1

Action: TypeAlias = "Callable[[Operator, Message, str | None], Awaitable[Message]]"


@dataclass(frozen=True, slots=True)
class BulkSpec:
    """How one steering command behaves in bulk."""

    name: str
    verb: str
    default_states: tuple[State, ...]
    reason_always: bool


def _bulk_arguments(cmd: argparse.ArgumentParser, ids_help: str) -> None:
    cmd.add_argument("ids", nargs="*", metavar="ID", help=ids_help)
    add_filter_arguments(cmd)
    cmd.add_argument("--reason", help="why (required for bulk and destructive actions; audited)")
    cmd.add_argument("--dry-run", action="store_true", help="only count and show what would happen")
    cmd.add_argument("--yes", action="store_true", help="do not ask for confirmation (scripts)")


async def _targets(op: Operator, args: argparse.Namespace, spec: BulkSpec) -> list[Message]:
    if args.ids and has_filter(args):
        raise ConsoleError("give message ids or filters, not both")
    if args.ids:
        return [await op.message(i) for i in args.ids]
    if not has_filter(args):
        raise ConsoleError(
            f"{spec.name} needs message ids or at least one filter "
            f"(see 'gateway {spec.name} --help')"
        )
    if not args.state and spec.default_states:
        args.state = [s.value for s in spec.default_states]
    query = query_from(args, op.store.pseudonyms, limit=500, newest_first=False)
    return [m async for m in op.select(query)]


def _bulk(
    args: argparse.Namespace, spec: BulkSpec, action: Action, replay_checks: bool = False
) -> int:
    bulk = not args.ids
    if bulk and not has_filter(args):
        raise ConsoleError(
            f"{spec.name} needs message ids or at least one filter "
            f"(see 'gateway {spec.name} --help')"
        )
    reason: str | None = args.reason.strip() if args.reason else None
    if (bulk or spec.reason_always) and not args.dry_run:
        reason = require_reason(args, f"{'a bulk ' if bulk else ''}{spec.name}")

    async def run(op: Operator) -> int:
        targets = await _targets(op, args, spec)
        checks: dict[str, ReplayCheck] = {}
        refused = 0
        if replay_checks:
            for msg in targets:
                checks[msg.id] = await op.check_replay(msg)
            kept = _report_replay_checks(targets, checks, args)
            refused = sum(1 for c in checks.values() if c.payload_purged)
            targets = kept
        print(
            f"{len(targets)} message(s) to {spec.verb}"
            + (f" ({describe_filters(args)})" if bulk else "")
        )
        if args.dry_run:
            _print_dry_run(targets)
            return EXIT_OK
        if not targets:
            return EXIT_PARTLY if refused else EXIT_OK
        duplicates = sum(1 for c in checks.values() if c.duplicate and c.original in targets)
        if bulk or duplicates:
            what = f"{spec.verb.capitalize()} {len(targets)} message(s)"
            if duplicates:
                what += f", {duplicates} already acknowledged by the recipient"
            confirm(what + "?", args.yes)
        not_done = await _apply(op, targets, action, reason)
        done = len(targets) - not_done
        failed = refused + not_done
        if bulk and reason is not None:
            await op.record_bulk(spec.name, describe_filters(args), done, reason)
        print(f"{done} done, {failed} not done")
        return EXIT_PARTLY if failed else EXIT_OK

    return with_operator(args, run)


def _print_dry_run(targets: list[Message]) -> None:
    for msg in targets[:20]:
        print(
            f"  {msg.id}  {msg.message_type or '?':<6} {msg.state.value:<9} "
            f"{msg.sender} -> {msg.recipient or '-'}  {when(msg.received_at)}"
        )
    if len(targets) > 20:
        print(f"  ... and {len(targets) - 20} more")
    print("dry run: nothing was changed")


async def _apply(op: Operator, targets: list[Message], action: Action, reason: str | None) -> int:
    """Run ``action`` on every target; returns how many were refused."""
    failed = 0
    progress = Progress(len(targets), sys.stderr)
    for msg in targets:
        try:
            moved = await action(op, msg, reason)
        except GatewayError as exc:
            failed += 1
            progress.clear()
            print(f"  {msg.id}: not done: {exc}", file=sys.stderr)
        else:
            progress.clear()
            if moved.id != msg.id:
                print(
                    f"  {msg.id}: replayed as {moved.id}: {moved.state.value} "
                    f"({moved.reason or ''})"
                )
            else:
                print(f"  {msg.id}: {msg.state.value} -> {moved.state.value}")
        progress.step()
    progress.done()
    return failed


def _report_replay_checks(
    targets: list[Message], checks: dict[str, ReplayCheck], args: argparse.Namespace
) -> list[Message]:
    kept: list[Message] = []
    for msg in targets:
        check = checks[msg.id]
        if check.payload_purged:
            print(f"  {msg.id}: content purged by retention; cannot be replayed", file=sys.stderr)
            continue
        if check.duplicate:
            first = check.delivered_copies[0]
            note = (
                f"warning: {msg.id} was already delivered to {first.recipient} "
                f"({when(first.updated_at)}, acknowledged"
                + (
                    f", {len(check.delivered_copies)} copies"
                    if len(check.delivered_copies) > 1
                    else ""
                )
                + ")"
            )
            if args.skip_delivered:
                print(note + "; skipped", file=sys.stderr)
                continue
            print(note + "; a replay delivers it again", file=sys.stderr)
        kept.append(msg)
    return kept


# -- the commands ----------------------------------------------------------------------------

RETRY = BulkSpec("retry", "retry", (State.DEAD,), reason_always=False)
CANCEL = BulkSpec("cancel", "cancel", (State.QUEUED, State.HELD), reason_always=True)
REPLAY = BulkSpec("replay", "replay", (), reason_always=False)


def cmd_retry(args: argparse.Namespace) -> int:
    """Retry now: dead or held → queued; a queued message in backoff becomes due now."""
    return _bulk(args, RETRY, lambda op, m, reason: op.retry(m.id, reason))


def cmd_cancel(args: argparse.Namespace) -> int:
    """Cancel waiting messages: they go to dead and are never sent by themselves."""
    return _bulk(args, CANCEL, lambda op, m, reason: op.cancel(m.id, reason or ""))


def cmd_replay(args: argparse.Namespace) -> int:
    """Run stored messages through the pipeline again, as new messages linked to them."""
    return _bulk(
        args, REPLAY, lambda op, m, reason: op.replay(m.id, reason or "replay"), replay_checks=True
    )


def cmd_hold(args: argparse.Namespace) -> int:
    """Hold one message, or every delivery to a party."""
    reason = args.reason.strip() if args.reason else None
    if is_message_id(args.target):
        moved = with_operator(args, lambda op: op.hold(args.target, reason))
        print(f"{moved.id}: held ({moved.reason})")
        return EXIT_OK
    count = with_operator(args, lambda op: op.hold_party(args.target, reason))
    print(f"{args.target}: on hold; {count} waiting message(s) held")
    return EXIT_OK


def cmd_release(args: argparse.Namespace) -> int:
    """Release one held message, or a party put on hold with 'gateway hold'."""
    reason = args.reason.strip() if args.reason else None
    if is_message_id(args.target):
        moved = with_operator(args, lambda op: op.release(args.target, reason))
        print(f"{moved.id}: {moved.state.value} ({moved.reason})")
        return EXIT_OK
    count = with_operator(args, lambda op: op.release_party(args.target, reason))
    print(f"{args.target}: released; {count} message(s) back in the queue")
    return EXIT_OK


def add_steer_commands(subparsers: Subparsers) -> None:
    """Register retry, hold, release, cancel and replay."""
    cmd = add_command(
        subparsers,
        "retry",
        "deliver dead, held or backed-off messages now",
        """
  gateway retry 01JQ3V6X9N8W2M4K7P5R1T0ABC
  gateway retry --to zorgpartners --dry-run                # count the dead ones first
  gateway retry --to zorgpartners --reason "endpoint fixed" --yes
""",
    )
    _bulk_arguments(cmd, "message ids (or use filters; bulk defaults to --state dead)")
    cmd.set_defaults(func=cmd_retry)

    cmd = add_command(
        subparsers,
        "cancel",
        "stop waiting messages for good (they go to dead)",
        """
  gateway cancel 01JQ3V6X9N8W2M4K7P5R1T0ABC --reason "sent twice by the provider"
  gateway cancel --to kompas --type JW315 --dry-run
  gateway cancel --to kompas --type JW315 --reason "withdrawn, see ticket 4711" --yes
""",
    )
    _bulk_arguments(cmd, "message ids (or use filters; bulk defaults to queued and held)")
    cmd.set_defaults(func=cmd_cancel)

    cmd = add_command(
        subparsers,
        "replay",
        "run stored messages through the pipeline again",
        """
  gateway replay 01JQ3V6X9N8W2M4K7P5R1T0ABC              # warns if it was acknowledged
  gateway replay --type JW315 --state rejected --since 2025-03-01 --dry-run
  gateway replay --type JW315 --state rejected --since 2025-03-01 \\
                 --reason "rule fix 1.4.2" --skip-delivered --yes
""",
    )
    _bulk_arguments(cmd, "message ids (or use filters)")
    cmd.add_argument(
        "--skip-delivered",
        action="store_true",
        help="leave out messages the recipient already acknowledged",
    )
    cmd.set_defaults(func=cmd_replay)

    cmd = add_command(
        subparsers,
        "hold",
        "hold one message or all deliveries to a party",
        """
  gateway hold kompas --reason "their software migration"   # a party (persists)
  gateway hold 01JQ3V6X9N8W2M4K7P5R1T0ABC --reason "check with the municipality first"
""",
    )
    cmd.add_argument("target", help="a message id or a party id")
    cmd.add_argument("--reason", help="why (audited)")
    cmd.set_defaults(func=cmd_hold)

    cmd = add_command(
        subparsers,
        "release",
        "release a held message or party",
        """
  gateway release kompas
  gateway release 01JQ3V6X9N8W2M4K7P5R1T0ABC --reason "municipality agreed"
""",
    )
    cmd.add_argument("target", help="a message id or a party id")
    cmd.add_argument("--reason", help="why (audited)")
    cmd.set_defaults(func=cmd_release)
