"""No output quotes a personal value: faulty and hostile messages through every output.

Each message of the corpus carries distinctive personal values (a name, a birth date, an
address, a phone number, an e-mail address, a BSN) and is faulty, most of them exactly in a
personal element, so that validation has every reason to quote the value. The values are
then looked for in everything the gateway prints or serves: ``gateway validate`` (table and
``--json``), the daemon's HTTP intake and ``GET /v1/messages/ID``, the inbox watcher's
``.why.json``, the structured log, and ``gateway show`` (text, ``--json``, ``--xml``). Only
``show --xml --reveal`` prints them, and that is audited.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

from lxml import etree

from gateway.cli import main
from gateway.core.privacy import PERSONAL_ELEMENTS, is_personal, masked_copy
from gateway.core.validate import validate
from gateway.core.xmlsafe import parse_safely
from gateway.logs import configure_logging, get_logger, reset_logging
from gateway.store.base import MessageQuery
from tests.differential import HOSTILE
from tests.integration.conftest import Harness
from tests.paths import OFFICIAL_XSD_DIR
from tests.unit.rules.mutate import load_example, official_schema_set

# Values the official JW301 example already carries in personal elements.
EXAMPLE_VALUES = ("Van Woustraat", "abc@def.com", "0201234567", "2010-02-14", "1971-04-07")
CLIENT = "Client"
ADDRESS = "Client/Relaties/Relatie/Contact/Adres"
CONTACT = "Client/Relaties/Relatie/Contact"

# name: (changes to the JW301 example, the personal values that must never be printed)
CORPUS: dict[str, tuple[tuple[tuple[str, str], ...], tuple[str, ...]]] = {
    "postcode-format": (((f"{ADDRESS}/Postcode", "QZ7788"),), ("QZ7788",)),
    "postcode-blank": (((f"{ADDRESS}/Postcode", "  "),), ()),
    "birth-date-invalid": (((f"{CLIENT}/Geboortedatum/Datum", "2011-02-30"),), ("2011-02-30",)),
    "birth-date-ancient": (((f"{CLIENT}/Geboortedatum/Datum", "1888-03-17"),), ("1888-03-17",)),
    "name-too-long": (((f"{CLIENT}/Naam/Voornamen", "Xandrijntje" * 20),), ("Xandrijntje",)),
    "house-number-text": (((f"{ADDRESS}/Huis/Huisnummer", "4813x"),), ("4813x",)),
    "house-number-large": (((f"{ADDRESS}/Huis/Huisnummer", "481327"),), ("481327",)),
    "bsn-11-proof": (((f"{CLIENT}/Bsn", "999912347"),), ("999912347",)),
    "bsn-pattern": (((f"{CLIENT}/Bsn", "99991234X"),), ("99991234X",)),
    "phone-letters": (
        ((f"{CONTACT}/Telefoon/Telefoon01/Telefoonnummer", "06QZ4471"),),
        ("06QZ4471",),
    ),
    "email-too-long": (
        ((f"{CONTACT}/Emailadres", "quirijn.zwaluwenburg@" + "q" * 70 + ".nl"),),
        ("quirijn.zwaluwenburg",),
    ),
    "street-too-long": (
        ((f"{ADDRESS}/Straatnaam", "Zwanenburgwalletjesstraat"),),
        ("Zwanenburgwalletjesstraat",),
    ),
    # Hostile: the surname also stands in a code element, whose schema error quotes it.
    "surname-in-a-code": (
        (
            (f"{CLIENT}/Naam/Geslachtsnaam/Achternaam", "Vreeswijkhuis"),
            (f"{CLIENT}/Geslacht", "Vreeswijkhuis"),
        ),
        ("Vreeswijkhuis",),
    ),
}
# Hostile: not well-formed, with personal data in it.
MALFORMED = (
    b"<Bericht><Achternaam>Ploegmakersveld</Achternaam><Postcode>QZ9911</Postcode>"
    b"<unclosed></Bericht>"
)
MALFORMED_VALUES = ("Ploegmakersveld", "QZ9911")


def faulty_messages() -> dict[str, bytes]:
    """The corpus as bytes, each with its own BerichtIdentificatie."""
    out = {}
    for number, (name, (changes, _values)) in enumerate(CORPUS.items(), start=1):
        message = load_example("JW301").set(
            "Header/BerichtIdentificatie/Identificatie", f"PRIV{number:04d}"
        )
        for path, value in changes:
            message.set(path, value)
        out[name] = message.to_bytes()
    return out


def secret_values() -> list[str]:
    """Everything that must not be printed without ``--reveal``."""
    values = [v for _changes, vs in CORPUS.values() for v in vs]
    return [*values, *EXAMPLE_VALUES, *MALFORMED_VALUES]


def leaks(text: str) -> list[str]:
    """The secret values that occur in ``text``."""
    return [value for value in secret_values() if value in text]


def gateway_cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m gateway ARGS`` as an operator would run it (no GATEWAY_* variables)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def gateway_in_process(*args: str) -> tuple[int, str]:
    """``gateway ARGS`` in this process (cheaper than a process per command): exit code and
    everything it printed."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue() + err.getvalue()


def test_the_corpus_is_faulty_where_it_is_personal() -> None:
    """The corpus tests something: each message is refused, most for a personal element."""
    personal_paths = 0
    for name, raw in faulty_messages().items():
        report = validate(raw, official_schema_set())
        assert not report.ok, name
        personal_paths += any(is_personal(f.path) for f in report.findings)
    assert personal_paths >= len(CORPUS) - 2


def test_validate_cli_prints_no_personal_value(tmp_path: Path) -> None:
    """``gateway validate``, table and ``--json``, names paths and rules, never the values."""
    files = []
    for name, raw in faulty_messages().items():
        path = tmp_path / f"{name}.xml"
        path.write_bytes(raw)
        files.append(str(path))
    (tmp_path / "malformed.xml").write_bytes(MALFORMED)
    files.append(str(tmp_path / "malformed.xml"))
    schemas = ("--schemas", str(OFFICIAL_XSD_DIR))
    table = gateway_cli(tmp_path, "validate", *schemas, *files)
    as_json = gateway_cli(tmp_path, "validate", "--json", *schemas, *files)
    for done in (table, as_json):
        assert done.returncode == 1, done.stderr
        assert leaks(done.stdout + done.stderr) == []
    reports = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert len(reports) == len(CORPUS) + 1 and all(r.get("findings") for r in reports)
    paths = {f["path"] for r in reports for f in r["findings"]}
    assert "/Bericht/Client/Relaties/Relatie[1]/Contact/Adres/Postcode" in paths
    assert "Element 'Telefoonnummer': [facet 'pattern'] The value (withheld)" in as_json.stdout


async def test_daemon_outputs_carry_no_personal_value(harness: Harness) -> None:
    """HTTP intake and GET, ``.why.json``, the log and ``gateway show`` stay clean; only an
    audited ``show --xml --reveal`` prints the content."""
    log_stream = io.StringIO()
    configure_logging(json=True, stream=log_stream)
    try:
        await _run_daemon_outputs(harness, log_stream)
    finally:
        reset_logging()


async def _run_daemon_outputs(harness: Harness, log_stream: io.StringIO) -> None:
    messages = faulty_messages()
    served: list[str] = []
    ids: dict[str, str] = {}
    # Over HTTP: half of the corpus, and the hostile inputs.
    over_http = dict(list(messages.items())[::2])
    for name, raw in [*over_http.items(), ("malformed", MALFORMED)]:
        response = await harness.post("diemen", raw)
        served.append(await response.text())
        assert response.status == 202, served[-1]
        ids[name] = (await response.json())["id"]
    for index, raw in enumerate(HOSTILE):
        response = await harness.post("diemen", raw + f"<!-- {index} -->".encode())
        served.append(await response.text())
    for name, message_id in ids.items():
        response = await harness.get("diemen", f"/v1/messages/{message_id}")
        assert response.status == 200
        body = await response.text()
        served.append(body)
        assert json.loads(body)["findings"], name

    # Through the inbox: the other half, each rejected with a .why.json.
    inbox = harness.folder / "inbox" / "diemen"
    watcher = harness.gateway.watcher
    await watcher.scan()
    by_inbox = {n: raw for n, raw in messages.items() if n not in over_http}
    for name, raw in by_inbox.items():
        (inbox / f"{name}.xml").write_bytes(raw)
    (inbox / "malformed-too.xml").write_bytes(MALFORMED.replace(b"<unclosed>", b"<x>"))
    await watcher.scan()
    report = await watcher.scan()
    assert sorted(report.rejected) == sorted([*(f"{n}.xml" for n in by_inbox), "malformed-too.xml"])
    whys = [p.read_text(encoding="utf-8") for p in (inbox / "rejected").glob("*.why.json")]
    assert len(whys) == len(by_inbox) + 1 and all(json.loads(w)["findings"] for w in whys)

    log = log_stream.getvalue()
    assert log  # the intake logged something, so the check below reads real output
    for text in (*served, *whys, log):
        assert leaks(text) == []

    # The console, against the same store.
    all_ids = [m.id for m in harness.store.query(MessageQuery(limit=1000))]
    assert len(all_ids) >= len(messages) + 2
    config = str(harness.folder / "config.toml")
    for mid in all_ids:
        for mode in ((), ("--json",), ("--xml",)):
            code, printed = gateway_in_process("show", mid, *mode, "--config", config)
            assert code == 0, (mid, mode, printed)
            assert leaks(printed) == [], (mid, mode)
    # And as the operator runs it, in its own process.
    target = ids["email-too-long"]
    for mode in ((), ("--json",), ("--xml",)):
        done = gateway_cli(harness.folder, "show", target, *mode, "--config", config)
        assert done.returncode == 0, done.stderr
        assert leaks(done.stdout + done.stderr) == [] and done.stdout

    # --reveal shows the content, and only with a reason that goes into the audit trail.
    revealed = gateway_cli(
        harness.folder, "show", target, "--xml", "--reveal", "--reason", "ticket 4712",
        "--config", config,
    )  # fmt: skip
    assert revealed.returncode == 0, revealed.stderr
    assert "quirijn.zwaluwenburg" in revealed.stdout and "Van Woustraat" in revealed.stdout
    trail = gateway_cli(harness.folder, "audit", "--target", target, "--json", "--config", config)
    assert trail.returncode == 0, trail.stderr
    entries = json.loads(trail.stdout)
    assert [(e["action"], e["reason"]) for e in entries] == [("reveal", "ticket 4712")]


def test_show_xml_masks_every_personal_element() -> None:
    """``masked_copy`` leaves no personal text, comment or text between children readable."""
    raw = faulty_messages()["surname-in-a-code"]
    hostile = raw.replace(b"<ijw:Voornamen>", b"<ijw:Voornamen><!-- Quintijn -->", 1)
    tree = parse_safely(hostile).tree
    assert tree is not None
    masked = masked_copy(tree)
    texts = [
        (el.tag, el.text) for el in masked.getroot().iter() if isinstance(el.tag, str) and el.text
    ]
    personal = [t for tag, t in texts if str(tag).rpartition("}")[2] in PERSONAL_ELEMENTS]
    assert personal and all(t.strip() in ("***", "") or t.startswith("******") for t in personal)
    printed = etree.tostring(masked, encoding="unicode")
    # Geslacht is a code, but what it holds here is the surname: withheld there too.
    assert "Quintijn" not in printed and "Vreeswijkhuis" not in printed
    assert "(withheld)" in printed
    for value in ("Galen", "Peter", ">Tom<", *EXAMPLE_VALUES):
        assert value not in printed


def test_log_scrubber_withholds_personal_keys() -> None:
    """A log field named after a personal element is withheld; nine digits are masked."""
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    try:
        get_logger("test").info("event", postcode="QZ7788", note="bsn 999912347 seen")
    finally:
        reset_logging()
    entry = json.loads(stream.getvalue())
    assert entry["postcode"] == "(withheld)"
    assert "999912347" not in entry["note"] and entry["note"].endswith("******347 seen")
