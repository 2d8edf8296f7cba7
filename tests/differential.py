"""A seeded corpus of mutated iJw messages and a fingerprint of what validation says about each.

Speed work on the validation core must never change a verdict. This module builds the same
corpus on every run (the official examples, seeded random mutations of them and a few hostile
inputs) and reduces everything validation reports on one message to a short digest: level,
message type, release and every field of every finding of ``validate()``, and also every
in-message rule run alone on the parsed tree (XSD-invalid trees included), with an exception
recorded by its type. ``tests/data/differential_digests.json`` holds the digests the code gave
before a change; ``tests/unit/test_differential.py`` checks a sample of them and
``bench/differential.py`` all of them (and writes a new file when a change is meant to alter
verdicts).
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lxml import etree

from gateway.core.report import Finding
from gateway.core.rules import REGISTRY, RuleContext, run_rules
from gateway.core.rules.engine import RuleLevel, RuleRegistry
from gateway.core.schemaset import SchemaSet
from gateway.core.validate import identify, validate
from gateway.core.xmlsafe import parse_safely

SEED = 20261123
TODAY = dt.date(2026, 11, 23)
DIGESTS_FILE = Path(__file__).resolve().parent / "data" / "differential_digests.json"

#: Values a mutation writes into a leaf: codes, dates, BSNs and junk the rules care about.
VALUES = (
    "", " ", "0", "1", "2", "3", "4", "6", "8", "9", "01", "02", "03", "04", "05", "13", "14",
    "16", "83", "84", "NL", "BE", "C", "D", "1900-01-01", "1890-05-05", "2020-12-31",
    "2021-01-01", "2026-02-28", "2026-03-01", "2026-03-31", "2019-01-01", "2030-12-31",
    "2026-11-23", "2026-01-15", "123456782", "999900007", "111222333", "1234AB", "0123AB",
    "12345", "abc", "0200", "8001", "0001", "100", "-5", "5000", " 2 ", "2026-02-29x",
)  # fmt: skip

HOSTILE = (
    b"",
    b"  \n",
    b"\xef\xbb\xbf<a/>",
    b"<a>",
    b"<!DOCTYPE a><a/>",
    b"<a/><!-- <!DOCTYPE -->",
    b"<?xml version='1.0' encoding='latin-1'?><a/>",
    b"<a>\xff</a>",
    b"<a/>",
)


def _elements(root: etree._Element) -> list[etree._Element]:
    return [e for e in root.iter() if isinstance(e.tag, str) and e is not root]


def _mutate(root: etree._Element, rng: random.Random) -> None:
    """One to four changes: delete, duplicate, comment, empty, or a new or borrowed value."""
    for _ in range(rng.randint(1, 4)):
        elements = _elements(root)
        if not elements:
            return
        element = rng.choice(elements)
        parent = element.getparent()
        choice = rng.random()
        if choice < 0.2 and parent is not None:
            parent.remove(element)
        elif choice < 0.45 and parent is not None:
            parent.insert(parent.index(element) + 1, copy.deepcopy(element))
        elif choice < 0.5 and parent is not None:
            parent.insert(parent.index(element) + 1, etree.Comment("x"))
        elif choice < 0.55:
            element.text = None
        else:
            leaves = [e for e in elements if len(e) == 0]
            if not leaves:
                continue
            leaf = rng.choice(leaves)
            if rng.random() < 0.5:
                leaf.text = rng.choice(VALUES)
            else:
                name = etree.QName(leaf).localname
                same = [e for e in leaves if etree.QName(e).localname == name]
                leaf.text = rng.choice(same).text or ""


def corpus(examples_dir: Path, mutations: int) -> Iterator[bytes]:
    """The examples, ``mutations`` seeded mutations of them, then the hostile inputs."""
    bases = [p.read_bytes() for p in sorted(examples_dir.glob("JW*.xml"))]
    yield from bases
    rng = random.Random(SEED)
    for _ in range(mutations):
        root = etree.fromstring(rng.choice(bases))
        _mutate(root, rng)
        yield etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    yield from HOSTILE
    yield bases[0].replace(b"<", b"<!-- c --><", 1)


def compared_registry(codes: list[str]) -> RuleRegistry:
    """A registry holding only ``codes`` (in that order), run through the production path."""
    registry = RuleRegistry()
    for code in codes:
        rule = REGISTRY[code]
        registry.rule(
            rule.code,
            types=rule.message_types,
            summary=rule.summary,
            retourcode=rule.retourcode,
            level=rule.level,
            needs=rule.needs,
            other_releases=dict(rule.other_releases),
        )(rule.check)
    return registry


def default_codes() -> list[str]:
    """Every in-message rule, and TR135 (the one other rule ``gateway validate`` runs)."""
    return [r.code for r in REGISTRY if r.level is RuleLevel.IN_MESSAGE or r.code == "TR135"]


def _finding(finding: Finding) -> list[Any]:
    return [
        finding.rule,
        finding.message,
        finding.retourcode,
        finding.path,
        finding.line,
        finding.column,
        str(finding.level),
    ]


def digest(raw: bytes, schemas: SchemaSet, registry: RuleRegistry) -> str:
    """A fingerprint of everything validation reports on ``raw``, and each rule alone."""
    context = RuleContext(today=TODAY)
    report = validate(raw, schemas, context, rules=registry)
    result: list[Any] = [
        str(report.level),
        report.message_type,
        report.release,
        [_finding(f) for f in report.findings],
    ]
    parsed = parse_safely(raw)
    if parsed.tree is not None:
        document = identify(parsed.tree, schemas)
        if not isinstance(document, Finding):
            alone: list[Any] = []
            for rule in registry:
                try:
                    alone.append(
                        [rule.code, [_finding(f) for f in run_rules([rule], document, context)]]
                    )
                except Exception as exc:  # the failure type is part of the behaviour
                    alone.append([rule.code, f"raises {type(exc).__name__}"])
            result.append(alone)
    canonical = json.dumps(result, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
