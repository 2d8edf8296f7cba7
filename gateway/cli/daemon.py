"""The daemon's commands: ``run`` and ``check-config``.

``add_daemon_commands(subparsers)`` registers them on the main ``gateway`` parser. The operator
commands (messages, show, retry, hold, ...) live in :mod:`gateway.cli`.
"""

from __future__ import annotations

import argparse
import datetime as dt

from gateway.cli.common import config_option, settings_of
from gateway.clock import SystemClock

EXIT_OK, EXIT_USAGE = 0, 2

RUN_EXAMPLES = """\
examples:
  gateway run                                   config.toml in this folder
  gateway run --config /etc/gateway/config.toml
  GATEWAY_CONFIG=/etc/gateway/config.toml gateway run
"""

CHECK_CONFIG_EXAMPLES = """\
examples:
  gateway check-config
  gateway check-config --config /etc/gateway/config.toml && systemctl restart gateway
"""

# -- run / check-config ---------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    """Start the daemon in the foreground."""
    from gateway.logs import configure_logging

    settings = settings_of(args)
    configure_logging()
    # Imported on use: the composition root pulls in aiohttp and the scheduler, which the
    # other commands never need (it keeps their start-up fast).
    from gateway.daemon.app import run

    return run(settings)


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate the configuration and print a summary."""
    from gateway.mapping_files import load_mappings

    settings = settings_of(args)
    print(f"{settings.config_path}: configuration is valid")
    print(f"  server   http://{settings.server.host}:{settings.server.port}")
    print(f"  store    {_redacted(settings.store_url)}")
    print(f"  inbox    {settings.inbox}")
    print(f"  outbox   {settings.outbox}")
    print(f"  schemas  {', '.join(str(s) for s in settings.schemas)}")
    if settings.translates:
        # Loaded exactly as the daemon loads them: a broken table is exit 2 with file:line.
        summary = load_mappings(settings.mappings).summary()
        print(f"  mappings {settings.mappings} ({summary['sets']} set(s), {summary['rows']} rows)")
    print(f"  parties  {len(settings.parties)}")
    today = _today()
    for party in settings.parties:
        readiness = party.hold_reason(today) or "ready"
        extra = f", answered by {party.answered_by}" if party.answered_by else ""
        token = "token" if party.token_sha256 else "no token"
        if party.generations:
            extra += f", speaks {party.generation_on(today) or '-'}"
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


def add_daemon_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register run and check-config (operator commands live in :mod:`gateway.cli`)."""
    cmd = subparsers.add_parser(
        "run",
        help="run the gateway daemon in the foreground",
        description="Run the gateway in the foreground: HTTP intake, inbox watcher, validation, "
        "translation, routing and delivery with retries, until SIGINT or SIGTERM. Logs go to "
        "stderr (JSON lines unless on a terminal).",
        epilog=RUN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    config_option(cmd)
    cmd.set_defaults(func=cmd_run)

    cmd = subparsers.add_parser(
        "check-config",
        help="validate config.toml and print a summary (exit 2 on errors)",
        description="Load the configuration exactly as 'gateway run' would (paths, parties, "
        "mapping tables) and print a summary with each party's readiness. Exit 0 when it is "
        "valid, 2 with every problem when it is not.",
        epilog=CHECK_CONFIG_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    config_option(cmd)
    cmd.set_defaults(func=cmd_check_config)
