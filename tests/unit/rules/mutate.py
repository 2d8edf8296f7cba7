"""Single-field mutations of the official example messages, for negative rule tests.

A test loads an example, changes one thing by local-name path and serialises it back::

    xml = load_example("JW301").set("Client/Bsn", "999900007").to_bytes()
    assert codes_for(xml) == {"CS002"}

Paths are relative to ``Bericht`` and use local names only; ``Name[2]`` picks the second of
several siblings (lxml ElementPath). New elements take the namespace of an existing sibling,
which is how iJw splits namespaces: message elements in the message namespace, children of
shared (CDT) types in the basisschema namespace.
"""

from __future__ import annotations

import copy
from functools import cache

from lxml import etree

from gateway.core.document import wildcard
from gateway.core.report import Level, ValidationReport
from gateway.core.rules import RuleContext
from gateway.core.schemaset import SchemaSet
from gateway.core.validate import validate
from gateway.schemas import load_schema_set
from tests.paths import EXAMPLES_DIR, OFFICIAL_XSD_DIR

Element = etree._Element

#: Examples that pass the official XSD (JW318.xml is XSD-invalid as shipped).
VALID_EXAMPLES = tuple(sorted(p.stem for p in EXAMPLES_DIR.glob("JW*.xml") if p.stem != "JW318"))


@cache
def official_schema_set() -> SchemaSet:
    """The official iJw 3.2 XSDs, loaded once per test session."""
    return load_schema_set([OFFICIAL_XSD_DIR])


def report_for(xml: bytes, context: RuleContext | None = None) -> ValidationReport:
    """Validate ``xml`` and insist it got past the XSD layer, so the rule layer really ran."""
    report = validate(xml, official_schema_set(), context)
    assert report.level in (Level.RULES, Level.OK), (
        f"mutation did not reach the rule layer: level={report.level}, "
        f"findings={[(f.rule, f.path, f.message) for f in report.findings]}"
    )
    return report


def codes_for(xml: bytes, context: RuleContext | None = None) -> set[str]:
    """The set of rule codes the rule layer reports for an XSD-valid message."""
    return set(report_for(xml, context).rule_codes)


def assert_only(xml: bytes, *codes: str) -> ValidationReport:
    """Assert the message yields exactly ``codes``, each as an in-message (0001) finding."""
    report = report_for(xml)
    found = [(f.rule, f.path, f.message) for f in report.findings]
    assert set(report.rule_codes) == set(codes), found
    assert report.level is (Level.RULES if codes else Level.OK)
    assert all(f.retourcode == "0001" for f in report.findings)
    return report


class Mutable:
    """An example message held as an lxml tree, changed in place by chained calls."""

    def __init__(self, tree: etree._ElementTree) -> None:
        self.tree = tree

    @property
    def root(self) -> Element:
        """The ``Bericht`` element."""
        return self.tree.getroot()

    def element(self, path: str) -> Element:
        """The first element at ``path``; a missing path is a bug in the test."""
        found = self.root.find(wildcard(path))
        if found is None:
            raise LookupError(f"no element at {path!r}")
        return found

    def elements(self, path: str) -> list[Element]:
        """All elements at ``path``."""
        return self.root.findall(wildcard(path))

    def text(self, path: str) -> str | None:
        """The text at ``path``."""
        return self.element(path).text

    def set(self, path: str, value: str) -> Mutable:
        """Replace the text of the element at ``path``."""
        self.element(path).text = value
        return self

    def remove(self, path: str) -> Mutable:
        """Delete the element at ``path``."""
        target = self.element(path)
        parent = target.getparent()
        assert parent is not None, "cannot remove the root"
        parent.remove(target)
        return self

    def duplicate(self, path: str) -> Mutable:
        """Insert a deep copy of the element at ``path`` right after it."""
        target = self.element(path)
        target.addnext(copy.deepcopy(target))
        return self

    def _new_like(self, sibling: Element, name: str, value: str | None) -> Element:
        namespace = etree.QName(sibling).namespace
        created = etree.Element(f"{{{namespace}}}{name}" if namespace else name, nsmap=None)
        created.text = value
        created.tail = sibling.tail
        return created

    def insert_after(self, path: str, name: str, value: str | None = None) -> Mutable:
        """Insert a new element ``name`` after the one at ``path``, in that sibling's namespace."""
        sibling = self.element(path)
        sibling.addnext(self._new_like(sibling, name, value))
        return self

    def insert_before(self, path: str, name: str, value: str | None = None) -> Mutable:
        """Insert a new element ``name`` before the one at ``path``, in that sibling's namespace."""
        sibling = self.element(path)
        sibling.addprevious(self._new_like(sibling, name, value))
        return self

    def insert_xml_after(self, path: str, fragment: str) -> Mutable:
        """Insert an XML fragment after ``path``; ``m:`` and ``b:`` prefixes in the fragment
        stand for the message and basisschema namespaces."""
        sibling = self.element(path)
        sibling.addnext(self._parse_fragment(fragment, sibling.tail))
        return self

    def append_xml(self, parent_path: str, fragment: str) -> Mutable:
        """Append an XML fragment as last child of ``parent_path`` (prefixes as above)."""
        parent = self.element(parent_path)
        parent.append(self._parse_fragment(fragment, parent.text))
        return self

    def _parse_fragment(self, fragment: str, tail: str | None) -> Element:
        message_ns = etree.QName(self.root).namespace
        basis_ns = next(
            (ns for ns in self.root.nsmap.values() if ns and ns.endswith("/basisschema/schema")),
            "",
        )
        wrapped = f'<w xmlns:m="{message_ns}" xmlns:b="{basis_ns}">{fragment}</w>'
        created = etree.fromstring(wrapped.encode())[0]
        created.tail = tail
        return created

    def to_bytes(self) -> bytes:
        """Serialise back to UTF-8 XML with a declaration."""
        return etree.tostring(self.tree, xml_declaration=True, encoding="UTF-8")


def example_bytes(message_type: str) -> bytes:
    """The official example of a message type, unchanged."""
    return (EXAMPLES_DIR / f"{message_type}.xml").read_bytes()


def load_example(message_type: str) -> Mutable:
    """A fresh, mutable copy of the official example of ``message_type`` (e.g. ``JW301``)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=False)
    return Mutable(etree.parse(str(EXAMPLES_DIR / f"{message_type}.xml"), parser))
