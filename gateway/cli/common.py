"""Shared plumbing of the console commands: configuration, store access, filters and output.

Read-only commands open only the store (fast, no schemas). Steering commands build the whole
gateway so that every move goes through the service and :class:`gateway.service.operator.Operator`.
Building the parser imports nothing heavy: the store, the configuration and lxml are imported
by the functions that use them, when a command runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import os
import re
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeAlias, TypeVar

from gateway.core.catalogue import ALL_TYPES
from gateway.core.errors import ConfigError, GatewayError
from gateway.core.model import Direction, Message, State
from gateway.terminal import style

if TYPE_CHECKING:
    from gateway.config import Settings
    from gateway.core.privacy import Pseudonymizer
    from gateway.service.operator import Operator
    from gateway.store.base import SearchQuery
    from gateway.store.sql import SqlStore

CONFIG_ENV = "GATEWAY_CONFIG"
EXIT_OK = 0
T = TypeVar("T")

STATE_COLOURS = {
    "delivered": "green",
    "queued": "blue",
    "sending": "blue",
    "held": "yellow",
    "dead": "red",
    "rejected": "red",
    "received": "dim",
}

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class ConsoleError(GatewayError):
    """The command cannot run as asked."""


def add_command(
    subparsers: Subparsers, name: str, summary: str, examples: str, **kwargs: Any
) -> argparse.ArgumentParser:
    """A subcommand with its summary, description and an "examples" epilog."""
    parser = subparsers.add_parser(
        name,
        help=summary,
        description=summary[0].upper() + summary[1:] + ".",
        epilog="examples:\n" + examples.strip("\n"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **kwargs,
    )
    config_option(parser)
    return parser


def add_group(
    subparsers: Subparsers, name: str, summary: str, examples: str, *, dest: str, metavar: str
) -> Subparsers:
    """A command with subcommands of its own (``mappings check``): its subparsers."""
    parser = subparsers.add_parser(
        name,
        help=summary,
        description=summary[0].upper() + summary[1:] + ".",
        epilog="examples:\n" + examples.strip("\n"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser.add_subparsers(dest=dest, metavar=metavar, required=True)


def config_option(parser: argparse.ArgumentParser) -> None:
    """``--config PATH`` (default ``$GATEWAY_CONFIG`` or ``./config.toml``)."""
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="PATH",
        help=f"configuration file (default: ${CONFIG_ENV} or ./config.toml)",
    )


def settings_of(args: argparse.Namespace) -> Settings:
    """Load and check the configuration named by ``--config``."""
    from gateway.config import check_paths, load_config

    path = args.config or Path(os.environ.get(CONFIG_ENV, "config.toml"))
    settings = load_config(path, os.environ)
    problems = check_paths(settings)
    if problems:
        raise ConfigError("\n".join(problems))
    return settings


def operator_name() -> str:
    """Who is acting: ``operator:<login>``."""
    try:
        return f"operator:{getpass.getuser()}"
    except (KeyError, OSError):
        return "operator"


@contextmanager
def open_store(settings: Settings) -> Iterator[SqlStore]:
    """The migrated store of ``settings``, closed afterwards."""
    from gateway.pseudonym_key import load_pseudonymizer
    from gateway.store.sql import SqlStore

    store = SqlStore(settings.store_url, pseudonyms=load_pseudonymizer(settings))
    try:
        store.migrate()
        yield store
    finally:
        store.close()


def with_operator(args: argparse.Namespace, action: Callable[[Operator], Awaitable[T]]) -> T:
    """Build the gateway and run ``action(operator)`` on an event loop."""
    # Imported on use: the composition root pulls in aiohttp and the scheduler, which the
    # read-only commands never need (it keeps their start-up fast).
    import asyncio
    import logging

    from gateway.daemon.app import build_app
    from gateway.logs import configure_logging
    from gateway.service.operator import Operator

    # Moves are recorded in the history and the audit trail; the console prints its own
    # summary, so only warnings of the service reach stderr.
    configure_logging(level=logging.WARNING)

    gateway = build_app(settings_of(args))

    async def main() -> T:
        try:
            await asyncio.to_thread(gateway.store.migrate)
            await gateway.service.refresh_holds()
            return await action(Operator(gateway.service, operator_name()))
        finally:
            gateway.store.close()

    return asyncio.run(main())


# -- filters ---------------------------------------------------------------------------------

_RELATIVE = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DAY_WORDS = {"today": 0, "yesterday": 1}
MOMENT_FORMATS = (
    "a date (2025-03-01), a time (2025-03-01T09:30), today, yesterday, "
    "or an age such as 30m, 24h, 7d or 2w"
)


def parse_moment(value: str, now: dt.datetime | None = None) -> dt.datetime:
    """A moment in UTC from one of :data:`MOMENT_FORMATS`.

    Dates and times without an offset are UTC; ``today`` and ``yesterday`` are the start of
    that UTC day (the same as typing its date); an age counts back from now.
    """
    now = now or dt.datetime.now(dt.UTC)
    word = value.strip().lower()
    if word in _DAY_WORDS:
        day = now.astimezone(dt.UTC).date() - dt.timedelta(days=_DAY_WORDS[word])
        return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    relative = _RELATIVE.match(word)
    if relative:
        amount, unit = int(relative.group(1)), _UNITS[relative.group(2)]
        return now - dt.timedelta(**{unit: amount})
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise ConsoleError(f"cannot read the time {value!r}; use {MOMENT_FORMATS}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def moment(value: str) -> str:
    """Argument type of ``--since``/``--until``: refuses what :func:`parse_moment` cannot read.

    The text is kept (and read again when the query is built) so that the audit trail shows
    what the operator typed.
    """
    try:
        parse_moment(value)
    except ConsoleError:
        raise argparse.ArgumentTypeError(
            f"cannot read the time {value!r}; use {MOMENT_FORMATS}"
        ) from None
    return value


def iso_date(value: str) -> dt.date:
    """Argument type of options that take a calendar date."""
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a date; use YYYY-MM-DD, e.g. 2025-03-01"
        ) from None


def message_type(value: str) -> str:
    """Argument type of ``--type``: one of the iJw message types, as ``JW315`` or ``315``."""
    wanted = value.strip().upper()
    if wanted.isdigit():
        wanted = "JW" + wanted
    if wanted not in ALL_TYPES:
        raise argparse.ArgumentTypeError(
            f"unknown message type {value!r}; known types: {', '.join(sorted(ALL_TYPES))}"
        )
    return wanted


def add_filter_arguments(parser: argparse.ArgumentParser) -> None:
    """The search filters shared by ``messages``, bulk ``retry``/``cancel``/``replay``."""
    group = parser.add_argument_group("filters (combined with AND)")
    group.add_argument("--party", help="sent by or addressed to this party id")
    group.add_argument("--from", dest="sender", metavar="PARTY", help="sent by this party")
    group.add_argument("--to", dest="recipient", metavar="PARTY", help="addressed to this party")
    group.add_argument(
        "--direction",
        choices=[d.value for d in Direction],
        help="inbound (sent by a party) or generated (a retour made by the gateway)",
    )
    group.add_argument(
        "--type", dest="message_type", type=message_type, metavar="JWnnn", help="message type"
    )
    group.add_argument(
        "--state",
        action="append",
        choices=[s.value for s in State],
        help="state (repeat for several)",
    )
    group.add_argument(
        "--since", type=moment, metavar="WHEN", help="arrived at or after (date, time, 7d, 24h)"
    )
    group.add_argument(
        "--until", type=moment, metavar="WHEN", help="arrived before (date, time, 7d, 24h)"
    )
    group.add_argument("--bericht-id", metavar="ID", help="BerichtIdentificatie/Identificatie")
    group.add_argument("--toewijzing", metavar="NR", help="ToewijzingNummer in the message")
    group.add_argument("--declaratie", metavar="NR", help="DeclaratieNummer in the message")
    group.add_argument("--rule", metavar="CODE", help="a finding of this rule (e.g. TR301, XSD)")
    group.add_argument(
        "--bsn",
        metavar="BSN",
        help="messages about this client; the BSN is hashed at once and never shown",
    )


def has_filter(args: argparse.Namespace) -> bool:
    """True when at least one filter was given (bulk actions refuse to run on everything)."""
    names = (
        "party",
        "sender",
        "recipient",
        "direction",
        "message_type",
        "state",
        "since",
        "until",
        "bericht_id",
        "toewijzing",
        "declaratie",
        "rule",
        "bsn",
    )
    return any(getattr(args, name, None) for name in names)


def query_from(
    args: argparse.Namespace,
    pseudonyms: Pseudonymizer,
    *,
    limit: int = 50,
    newest_first: bool = True,
    cursor: str | None = None,
) -> SearchQuery:
    """The :class:`SearchQuery` for the filter arguments (a BSN as its key by ``pseudonyms``)."""
    from gateway.store.base import SearchQuery

    key = None
    if args.bsn:
        bsn = args.bsn.strip()
        if not (len(bsn) == 9 and bsn.isdigit()):
            raise ConsoleError("--bsn takes the nine digits of a BSN")
        key = pseudonyms.client_key(bsn)
    return SearchQuery(
        party=args.party,
        sender=args.sender,
        recipient=args.recipient,
        direction=args.direction,
        message_type=args.message_type.upper() if args.message_type else None,
        states=tuple(State(s) for s in args.state or ()),
        since=parse_moment(args.since) if args.since else None,
        until=parse_moment(args.until) if args.until else None,
        bericht_id=args.bericht_id,
        toewijzing=args.toewijzing,
        declaratie=args.declaratie,
        rule=args.rule,
        client_key=key,
        cursor=cursor,
        newest_first=newest_first,
        limit=limit,
    )


def describe_filters(args: argparse.Namespace) -> str:
    """The filters in words, for confirmations and the audit trail (BSN masked)."""
    from gateway.core.privacy import mask_bsn

    parts = []
    for name, label in (
        ("party", "party"),
        ("sender", "from"),
        ("recipient", "to"),
        ("direction", "direction"),
        ("message_type", "type"),
        ("since", "since"),
        ("until", "until"),
        ("bericht_id", "bericht-id"),
        ("toewijzing", "toewijzing"),
        ("declaratie", "declaratie"),
        ("rule", "rule"),
    ):
        value = getattr(args, name, None)
        if value:
            parts.append(f"{label}={value}")
    if getattr(args, "state", None):
        parts.append("state=" + ",".join(args.state))
    if getattr(args, "bsn", None):
        parts.append(f"bsn={mask_bsn(args.bsn)}")
    return " ".join(parts) or "(no filter)"


# -- output ----------------------------------------------------------------------------------


def colour_enabled(stream: TextIO) -> bool:
    """Colours only on a terminal, and never with NO_COLOR."""
    return stream.isatty() and not os.environ.get("NO_COLOR")


def render_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    stream: TextIO,
    colour_column: int | None = None,
) -> None:
    """A plain aligned table; the state column in colour on a terminal."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    colour = colour_enabled(stream)
    stream.write(
        style(
            "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
            "bold",
            colour,
        )
        + "\n"
    )
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            padded = cell.ljust(widths[i])
            if i == colour_column and cell in STATE_COLOURS:
                padded = style(cell, STATE_COLOURS[cell], colour) + " " * (widths[i] - len(cell))
            cells.append(padded)
        stream.write("  ".join(cells).rstrip() + "\n")


def when(value: dt.datetime | None) -> str:
    """A compact UTC time for tables."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def age(value: dt.datetime | None, now: dt.datetime) -> str:
    """``3d 4h`` / ``5h 12m`` / ``40s`` since ``value``."""
    if value is None:
        return "-"
    seconds = int((now - value).total_seconds())
    if seconds < 0:
        return "0s"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


def message_json(msg: Message) -> dict[str, Any]:
    """The JSON shape of a message's metadata (never its content)."""
    return {
        "id": msg.id,
        "state": msg.state.value,
        "message_type": msg.message_type,
        "sender": msg.sender,
        "recipient": msg.recipient,
        "direction": msg.direction.value,
        "bericht_id": msg.bericht_id,
        "received_at": msg.received_at.isoformat(),
        "updated_at": msg.updated_at.isoformat(),
        "attempts": msg.attempts,
        "next_attempt_at": msg.next_attempt_at.isoformat() if msg.next_attempt_at else None,
        "reason": msg.reason,
        "in_reply_to": msg.in_reply_to,
        "size": msg.size,
    }


def print_json(data: Any) -> None:
    """Indented JSON on stdout."""
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")


def confirm(question: str, assume_yes: bool) -> None:
    """Ask before a bulk action; ``--yes`` answers for scripts. Refuses without a terminal."""
    if assume_yes:
        return
    if not sys.stdin.isatty():
        raise ConsoleError(f"{question} Not asked without a terminal: add --yes to go ahead")
    answer = input(f"{question} [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise ConsoleError("stopped; nothing was changed")


def require_reason(args: argparse.Namespace, what: str) -> str:
    """The ``--reason`` of a bulk or destructive action, or an error saying how to give it."""
    reason: str | None = getattr(args, "reason", None)
    if not reason or not reason.strip():
        raise ConsoleError(f'{what} needs --reason "..." (it is kept in the audit trail)')
    return reason.strip()
