"""The ``gateway`` command line: one parser, subcommands bound with ``set_defaults(func=...)``.

One module per command group (``validate``, ``daemon``, ``search``, ``steer``, ...) registers
its subcommands. Building the parser imports only light modules; each command imports the
store, the configuration, lxml or the service when it runs, so ``gateway --help`` answers at
once. Nothing outside this package imports it.

A single top-level handler turns expected errors into a clear message and exit code 2 (usage,
configuration, I/O), so no command prints a traceback for something the user can fix.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, cast

from gateway.cli.audit import add_audit_command
from gateway.cli.chain_sim import add_chain_sim_commands
from gateway.cli.common import Subparsers
from gateway.cli.completion import add_completion_command
from gateway.cli.contracts import add_contracts_commands
from gateway.cli.daemon import add_daemon_commands
from gateway.cli.deadlines import add_deadlines_command
from gateway.cli.dossier import add_dossier_command
from gateway.cli.init import add_init_command
from gateway.cli.purge import add_purge_command
from gateway.cli.report import add_report_commands
from gateway.cli.rules import add_rules_command
from gateway.cli.search import add_search_commands
from gateway.cli.settle import add_settle_command
from gateway.cli.show import add_show_command
from gateway.cli.status import add_status_command
from gateway.cli.steer import add_steer_commands
from gateway.cli.translate import add_translate_commands
from gateway.cli.validate import add_schema_commands, add_validate_command
from gateway.core.errors import GatewayError

EXIT_OK, EXIT_USAGE = 0, 2
DISTRIBUTION = "ijw-gateway"

EXAMPLES = """\
examples:
  gateway validate inbox/          check messages without a running gateway
  gateway init /srv/gateway        a starter config.toml and folders for a new deployment
  gateway run                      start the daemon (config.toml in this folder)
  gateway status                   every party at a glance
  gateway messages --state held    what waits for an operator
Run 'gateway COMMAND --help' for a command's options and examples.
"""


# argparse._SubParsersAction is generic only in the stubs, not at run time.
class _Subcommands(argparse._SubParsersAction):  # type: ignore[type-arg]
    """Subcommands that report an unknown option with the subcommand's own usage.

    argparse hands a subcommand's leftover arguments back to the top-level parser, which then
    prints ``usage: gateway [-h] COMMAND ...``: true, but no help to someone who mistyped an
    option of ``gateway messages``.
    """

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[object] | None,
        option_string: str | None = None,
    ) -> None:
        super().__call__(parser, namespace, values, option_string)
        leftover = getattr(namespace, argparse._UNRECOGNIZED_ARGS_ATTR, None)
        if leftover and isinstance(values, Sequence):
            subcommand = self.choices[str(values[0])]
            subcommand.error(f"unrecognized arguments: {' '.join(leftover)}")


class _Version(argparse.Action):
    """``--version``, read from the installed package's metadata only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS) -> None:
        super().__init__(
            option_strings,
            dest=dest,
            default=argparse.SUPPRESS,
            nargs=0,
            help="print the version and exit",
        )

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[object] | None,
        option_string: str | None = None,
    ) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version(DISTRIBUTION)
        except PackageNotFoundError:
            found = "unknown (not installed)"
        print(f"gateway {found}")
        parser.exit()


class GatewayParser(argparse.ArgumentParser):
    """An ArgumentParser whose subcommands (at every depth) use :class:`_Subcommands`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register("action", "parsers", _Subcommands)


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every subcommand."""
    parser = GatewayParser(
        prog="gateway",
        description="ijw-gateway: validate, translate, route and deliver iJw 3.2 messages.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EXAMPLES,
    )
    parser.add_argument("--version", action=_Version)
    # Not required: a bare ``gateway`` prints this help (the list of commands), not an error.
    subparsers = cast("Subparsers", parser.add_subparsers(dest="command", metavar="COMMAND"))
    add_validate_command(subparsers)
    add_schema_commands(subparsers)
    add_init_command(subparsers)
    add_daemon_commands(subparsers)
    add_search_commands(subparsers)
    add_show_command(subparsers)
    add_steer_commands(subparsers)
    add_status_command(subparsers)
    add_deadlines_command(subparsers)
    add_dossier_command(subparsers)
    add_report_commands(subparsers)
    add_settle_command(subparsers)
    add_purge_command(subparsers)
    add_audit_command(subparsers)
    add_contracts_commands(subparsers)
    add_completion_command(subparsers, root=parser)
    add_rules_command(subparsers)
    add_translate_commands(subparsers)
    add_chain_sim_commands(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gateway`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_OK
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
