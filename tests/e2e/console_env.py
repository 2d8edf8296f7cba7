"""A temporary gateway for the console tests: config, store on SQLite or PostgreSQL, messages.

Messages are put in through the real service (validation, routing, retours) in this process;
the commands under test then run as ``python -m gateway`` subprocesses against the same store.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gateway.config import load_config
from gateway.core.lifecycle import advance
from gateway.core.model import Message, State
from gateway.daemon.app import build_app
from gateway.pseudonym_key import load_pseudonymizer
from gateway.store.sql import SqlStore
from tests.paths import EXAMPLES_DIR, OFFICIAL_XSD_DIR
from tests.pg_schemas import pg_schema_url

# Fictitious BSNs (11-proof, from the 9999 test range) that must never appear in any output.
BSN_A, BSN_B, BSN_C = "999900006", "999900018", "999900031"

CONFIG = """
[paths]
schemas = ["{schemas}"]
[store]
url = "{url}"
[retention]
delivered_days = 10
rejected_days = 5
batch_size = 2
[[parties]]
id = "diemen"
role = "gemeente"
identity = "0384"
channel = "folder"
[[parties]]
id = "provider-a"
role = "aanbieder"
identity = "65656055"
channel = "mailbox"
[[parties]]
id = "provider-b"
role = "aanbieder"
identity = "42420001"
channel = "folder"
not_ready_until = 2999-01-01
"""


@dataclasses.dataclass
class ConsoleEnv:
    """A configuration, its store and a way to run ``gateway`` against them."""

    folder: Path
    config: Path
    url: str

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """``gateway ARGS --config CONFIG`` as a subprocess (no terminal: no colours)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        return subprocess.run(
            [sys.executable, "-m", "gateway", *args, "--config", str(self.config)],
            cwd=self.folder,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def run_all(self, *commands: tuple[str, ...]) -> list[subprocess.CompletedProcess[str]]:
        """Run independent read-only commands at the same time (keeps the suite fast)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        started = [
            (
                args,
                subprocess.Popen(
                    [sys.executable, "-m", "gateway", *args, "--config", str(self.config)],
                    cwd=self.folder,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                ),
            )
            for args in commands
        ]
        done = []
        for args, process in started:
            out, err = process.communicate(timeout=60)
            done.append(subprocess.CompletedProcess(list(args), process.returncode, out, err))
        return done

    def json_all(self, *commands: tuple[str, ...]) -> list[Any]:
        """``run_all`` with ``--json``; every command must succeed."""
        results = []
        for done in self.run_all(*((*c, "--json") for c in commands)):
            assert done.returncode == 0, (done.args, done.stderr)
            results.append(json.loads(done.stdout))
        return results

    def json(self, *args: str) -> Any:
        """Run a command with ``--json`` and parse its output (it must succeed)."""
        done = self.run(*args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def store(self) -> SqlStore:
        """A store on the same database and pseudonym key (the caller closes it)."""
        return SqlStore(self.url, pseudonyms=load_pseudonymizer(load_config(self.config, {})))

    def submit(self, *items: tuple[str, bytes]) -> list[Message]:
        """Submit (party id, raw) through the real service; returns the stored messages."""

        async def main() -> list[Message]:
            gateway = build_app(load_config(self.config, {}))
            try:
                await asyncio.to_thread(gateway.store.migrate)
                out = []
                for party_id, raw in items:
                    party = gateway.service.registry.get(party_id)
                    assert party is not None
                    out.append((await gateway.service.intake.submit(party, raw, "test")).message)
                return out
            finally:
                gateway.store.close()

        return asyncio.run(main())

    def deliver(self, message_id: str, at: dt.datetime | None = None) -> Message:
        """Mark a queued message delivered (as the delivery pass would), at ``at``."""
        at = at or dt.datetime.now(dt.UTC)
        store = self.store()
        try:
            msg = store.get(message_id)
            assert msg is not None and msg.state is State.QUEUED
            sending, event = advance(
                msg, State.SENDING, "claimed", "delivery", at, lease_until=at + dt.timedelta(1)
            )
            store.apply_transition(sending, event, msg.state)
            done, event = advance(sending, State.DELIVERED, "delivered", "delivery", at)
            store.apply_transition(done, event, sending.state)
            return done
        finally:
            store.close()


def example(
    name: str,
    *,
    identificatie: str | None = None,
    bsns: tuple[str, ...] = (),
    declaratie: str | None = None,
    toewijzing: str | None = None,
) -> bytes:
    """An official example with a new BerichtIdentificatie, BSNs and numbers put in."""
    raw = (EXAMPLES_DIR / name).read_bytes().decode("utf-8")
    original_ids = {"JW323.xml": "765432198", "JW301.xml": "123456789012", "JW317.xml": "987654321"}
    if identificatie:
        old = original_ids.get(name)
        assert old and f"Identificatie>{old}<" in raw
        raw = raw.replace(f"Identificatie>{old}<", f"Identificatie>{identificatie}<", 1)
    for index, bsn in enumerate(bsns):
        known = ("999900006", "999900018")[index]
        raw = raw.replace(f"Bsn>{known}<", f"Bsn>{bsn}<")
    if declaratie:
        raw = raw.replace("DeclaratieNummer>DN001<", f"DeclaratieNummer>{declaratie}<")
    if toewijzing:
        raw = raw.replace("ToewijzingNummer>10072<", f"ToewijzingNummer>{toewijzing}<")
    return raw.encode("utf-8")


def _pg_url() -> Iterator[str]:
    with pg_schema_url("console") as url:
        yield url


def make_env(tmp_path: Path, backend: str) -> Iterator[ConsoleEnv]:
    """A fresh environment on ``backend`` (``sqlite`` or ``postgres``)."""
    if backend == "sqlite":
        urls: Iterator[str] = iter([f"sqlite:///{tmp_path / 'data' / 'gateway.db'}"])
    else:
        urls = _pg_url()
    for url in urls:
        config = tmp_path / "config.toml"
        config.write_text(CONFIG.format(schemas=OFFICIAL_XSD_DIR, url=url), encoding="utf-8")
        store = SqlStore(url, pseudonyms=load_pseudonymizer(load_config(config, {})))
        store.migrate()
        store.close()
        yield ConsoleEnv(tmp_path, config, url)
