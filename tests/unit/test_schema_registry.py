"""gateway.schemas loads our schema folder, the official release as shipped, and extra releases."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gateway.core.catalogue import kinds_in
from gateway.core.errors import SchemaInvalid
from gateway.schemas import check_folder, load_schema_set
from tests.paths import EXAMPLES_DIR, OFFICIAL_XSD_DIR, OUR_XSD_DIR, OUR_XSD_DIR_23


def ns(message: str, release: str = "3_2") -> str:
    return f"http://www.istandaarden.nl/ijw/{release}/{message.lower()}/schema"


KINDS_3_2 = kinds_in("3.2")
EXPECTED = {(ns(kind.name), kind.berichtcode): kind.name for kind in KINDS_3_2}


@pytest.mark.parametrize("folder", [OUR_XSD_DIR, OFFICIAL_XSD_DIR], ids=["ours", "official"])
def test_folder_loads_all_14_messages(folder: Path) -> None:
    """Each folder yields the 14 message schemas keyed by (namespace, BerichtCode)."""
    schema_set = load_schema_set([folder])
    assert len(schema_set.schemas) == 14
    assert {
        key: (schema.release, schema.message_type) for key, schema in schema_set.schemas.items()
    } == {key: ("3.2", name) for key, name in EXPECTED.items()}
    assert schema_set.releases == ("3.2",)
    for schema in schema_set.schemas.values():
        assert schema.basisschema_namespace == (
            "http://www.istandaarden.nl/ijw/3_2/basisschema/schema"
        )


def test_official_folder_has_the_traps_the_loader_absorbs() -> None:
    """The official release really has the name mismatch and CRLF the loader must absorb."""
    names = {p.name for p in OFFICIAL_XSD_DIR.iterdir()}
    assert "Basisschema.xsd" in names
    assert "basisschema.xsd" not in names
    assert b'schemaLocation="basisschema.xsd"' in (OFFICIAL_XSD_DIR / "JW301.xsd").read_bytes()
    assert b"\r\n" in (OFFICIAL_XSD_DIR / "JW301.xsd").read_bytes()


def test_our_files_follow_our_layout() -> None:
    """Our XSDs: lowercase names, LF, 2-space indent, our header, production version 1.0.0."""
    files = sorted(OUR_XSD_DIR.glob("*.xsd"))
    expected_names = sorted(f"{kind.name.lower()}.xsd" for kind in KINDS_3_2)
    assert [p.name for p in files] == ["basisschema.xsd", *expected_names]
    for path in files:
        text = path.read_bytes().decode("utf-8")
        assert_our_layout(path.name, text, "3.2")
        assert "0.1.0" not in text and "Versie>1.0.0</ijw:" in text, path.name


def assert_our_layout(name: str, text: str, release: str) -> None:
    assert "\r" not in text and "\t" not in text, name
    assert f"<!-- ijw-gateway: iJw {release}" in text, name
    assert "xs:documentation" not in text, name
    assert f"<ijw:release>{release}</ijw:release>" in text, name
    indents = {len(line) - len(line.lstrip(" ")) for line in text.splitlines()}
    assert all(width % 2 == 0 for width in indents), name


def test_our_2_3_files_follow_our_layout_and_load_the_ten_messages() -> None:
    """schemas/ijw-2.3: our layout, the 2.3 catalogue's messages, each keyed by its codes."""
    files = sorted(OUR_XSD_DIR_23.glob("*.xsd"))
    kinds = kinds_in("2.3")
    expected_names = sorted(f"{kind.name.lower()}.xsd" for kind in kinds)
    assert [p.name for p in files] == ["basisschema.xsd", *expected_names]
    for path in files:
        assert_our_layout(path.name, path.read_text(encoding="utf-8"), "2.3")
    schema_set = load_schema_set([OUR_XSD_DIR_23])
    assert schema_set.releases == ("2.3",)
    for kind in kinds:
        for code in kind.berichtcodes:
            found = schema_set.lookup(ns(kind.name, "2_3"), code)
            assert found is not None and (found.release, found.message_type) == ("2.3", kind.name)


def test_our_folder_picks_schema_by_namespace_and_code() -> None:
    """lookup() on our set returns the right message for each example's root namespace."""
    schema_set = load_schema_set([OUR_XSD_DIR])
    for kind in KINDS_3_2:
        found = schema_set.lookup(ns(kind.name), kind.berichtcode)
        assert found is not None and found.message_type == kind.name
        assert found.source == OUR_XSD_DIR / f"{kind.name.lower()}.xsd"
    assert schema_set.lookup(ns("JW301", "3_1"), "436") is None


# --- broken folders --------------------------------------------------------------------------


def copy_ours(target: Path, names: list[str] | None = None) -> Path:
    target.mkdir()
    for path in OUR_XSD_DIR.glob("*.xsd"):
        if names is None or path.name in names:
            shutil.copy(path, target / path.name)
    return target


def test_missing_basisschema_is_named(tmp_path: Path) -> None:
    """Without basisschema.xsd every message is reported, naming the missing import."""
    folder = copy_ours(tmp_path / "release", ["jw301.xsd", "jw302.xsd"])
    report = check_folder(folder)
    assert not report.ok
    assert report.loaded == ()
    assert len(report.problems) == 2
    for problem, message in zip(report.problems, ["jw301.xsd", "jw302.xsd"], strict=True):
        assert problem.startswith(f"{message}: ")
        assert "basisschema.xsd" in problem
    with pytest.raises(SchemaInvalid, match=r"jw301\.xsd: imports basisschema\.xsd"):
        load_schema_set([folder])


def test_message_xsd_that_is_not_xml_is_named(tmp_path: Path) -> None:
    """A non-XML message XSD is one problem naming that file; the other 13 still load."""
    folder = copy_ours(tmp_path / "release")
    (folder / "jw307.xsd").write_text("## JW307.xsd\n\n<?xml version='1.0'?>\n", encoding="utf-8")
    report = check_folder(folder)
    assert not report.ok
    assert len(report.loaded) == 13
    assert "JW307" not in {schema.message_type for schema in report.loaded}
    assert len(report.problems) == 1
    assert report.problems[0].startswith("jw307.xsd: ")
    with pytest.raises(SchemaInvalid, match=r"jw307\.xsd"):
        load_schema_set([folder])


def test_basisschema_that_is_not_xml_is_named(tmp_path: Path) -> None:
    """A broken basisschema is blamed by name, not as a syntax error in the message file."""
    folder = copy_ours(tmp_path / "release", ["basisschema.xsd", "jw319.xsd"])
    (folder / "basisschema.xsd").write_bytes(b"not xml at all")
    report = check_folder(folder)
    assert report.problems and report.problems[0].startswith("jw319.xsd: imported basisschema.xsd")


def test_empty_folder_reports_a_problem(tmp_path: Path) -> None:
    """An empty folder is a problem, not an empty success."""
    report = check_folder(tmp_path)
    assert not report.ok
    assert report.loaded == ()
    assert len(report.problems) == 1 and str(tmp_path) in report.problems[0]
    with pytest.raises(SchemaInvalid):
        load_schema_set([tmp_path])


def test_missing_folder_reports_a_problem(tmp_path: Path) -> None:
    """A folder that does not exist is reported, not raised as OSError."""
    report = check_folder(tmp_path / "nope")
    assert not report.ok and "not a folder" in report.problems[0]


# --- a second release --------------------------------------------------------------------------


def make_release_33(target: Path) -> Path:
    """Our 3.2 schemas with every namespace and release marker moved to 3.3."""
    target.mkdir()
    for path in OUR_XSD_DIR.glob("*.xsd"):
        text = path.read_text(encoding="utf-8")
        text = text.replace("/ijw/3_2/", "/ijw/3_3/").replace(
            "<ijw:release>3.2</ijw:release>", "<ijw:release>3.3</ijw:release>"
        )
        (target / path.name).write_text(text, encoding="utf-8")
    return target


def test_second_release_loads_alongside_and_is_picked_by_namespace(tmp_path: Path) -> None:
    """A 3.3 folder next to 3.2 gives 28 schemas; the root namespace picks the release."""
    release_33 = make_release_33(tmp_path / "ijw-3.3")
    schema_set = load_schema_set([OUR_XSD_DIR, release_33])
    assert len(schema_set.schemas) == 28
    assert schema_set.releases == ("3.2", "3.3")
    for kind in KINDS_3_2:
        old = schema_set.lookup(ns(kind.name, "3_2"), kind.berichtcode)
        new = schema_set.lookup(ns(kind.name, "3_3"), kind.berichtcode)
        assert old is not None and new is not None
        assert (old.release, old.message_type) == ("3.2", kind.name)
        assert (new.release, new.message_type) == ("3.3", kind.name)
        assert new.source.parent == release_33
        assert schema_set.get("3.3", kind.name) is new

    example = (EXAMPLES_DIR / "JW305.xml").read_bytes()
    moved = example.replace(b"/ijw/3_2/", b"/ijw/3_3/")
    from lxml import etree

    jw305_32 = schema_set.get("3.2", "JW305")
    jw305_33 = schema_set.get("3.3", "JW305")
    assert jw305_32 is not None and jw305_33 is not None
    assert jw305_32.xsd.validate(etree.fromstring(example))
    assert jw305_33.xsd.validate(etree.fromstring(moved))
    assert not jw305_33.xsd.validate(etree.fromstring(example))
