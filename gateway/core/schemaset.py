"""Compiled schemas and the registry that picks one for an incoming message."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree


@dataclass(frozen=True, slots=True, eq=False)
class MessageSchema:
    """The compiled XSD of one message type in one release."""

    release: str
    message_type: str
    namespace: str
    berichtcode: str
    xsd: etree.XMLSchema
    source: Path
    basisschema_namespace: str
    # lxml keeps a schema's error log on the schema object, so two threads validating with
    # the same schema read each other's errors (an invalid message can even look valid).
    # Every validation holds this lock; see core.validate.xsd_findings.
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def check(self, tree: etree._ElementTree) -> tuple[bool, list[Any]]:
        """Validate a tree; return the verdict and a private copy of the error entries."""
        with self.lock:
            valid = bool(self.xsd.validate(tree))
            entries: list[Any] = [] if valid else list(self.xsd.error_log)  # type: ignore[call-overload]
        return valid, entries


@dataclass(frozen=True, eq=False)
class SchemaSet:
    """All loaded message schemas, keyed by root namespace and BerichtCode.

    A second release is simply more entries: its namespaces differ (``.../ijw/3_3/...``), so
    the root element's namespace picks the release and the BerichtCode picks the message.
    """

    schemas: Mapping[tuple[str, str], MessageSchema]
    _by_namespace: Mapping[str, MessageSchema] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "_by_namespace", {ns: s for (ns, _code), s in self.schemas.items()}
        )

    @classmethod
    def of(cls, schemas: Iterable[MessageSchema]) -> SchemaSet:
        """Build a set from loaded schemas."""
        return cls({(s.namespace, s.berichtcode): s for s in schemas})

    def lookup(self, namespace: str, berichtcode: str | None = None) -> MessageSchema | None:
        """The schema for a root namespace (and BerichtCode when known), or None."""
        if berichtcode is not None:
            found = self.schemas.get((namespace, berichtcode))
            if found is not None:
                return found
        return self._by_namespace.get(namespace)

    def get(self, release: str, message_type: str) -> MessageSchema | None:
        """The schema of a message type in a release, for building outgoing messages."""
        for schema in self.schemas.values():
            if schema.release == release and schema.message_type == message_type:
                return schema
        return None

    @property
    def releases(self) -> tuple[str, ...]:
        """The releases loaded, sorted."""
        return tuple(sorted({s.release for s in self.schemas.values()}))
