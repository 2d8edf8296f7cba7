"""``gateway status [--watch]``: every party at a glance."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from typing import TYPE_CHECKING, Any

from gateway.cli.common import (
    EXIT_OK,
    Subparsers,
    add_command,
    age,
    colour_enabled,
    open_store,
    print_json,
    render_table,
    settings_of,
    when,
)
from gateway.core.model import State
from gateway.terminal import style

if TYPE_CHECKING:
    from gateway.config import Settings
    from gateway.store.sql import SqlStore

EXAMPLES = """
  gateway status                     # readiness, queue, oldest, dead, last delivery, overdue
  gateway status --watch             # refresh every 2 seconds until Ctrl-C
  gateway status --json
  gateway status --check             # exit 1 when the daemon does not answer (for monitoring)
"""

EXIT_DAEMON_DOWN = 1
"""``status --check``: the daemon did not answer at its configured address."""
PROBE_TIMEOUT_SECONDS = 2.0
"""How long ``status`` waits for the daemon's /healthz before calling it not answering."""
_PROBE_MAX_BYTES = 4096


def daemon_url(settings: Settings) -> str:
    """The daemon's base URL as this host reaches it: a wildcard listen address is probed
    on loopback."""
    host = settings.server.host
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.server.port}"


def daemon_answers(url: str, timeout: float = PROBE_TIMEOUT_SECONDS) -> bool:
    """True when ``GET url/healthz`` answers 200 with ``{"status": "ok"}`` within ``timeout``."""
    import json
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
            return None

    # The configured address itself: no proxy, no redirect followed.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect())
    try:
        with opener.open(f"{url}/healthz", timeout=timeout) as response:
            if response.status != 200:
                return False
            body = response.read(_PROBE_MAX_BYTES)
    except (OSError, ValueError):
        return False
    try:
        answer = json.loads(body)
    except ValueError:
        return False
    return isinstance(answer, dict) and answer.get("status") == "ok"


def party_status(settings: Settings, store: SqlStore, now: dt.datetime) -> list[dict[str, Any]]:
    """One row per configured party (and per unknown recipient still in the store)."""
    from gateway.service.retour_deadlines import overdue_by_party, retour_deadlines

    counts = store.counts_by_party()
    oldest = store.oldest_waiting()
    last = store.last_delivered()
    holds = store.party_holds()
    overdue = overdue_by_party(retour_deadlines(store, now, overdue_only=True))
    rows: list[dict[str, Any]] = []
    for party in settings.parties:
        readiness = party.hold_reason(now.date()) or (
            f"held: {holds[party.id]}" if party.id in holds else "ready"
        )
        rows.append(
            {
                "party": party.id,
                "role": party.role.value,
                "channel": party.channel.value,
                "readiness": readiness,
                "queued": counts.get((party.id, State.QUEUED.value), 0)
                + counts.get((party.id, State.SENDING.value), 0),
                "held": counts.get((party.id, State.HELD.value), 0),
                "dead": counts.get((party.id, State.DEAD.value), 0),
                "oldest_waiting": oldest[party.id].isoformat() if party.id in oldest else None,
                "oldest_waiting_age": age(oldest.get(party.id), now)
                if party.id in oldest
                else None,
                "last_delivered": last[party.id].isoformat() if party.id in last else None,
                # Retours (and JW325s) this party owes past their due date (OP090).
                "overdue_deadlines": overdue.get(party.id, 0),
            }
        )
    return rows


def _render(rows: list[dict[str, Any]], now: dt.datetime, daemon: dict[str, Any]) -> None:
    colour = colour_enabled(sys.stdout)
    table = []
    for row in rows:
        last = row["last_delivered"]
        table.append(
            [
                row["party"],
                row["channel"],
                row["readiness"][:40],
                str(row["queued"]),
                str(row["held"]),
                str(row["dead"]),
                row["oldest_waiting_age"] or "-",
                when(dt.datetime.fromisoformat(last)) if last else "-",
                "-" if row["overdue_deadlines"] is None else str(row["overdue_deadlines"]),
            ]
        )
    print(f"gateway status at {when(now)} UTC")
    if daemon["answering"]:
        print(f"daemon: answering at {daemon['url']}")
    else:
        print(style(f"daemon: not answering at {daemon['url']}", "red", colour))
    render_table(
        [
            "PARTY",
            "CHANNEL",
            "READINESS",
            "QUEUED",
            "HELD",
            "DEAD",
            "OLDEST",
            "LAST DELIVERED",
            "OVERDUE",
        ],
        table,
        sys.stdout,
    )
    dead = sum(r["dead"] for r in rows)
    if dead:
        print(style(f"{dead} dead message(s): gateway messages --state dead", "red", colour))
    late = sum(r["overdue_deadlines"] or 0 for r in rows)
    if late:
        print(style(f"{late} overdue retour(s): gateway deadlines --overdue", "red", colour))


def cmd_status(args: argparse.Namespace) -> int:
    """Print the per-party overview once, or refresh it with ``--watch``."""
    settings = settings_of(args)
    url = daemon_url(settings)
    shown = 0
    with open_store(settings) as store:
        while True:
            now = dt.datetime.now(dt.UTC)
            daemon = {"url": url, "answering": daemon_answers(url)}
            rows = party_status(settings, store, now)
            if args.json:
                print_json({"at": now.isoformat(), "daemon": daemon, "parties": rows})
            else:
                if args.watch and sys.stdout.isatty():
                    sys.stdout.write("\x1b[H\x1b[2J")
                _render(rows, now, daemon)
            shown += 1
            if not args.watch or (args.iterations and shown >= args.iterations):
                return EXIT_DAEMON_DOWN if args.check and not daemon["answering"] else EXIT_OK
            sys.stdout.flush()
            try:
                time.sleep(args.interval)
            except KeyboardInterrupt:
                return EXIT_OK


def add_status_command(subparsers: Subparsers) -> None:
    """Register ``status``."""
    cmd = add_command(
        subparsers, "status", "per party: readiness, queue, dead, last delivery", EXAMPLES
    )
    cmd.add_argument("--watch", action="store_true", help="refresh until interrupted")
    cmd.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes")
    cmd.add_argument(
        "--iterations",
        type=int,
        default=0,
        help="with --watch: stop after this many refreshes (0 = never)",
    )
    cmd.add_argument("--json", action="store_true", help="JSON for scripts")
    cmd.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when the daemon does not answer at its configured address",
    )
    cmd.set_defaults(func=cmd_status)
