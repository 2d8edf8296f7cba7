"""The daemon's commands: ``run``, ``check-config`` and the minimal operator commands.

``add_daemon_commands(subparsers)`` registers them on the main ``gateway`` parser. Every
change an operator makes goes through :class:`GatewayService`, so it passes the lifecycle and
lands in the audit trail; nothing here writes SQL.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from gateway.app import Gateway, build_app, run
from gateway.clock import SystemClock
from gateway.config import Settings, check_paths, load_config
from gateway.core.document import text
from gateway.core.errors import ConfigError
from gateway.core.model import State
from gateway.core.xmlsafe import parse_safely
from gateway.logs import configure_logging
from gateway.service import event_summary, message_summary
from gateway.store.base import MessageQuery

CONFIG_ENV = "GATEWAY_CONFIG"
EXIT_OK, EXIT_USAGE = 0, 2

T = TypeVar("T")


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="PATH",
        help=f"configuration file (default: ${CONFIG_ENV} or ./config.toml)",
    )


def _settings(args: argparse.Namespace) -> Settings:
    path = args.config or Path(os.environ.get(CONFIG_ENV, "config.toml"))
    settings = load_config(path, os.environ)
    problems = check_paths(settings)
    if problems:
        raise ConfigError("\n".join(problems))
    return settings


def _operator() -> str:
    try:
        return f"operator:{getpass.getuser()}"
    except (KeyError, OSError):
        return "operator"


def _with_gateway(args: argparse.Namespace, action: Callable[[Gateway], Awaitable[T]]) -> T:
    gateway = build_app(_settings(args))

    async def main() -> T:
        try:
            await asyncio.to_thread(gateway.store.migrate)
            await gateway.service.refresh_holds()
            return await action(gateway)
        finally:
            gateway.store.close()

    return asyncio.run(main())


# -- run / check-config ---------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    """Start the daemon in the foreground."""
    settings = _settings(args)
    configure_logging()
    return run(settings)


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate the configuration and print a summary."""
    settings = _settings(args)
    print(f"{settings.config_path}: configuration is valid")
    print(f"  server   http://{settings.server.host}:{settings.server.port}")
    print(f"  store    {_redacted(settings.store_url)}")
    print(f"  inbox    {settings.inbox}")
    print(f"  outbox   {settings.outbox}")
    print(f"  schemas  {', '.join(str(s) for s in settings.schemas)}")
    print(f"  parties  {len(settings.parties)}")
    today = _today()
    for party in settings.parties:
        readiness = party.hold_reason(today) or "ready"
        extra = f", answered by {party.answered_by}" if party.answered_by else ""
        token = "token" if party.token_sha256 else "no token"
        print(
            f"    {party.id:<18} {party.role.value:<10} {party.identity or '-':<9} "
            f"{party.channel.value:<8} {token:<9} {readiness}{extra}"
        )
    return EXIT_OK


def _today() -> dt.date:
    return SystemClock().now().date()


def _redacted(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        credentials, _, host = rest.rpartition("@")
        user = credentials.split(":", 1)[0]
        return f"{scheme}{sep}{user}:***@{host}"
    return url


# -- operator commands ------------------------------------------------------------------------


def cmd_outbox_list(args: argparse.Namespace) -> int:
    """List messages by recipient and state."""
    state = State(args.state) if args.state else None

    async def action(gateway: Gateway) -> list[dict[str, Any]]:
        messages = await asyncio.to_thread(
            gateway.store.query,
            MessageQuery(party=args.party, state=state, limit=args.limit),
        )
        return [message_summary(m) for m in messages]

    rows = _with_gateway(args, action)
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
        return EXIT_OK
    if not rows:
        print("no messages")
        return EXIT_OK
    print(f"{'ID':<26}  {'TYPE':<6} {'STATE':<9} {'FROM':<14} {'TO':<14} {'TRIES':>5}  REASON")
    for row in rows:
        print(
            f"{row['id']:<26}  {row['message_type'] or '?':<6} {row['state']:<9} "
            f"{row['sender']:<14} {row['recipient'] or '-':<14} {row['attempts']:>5}  "
            f"{row['reason'] or ''}"
        )
    return EXIT_OK


def _header(raw: bytes | None) -> dict[str, str | None]:
    """Header fields that identify a message without any personal data."""
    if raw is None:
        return {}
    parsed = parse_safely(raw)
    if parsed.tree is None:
        return {}
    root = parsed.tree.getroot()
    return {
        "afzender": text(root, "Header/Afzender"),
        "ontvanger": text(root, "Header/Ontvanger"),
        "identificatie": text(root, "Header/BerichtIdentificatie/Identificatie"),
        "dagtekening": text(root, "Header/BerichtIdentificatie/Dagtekening"),
    }


def cmd_show(args: argparse.Namespace) -> int:
    """Show one message: metadata, header summary, history and findings."""

    async def action(gateway: Gateway) -> dict[str, Any]:
        view = await gateway.service.view(None, args.id)
        raw = await asyncio.to_thread(gateway.store.payload, args.id)
        return {
            **message_summary(view.message),
            "header": _header(raw),
            "history": [event_summary(e) for e in view.history],
            "findings": view.findings,
        }

    data = _with_gateway(args, action)
    if args.json:
        json.dump(data, sys.stdout, indent=2)
        print()
        return EXIT_OK
    fields = (
        "id",
        "message_type",
        "state",
        "reason",
        "sender",
        "recipient",
        "direction",
        "in_reply_to",
        "bericht_id",
        "size",
        "attempts",
        "next_attempt_at",
        "received_at",
    )
    for name in fields:
        if data.get(name) is not None:
            print(f"{name:<16} {data[name]}")
    for name, value in data["header"].items():
        print(f"{'header.' + name:<16} {value}")
    print("history:")
    for event in data["history"]:
        print(
            f"  {event['at']}  {event['from'] or '-':>9} -> {event['to']:<9} "
            f"{event['actor']}: {event['reason']}"
        )
    if data["findings"]:
        print("findings:")
        for finding in data["findings"]:
            code = f" [{finding['retourcode']}]" if finding.get("retourcode") else ""
            print(f"  {finding['rule']}{code} {finding.get('path') or ''}: {finding['message']}")
    return EXIT_OK


def cmd_retry(args: argparse.Namespace) -> int:
    """Queue a dead or held message again."""
    moved = _with_gateway(args, lambda g: g.service.retry(args.id, _operator()))
    print(f"{moved.id}: {moved.state.value} ({moved.reason})")
    return EXIT_OK


def cmd_hold(args: argparse.Namespace) -> int:
    """Hold all deliveries to a party."""
    count = _with_gateway(args, lambda g: g.service.hold_party(args.party, _operator()))
    print(f"{args.party}: on hold; {count} waiting message(s) held")
    return EXIT_OK


def cmd_release(args: argparse.Namespace) -> int:
    """Release an operator hold on a party."""
    count = _with_gateway(args, lambda g: g.service.release_party(args.party, _operator()))
    print(f"{args.party}: released; {count} message(s) back in the queue")
    return EXIT_OK


def add_daemon_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register run, check-config, outbox list, show, retry, hold and release."""
    cmd = subparsers.add_parser("run", help="run the gateway daemon in the foreground")
    _config_option(cmd)
    cmd.set_defaults(func=cmd_run)

    cmd = subparsers.add_parser(
        "check-config", help="validate config.toml and print a summary (exit 2 on errors)"
    )
    _config_option(cmd)
    cmd.set_defaults(func=cmd_check_config)

    outbox = subparsers.add_parser("outbox", help="inspect waiting and delivered messages")
    outbox_commands = outbox.add_subparsers(dest="outbox_command", metavar="ACTION", required=True)
    cmd = outbox_commands.add_parser("list", help="list messages (newest last)")
    _config_option(cmd)
    cmd.add_argument("--party", help="only messages from or to this party id")
    cmd.add_argument("--state", choices=[s.value for s in State], help="only this state")
    cmd.add_argument("--limit", type=int, default=200, help="at most this many (default 200)")
    cmd.add_argument("--json", action="store_true", help="JSON output for scripts")
    cmd.set_defaults(func=cmd_outbox_list)

    cmd = subparsers.add_parser("show", help="show one message's state, history and findings")
    _config_option(cmd)
    cmd.add_argument("id", help="message id")
    cmd.add_argument("--json", action="store_true", help="JSON output for scripts")
    cmd.set_defaults(func=cmd_show)

    cmd = subparsers.add_parser("retry", help="queue a dead or held message again")
    _config_option(cmd)
    cmd.add_argument("id", help="message id")
    cmd.set_defaults(func=cmd_retry)

    cmd = subparsers.add_parser("hold", help="hold all deliveries to a party")
    _config_option(cmd)
    cmd.add_argument("party", help="party id")
    cmd.set_defaults(func=cmd_hold)

    cmd = subparsers.add_parser("release", help="release a party held with 'gateway hold'")
    _config_option(cmd)
    cmd.add_argument("party", help="party id")
    cmd.set_defaults(func=cmd_release)
