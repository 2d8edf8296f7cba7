"""``gateway show ID``: everything about one message, personal data masked unless ``--reveal``."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import TYPE_CHECKING, Any

from gateway.cli.common import (
    EXIT_OK,
    ConsoleError,
    Subparsers,
    add_command,
    colour_enabled,
    message_json,
    open_store,
    print_json,
    require_reason,
    settings_of,
    when,
    with_operator,
)
from gateway.terminal import style

if TYPE_CHECKING:
    from lxml import etree

    from gateway.store.sql import SqlStore

EXAMPLES = """
  gateway show 01JQ3V6X9N8W2M4K7P5R1T0ABC            # header, history, findings, related
  gateway show 01JQ3V6X9N8W2M4K7P5R1T0ABC --json
  gateway show 01JQ3V6X9N8W2M4K7P5R1T0ABC --xml      # the XML, personal data masked
  gateway show 01JQ3V6X9N8W2M4K7P5R1T0ABC --xml --reveal --reason "ticket 4711"  # audited
"""


def header_summary(root: etree._Element | None, purged: bool) -> dict[str, Any]:
    """Header fields and a masked view of the clients: nothing that identifies a person."""
    from gateway.core.document import text
    from gateway.core.privacy import mask_bsn

    if purged:
        return {"purged": True}
    if root is None:
        return {"readable": False}
    bsns = [el.text or "" for el in root.iter("{*}Bsn")]
    return {
        "afzender": text(root, "Header/Afzender"),
        "ontvanger": text(root, "Header/Ontvanger"),
        "identificatie": text(root, "Header/BerichtIdentificatie/Identificatie"),
        "dagtekening": text(root, "Header/BerichtIdentificatie/Dagtekening"),
        "clients": sorted({mask_bsn(b) for b in bsns if b}),
        "declaratie_periode": _period(root),
    }


def _period(root: etree._Element) -> str | None:
    from gateway.core.document import findall, text

    periods = findall(root, "Declaratie/DeclaratiePeriode")
    if not periods:
        return None
    return f"{text(periods[0], 'Begindatum')} .. {text(periods[0], 'Einddatum')}"


def gather(store: SqlStore, message_id: str) -> dict[str, Any]:
    """The whole picture of one message as JSON-ready data."""
    from gateway.core.privacy import mask_free_text, personal_values
    from gateway.core.xmlsafe import parse_safely
    from gateway.store.base import KeyKind

    msg = store.get(message_id)
    if msg is None:
        raise ConsoleError(
            f"no message {message_id}; find it with 'gateway messages --bericht-id ...'"
        )
    keys = store.keys_of(message_id)
    raw = store.payload(message_id)
    parsed = None if raw is None else parse_safely(raw).tree
    root = None if parsed is None else parsed.getroot()
    # Stored findings are scrubbed when made; scrubbing again covers rows older than that.
    values = frozenset() if root is None else personal_values(root)
    return {
        **message_json(msg),
        "replay_of": store.replay_of(message_id),
        "header": header_summary(root, purged=raw is None),
        "toewijzingen": keys.get(KeyKind.TOEWIJZING, []),
        "declaratie": keys.get(KeyKind.DECLARATIE, []),
        "history": [
            {
                "at": e.at.isoformat(),
                "from": e.from_state.value if e.from_state else None,
                "to": e.to_state.value,
                "actor": e.actor,
                "reason": mask_free_text(e.reason),
            }
            for e in store.history(message_id)
        ],
        "findings": [
            {**f, "message": _safe_message(f, values)} for f in store.findings(message_id)
        ],
        "translations": translation_summary(store, message_id),
        "related": [
            {
                "relation": rel.relation,
                "id": rel.message.id,
                "message_type": rel.message.message_type,
                "state": rel.message.state.value,
                "sender": rel.message.sender,
                "recipient": rel.message.recipient,
            }
            for rel in store.related(message_id)
        ],
    }


def _safe_message(finding: dict[str, Any], values: frozenset[str]) -> str:
    from gateway.core.privacy import mask_free_text, scrub_message

    path = finding.get("path")
    message = scrub_message(str(finding.get("message", "")), str(path) if path else None, values)
    return mask_free_text(message)


def translation_summary(store: SqlStore, message_id: str) -> list[dict[str, Any]]:
    """Original and translated code per rewrite, and what waits for a mapping decision."""
    stored = store.translation_of(message_id)
    if stored is None:
        return []
    return [
        {
            "gemeente": stored.gemeente,
            "from": stored.from_generation,
            "to": stored.to_generation,
            "delivered_translated": stored.has_payload,
            "rewrites": [
                {
                    "path": r.path,
                    "original": r.old,
                    "translated": r.new,
                    "basis": r.basis,
                    "ledger": r.key,
                }
                for r in stored.rewrites
            ],
            "undecided": [
                {
                    "path": u.path,
                    "original": str(u.product) if u.product is not None else None,
                    "reason": u.reason,
                    "ledger": u.key,
                    "candidates": [str(c) for c in u.candidates],
                }
                for u in stored.undecided
            ],
        }
    ]


def _translation_lines(translations: list[dict[str, Any]], colour: bool) -> list[str]:
    out: list[str] = []
    for item in translations:
        out.append(
            style(f"translation {item['from']} -> {item['to']}", "bold", colour)
            + f"  (gemeente {item['gemeente']})"
        )
        for rewrite in item["rewrites"]:
            out.append(
                f"  {rewrite['original']:<10} -> {rewrite['translated']:<10} "
                f"{rewrite['path']}  [{rewrite['basis']}]"
            )
        for waiting in item["undecided"]:
            options = ", ".join(waiting["candidates"])
            suffix = f" (candidates: {options})" if options else ""
            out.append(
                f"  {waiting['original'] or '-':<10} -> ?          {waiting['path']}: "
                f"{waiting['reason']}{suffix}"
            )
    return out


def cmd_show(args: argparse.Namespace) -> int:
    """Show one message; ``--xml`` prints its content with personal data masked."""
    settings = settings_of(args)
    if args.reveal:
        if not args.xml:
            raise ConsoleError("--reveal only applies to --xml")
        reason = require_reason(args, "revealing personal data")
        revealed = with_operator(args, lambda op: op.reveal(args.id, reason))
        sys.stdout.write(revealed.decode("utf-8", "replace"))
        return EXIT_OK
    with open_store(settings) as store:
        if args.xml:
            if store.get(args.id) is None:
                raise ConsoleError(f"no message {args.id}")
            raw = store.payload(args.id)
            if raw is None:
                raise ConsoleError(f"the content of message {args.id} was purged by retention")
            sys.stdout.write(masked_xml(raw))
            return EXIT_OK
        data = gather(store, args.id)
    if args.json:
        print_json(data)
    else:
        _print(data)
    return EXIT_OK


def masked_xml(raw: bytes) -> str:
    """The message with every personal element masked (:func:`masked_copy`).

    Content that is not well-formed XML has no elements to tell personal data by, so none of
    it is printed.
    """
    from lxml import etree

    from gateway.core.privacy import masked_copy
    from gateway.core.xmlsafe import parse_safely

    parsed = parse_safely(raw)
    if parsed.tree is None:
        return (
            f"<!-- the content ({len(raw)} bytes) is not well-formed XML, so no part of it "
            "can be shown masked; see it with --reveal --reason ... -->\n"
        )
    copy = masked_copy(parsed.tree)
    return etree.tostring(copy, encoding="unicode", xml_declaration=False) + "\n"


def _header_lines(header: dict[str, Any]) -> list[str]:
    if header.get("purged"):
        return ["  content       purged by retention (metadata and history kept)"]
    if header.get("readable") is False:
        return ["  content       not readable XML"]
    lines = [
        f"  header        {header['afzender']} -> {header['ontvanger']}, "
        f"identificatie {header['identificatie']}, dagtekening {header['dagtekening']}"
    ]
    if header["clients"]:
        lines.append(f"  clients       {', '.join(header['clients'])}")
    if header.get("declaratie_periode"):
        lines.append(f"  period        {header['declaratie_periode']}")
    return lines


def _print(data: dict[str, Any]) -> None:
    colour = colour_enabled(sys.stdout)
    out: list[str] = []
    state = style(data["state"], "bold", colour)
    out.append(f"{data['id']}  {data['message_type'] or '?'}  {state}  {data['reason'] or ''}")
    for label, key in (
        ("from", "sender"),
        ("to", "recipient"),
        ("direction", "direction"),
        ("bericht-id", "bericht_id"),
        ("received", "received_at"),
        ("updated", "updated_at"),
        ("attempts", "attempts"),
        ("next attempt", "next_attempt_at"),
        ("answers", "in_reply_to"),
        ("replay of", "replay_of"),
        ("size", "size"),
    ):
        if data.get(key) not in (None, ""):
            out.append(f"  {label:<14}{data[key]}")
    out += _header_lines(data["header"])
    if data["toewijzingen"]:
        out.append(f"  toewijzingen  {', '.join(data['toewijzingen'])}")
    if data["declaratie"]:
        out.append(f"  declaratie    {', '.join(data['declaratie'])}")
    out.append(style("history", "bold", colour))
    for event in data["history"]:
        out.append(
            f"  {when_iso(event['at'])}  {event['from'] or '-':>9} -> {event['to']:<9} "
            f"{event['actor']}: {event['reason']}"
        )
    out += _translation_lines(data["translations"], colour)
    if data["findings"]:
        out.append(style("findings", "bold", colour))
        for finding in data["findings"]:
            code = f" [{finding['retourcode']}]" if finding.get("retourcode") else ""
            where = f" {finding['path']}" if finding.get("path") else ""
            out.append(f"  {finding['rule']}{code}{where}: {finding['message']}")
    if data["related"]:
        out.append(style("related", "bold", colour))
        for rel in data["related"]:
            out.append(
                f"  {rel['relation']:<26} {rel['id']}  {rel['message_type'] or '?'}  "
                f"{rel['state']}  {rel['sender']} -> {rel['recipient'] or '-'}"
            )
    print("\n".join(out))


def when_iso(value: str) -> str:
    """An ISO time from JSON data, printed like the tables."""
    return when(dt.datetime.fromisoformat(value))


def add_show_command(subparsers: Subparsers) -> None:
    """Register ``show``."""
    cmd = add_command(
        subparsers, "show", "show one message: header, history, findings, links", EXAMPLES
    )
    cmd.add_argument("id", help="message id (from 'gateway messages')")
    cmd.add_argument("--json", action="store_true", help="JSON for scripts")
    cmd.add_argument("--xml", action="store_true", help="print the XML (personal data masked)")
    cmd.add_argument(
        "--reveal",
        action="store_true",
        help="with --xml: do not mask personal data (needs --reason; audited)",
    )
    cmd.add_argument(
        "--reason", help="why the personal data must be seen (kept in the audit trail)"
    )
    cmd.set_defaults(func=cmd_show)
