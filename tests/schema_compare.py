"""Comparing XSDs as components, and changing example documents, for the schema equivalence
tests (our authored schemas against the official ones: iJw 3.2 and StUF-GGk ggk0210)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lxml import etree
from xmlschema.validators import (
    XsdAnyAttribute,
    XsdAnyElement,
    XsdAttributeGroup,
    XsdComplexType,
    XsdElement,
    XsdGroup,
    XsdList,
    XsdSimpleType,
    XsdUnion,
)

# --- describing a schema as comparable data ----------------------------------------------------


def local(qname: str | None) -> str:
    return "" if qname is None else qname.rsplit("}", 1)[-1]


def facet_profile(simple_type: XsdSimpleType) -> dict[str, Any]:
    """The effective constraints of a simple type, gathered along its whole derivation chain.

    Patterns are kept per derivation step (a value must match one pattern of every step), the
    enumeration and the scalar facets of the most derived step that declares them win.
    """
    profile: dict[str, Any] = {"variety": "atomic"}
    if isinstance(simple_type, XsdList):
        profile["variety"] = "list"
        profile["item"] = repr(facet_profile(simple_type.item_type))
    elif isinstance(simple_type, XsdUnion):
        profile["variety"] = "union"
        profile["members"] = tuple(repr(facet_profile(t)) for t in simple_type.member_types)
    primitive = getattr(simple_type, "primitive_type", None)
    profile["primitive"] = None if primitive is None else primitive.name
    pattern_steps: list[frozenset[str]] = []
    step: Any = simple_type
    while step is not None:
        for name, facet in (getattr(step, "facets", None) or {}).items():
            if name is None:  # built-in validator functions, not declared facets
                continue
            facet_name = local(name)
            if facet_name == "pattern":
                pattern_steps.append(frozenset(facet.regexps))
            elif facet_name == "enumeration":
                profile.setdefault("enumeration", frozenset(facet.enumeration))
            elif facet_name == "assertion":
                profile.setdefault("assertion", repr(facet))
            else:
                profile.setdefault(facet_name, facet.value)
        base = getattr(step, "base_type", None)
        step = base if isinstance(base, XsdSimpleType) else None
    profile["patterns"] = frozenset(pattern_steps)
    return profile


@dataclass
class SchemaDescription:
    """The structure rows (in document order) and the leaf facet profiles of one message."""

    structure: list[tuple[Any, ...]]
    leaves: dict[str, dict[str, Any]]


def describe_complex(
    complex_type: XsdComplexType, path: str, into: SchemaDescription, depth: int = 0
) -> None:
    if depth > 40:  # iJw has no recursive types; this only guards against a schema loop
        raise AssertionError(f"type nesting too deep at {path}")
    into.structure.append((path, "mixed" if complex_type.mixed else "element-only"))
    attributes: XsdAttributeGroup = complex_type.attributes
    for name, attribute in sorted(attributes.items(), key=lambda kv: str(kv[0])):
        if isinstance(attribute, XsdAnyAttribute):
            into.structure.append((f"{path}/@*", repr(attribute.namespace)))
            continue
        assert attribute.type is not None
        into.structure.append((f"{path}/@{name}", attribute.use))
        into.leaves[f"{path}/@{name}"] = facet_profile(attribute.type)
    content = complex_type.content
    if isinstance(content, XsdSimpleType):
        into.leaves[f"{path}/text()"] = facet_profile(content)
    elif isinstance(content, XsdGroup):
        describe_group(content, path, into, depth)


def describe_group(group: XsdGroup, path: str, into: SchemaDescription, depth: int) -> None:
    group_path = f"{path}/({group.model})"
    into.structure.append((group_path, group.model, group.min_occurs, group.max_occurs))
    for item in group:
        if isinstance(item, XsdGroup):
            describe_group(item, group_path, into, depth + 1)
        elif isinstance(item, XsdElement):
            describe_element(item, path, into, depth + 1)
        elif isinstance(item, XsdAnyElement):
            into.structure.append(
                (f"{path}/*", repr(item.namespace), item.process_contents, item.min_occurs,
                 item.max_occurs)
            )  # fmt: skip
        else:  # pragma: no cover - XSD 1.0 has no other particle kinds
            raise AssertionError(f"unexpected particle {item!r} at {path}")


def describe_element(element: XsdElement, parent: str, into: SchemaDescription, depth: int) -> None:
    path = f"{parent}/{element.name}"
    into.structure.append(
        (path, element.min_occurs, element.max_occurs, element.nillable, element.default,
         element.fixed)
    )  # fmt: skip
    if isinstance(element.type, XsdSimpleType):
        into.leaves[path] = facet_profile(element.type)
    else:
        describe_complex(element.type, path, into, depth)


# --- changing example documents ------------------------------------------------------------------

Mutator = Callable[[etree._Element], None]


@dataclass(frozen=True)
class Mutation:
    """One programmatic change to a source document and the verdict the standard implies
    (``source`` names the document: an example message, or what a test builds)."""

    name: str
    source: str
    change: Mutator
    valid: bool


def node(root: etree._Element, path: str) -> etree._Element:
    """The element at a path of local names; ``Relatie[2]`` picks the second one."""
    steps = []
    for step in path.split("/"):
        name, _, index = step.partition("[")
        steps.append(f"*[local-name()='{name}']" + (f"[{index}" if index else ""))
    found = root.xpath("./" + "/".join(steps))
    assert isinstance(found, list)
    assert found, f"mutation target {path} not in example"
    element = found[0]
    assert isinstance(element, etree._Element)
    return element


def set_text(path: str, value: str) -> Mutator:
    def change(root: etree._Element) -> None:
        node(root, path).text = value

    return change


def remove(path: str) -> Mutator:
    def change(root: etree._Element) -> None:
        target = node(root, path)
        parent = target.getparent()
        assert parent is not None
        parent.remove(target)

    return change


def duplicate(path: str) -> Mutator:
    def change(root: etree._Element) -> None:
        target = node(root, path)
        target.addnext(etree.fromstring(etree.tostring(target)))

    return change


def swap_with_next(path: str) -> Mutator:
    def change(root: etree._Element) -> None:
        target = node(root, path)
        following = target.getnext()
        assert following is not None
        following.addnext(target)

    return change


def rename(path: str, namespace: str | None = None, name: str | None = None) -> Mutator:
    def change(root: etree._Element) -> None:
        target = node(root, path)
        qname = etree.QName(target)
        target.tag = etree.QName(namespace or qname.namespace, name or qname.localname).text

    return change


def rename_root(namespace: str) -> Mutator:
    def change(root: etree._Element) -> None:
        root.tag = etree.QName(namespace, etree.QName(root).localname).text

    return change


def append_child(path: str, namespace: str, name: str, text: str) -> Mutator:
    def change(root: etree._Element) -> None:
        child = etree.SubElement(node(root, path), etree.QName(namespace, name).text)
        child.text = text

    return change


def both(*changes: Mutator) -> Mutator:
    def change(root: etree._Element) -> None:
        for each in changes:
            each(root)

    return change
