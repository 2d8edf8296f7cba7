"""The ``gateway`` command line: one parser, subcommands bound with ``set_defaults(func=...)``.

A single top-level handler turns expected errors into a clear message and exit code 2 (usage,
configuration, I/O), so no command prints a traceback for something the user can fix.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from gateway.cli.audit import add_audit_command
from gateway.cli.completion import add_completion_command
from gateway.cli.daemon import add_daemon_commands
from gateway.cli.deadlines import add_deadlines_command
from gateway.cli.dossier import add_dossier_command
from gateway.cli.purge import add_purge_command
from gateway.cli.report import add_report_commands
from gateway.cli.rules import add_rules_command
from gateway.cli.search import add_search_commands
from gateway.cli.show import add_show_command
from gateway.cli.status import add_status_command
from gateway.cli.steer import add_steer_commands
from gateway.cli.translate import add_translate_commands
from gateway.cli.validate import add_schema_commands, add_validate_command
from gateway.core.errors import GatewayError

EXIT_USAGE = 2


class UsageError(GatewayError):
    """The command was called wrongly."""


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="gateway",
        description="ijw-gateway: validate, translate, route and deliver iJw 3.2 messages.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run 'gateway COMMAND --help' for a command's options and examples.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_validate_command(subparsers)
    add_schema_commands(subparsers)
    add_daemon_commands(subparsers)
    add_search_commands(subparsers)
    add_show_command(subparsers)
    add_steer_commands(subparsers)
    add_status_command(subparsers)
    add_deadlines_command(subparsers)
    add_dossier_command(subparsers)
    add_report_commands(subparsers)
    add_purge_command(subparsers)
    add_audit_command(subparsers)
    add_completion_command(subparsers)
    add_rules_command(subparsers)
    add_translate_commands(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gateway`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``gateway messages | head``): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except GatewayError as exc:
        print(f"gateway {args.command}: {_cause_chain(exc)}", file=sys.stderr)
        return EXIT_USAGE


def _cause_chain(exc: BaseException) -> str:
    parts = [str(exc)]
    cause = exc.__cause__
    while cause is not None:
        parts.append(str(cause))
        cause = cause.__cause__
    return ": ".join(p for p in parts if p)


if __name__ == "__main__":
    sys.exit(main())
