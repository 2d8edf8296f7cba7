"""``gateway validate`` and ``gateway schemas check`` as a user runs them: a subprocess."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

from gateway.schemas import load_schema_set
from tests.paths import (
    EXAMPLES_DIR,
    EXAMPLES_DIR_23,
    OFFICIAL_XSD_DIR,
    OFFICIAL_XSD_DIR_23,
    OUR_XSD_DIR,
)

VALID = sorted(p for p in EXAMPLES_DIR.glob("*.xml") if p.name != "JW318.xml")


def gateway(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
        timeout=300,
    )


def json_lines(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_valid_examples_exit_zero_with_one_json_object_each() -> None:
    """Every valid official example is ok, reported as one JSON object per file."""
    result = gateway("validate", "--json", *VALID)
    assert result.returncode == 0, result.stderr
    objects = json_lines(result.stdout)
    assert [o["file"] for o in objects] == [str(p) for p in VALID]
    assert {o["level"] for o in objects} == {"ok"}
    assert {o["message_type"] for o in objects} == {p.stem for p in VALID}
    assert all(o["release"] == "3.2" and o["findings"] == [] for o in objects)


def test_invalid_example_exits_one_with_xsd_finding_and_path() -> None:
    """The shipped JW318 example fails at XSD level with the element path of the fault."""
    result = gateway("validate", "--json", EXAMPLES_DIR / "JW318.xml")
    assert result.returncode == 1
    (obj,) = json_lines(result.stdout)
    assert obj["level"] == "xsd"
    findings = obj["findings"]
    assert isinstance(findings, list)
    assert findings[0]["path"] == "/Bericht/Client/Verzoek/RetourCode"
    assert findings[0]["line"] == 33
    assert set(findings[0]) == {"rule", "retourcode", "path", "line", "message"}


def test_rule_violation_is_reported_with_code_and_retourcode(tmp_path: Path) -> None:
    """A BSN that fails the 11-proof is a rules-level CS002 finding with retourcode 0001."""
    bad = tmp_path / "bad.xml"
    bad.write_bytes((EXAMPLES_DIR / "JW305.xml").read_bytes().replace(b"999900006", b"123456789"))
    result = gateway("validate", "--json", bad)
    assert result.returncode == 1
    (obj,) = json_lines(result.stdout)
    assert obj["level"] == "rules"
    assert ("CS002", "0001") in {(f["rule"], f["retourcode"]) for f in obj["findings"]}  # type: ignore[union-attr,index]
    assert "123456789" not in result.stdout


def test_missing_path_is_an_io_error_exit_two(tmp_path: Path) -> None:
    """A path that does not exist is an I/O error (exit 2), named on stderr."""
    result = gateway("validate", tmp_path / "nope.xml")
    assert result.returncode == 2
    assert "nope.xml" in result.stderr


def test_usage_error_exits_two() -> None:
    """An unknown option is a usage error."""
    assert gateway("validate", "--no-such-option", "x").returncode == 2


def test_readable_table_without_colours_when_piped(tmp_path: Path) -> None:
    """Without --json the report is a table; piped output carries no ANSI colour codes."""
    result = gateway("validate", EXAMPLES_DIR / "JW301.xml", EXAMPLES_DIR / "JW318.xml")
    assert result.returncode == 1
    assert "\x1b[" not in result.stdout
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["ok", "JW301"]
    assert any(line.split()[:2] == ["xsd", "JW318"] for line in lines)
    assert "2 file(s) checked" in result.stdout


def test_folder_of_ten_thousand_files(tmp_path: Path) -> None:
    """A folder of 10,000 messages is validated in one run, one JSON line per file."""
    folder = tmp_path / "many"
    folder.mkdir()
    sources = [p.read_bytes() for p in VALID]
    for i in range(10_000):
        (folder / f"m{i:05d}.xml").write_bytes(sources[i % len(sources)])
    (folder / "m05000.xml").write_bytes(b"<broken>")
    result = gateway("validate", "--json", folder)
    assert result.returncode == 1
    objects = json_lines(result.stdout)
    assert len(objects) == 10_000
    levels = [o["level"] for o in objects]
    assert levels.count("malformed") == 1
    assert levels.count("ok") == 9_999


def test_official_folder_with_name_quirk_loads_via_schemas_option() -> None:
    """An unpacked official release (Basisschema.xsd vs basisschema.xsd) can be used directly."""
    result = gateway("validate", "--json", "--schemas", OFFICIAL_XSD_DIR, *VALID)
    assert result.returncode == 0, result.stderr


def test_schemas_check_reports_every_message() -> None:
    """``gateway schemas check`` lists the 14 message schemas of a release folder."""
    for folder in (OFFICIAL_XSD_DIR, OUR_XSD_DIR):
        result = gateway("schemas", "check", folder)
        assert result.returncode == 0, result.stdout
        assert result.stdout.count("  ok  JW") == 14
        assert "loads (14 message schemas, 0 problems)" in result.stdout


def test_schemas_check_on_a_broken_folder_explains(tmp_path: Path) -> None:
    """A folder whose basisschema is missing does not load, and the output says which file."""
    shutil.copy(OFFICIAL_XSD_DIR / "JW301.xsd", tmp_path / "JW301.xsd")
    result = gateway("schemas", "check", tmp_path)
    assert result.returncode == 1
    assert "JW301.xsd" in result.stdout
    assert "does not load" in result.stdout


def test_retour_dir_receives_valid_retours(tmp_path: Path) -> None:
    """--retour-dir writes one retour per original, each valid against the official XSD."""
    out = tmp_path / "retours"
    originals = [
        EXAMPLES_DIR / f"{name}.xml"
        for name in ("JW301", "JW305", "JW307", "JW315", "JW317", "JW319", "JW323")
    ]
    result = gateway("validate", "--retour-dir", out, *originals)
    assert result.returncode == 0, result.stderr
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(
        f"{p.stem}.{kind}.xml"
        for p, kind in zip(
            originals, ("JW302", "JW306", "JW308", "JW316", "JW318", "JW320", "JW325"), strict=True
        )
    )
    official = load_schema_set([OFFICIAL_XSD_DIR])
    for path in out.iterdir():
        schema = official.get("3.2", path.name.split(".")[1])
        assert schema is not None
        assert schema.xsd.validate(etree.parse(str(path))), path.name


@pytest.mark.parametrize("command", [["validate", "--help"], ["schemas", "check", "--help"]])
def test_help_has_examples(command: list[str]) -> None:
    """Every command's --help shows usage (and validate shows examples)."""
    result = gateway(*command)
    assert result.returncode == 0
    assert "usage:" in result.stdout


def test_future_dagtekening_is_checked_only_as_of_a_given_date() -> None:
    """By default validate gives the official verdict; --today adds the receiver's TR135."""
    message = EXAMPLES_DIR / "JW305.xml"
    raw = message.read_bytes()
    dagtekening = dt.date.fromisoformat(raw.split(b"<ijw:Dagtekening>", 1)[1][:10].decode())
    assert gateway("validate", "--json", message).returncode == 0
    day_before = (dagtekening - dt.timedelta(days=1)).isoformat()
    result = gateway("validate", "--json", "--today", day_before, message)
    assert result.returncode == 1
    (obj,) = json_lines(result.stdout)
    assert obj["level"] == "external"
    assert [f["rule"] for f in obj["findings"]] == ["TR135"]  # type: ignore[union-attr,index]


def _mixed_folder(folder: Path, copies: int) -> Path:
    """Valid, XSD-invalid, rule-violating and malformed messages, interleaved."""
    folder.mkdir()
    sources = [p.read_bytes() for p in sorted(EXAMPLES_DIR.glob("*.xml"))]  # JW318 is invalid
    rule_violation = (EXAMPLES_DIR / "JW305.xml").read_bytes().replace(b"999900006", b"123456789")
    for i in range(copies):
        (folder / f"m{i:04d}.xml").write_bytes(sources[i % len(sources)])
        if i % 17 == 0:
            (folder / f"m{i:04d}-bsn.xml").write_bytes(rule_violation)
        if i % 23 == 0:
            (folder / f"m{i:04d}-broken.xml").write_bytes(b"<Bericht><unclosed>")
    return folder


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "table"])
def test_jobs_give_the_output_of_one_process_in_input_order(tmp_path: Path, as_json: bool) -> None:
    """--jobs 2 prints byte for byte what --jobs 1 prints, files in input order, same exit."""
    folder = _mixed_folder(tmp_path / "in", 200)
    missing = tmp_path / "gone.xml"
    options = ["--json"] if as_json else []
    runs = {
        jobs: gateway(
            "validate",
            *options,
            "--jobs",
            jobs,
            "--today",
            "2026-11-23",
            "--retour-dir",
            tmp_path / f"retours-{jobs}",
            folder,
            missing,
        )
        for jobs in ("1", "2")
    }
    single, parallel = runs["1"], runs["2"]
    assert single.returncode == parallel.returncode == 2  # the missing path is an I/O error
    assert parallel.stdout == single.stdout
    assert parallel.stderr == single.stderr
    assert f"{missing}: no such file or folder" in single.stderr
    if as_json:
        files = [str(o["file"]) for o in json_lines(single.stdout)]
        levels = {str(o.get("level")) for o in json_lines(single.stdout)}
        assert levels >= {"ok", "xsd", "rules", "malformed"}
    else:
        files = [
            line.split()[2] for line in single.stdout.splitlines() if line[:1] not in " 0123456789"
        ]
    in_folder = sorted(str(p) for p in folder.iterdir())
    # The table names an unreadable path on stderr only; JSON also gives it a line.
    assert files == ([*in_folder, str(missing)] if as_json else in_folder)
    retours = [
        sorted((p.name, p.read_bytes()) for p in (tmp_path / f"retours-{j}").iterdir())
        for j in runs
    ]
    assert retours[0] and retours[0] == retours[1]


def test_jobs_keep_the_exit_codes(tmp_path: Path) -> None:
    """With workers, all valid is exit 0 and any finding exit 1, as in one process."""
    folder = tmp_path / "ok"
    folder.mkdir()
    for i in range(60):
        shutil.copy(VALID[i % len(VALID)], folder / f"m{i:03d}.xml")
    assert gateway("validate", "--jobs", "2", folder).returncode == 0
    (folder / "m030.xml").write_bytes(b"<broken>")
    assert gateway("validate", "--jobs", "2", folder).returncode == 1


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_bad_jobs_value_is_a_readable_usage_error(value: str) -> None:
    """--jobs takes a whole number of at least 1; anything else says so, exit 2."""
    result = gateway("validate", "--jobs", value, EXAMPLES_DIR / "JW301.xml")
    assert result.returncode == 2
    assert (
        "argument --jobs/-j: expected a whole number of worker processes, at least 1"
        in result.stderr
    )
    assert repr(value) in result.stderr
    assert "Traceback" not in result.stderr


def test_ctrl_c_stops_workers_and_parent_cleanly(tmp_path: Path) -> None:
    """Ctrl-C (SIGINT to the whole process group) ends the run with 130, no traceback, no
    worker left behind."""
    folder = tmp_path / "many"
    folder.mkdir()
    sources = [p.read_bytes() for p in VALID]
    for i in range(6000):
        (folder / f"m{i:05d}.xml").write_bytes(sources[i % len(sources)])
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "validate", "--json", "--jobs", "2", str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    assert process.stdout is not None
    try:
        assert process.stdout.readline()  # the workers are validating
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, stderr
    assert b"Traceback" not in stderr
    assert stderr.strip().endswith(b"interrupted")
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)  # nothing of the run's process group is left


def test_2_3_messages_are_validated_with_the_shipped_2_3_schemas_and_say_so() -> None:
    """Without --schemas both shipped releases load; each message reports its own release."""
    examples_2_3 = sorted(EXAMPLES_DIR_23.glob("JW*.xml"))
    result = gateway("validate", "--json", VALID[0], *examples_2_3)
    assert result.returncode == 0, result.stderr
    objects = json_lines(result.stdout)
    assert [(o["message_type"], o["release"], o["level"]) for o in objects] == [
        (VALID[0].stem, "3.2", "ok"),
        *((p.stem, "2.3", "ok") for p in examples_2_3),
    ]


def test_retour_dir_receives_2_3_retours_valid_against_the_2_3_reference(tmp_path: Path) -> None:
    out = tmp_path / "retours"
    pairs = {"JW301": "JW302", "JW303": "JW304", "JW305": "JW306", "JW307": "JW308",
             "JW315": "JW316"}  # fmt: skip
    result = gateway(
        "validate", "--retour-dir", out, *(EXAMPLES_DIR_23 / f"{o}.xml" for o in pairs)
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{o}.{r}.xml" for o, r in pairs.items())
    reference = load_schema_set([OFFICIAL_XSD_DIR_23])
    for path in out.iterdir():
        schema = reference.get("2.3", path.name.split(".")[1])
        assert schema is not None
        assert schema.xsd.validate(etree.parse(str(path))), path.name
