"""``gateway translate`` and ``gateway mappings check|explain`` as a user runs them."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

from gateway.core.report import Level
from gateway.core.validate import validate
from gateway.schemas import load_schema_set
from tests.paths import OFFICIAL_XSD_DIR
from tests.unit.translation.builders import ROWS, jw301, products, write_folder
from tests.unit.translation.conversions import write_conversions


def gateway(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *map(str, args)],
        capture_output=True,
        check=False,
        timeout=300,
    )


def test_translate_prints_xml_on_stdout_and_rewrites_on_stderr(tmp_path: Path) -> None:
    """A one-to-one mapping: exit 0, valid XML with the new code, the rewrite listed."""
    folder = write_folder(tmp_path / "mappings")
    message = tmp_path / "jw301.xml"
    message.write_bytes(jw301("0193", "4711", "45", "45A03", dt.date(2020, 3, 1)))
    result = gateway("translate", message, "--to", "new", "--mappings", folder)
    assert result.returncode == 0, result.stderr
    assert products(result.stdout) == [("45", "45N03")]
    assert (
        b"rewrite /Bericht/Client/ToegewezenProducten/ToegewezenProduct: 45/45A03 -> "
        b"45/45N03" in result.stderr
    )
    schemas = load_schema_set([OFFICIAL_XSD_DIR])
    assert validate(result.stdout, schemas).level is not Level.XSD


def test_translate_exits_1_and_prints_no_xml_when_a_decision_is_needed(tmp_path: Path) -> None:
    """The shipped SYNTHETIC tables mark 45A48 one-to-many: listed, exit 1, stdout empty."""
    message = tmp_path / "jw301.xml"
    message.write_bytes(jw301("0193", "4711", "45", "45A48", dt.date(2018, 3, 1)))
    result = gateway("translate", message, "--to", "profile-2018")
    assert result.returncode == 1
    assert result.stdout == b""
    assert b"needs mapping decision" in result.stderr
    assert b"45/IJ01P" in result.stderr
    assert b"999900006" not in result.stderr  # the client's BSN is never printed


def test_translate_usage_and_io_errors_exit_2(tmp_path: Path) -> None:
    """A missing file or an unknown generation is a usage error."""
    missing = gateway("translate", tmp_path / "nope.xml", "--to", "profile-2018")
    assert missing.returncode == 2
    assert b"cannot read" in missing.stderr
    message = tmp_path / "jw301.xml"
    message.write_bytes(jw301("0193", "4711", "45", "45A48", dt.date(2018, 3, 1)))
    unknown = gateway("translate", message, "--to", "pxq-2099")
    assert unknown.returncode == 2
    assert b"unknown generation 'pxq-2099'" in unknown.stderr


def test_mappings_check_summarises_the_shipped_tables() -> None:
    """The shipped folder checks clean and says the demo data is synthetic."""
    result = gateway("mappings", "check")
    assert result.returncode == 0, result.stderr
    assert b"SYNTHETIC demo data" in result.stdout
    assert b"generation legacy:" in result.stdout


def test_mappings_check_lists_problems_with_file_and_line(tmp_path: Path) -> None:
    """A broken row makes check exit 2 naming file and line."""
    folder = write_folder(
        tmp_path / "mappings", ROWS + "DEMO,product,45,45A03,,,45,45X99,2021-01-01,,,,,no,x\n"
    )
    result = gateway("mappings", "check", "--mappings", folder)
    assert result.returncode == 2
    line = 6 + ROWS.count("\n")
    assert f"old_to_new.csv:{line}: target 45/45X99".encode() in result.stderr


def test_mappings_explain_shows_every_row_and_why() -> None:
    """explain names the row, whether it applies on the date, and the cut-over rule."""
    applies = gateway("mappings", "explain", "45A48", "--gemeente", "0193", "--date", "2018-02-01")
    assert applies.returncode == 0
    assert b"45/45A48 -> 45/IJ01P" in applies.stdout
    assert b": applies: " in applies.stdout and b"one-to-many" in applies.stdout
    before = gateway("mappings", "explain", "45A48", "--gemeente", "0193", "--date", "2017-06-01")
    assert b"does not apply" in before.stdout and b"before the cut-over" in before.stdout
    dbc = gateway("mappings", "explain", "999903", "--gemeente", "0150", "--date", "2018-01-01")
    assert b"declaratiecode 54/999903 -> 54/IJ05U" in dbc.stdout


def test_mappings_explain_and_check_show_declared_conversions(tmp_path: Path) -> None:
    """A unit-changing row names its conversion; without one it does not apply (held)."""
    folder = write_folder(tmp_path / "mappings")
    explain = ("mappings", "explain", "45A50", "--gemeente", "0384", "--date", "2026-03-01")
    without = gateway(*explain, "--mappings", folder)
    assert b"does not apply" in without.stdout
    assert b"without a declared conversion: held" in without.stdout
    write_conversions(folder)
    converted = gateway(*explain, "--mappings", folder)
    assert b": applies: " in converted.stdout
    assert b"converted by " in converted.stdout and b"conversions/old_to_new.csv:5" in (
        converted.stdout
    )
    check = gateway("mappings", "check", "--mappings", folder)
    assert check.returncode == 0, check.stderr
    assert b"(1 declared conversion(s))" in check.stdout
