"""``gateway init [DIR]``: a documented starter deployment, so the gateway starts from the wheel.

It writes ``DIR/config.toml`` with one party of each role and creates the folders the daemon
uses. Each party gets a fresh random token, printed once; the file stores only its SHA-256.
Schemas and mapping tables are not copied: a configuration without ``[paths] schemas`` or
``mappings`` uses the ones shipped with the gateway.
"""

from __future__ import annotations

import argparse
import secrets
from pathlib import Path

from gateway.cli.common import ConsoleError

EXIT_OK = 0
CONFIG_NAME = "config.toml"
FOLDERS = ("inbox", "outbox", "data")
DEFAULT_PORT = 8480
# (party id, role): the ids name folders and appear in the summary of check-config.
STARTER_PARTIES = (
    ("bvo", "bvo"),
    ("gemeente-a", "gemeente"),
    ("aanbieder-a", "aanbieder"),
)

INIT_EXAMPLES = """\
  gateway init /srv/gateway                     config.toml, inbox/, outbox/, data/ there
  gateway init                                  the same in the current folder
  gateway init --port 8481 /srv/gateway-test    another port
  gateway init --force /srv/gateway             replace an existing config.toml (new tokens)
"""

CONFIG_TEMPLATE = """\
# ijw-gateway configuration, written by `gateway init`. Check it with
#   gateway check-config --config {config}
# and start the daemon with `gateway run --config {config}`.
# Relative paths are relative to this file's folder. docs/configuration.md of ijw-gateway
# describes every key; keys left out take the defaults named in the comments.

[server]
host = "127.0.0.1"   # 0.0.0.0 to listen on every interface (put TLS in front of it)
port = {port}
# prepare_workers = 0  # processes that validate beside the event loop (up to cores - 1)

[store]
# Default: an embedded SQLite file, data/gateway.db. For PostgreSQL install the extra
# (pip install 'ijw-gateway[postgres]') and give its URL here or in GATEWAY_STORE_URL:
# url = "postgresql+psycopg://gateway:secret@localhost/gateway"

[paths]
inbox = "inbox"     # the parties' file drop: inbox/<party id>/
outbox = "outbox"   # files for parties with channel "folder": outbox/<party id>/
data = "data"
# Left out, these use the iJw 3.2 and 2.3 schemas and the mapping tables shipped with the gateway:
# schemas = ["schemas/ijw-3.2", "schemas/ijw-2.3"]
# mappings = "mappings"

[limits]
max_message_bytes = 26_214_400  # 25 MB, as the GGk and VECOZO allow

[rules]
# The product code list(s) TR381 checks against, by "# list:" name in the mapping folder.
product_codes = "JZ21"

# -- parties ----------------------------------------------------------------------------------
# One of each role to start from: replace the REPLACE values, add a [[parties]] entry per
# municipality and care provider. Tokens: `gateway init` printed them once; only their SHA-256
# is stored here. A new token: python -c "import secrets; print(secrets.token_urlsafe(32))",
# then store `printf %s TOKEN | sha256sum`, or set token_env = "GATEWAY_..." instead.

# The BVO that runs this gateway.
[[parties]]
id = "bvo"
name = "REPLACE: the BVO's name"
role = "bvo"
channel = "mailbox"  # fetches with GET /v1/mailbox
token_sha256 = "{token_bvo}"

# A member municipality: the BVO answers retours on its behalf (answered_by).
[[parties]]
id = "gemeente-a"
name = "REPLACE: Gemeente ..."
role = "gemeente"
identity = "0000"  # REPLACE: the municipality's 4-digit CBS code
channel = "mailbox"
answered_by = "bvo"
token_sha256 = "{token_gemeente}"

# A care provider.
[[parties]]
id = "aanbieder-a"
name = "REPLACE: the provider's name"
role = "aanbieder"
identity = "00000000"  # REPLACE: the provider's 8-digit AGB code
channel = "folder"  # files appear in outbox/aanbieder-a/ (or "http" with a url)
token_sha256 = "{token_aanbieder}"
"""


def add_init_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``gateway init``."""
    cmd = subparsers.add_parser(
        "init",
        help="write a starter config.toml and the folders of a new deployment",
        description="Write a documented starter config.toml (one party of each role, each with "
        "a new token that is printed once; the file keeps only its SHA-256) and create the "
        "inbox, outbox and data folders. The shipped schemas and mapping tables are used "
        "unless the configuration names others. Refuses to replace a config.toml without "
        "--force.",
        epilog="examples:\n" + INIT_EXAMPLES.rstrip("\n"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmd.add_argument(
        "folder",
        nargs="?",
        type=Path,
        default=Path(),
        metavar="DIR",
        help="the deployment folder (default: the current folder; created when missing)",
    )
    cmd.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"HTTP port (default {DEFAULT_PORT})"
    )
    cmd.add_argument(
        "--force", action="store_true", help="replace an existing config.toml (new tokens)"
    )
    cmd.set_defaults(func=cmd_init)


def cmd_init(args: argparse.Namespace) -> int:
    """Write the starter configuration and folders; print the tokens once."""
    from gateway.core.route import token_digest

    folder: Path = args.folder
    config = folder / CONFIG_NAME
    if not 0 < args.port <= 65535:
        raise ConsoleError(f"--port {args.port}: give a port from 1 to 65535")
    if (config.exists() or config.is_symlink()) and not args.force:
        raise ConsoleError(f"{config} exists; give --force to replace it (and its tokens)")
    tokens = {party_id: secrets.token_urlsafe(32) for party_id, _ in STARTER_PARTIES}
    text = CONFIG_TEMPLATE.format(
        config=config,
        port=args.port,
        token_bvo=token_digest(tokens["bvo"]),
        token_gemeente=token_digest(tokens["gemeente-a"]),
        token_aanbieder=token_digest(tokens["aanbieder-a"]),
    )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name in FOLDERS:
            (folder / name).mkdir(exist_ok=True)
        # Replaced whole, never followed: a link at config.toml is removed, not written through.
        config.unlink(missing_ok=True)
        with config.open("x", encoding="utf-8") as out:
            out.write(text)
    except OSError as exc:
        raise ConsoleError(f"cannot write the deployment in {folder}: {exc}") from exc
    print(f"wrote {config} and {', '.join(f'{n}/' for n in FOLDERS)} in {folder.resolve()}")
    print("tokens (shown only now; config.toml keeps their SHA-256) - give each to its party:")
    for (party_id, role), token in zip(STARTER_PARTIES, tokens.values(), strict=True):
        print(f"  {party_id:<20} {role:<10} {token}")
    print(f"next: edit the REPLACE values, then: gateway check-config --config {config}")
    return EXIT_OK
