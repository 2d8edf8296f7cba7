"""The operator console: find, inspect, steer and report on messages from the command line.

One module per concern; :func:`add_console_commands` registers them all on ``gateway``.
Read-only commands open only the store; steering goes through :mod:`gateway.operator`.
"""

from __future__ import annotations

from gateway.console.audit import add_audit_command
from gateway.console.common import Subparsers
from gateway.console.completion import add_completion_command
from gateway.console.deadlines import add_deadlines_command
from gateway.console.dossier import add_dossier_command
from gateway.console.purge import add_purge_command
from gateway.console.report import add_report_commands
from gateway.console.search import add_search_commands
from gateway.console.show import add_show_command
from gateway.console.status import add_status_command
from gateway.console.steer import add_steer_commands


def add_console_commands(subparsers: Subparsers) -> None:
    """Register messages, show, retry, hold, release, cancel, replay, status, deadlines, dossier,
    report, purge, audit and completion (plus the older ``outbox list``)."""
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
