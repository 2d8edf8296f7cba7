"""``gateway dossier``: a client's chain of messages, oldest first, with states and findings.

Built from what the store has: the search keys of each message (client key, ToewijzingNummers),
the heen/retour correlations (which retour answers each original), the findings and the state.
A BSN is accepted as input only to be turned into its client key at once; the output shows the
key, or the BSN masked, never the BSN itself.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.cli.common import (
    EXIT_OK,
    ConsoleError,
    Subparsers,
    add_command,
    message_json,
    open_store,
    print_json,
    render_table,
    settings_of,
    when,
)
from gateway.core.catalogue import MESSAGE_KINDS
from gateway.core.model import Message, State

if TYPE_CHECKING:
    from gateway.core.privacy import Pseudonymizer
    from gateway.store.base import SearchQuery
    from gateway.store.sql import SqlStore

EXAMPLES = """
  gateway dossier --toewijzing 300201                  # an allocation's chain, every gemeente
  gateway dossier --toewijzing 300201 --gemeente 0150  # only messages of that gemeente
  gateway dossier --client 999900006                   # by BSN (hashed at once, never shown)
  gateway dossier --client 3f2a...c0d1 --json          # by client key (64 hex), for scripts
"""

PAGE = 200


@dataclass(frozen=True, slots=True)
class ChainItem:
    """One message of the chain with what the store knows about it."""

    message: Message
    rules: tuple[str, ...]
    toewijzingen: tuple[str, ...]
    linked: Message | None

    @property
    def is_retour(self) -> bool:
        """True for a retour (its ``linked`` message is the original it answers)."""
        kind = MESSAGE_KINDS.get(self.message.message_type or "")
        return kind is not None and kind.is_retour

    def as_json(self) -> dict[str, Any]:
        """The JSON shape (metadata only, never content)."""
        linked = self.linked
        return {
            **message_json(self.message),
            "rules": list(self.rules),
            "toewijzingen": list(self.toewijzingen),
            ("answers" if self.is_retour else "retour"): (
                None
                if linked is None
                else {
                    "id": linked.id,
                    "message_type": linked.message_type,
                    "state": linked.state.value,
                    "bericht_id": linked.bericht_id,
                }
            ),
        }


def client_key_of(value: str, pseudonyms: Pseudonymizer) -> tuple[str, str]:
    """(client key, how to show the client) for a BSN or a client key (64 hex)."""
    from gateway.core.privacy import CLIENT_KEY_LENGTH, mask_bsn

    text = value.strip()
    if len(text) == 9 and text.isdigit():
        return pseudonyms.client_key(text), mask_bsn(text)
    if re.fullmatch(rf"[0-9a-f]{{{CLIENT_KEY_LENGTH}}}", text.lower()):
        return text.lower(), text.lower()
    raise ConsoleError(
        f"--client takes a BSN (nine digits) or a client key ({CLIENT_KEY_LENGTH} hex characters)"
    )


def chain(store: SqlStore, query: SearchQuery, limit: int) -> list[ChainItem]:
    """The messages matching ``query`` (oldest first, at most ``limit``) as chain items."""
    from gateway.store.base import KeyKind, SearchQuery

    messages: list[Message] = []
    cursor: str | None = None
    while len(messages) < limit:
        page = store.search(
            SearchQuery(
                party=query.party,
                toewijzing=query.toewijzing,
                client_key=query.client_key,
                newest_first=False,
                cursor=cursor,
                limit=min(PAGE, limit - len(messages)),
            )
        )
        messages += page.messages
        cursor = page.next_cursor
        if cursor is None:
            break
    items = []
    for msg in messages:
        rules = tuple(dict.fromkeys(str(f.get("rule")) for f in store.findings(msg.id)))
        keys = store.keys_of(msg.id)
        linked_id = store.linked_message(msg.id)
        linked = store.get(linked_id) if linked_id is not None else None
        items.append(ChainItem(msg, rules, tuple(keys.get(KeyKind.TOEWIJZING, ())), linked))
    return items


def cmd_dossier(args: argparse.Namespace) -> int:
    """Show a client's or an allocation's chain of messages."""
    from gateway.store.base import SearchQuery

    settings = settings_of(args)
    party = None
    if args.gemeente is not None:
        found = settings.registry().by_identity(args.gemeente.strip())
        if found is None:
            raise ConsoleError(f"no party with gemeentecode {args.gemeente!r} in the configuration")
        party = found.id
    subject: dict[str, str] = {}
    if args.client is None:
        number = args.toewijzing.strip()
        if not number.isdigit():
            raise ConsoleError("--toewijzing takes a ToewijzingNummer (digits)")
        subject["toewijzing"] = number
    with open_store(settings) as store:
        if args.client is not None:
            key, subject["client"] = client_key_of(args.client, store.pseudonyms)
            query = SearchQuery(client_key=key, party=party)
        else:
            query = SearchQuery(toewijzing=subject["toewijzing"], party=party)
        if args.gemeente is not None:
            subject["gemeente"] = args.gemeente.strip()
        items = chain(store, query, args.limit)
    if args.json:
        print_json({**subject, "messages": [item.as_json() for item in items]})
        return EXIT_OK
    title = ", ".join(f"{name} {value}" for name, value in subject.items())
    if not items:
        print(f"no messages for {title}")
        return EXIT_OK
    print(f"dossier of {title}: {len(items)} message(s), oldest first")
    render_table(
        ["RECEIVED", "ID", "TYPE", "FROM -> TO", "BERICHT-ID", "STATE", "RULES", "RETOUR", "TOEW."],
        [_row(item) for item in items],
        sys.stdout,
    )
    return EXIT_OK


def _row(item: ChainItem) -> list[str]:
    msg = item.message
    linked = item.linked
    if linked is None:
        # A rejected original nobody answered waits for nothing.
        unanswered = item.is_retour or msg.message_type not in _ANSWERED
        retour = "-" if unanswered or msg.state is State.REJECTED else "waiting"
    else:
        arrow = "answers " if item.is_retour else ""
        retour = f"{arrow}{linked.message_type or '?'} {linked.id} ({linked.state.value})"
    return [
        when(msg.received_at),
        msg.id,
        msg.message_type or "-",
        f"{msg.sender} -> {msg.recipient or '?'}",
        msg.bericht_id or "-",
        msg.state.value,
        ",".join(item.rules) or "-",
        retour,
        ",".join(item.toewijzingen) or "-",
    ]


_ANSWERED = frozenset(name for name, kind in MESSAGE_KINDS.items() if kind.answered_by)


def add_dossier_command(subparsers: Subparsers) -> None:
    """Register ``dossier``."""
    cmd = add_command(
        subparsers,
        "dossier",
        "a client's or an allocation's chain of messages, with states, findings and retours",
        EXAMPLES,
    )
    which = cmd.add_mutually_exclusive_group(required=True)
    which.add_argument("--toewijzing", metavar="NR", help="messages naming this ToewijzingNummer")
    which.add_argument(
        "--client",
        metavar="BSN_OR_KEY",
        help="messages about this client: a BSN (hashed at once, never shown) or a client key",
    )
    cmd.add_argument(
        "--gemeente", metavar="CODE", help="only messages sent by or to this gemeente (CBS code)"
    )
    cmd.add_argument("--limit", type=int, default=500, help="at most this many messages")
    cmd.add_argument("--json", action="store_true", help="JSON for scripts")
    cmd.set_defaults(func=cmd_dossier)
