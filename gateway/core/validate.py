"""Layered validation: well-formed and safe → XSD → in-message rules (→ state, external).

Bytes in, :class:`ValidationReport` out. The first layer that finds anything decides the
verdict; deeper layers are not run on a message that failed an earlier one, as the standard
prescribes (an XSD-invalid message is never rule-checked).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from lxml import etree

from gateway.core.document import MessageDocument, c_index_enabled, first_at, source_line
from gateway.core.privacy import scrub_findings
from gateway.core.report import Finding, Level, ValidationReport
from gateway.core.rules import REGISTRY, Rule, RuleContext, run_rules
from gateway.core.schemaset import SchemaSet
from gateway.core.xmlsafe import DEFAULT_MAX_BYTES, ParseResult, parse_safely

_PREFIXED_NAME = re.compile(r"\{[^{}]*:[^{}]*\}|\b[A-Za-z_][\w.-]*:(?=[A-Za-z_])")


def _readable_xsd_message(message: str) -> str:
    """libxml2 writes ``{namespace}Name``; operators want just ``Name``."""
    return _PREFIXED_NAME.sub("", message)


def _readable_path(path: str | None) -> str | None:
    if not path:
        return None
    return _PREFIXED_NAME.sub("", path)


def identify(tree: etree._ElementTree, schemas: SchemaSet) -> MessageDocument | Finding:
    """Find the schema for a parsed message by root namespace and BerichtCode."""
    root = tree.getroot()
    # The root's tag is "{namespace}Name" or "Name" (what etree.QName reads, without building
    # one).
    tag = root.tag
    namespace, _, root_name = tag[1:].partition("}") if tag[:1] == "{" else (None, "", tag)
    if root_name != "Bericht" or namespace is None:
        return Finding(
            rule="XSD-UNKNOWN",
            message=f"root element {root_name!r} in namespace {namespace!r} is not an iJw Bericht",
            line=source_line(root),
            path="/" + root_name,
            level=Level.XSD,
        )
    code_element = _berichtcode_element(root)
    code_text = None if code_element is None else code_element.text
    berichtcode = None if code_text is None else code_text.strip()
    schema = schemas.lookup(namespace, berichtcode)
    if schema is None:
        known = ", ".join(schemas.releases) or "none"
        return Finding(
            rule="XSD-UNKNOWN",
            message=f"no schema for namespace {namespace!r} (releases loaded: {known})",
            line=source_line(root),
            path="/Bericht",
            level=Level.XSD,
        )
    return MessageDocument(tree, schema)


def _named(tag: object, name: str) -> bool:
    """``tag`` is an element tag with local name ``name`` (in any namespace or none)."""
    return tag.__class__ is str and (tag == name or tag.endswith("}" + name))


def _berichtcode_element(root: etree._Element) -> etree._Element | None:
    """``first_at(root, "Header/BerichtCode")``: the first BerichtCode below the first Header
    that has one. In a message the Header comes first and BerichtCode first in it, so a plain
    walk reads two elements, cheaper than setting up tag matchers (or the C walk, when built)."""
    if c_index_enabled():
        return first_at(root, "Header/BerichtCode")
    for header in root:
        if _named(header.tag, "Header"):
            for code in header:
                if _named(code.tag, "BerichtCode"):
                    return code
    return None


def xsd_findings(doc: MessageDocument) -> tuple[Finding, ...]:
    """Schema errors with element paths and lines (libxml2, for speed)."""
    valid, entries = doc.schema.check(doc.tree)
    if valid:
        return ()
    findings = []
    for entry in entries:
        path = _readable_path(entry.path)
        findings.append(
            Finding(
                rule="XSD",
                message=_readable_xsd_message(entry.message),
                path=path,
                line=entry.line or None,
                column=entry.column or None,
                level=Level.XSD,
            )
        )
    # libxml2 quotes the values it refuses, personal ones too.
    return scrub_findings(tuple(findings), doc.root)


def validate(
    raw: bytes,
    schemas: SchemaSet,
    context: RuleContext | None = None,
    *,
    rules: Iterable[Rule] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ValidationReport:
    """Validate one message through every layer; never raises on bad input."""
    parsed = parse_safely(raw, max_bytes, drop_blank_text=True)
    checked = _schema_checked(parsed, schemas)
    if parsed.blank_text_dropped and isinstance(checked, ValidationReport):
        # The findings of a message that fails here are those of the tree with its blank
        # text: a libxml2 message can quote or count that text ("<Bsn> <X/>1</Bsn>" reads
        # " " or nothing). Failing messages are rare, so the second parse costs valid
        # traffic nothing. A message that passes needs no second look: the blank-dropping
        # parse keeps the text of every element without element children and only drops
        # whitespace-only text elsewhere (xmlsafe._blank_text_droppable), and the XSD judges
        # that whitespace in neither tree (element-only content ignores it, mixed content
        # takes any text, and simple content would make the element with element children
        # invalid in both). So both trees are valid alike, and the rules, which read leaf
        # text and never a tail, read the same values from either.
        checked = _schema_checked(parse_safely(raw, max_bytes), schemas)
    if isinstance(checked, ValidationReport):
        return checked
    doc = checked
    findings = run_rules(REGISTRY if rules is None else rules, doc, context or RuleContext())
    if not findings:
        return _report(Level.OK, (), doc)
    # The shallowest failing rule level decides: an in-message fault means a 0001 retour,
    # whatever cross-message rules also say.
    order = (Level.RULES, Level.STATE, Level.EXTERNAL)
    level = next(lv for lv in order if any(f.level is lv for f in findings))
    return _report(level, findings, doc)


def _schema_checked(parsed: ParseResult, schemas: SchemaSet) -> MessageDocument | ValidationReport:
    """The XSD-valid document, or the report of the layer that refused it."""
    if parsed.tree is None:
        return ValidationReport(Level.MALFORMED, parsed.findings)
    identified = identify(parsed.tree, schemas)
    if isinstance(identified, Finding):
        return ValidationReport(Level.XSD, (identified,))
    schema_errors = xsd_findings(identified)
    if schema_errors:
        return _report(Level.XSD, schema_errors, identified)
    return identified


def _report(level: Level, findings: tuple[Finding, ...], doc: MessageDocument) -> ValidationReport:
    return ValidationReport(level, findings, doc.message_type, doc.release, doc)
