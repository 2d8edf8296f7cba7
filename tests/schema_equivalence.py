"""Comparing two schema sets of one iJw release: the official (reference) files and ours.

Shared by tests/unit/test_schema_equivalence.py for every release the gateway carries. A schema
is described as comparable data (every element path from ``Bericht`` down with occurrences and
model groups, every leaf's effective facets, every named basisschema type), and verdicts are
asked of lxml and xmlschema with both schema sets. The mutators change an example in place.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xmlschema
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

from gateway.core.schemaset import SchemaSet
from gateway.schemas import load_schema_set
from tests.paths import (
    EXAMPLES_DIR,
    EXAMPLES_DIR_23,
    OFFICIAL_XSD_DIR,
    OFFICIAL_XSD_DIR_23,
    OUR_XSD_DIR,
    OUR_XSD_DIR_23,
)

VERDICT_KEYS = ("lxml/official", "lxml/ours", "xmlschema/official", "xmlschema/ours")


@dataclass(frozen=True)
class Release:
    """One release's two schema sets and its examples."""

    name: str
    official_dir: Path
    our_dir: Path
    examples_dir: Path
    messages: tuple[str, ...]

    @property
    def namespace_part(self) -> str:
        return self.name.replace(".", "_")

    @property
    def base_ns(self) -> str:
        return f"http://www.istandaarden.nl/ijw/{self.namespace_part}/basisschema/schema"

    def message_ns(self, message: str) -> str:
        return f"http://www.istandaarden.nl/ijw/{self.namespace_part}/{message.lower()}/schema"

    @functools.cache  # noqa: B019 - two releases, held for the whole session on purpose
    def official_xmlschema(self, message: str) -> xmlschema.XMLSchema10:
        # Official imports may name basisschema.xsd while the file is Basisschema.xsd.
        basis = next(p for p in self.official_dir.iterdir() if p.name.lower() == "basisschema.xsd")
        return xmlschema.XMLSchema10(
            str(self.official_dir / f"{message}.xsd"), locations=[(self.base_ns, str(basis))]
        )

    @functools.cache  # noqa: B019
    def our_xmlschema(self, message: str) -> xmlschema.XMLSchema10:
        return xmlschema.XMLSchema10(str(self.our_dir / f"{message.lower()}.xsd"))

    @functools.cache  # noqa: B019
    def lxml_schemas(self, side: str) -> SchemaSet:
        return load_schema_set([self.official_dir if side == "official" else self.our_dir])

    @functools.cache  # noqa: B019
    def described(self, side: str, message: str) -> SchemaDescription:
        schema = (
            self.official_xmlschema(message) if side == "official" else self.our_xmlschema(message)
        )
        return describe(schema)

    def verdicts(self, message: str, data: bytes) -> dict[str, bool]:
        """Each validator's verdict on ``data`` with each schema set."""
        tree = etree.parse(io.BytesIO(data))
        results: dict[str, bool] = {}
        for side in ("official", "ours"):
            schema = self.lxml_schemas(side).get(self.name, message)
            assert schema is not None, f"{message} missing from the {side} {self.name} schemas"
            results[f"lxml/{side}"] = schema.xsd.validate(tree)
        results["xmlschema/official"] = self.official_xmlschema(message).is_valid(io.BytesIO(data))
        results["xmlschema/ours"] = self.our_xmlschema(message).is_valid(io.BytesIO(data))
        return results


RELEASE_3_2 = Release(
    "3.2",
    OFFICIAL_XSD_DIR,
    OUR_XSD_DIR,
    EXAMPLES_DIR,
    ("JW301", "JW302", "JW305", "JW306", "JW307", "JW308", "JW315",
     "JW316", "JW317", "JW318", "JW319", "JW320", "JW323", "JW325"),
)  # fmt: skip
RELEASE_2_3 = Release(
    "2.3",
    OFFICIAL_XSD_DIR_23,
    OUR_XSD_DIR_23,
    EXAMPLES_DIR_23,
    ("JW301", "JW302", "JW303", "JW304", "JW305", "JW306", "JW307", "JW308", "JW315", "JW316"),
)
RELEASES = (RELEASE_3_2, RELEASE_2_3)


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


def describe(schema: xmlschema.XMLSchema10) -> SchemaDescription:
    description = SchemaDescription([], {})
    for element in schema.elements.values():
        describe_element(element, "", description, 0)
    return description


def basisschema_types(schema: xmlschema.XMLSchema10, base_ns: str) -> dict[str, Any]:
    """Every named type of the basisschema namespace, described the same way as messages."""
    described_types: dict[str, Any] = {}
    for name, xsd_type in schema.maps.types.items():
        if not name.startswith(f"{{{base_ns}}}"):
            continue
        if isinstance(xsd_type, XsdSimpleType):
            described_types[name] = facet_profile(xsd_type)
        else:
            description = SchemaDescription([], {})
            describe_complex(xsd_type, local(name), description)
            described_types[name] = (description.structure, description.leaves)
    return described_types


# --- mutating examples -------------------------------------------------------------------------


Mutator = Callable[[etree._Element], None]


@dataclass(frozen=True)
class Mutation:
    """One programmatic change to a source document and the verdict the standard implies
    (``source`` names the document: an official example message, or what a test builds)."""

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


def insert_after(path: str, name: str, text: str) -> Mutator:
    """A new element ``name`` (in the namespace of the one at ``path``) right after it."""

    def change(root: etree._Element) -> None:
        anchor = node(root, path)
        added = etree.Element(etree.QName(etree.QName(anchor).namespace, name).text)
        added.text = text
        anchor.addnext(added)

    return change
