"""The README's chain leg ("Through the national chain") run as an operator pastes it: its
commands, read from README.md, as real processes (`gateway chain-sim certs`, `chain-sim serve`,
`gateway run --config config-chain.toml`, `chain-sim send docs/examples/`) on loopback HTTPS with
mutual TLS, on free ports instead of the documented ones.

What the README promises is checked against the dossier's promises (docs/examples/README.md,
tests/integration/demo_config.py): every `# →` line and every line of the simulator's output it
shows, the Bv03s, the retours leaving as Du01 that name their original's Di01, and what Jeugdhulp
Oost and Deventer receive.
"""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gateway.chain_certificates import GGK_OIN
from tests.integration.demo_config import (
    DOSSIER,
    EXAMPLES,
    FAULTY,
    LEG_2_3,
    PROFILE_CODE,
    message_type,
    product_codes,
    refusals,
    shipped_demo_folder,
)
from tests.paths import REPO
from tests.reliability.daemon import Daemon, free_port

SECTION = "### Through the national chain (simulated GGk)"
GATEWAY = ".venv/bin/gateway"
PORTS = ("8481", "8443", "9443")  # the REST API, the gateway's OntvangAsynchroon, the GGk's
PROVIDER = "jeugdhulp-oost"  # reached through the GGk in config-chain.toml
SERVE_LINE = re.compile(
    r"(?P<code>Di01|Du01) (?P<functie>JW\d{3}) (?P<zender>\S+) -> (?P<ontvanger>\S+) "
    r"(?P<ref>\S+?)(?: crossRefnummer (?P<cross>\S+))?: (?P<answer>\S+)"
)
DEMO_BSN = "999900006"


@dataclass
class Command:
    """One command of the leg and the `# → ` lines the README shows under it."""

    argv: list[str]
    expected: list[str] = field(default_factory=list)


def _readme_leg() -> tuple[list[Command], list[str]]:
    """The leg's commands, and the lines its text block shows `chain-sim serve` printing."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index(SECTION) :]
    section = section[: section.index("\n## ")]
    [(_, script), (_, shown)] = re.findall(r"```(sh|text)\n(.*?)```", section, re.DOTALL)
    commands: list[Command] = []
    for line in script.splitlines():
        if line.startswith("# → "):
            commands[-1].expected.append(line.removeprefix("# → "))
        elif line.strip() and not line.startswith("#"):
            commands.append(Command(shlex.split(line, comments=True)))
    return commands, [line for line in shown.splitlines() if line != "…"]


def _matches(pattern: str, lines: list[str]) -> bool:
    """Whether some line is ``pattern``, where … stands for one reference."""
    regex = r"\S+".join(re.escape(part) for part in pattern.split("…"))
    return any(re.fullmatch(regex, line) for line in lines)


def _wait_for(condition: str, check: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)  # waiting for other processes, not for a timer of ours
    raise AssertionError(f"timed out waiting for {condition}")


def _parties(config: Path) -> dict[str, dict[str, object]]:
    parsed = tomllib.loads(config.read_text(encoding="utf-8"))
    return {party["id"]: party for party in parsed["parties"]}


def test_the_chain_config_is_the_demo_config_with_the_chain_on() -> None:
    """config-chain.toml differs from config.toml only where the chain leg needs it."""
    demo = tomllib.loads((REPO / "config.toml").read_text(encoding="utf-8"))
    chain = tomllib.loads((REPO / "config-chain.toml").read_text(encoding="utf-8"))
    assert chain["chain"]["enabled"] is True and demo["chain"]["enabled"] is False
    reached = {p["id"]: p for p in chain["parties"] if p["channel"] == "ggk"}
    assert list(reached) == [PROVIDER]
    delivering = {p["id"] for p in chain["parties"] if p.get("chain_oins") == [GGK_OIN]}
    assert delivering == {PROVIDER, "gemeente-deventer"}
    for config in (demo, chain):
        config.pop("chain")
        config["server"].pop("port")  # beside the Try-it gateway
        config["retry"].pop("base_seconds")  # a refused envelope is retried within seconds
        for folder in ("inbox", "outbox", "data"):  # apart from the Try-it leg's
            config["paths"].pop(folder)
        for party in config["parties"]:
            party.pop("chain_oins", None)
            if party["id"] == PROVIDER:
                party.pop("channel")
    assert chain == demo


@dataclass
class Leg:
    """The leg's processes in ``folder``: the daemon, the simulator and what the commands that
    return printed (by subcommand)."""

    folder: Path
    config: Path
    ports: dict[str, str]
    daemon: Daemon
    serve: subprocess.Popen[bytes] | None = None
    outputs: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)

    @property
    def serve_out(self) -> Path:
        return self.folder / "serve.out"

    async def run(self, command: Command) -> None:
        """Run one README command (on the free ports); check the `# → ` lines it shows."""
        argv = [
            next((arg.replace(p, self.ports[p]) for p in PORTS if p in arg), arg)
            for arg in command.argv
        ]
        if argv[0] == ".venv/bin/pip":  # the extra: cryptography, a dev dependency too
            assert argv[-1] == ".[chain-sim]"
            return
        assert argv[0] == GATEWAY, argv
        if argv[1:] == ["run", "--config", self.config.name]:
            self.daemon.start()
            await self.daemon.wait_ready()
            return
        python = [sys.executable, "-m", "gateway", *argv[1:]]
        if argv[1:3] == ["chain-sim", "serve"]:
            with self.serve_out.open("wb") as out:
                self.serve = subprocess.Popen(
                    python, cwd=self.folder, stdout=out, stderr=subprocess.STDOUT
                )
            _wait_for("the simulator", lambda: b"listening on" in self.serve_out.read_bytes())
            return
        done = subprocess.run(
            python, cwd=self.folder, capture_output=True, text=True, timeout=180, check=False
        )
        self.outputs[argv[2]] = done
        for expected in command.expected:
            assert _matches(expected, done.stdout.splitlines()), (expected, done)

    def stop(self) -> tuple[int | None, int]:
        """Ctrl-C for the simulator, as the README says, and TERM for the daemon."""
        serve_code = None
        if self.serve is not None:
            if self.serve.poll() is None:
                self.serve.send_signal(signal.SIGINT)
            serve_code = self.serve.wait(timeout=30)
        return serve_code, self.daemon.stop()


async def test_the_readme_chain_leg_runs_as_documented(tmp_path: Path) -> None:
    commands, shown = _readme_leg()
    ports = {documented: str(free_port()) for documented in PORTS}
    config = shipped_demo_folder(
        tmp_path,
        "config-chain.toml",
        {
            "port = 8481": f"port = {ports['8481']}",
            "port = 8443": f"port = {ports['8443']}",
            "127.0.0.1:9443": f"127.0.0.1:{ports['9443']}",
        },
    )
    leg = Leg(tmp_path, config, ports, Daemon(config, int(ports["8481"]), tmp_path / "gateway.log"))
    try:
        for command in commands:
            await leg.run(command)
        assert list(leg.outputs) == ["certs", "send"] and leg.serve is not None
        assert leg.outputs["certs"].returncode == 0, leg.outputs["certs"].stderr

        # send: Bv03 for the files of parties whose chain_oins name the GGk (Deventer, Jeugdhulp
        # Oost), IB002 for the others' (Zorgpartners, Horizon), so it exits 1.
        send = leg.outputs["send"]
        assert send.returncode == 1, send.stdout + send.stderr
        answers = dict(line.split(": ", 1) for line in send.stdout.splitlines())
        di01 = {file: sent.split()[0] for file, sent in answers.items()}
        through_ggk = {party for party, p in _parties(config).items() if p.get("chain_oins")}
        assert {file: sent.split()[1] for file, sent in answers.items()} == {
            step.file: "Bv03" if step.sender in through_ggk else "IB002"
            for step in (*DOSSIER, *LEG_2_3, FAULTY)
        }

        # What the gateway sends Jeugdhulp Oost through the GGk: Deventer's originals as Di01,
        # the retours the BVO built for Deventer as Du01 naming their original's Di01.
        identity = {party: str(p.get("identity")) for party, p in _parties(config).items()}
        expected = set()
        for step in DOSSIER:
            if step.recipient == PROVIDER:
                functie = message_type((EXAMPLES / step.file).read_bytes())
                route = (identity[step.sender], identity[PROVIDER])
                expected.add(("Di01", functie, *route, None))
            if step.sender == PROVIDER and step.retour_type is not None:
                route = (identity[step.recipient], identity[PROVIDER])
                expected.add(("Du01", step.retour_type, *route, di01[step.file]))
        received = tmp_path / "ggk-received"
        _wait_for(
            "every envelope acknowledged",
            lambda: received.is_dir() and len(list(received.glob("*.xml"))) >= len(expected),
        )
        serve_lines = leg.serve_out.read_text(encoding="utf-8").splitlines()
        envelopes = [m for line in serve_lines if (m := SERVE_LINE.fullmatch(line))]
        acknowledged = [m for m in envelopes if m["answer"] == "Bv03"]
        assert {
            (m["code"], m["functie"], m["zender"], m["ontvanger"], m["cross"]) for m in acknowledged
        } == expected
        assert len(acknowledged) == len(expected)
        # The first is refused (--fail-first 1) and sent again under the same reference.
        [refused] = [m for m in envelopes if m["answer"] != "Bv03"]
        assert refused is envelopes[0] and refused["answer"] == "GW503"
        assert refused["ref"] in {m["ref"] for m in acknowledged}
        for line in shown:
            assert _matches(line, serve_lines), line

        # ggk-received/: what Jeugdhulp Oost gets, each file named by its envelope's reference.
        assert {f.stem for f in received.glob("*.xml")} == {m["ref"] for m in acknowledged}
        by_type = {message_type((EXAMPLES / s.file).read_bytes()): s for s in DOSSIER}
        by_type |= {s.retour_type: s for s in DOSSIER if s.retour_type is not None}
        for envelope in acknowledged:
            payload = (received / f"{envelope['ref']}.xml").read_bytes()
            assert message_type(payload) == envelope["functie"]
            step = by_type[envelope["functie"]]
            if envelope["code"] == "Du01":
                assert refusals(payload) == list(step.retour_codes), envelope["functie"]
            elif step.delivered_code is not None:  # translated to the provider's legacy code
                assert product_codes(payload) == {step.delivered_code}, envelope["functie"]

        # outbox-chain/gemeente-deventer/: the provider's originals, in Deventer's profile code.
        deventer = list((tmp_path / "outbox-chain" / "gemeente-deventer").glob("*.xml"))
        assert sorted(message_type(f.read_bytes()) for f in deventer) == sorted(
            message_type((EXAMPLES / s.file).read_bytes())
            for s in DOSSIER
            if s.recipient == "gemeente-deventer"
        )
        assert all(product_codes(f.read_bytes()) <= {PROFILE_CODE} for f in deventer)
    finally:
        codes = leg.stop()
    log = leg.daemon.log_path.read_text(encoding="utf-8")
    assert codes == (0, 0), log[-4000:]
    for text in (leg.serve_out.read_text(encoding="utf-8"), send.stdout, log):
        assert DEMO_BSN not in text
