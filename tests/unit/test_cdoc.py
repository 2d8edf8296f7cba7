"""The optional C extension (gateway/core/_cdoc.pyx): the build in use is current, its builders
give exactly the pure-Python answers, and document.py falls back when it is stale or unwanted.

The extension is opt-in (``GATEWAY_BUILD_C=1`` at install). Without it these tests skip, unless
``GATEWAY_BUILD_C`` is set for the test run too (.ci/run's second step does so after building
it): then a missing extension is a failure.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from gateway.core import document
from gateway.core.document import MessageDocument, wildcard
from gateway.core.schemaset import MessageSchema
from tests.paths import EXAMPLES_DIR, REPO

PYX = REPO / "gateway" / "core" / "_cdoc.pyx"
EXAMPLES = sorted(Path(EXAMPLES_DIR).glob("*.xml"))
# Comments, processing instructions, tails, two namespaces, no namespace, a non-ASCII name and
# repeated names at several depths: everything the pointer walk must skip or tell apart.
ODD = (
    '<a xmlns="urn:x" xmlns:p="urn:p"><!--c--><b>1</b><?pi x?><p:b>2</p:b>'
    '<c><b>3<!--in--></b><d><b>4</b></d></c>text<d/><e xmlns="">5</e><ü>6</ü>'
    "<c><d><b>7</b><e/></d></c></a>"
).encode()


@pytest.fixture(scope="module")
def cdoc() -> ModuleType:
    try:
        from gateway.core import _cdoc
    except ImportError:
        if os.environ.get("GATEWAY_BUILD_C", "0") not in ("", "0"):
            pytest.fail("GATEWAY_BUILD_C is set, but gateway.core._cdoc is not built")
        pytest.skip("the C extension is not built (opt-in: GATEWAY_BUILD_C=1 at install)")
    return _cdoc


@pytest.fixture
def pure_python(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """document.py's own pure-Python builders, the reference, for this test."""
    monkeypatch.setattr(document, "_cdoc", None)
    yield


def _trees() -> list[etree._Element]:
    return [etree.parse(str(path)).getroot() for path in EXAMPLES] + [etree.fromstring(ODD)]


def _bare_document(root: etree._Element) -> MessageDocument:
    # The lookups read only the message type of the schema (as a key for the scan names).
    schema = cast(MessageSchema, type("Schema", (), {"message_type": "CDOC-TEST"})())
    return MessageDocument(etree.ElementTree(root), schema)


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname


def test_the_built_extension_is_built_from_this_pyx_for_this_lxml(cdoc: ModuleType) -> None:
    # Fails when _cdoc.pyx was edited and not rebuilt: GATEWAY_BUILD_C=1 pip install -e . does.
    assert hashlib.sha256(PYX.read_bytes()).hexdigest() == cdoc.PYX_SHA256
    assert etree.__version__ == cdoc.LXML_VERSION
    assert cdoc.LIBXML_VERSION == etree.LIBXML_COMPILED_VERSION
    assert document._load_c_index() == (cdoc, f"C: gateway.core._cdoc (lxml {etree.__version__})")


def test_a_stale_or_foreign_build_is_not_used_and_says_why_once(
    cdoc: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(cdoc, "PYX_SHA256", "0" * 64)
        used, stale = document._load_c_index()
        assert used is None
        assert "stale" in stale
    with monkeypatch.context() as patch:
        patch.setattr(cdoc, "LXML_VERSION", "4.9.0")
        used, foreign = document._load_c_index()
        assert used is None
        assert "built for lxml 4.9.0" in foreign
    # One warning per refusal, saying the same as C_INDEX_STATUS would.
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", stale),
        ("WARNING", foreign),
    ]
    caplog.clear()
    assert document._load_c_index()[0] is cdoc
    assert caplog.records == []


def test_the_environment_variable_forces_pure_python(
    cdoc: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_PURE_PYTHON", "1")
    assert document._load_c_index() == (None, "pure Python: GATEWAY_PURE_PYTHON is set")
    monkeypatch.setenv("GATEWAY_PURE_PYTHON", "0")
    assert document._load_c_index()[0] is cdoc


def test_index_children_matches_the_python_builder_for_every_element(
    cdoc: ModuleType, pure_python: None
) -> None:
    checked = 0
    for root in _trees():
        python_builder = _bare_document(root)
        for el in root.iter(etree.Element):
            from_c = cdoc.index_children(el)
            from_python = python_builder._index_children(el)
            assert from_c == from_python
            assert list(from_c) == list(from_python)  # first-seen name order too
            checked += 1
    assert checked > 500


def test_scan_local_matches_lxml_iter_in_document_order(cdoc: ModuleType) -> None:
    for root in _trees():
        names = {_local(el) for el in root.iter(etree.Element)} | {"Absent"}
        for top in (root, next(root.iter("{*}c", "{*}Client", "{*}Header"))):
            # The element itself included, nothing after its subtree.
            found = cdoc.scan_local(top, names)
            assert set(found) == names
            for name in names:
                assert found[name] == tuple(top.iter("{*}" + name)), name


def test_scan_local_of_a_leaf_stops_at_the_leaf(cdoc: ModuleType) -> None:
    root = etree.fromstring(ODD)
    leaf = root[1]  # <b>1</b>, followed by siblings that also hold b elements
    assert cdoc.scan_local(leaf, ["b", "c"]) == {"b": (leaf,), "c": ()}


def _plain_paths(root: etree._Element) -> set[tuple[str, ...]]:
    paths: set[tuple[str, ...]] = set()
    for el in root.iter(etree.Element):
        for child in el.iterchildren(etree.Element):
            paths.add((_local(child),))
            for grandchild in child.iterchildren(etree.Element):
                paths.add((_local(child), _local(grandchild)))
                for great in grandchild.iterchildren(etree.Element):
                    paths.add((_local(child), _local(grandchild), _local(great)))
    return paths | {("Absent",), ("Header", "Absent"), ("b", "Absent", "b")}


def test_first_at_matches_elementpath(cdoc: ModuleType) -> None:
    checked = 0
    for root in _trees():
        paths = _plain_paths(root)
        for el in (root, *root.iter("{*}Client", "{*}Header", "{*}c")):
            for steps in paths:
                assert cdoc.first_at(el, steps) is el.find(wildcard("/".join(steps))), steps
                checked += 1
    assert checked > 1000


def test_first_at_searches_past_a_first_step_without_a_match(cdoc: ModuleType) -> None:
    root = etree.fromstring(b"<r><H><X/></H><H><B>1</B></H><H><B>2</B></H></r>")
    found = cdoc.first_at(root, ("H", "B"))
    assert found is not None
    assert found.text == "1"


def test_the_document_reads_the_same_in_c_and_in_python(
    cdoc: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    def answers(root: etree._Element) -> list[object]:
        doc = _bare_document(root)
        names = [*sorted({_local(el) for el in root.iter(etree.Element)}), "Absent"]
        paths = ["/".join(steps) for steps in sorted(_plain_paths(root))]
        read: list[object] = [doc.all_local(name) for name in names]
        for el in root.iter(etree.Element):
            read.append(dict(doc.children(el)))
            read.extend(doc.find(el, path) for path in paths)
            read.extend(doc.findall(el, path) for path in paths[:40])
            read.extend(doc.text(el, path) for path in paths[:40])
        read.extend(document.first_at(root, path) for path in paths)
        return read

    for root in _trees():
        monkeypatch.setattr(document, "_cdoc", cdoc)
        from_c = answers(root)
        monkeypatch.setattr(document, "_cdoc", None)
        assert answers(root) == from_c


def test_the_proxies_are_lxmls_own(cdoc: ModuleType) -> None:
    root = etree.fromstring(ODD)
    kept = root[1]
    assert cdoc.index_children(root)["b"][0] is kept
    assert cdoc.scan_local(root, ["b"])["b"][0] is kept
    assert cdoc.first_at(root, ("b",)) is kept


def test_the_name_cache_survives_freed_parser_dictionaries(cdoc: ModuleType) -> None:
    # Every document has a parser dictionary of its own, freed with it: a name pointer that is
    # reused for another name must not return the cached string of the old one.
    for number in range(2000):
        name = f"n{number}"
        root = etree.fromstring(f"<{name}><{name}x/></{name}>".encode(), etree.XMLParser())
        assert cdoc.local_name_of(root) == name
        assert list(cdoc.index_children(root)) == [name + "x"]
        assert cdoc.first_at(root, (name + "x",)) is root[0]


def test_bad_arguments_raise_instead_of_crashing(cdoc: ModuleType) -> None:
    root = etree.fromstring(ODD)
    with pytest.raises(TypeError):
        cdoc.index_children(None)
    with pytest.raises(TypeError):
        cdoc.scan_local(None, ["b"])
    with pytest.raises(TypeError):
        cdoc.first_at(root, ("c", 1))
    with pytest.raises(ValueError, match="at least one step"):
        cdoc.first_at(root, ())


@given(st.lists(st.sampled_from([b"\r", b">", b"\n", b" ", b"a", b"<", b">\r"]), max_size=40))
def test_crs_follow_tags_is_the_two_counts(cdoc: ModuleType, parts: list[bytes]) -> None:
    """xmlsafe's blank-text guard gets the same answer from the C walk as from the counts."""
    raw = b"".join(parts)
    assert cdoc.crs_follow_tags(raw) == (raw.count(b"\r") == raw.count(b">\r"))


def test_crs_follow_tags_on_the_examples(cdoc: ModuleType) -> None:
    crlf = [path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") for path in EXAMPLES]
    assert any(b">\r\n" in raw for raw in crlf)
    for raw in crlf:
        assert cdoc.crs_follow_tags(raw) == (raw.count(b"\r") == raw.count(b">\r"))
        # A blank before a line end inside a leaf: the guard must say no.
        assert not cdoc.crs_follow_tags(raw.replace(b">\r\n", b"> \r\n", 1))
